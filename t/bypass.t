# bypass.t: maintenance_bypass_cidr, the token by header and by cookie,
# a wrong token gets the page, the token is never logged, and
# $maintenance_bypass says which bypass let a request through.
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use MigTest;

my $t = MigTest->new;

$t->start_redis('r');

my $token = 'Zq8r-bypass-' . join('', map { ('a'..'z')[rand 26] } 1 .. 24);
my $tfile = $t->write_file('secret/bypass.token', "$token\n");
chmod 0644, $tfile;

my $short = $t->write_file('secret/short.token', "short\n");

$t->nginx_conf('n', <<"CONF");
load_module %%MODULE%%;
worker_processes 2;
events { worker_connections 128; }
http {
    log_format bp '\$request_uri bypass=[\$maintenance_bypass] '
                  'mode=\$maintenance epoch=\$maintenance_epoch \$status';
    access_log %%DIR%%/access.log bp;

    maintenance_redis 127.0.0.1:%%PORT_r%%;
    maintenance_poll 200ms;
    maintenance on;

    server {
        listen 127.0.0.1:%%PORT_cidr%%;
        maintenance_bypass_cidr 10.0.0.0/8;
        maintenance_bypass_cidr 127.0.0.0/8;
        location / { return 200 "app\\n"; }
        location /nocidr {
            maintenance_bypass_cidr 192.0.2.0/24;
            return 200 "app\\n";
        }
    }

    server {
        listen 127.0.0.1:%%PORT_token%%;
        maintenance_bypass_cidr 10.0.0.0/8;
        maintenance_bypass_token $tfile;
        location / { return 200 "app\\n"; }
    }
}
CONF

my ($rc, $out) = $t->nginx_test('n');
is($rc, 0, 'nginx -t accepts the bypass configuration');
unlike($out, qr/\Q$token\E/, 'nginx -t does not print the token');

$t->start_nginx('n');
my $cp = $t->port('cidr');
my $tp = $t->port('token');

$t->set_state('r', 'default', 'on', 4);
ok($t->wait_for(sub { $t->http($tp, '/')->{status} == 503 }, 5), 'flag on');

my $r = $t->http($cp, '/a');
is($r->{status}, 200, 'a client in the CIDR passes');
is($r->{body}, "app\n", 'to the app');
is($t->http($cp, '/nocidr')->{status}, 503,
   'a location with its own CIDR list outside the client is gated');

is($t->http($tp, '/b')->{status}, 503, 'no token: 503');

$r = $t->http($tp, '/c', headers => { 'X-Maintenance-Bypass' => $token });
is($r->{status}, 200, 'the token in the header passes');
is($r->{body}, "app\n", 'to the app');

$r = $t->http($tp, '/d',
              headers => { Cookie => "a=1; maintenance_bypass=$token; b=2" });
is($r->{status}, 200, 'the token in the cookie passes');

for my $bad ('wrong', substr($token, 0, -1), "${token}x", "x$token",
             uc $token, '')
{
    my $label = length $bad ? "a wrong token (" . length($bad) . " bytes)"
                            : 'an empty token';
    is($t->http($tp, '/e', headers => { 'X-Maintenance-Bypass' => $bad })
         ->{status}, 503, "$label in the header: 503");
    is($t->http($tp, '/e', headers => { Cookie => "maintenance_bypass=$bad" })
         ->{status}, 503, "$label in the cookie: 503");
}

is($t->http($tp, '/f', headers => { Cookie => "other=$token" })->{status},
   503, 'the token under another cookie name: 503');

$t->set_state('r', 'default', 'off', 5);
ok($t->wait_for(sub { $t->http($tp, '/g')->{status} == 200 }, 5),
   'flag off');

$t->stop_nginx('n');

my $log = $t->read_file($t->dir . '/n/access.log') // '';
like($log, qr{^/a bypass=\[cidr\] mode=on epoch=4 200$}m,
     'access log: bypass=cidr');
like($log, qr{^/c bypass=\[token\] mode=on epoch=4 200$}m,
     'access log: bypass=token (header)');
like($log, qr{^/d bypass=\[token\] mode=on epoch=4 200$}m,
     'access log: bypass=token (cookie)');
like($log, qr{^/b bypass=\[\] mode=on epoch=4 503$}m,
     'access log: gated request, empty bypass');
like($log, qr{^/g bypass=\[\] mode=off epoch=5 200$}m,
     'access log: open, empty bypass, new epoch');

unlike($t->error_log('n'), qr/\Q$token\E/, 'the token is not in error.log');
unlike($t->error_log('n'), qr/\Q$token\E/i, 'not even case-folded');
$t->check_logs('n');

# a token shorter than 16 bytes is refused at load
$t->nginx_conf('short', <<"CONF");
load_module %%MODULE%%;
events { worker_connections 64; }
http {
    server {
        listen 127.0.0.1:%%PORT_short%%;
        maintenance_bypass_token $short;
    }
}
CONF
($rc, $out) = $t->nginx_test('short');
isnt($rc, 0, 'a short token is refused');
like($out, qr/shorter than 16 bytes/, 'with the reason');
unlike($out, qr/short\n/, 'without printing it');

done_testing;
