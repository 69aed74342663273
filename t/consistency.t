# consistency.t: server blocks sharing a server_name but differing in
# gating get a warning naming both listens; maintenance_strict makes it
# an error.
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use MigTest;

my $t = MigTest->new;
my ($crt, $key) = $t->self_signed_cert('c');

sub conf {
    my ($name, $strict, $tls_gate, $extra) = @_;
    $extra //= '';
    $t->nginx_conf($name, <<"CONF");
load_module %%MODULE%%;
events { worker_connections 64; }
http {
    access_log off;
    maintenance_strict $strict;

    server {
        listen 127.0.0.1:%%PORT_plain%%;
        server_name shop.example www.shop.example;
        maintenance on;
        location / { return 200 "app\\n"; }
    }

    server {
        listen 127.0.0.1:%%PORT_tls%% ssl;
        server_name shop.example;
        ssl_certificate $crt;
        ssl_certificate_key $key;
        $tls_gate
        location / { return 200 "app\\n"; }
    }

    server {
        listen 127.0.0.1:%%PORT_other%%;
        server_name other.example;
        location / { return 200 "other\\n"; }
    }
    $extra
}
CONF
}

my ($plain, $tls) = ($t->port('plain'), $t->port('tls'));

# :80 gated, :443 not
conf('warn', 'off', 'maintenance off;');
my ($rc, $out) = $t->nginx_test('warn');
is($rc, 0, 'inconsistent gating: nginx -t still succeeds');
like($out, qr/\[warn\].*maintenance: server_name "shop\.example" is gated/,
     'a warning names the server_name');
like($out, qr/listen 127\.0\.0\.1:$plain\b/, 'it names the gated listen');
like($out, qr/listen 127\.0\.0\.1:$tls ssl\b/, 'and the ungated one');
like($out, qr/nginx\.conf:\d+/, 'with file and line');
unlike($out, qr/other\.example/, 'a server with another name is left alone');
is(() = $out =~ /maintenance: server_name/g, 1, 'one warning for the pair');

# the warning is in error.log on a real start too
$t->start_nginx('warn');
like($t->error_log('warn'), qr/\[warn\].*server_name "shop\.example"/,
     'the warning is logged at start');
$t->stop_nginx('warn');
$t->check_logs('warn');

# both gated: silent
conf('ok', 'on', 'maintenance on;');
($rc, $out) = $t->nginx_test('ok');
is($rc, 0, 'consistent gating passes with strict on');
unlike($out, qr/maintenance: server_name/, 'without a warning');

# gated at http level on both but a different scope on one
conf('scope', 'off', 'maintenance on; maintenance_scope api;');
($rc, $out) = $t->nginx_test('scope');
is($rc, 0, 'different scopes: nginx -t succeeds');
like($out, qr/server_name "shop\.example" is gated by scope "default" at listen 127\.0\.0\.1:$plain.*but by scope "api" at listen 127\.0\.0\.1:$tls ssl/,
     'a scope mismatch names both scopes and both listens');

# strict: an error
conf('strict', 'on', 'maintenance off;');
($rc, $out) = $t->nginx_test('strict');
isnt($rc, 0, 'maintenance_strict on: nginx -t fails');
like($out, qr/\[emerg\].*server_name "shop\.example" is gated/,
     'the message is an error');
like($out, qr/listen 127\.0\.0\.1:$plain\b.*listen 127\.0\.0\.1:$tls ssl/,
     'naming both listens');
ok(!eval { $t->start_nginx('strict'); 1 }, 'and nginx does not start');

done_testing;
