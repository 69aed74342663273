# gate_valgrind.t: the request path under valgrind (nginx single process):
# the gate open and closed, the token stripped from a request of more
# headers than one list part holds, an internal redirect that finds the
# request's state again, the CIDR bypass confirmed after location realip,
# status and health; and nginx -t walking the consistency guard over
# exact, wildcard and regex names and nested and regex locations.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time);
use POSIX ();
use lib 't/lib';
use MigTest;

plan skip_all => 'valgrind not installed'
    unless grep { -x "$_/valgrind" } split /:/, $ENV{PATH};

my $t = MigTest->new;
my $dir = $t->nginx_dir('v');
my $token = 'Vg-bypass-token-' . join('', map { ('a'..'z')[rand 26] } 1 .. 16);
$t->write_file("$dir/token", "$token\n");

$t->nginx_conf('v', <<'CONF');
load_module %%MODULE%%;
master_process off;
daemon off;
pid %%DIR%%/nginx.pid;
events { worker_connections 64; }
http {
    access_log %%DIR%%/access.log;
    maintenance_override_file %%DIR%%/override;
    maintenance_strict on;
    maintenance on;
    maintenance_bypass_token %%DIR%%/token;

    server {
        listen 127.0.0.1:%%PORT_http%%;
        server_name shop.example *.shop.example;
        maintenance_bypass_cidr 127.0.0.0/8;
        location / {
            proxy_pass http://127.0.0.1:%%PORT_app%%;
        }
        location /real/ {
            set_real_ip_from 127.0.0.1;
            real_ip_header X-Forwarded-For;
            proxy_pass http://127.0.0.1:%%PORT_app%%;
        }
        location /down/ {
            maintenance_bypass_cidr 192.0.2.0/24;
            proxy_pass http://127.0.0.1:%%PORT_closed%%;
            error_page 502 = /fallback;
        }
        location = /fallback {
            maintenance_bypass_cidr 192.0.2.0/24;
            return 200 "fallback [$maintenance_bypass]\n";
        }
        location /api/ {
            location /api/v2/ { }
            location ~ \.json$ { }
        }
        location = /health { maintenance_health; }
        location = /status { maintenance_status; }
    }

    server {
        listen 127.0.0.1:%%PORT_tls%%;
        server_name ~^(www\.)?shop\.example$;
        location / { }
        location /api/ {
            location /api/v2/ { }
            location ~ \.json$ { }
        }
    }

    server {
        listen 127.0.0.1:%%PORT_app%%;
        maintenance off;
        location / {
            return 200 "xmb=[$http_x_maintenance_bypass] cookie=[$http_cookie]\n";
        }
    }
}
CONF

# nginx -t under valgrind: the guard's walk over names and locations
my $r = $t->run({ timeout => 120 }, 'valgrind', '-q', '--error-exitcode=99',
                '--leak-check=no', 'nginx', '-t', '-p', "$dir/", '-c',
                "$dir/nginx.conf", '-e', "$dir/error.log");
is($r->{rc}, 0, 'nginx -t under valgrind: clean, the guard passes')
    or diag($r->{err});

my $vglog = "$dir/valgrind.log";
my $pid = $t->start_nginx_valgrind($dir);

my $p = $t->port('http');
ok($t->wait_port($p, 60), 'nginx under valgrind listens');

sub get { $t->http($p, $_[0], timeout => 10, @_[1 .. $#_]) }

my %many = map { ("X-Filler-$_" => "v$_") } 1 .. 30;

$r = get('/open', headers => { %many, 'X-Maintenance-Bypass' => $token,
                               Cookie => "a=1; maintenance_bypass=$token" });
is($r->{status}, 200, 'open: 200');
is($r->{body}, "xmb=[] cookie=[a=1]\n",
   'open, 30 more headers: the token stripped from a multi-part list');

$t->write_file("$dir/override", '');
ok($t->wait_for(sub { get('/real/x', headers =>
                          { 'X-Forwarded-For' => '203.0.113.9' })->{status}
                      == 503 }, 20),
   'closed: location realip, a forwarded client outside the CIDR: 503');
is(get('/real/y', headers => { 'X-Forwarded-For' => '127.0.0.7' })->{status},
   200, 'closed: location realip, inside: 200');

$r = get('/down/x', headers => { %many, 'X-Maintenance-Bypass' => $token });
is($r->{body}, "fallback [token]\n",
   'closed: the token counts after an internal redirect');
is(get('/down/y')->{status}, 503, 'closed: no token: 503');
is(get('/x', method => 'HEAD')->{status}, 200, 'closed: CIDR bypass, HEAD');

like(get('/status')->{body}, qr/"override":true/, 'status JSON');
like(get('/status?format=prometheus')->{body},
     qr/^nginx_maintenance_override 1$/m, 'status Prometheus');
is(get('/health')->{status}, 200, 'health');

unlink "$dir/override";

my ($w) = $t->quit_nginx_valgrind($pid, 30);
is($w, $pid, 'graceful exit');

my $vg = $t->read_file($vglog) // '';
is($vg, '', 'valgrind reports nothing') or diag($vg);
unlike($t->error_log('v'), qr/\Q$token\E/, 'no token in the log');
unlike($t->read_file("$dir/access.log") // '', qr/\Q$token\E/,
       'no token in the access log');
$t->check_logs('v');

done_testing;
