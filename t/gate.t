# gate.t: one http-level "maintenance on;" gates a plain HTTP and a TLS
# server alike; the flag comes from Redis; off, both reach the upstream.
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use MigTest;

my $t = MigTest->new;
my ($crt, $key) = $t->self_signed_cert('gate');

$t->start_redis('r');

$t->nginx_conf('n', <<"CONF");
load_module %%MODULE%%;
worker_processes 2;
events { worker_connections 128; }
http {
    access_log off;
    maintenance_redis 127.0.0.1:%%PORT_r%%;
    maintenance_poll 200ms;
    maintenance on;

    upstream app { server 127.0.0.1:%%PORT_app%%; }

    server {
        listen 127.0.0.1:%%PORT_http%%;
        server_name gate.test;
        location / { proxy_pass http://app; }
    }

    server {
        listen 127.0.0.1:%%PORT_https%% ssl http2;
        server_name gate.test;
        ssl_certificate $crt;
        ssl_certificate_key $key;
        location / { proxy_pass http://app; }
    }

    server {
        listen 127.0.0.1:%%PORT_app%%;
        maintenance off;
        location / { return 200 "app\\n"; }
    }
}
CONF

my ($rc, $out) = $t->nginx_test('n');
is($rc, 0, 'nginx -t accepts the configuration');
unlike($out, qr/maintenance: server_name/, 'no consistency warning');

$t->start_nginx('n');

my $http = $t->port('http');
my $https = $t->port('https');

sub both { ($t->http($http, '/x'), $t->http($https, '/x', tls => 1)) }

my ($h, $s) = both();
is($h->{status}, 200, 'no state in Redis: HTTP is open');
is($h->{body}, "app\n", 'HTTP reaches the upstream');
is($s->{status}, 200, 'no state in Redis: TLS is open');
is($s->{body}, "app\n", 'TLS reaches the upstream');

$t->set_state('r', 'default', 'on', 1);
ok($t->wait_for(sub {
    my ($a, $b) = both();
    $a->{status} == 503 && $b->{status} == 503;
}, 5), 'flag on: both servers answer 503');

for ([http => $t->http($http, '/x')],
     [tls => $t->http($https, '/x', tls => 1)])
{
    my ($name, $r) = @$_;
    is($r->{status}, 503, "$name: 503");
    like($r->{body}, qr/maintenance/i, "$name: the maintenance page");
    unlike($r->{body}, qr/^app$/m, "$name: not the app");
    is($r->{headers}{'retry-after'}, '120', "$name: Retry-After default");
    is($r->{headers}{'cache-control'}, 'no-store',
       "$name: Cache-Control: no-store");
    like($r->{headers}{'content-type'} // '', qr{^text/html},
         "$name: text/html");
    is($r->{headers}{'content-length'}, length($r->{body}),
       "$name: Content-Length matches the page");
}

# HTTP/2 over TLS, through curl (nghttp2) when it is there
SKIP: {
    my $curl = grep { -x "$_/curl" } split /:/, $ENV{PATH};
    skip 'curl not installed', 5 unless $curl;
    my $h2 = h2('/x');
    like($h2, qr{^HTTP/2 503\b}m, 'HTTP/2: 503');
    like($h2, qr{^retry-after: 120\r?$}m, 'HTTP/2: Retry-After');
    like($h2, qr{^cache-control: no-store\r?$}m, 'HTTP/2: no-store');
    like($h2, qr{Down for maintenance}, 'HTTP/2: the page');
    like(h2('/x', '-X', 'POST', '--data-binary', 'a=1'),
         qr{^HTTP/2 503\b}m, 'HTTP/2: POST gated');
}

$t->set_state('r', 'default', 'on', 2, retry_after => 30);
ok($t->wait_for(sub {
    ($t->http($http, '/x')->{headers}{'retry-after'} // '') eq '30'
}, 5), 'Retry-After from the state');
is($t->http($https, '/x', tls => 1)->{headers}{'retry-after'}, '30',
   'TLS: Retry-After from the state');

$t->set_state('r', 'default', 'off', 3);
ok($t->wait_for(sub {
    my ($a, $b) = both();
    $a->{status} == 200 && $b->{status} == 200;
}, 5), 'flag off: both open again');
($h, $s) = both();
is($h->{body}, "app\n", 'HTTP: the app again');
is($s->{body}, "app\n", 'TLS: the app again');
ok(!exists $h->{headers}{'retry-after'}, 'no Retry-After when open');

SKIP: {
    my $curl = grep { -x "$_/curl" } split /:/, $ENV{PATH};
    skip 'curl not installed', 1 unless $curl;
    like(h2('/x'), qr{^HTTP/2 200\b.*^app$}ms, 'HTTP/2: the app again');
}

$t->stop_nginx('n');
$t->check_logs('n');

sub h2 {
    my ($path, @extra) = @_;
    open(my $fh, '-|', 'curl', '-sk', '--http2', '--max-time', '5',
         '-D', '-', @extra, "https://127.0.0.1:$https$path") or return '';
    local $/;
    my $out = <$fh> // '';
    close $fh;
    return $out;
}

done_testing;
