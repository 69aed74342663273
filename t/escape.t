# escape.t: nothing in a gated context escapes: return, rewrite, if,
# satisfy any / allow all, POST with a body, HEAD (headers only).
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use MigTest;

my $t = MigTest->new;

$t->start_redis('r');

$t->nginx_conf('n', <<'CONF');
load_module %%MODULE%%;
worker_processes 2;
events { worker_connections 128; }
http {
    access_log off;
    maintenance_redis 127.0.0.1:%%PORT_r%%;
    maintenance_poll 200ms;
    maintenance on;
    client_max_body_size 1m;

    server {
        listen 127.0.0.1:%%PORT_http%%;
        server_name escape.test;

        location = /ret { return 200 "escaped\n"; }
        location = /rw { rewrite ^ /ret last; }
        location = /redir { rewrite ^ /elsewhere redirect; }
        location = /if {
            if ($arg_a) { return 200 "escaped\n"; }
            return 200 "escaped\n";
        }
        location = /set { set $x 1; return 200 "escaped $x\n"; }
        location = /sat {
            satisfy any;
            allow all;
            deny all;
            return 200 "escaped\n";
        }
        location = /try { try_files /nonexistent @named; }
        location @named { return 200 "escaped\n"; }
        location = /open { maintenance off; return 200 "open\n"; }
        location / { proxy_pass http://127.0.0.1:%%PORT_app%%; }
    }

    # server-level return runs before the gate (documented: the usual
    # http -> https redirect still sends clients to the gated TLS block)
    server {
        listen 127.0.0.1:%%PORT_redir%%;
        server_name redirect.test;
        return 301 https://escape.test$request_uri;
    }

    server {
        listen 127.0.0.1:%%PORT_app%%;
        maintenance off;
        location / { return 200 "escaped\n"; }
    }
}
CONF

$t->start_nginx('n');
my $port = $t->port('http');

is($t->http($port, '/ret')->{status}, 200, 'open: return 200 works');
is($t->http($port, '/app')->{body}, "escaped\n", 'open: the app answers');

$t->set_state('r', 'default', 'on', 7);
ok($t->wait_for(sub { $t->http($port, '/ret')->{status} == 503 }, 5),
   'flag on: the return location is gated');

for my $path (qw(/ret /rw /redir /if?a=1 /if /set /sat /try /app /app/x?y=1))
{
    my $r = $t->http($port, $path);
    is($r->{status}, 503, "GET $path: 503");
    unlike($r->{body}, qr/escaped/, "GET $path: nothing escapes");
    ok(!exists $r->{headers}{location}, "GET $path: no redirect");
}

for my $path (qw(/ret /app /sat)) {
    my $r = $t->http($port, $path, method => 'POST',
                     body => 'x' x 100_000,
                     headers => { 'Content-Type' => 'text/plain' });
    is($r->{status}, 503, "POST $path with a 100 KB body: 503");
    unlike($r->{body}, qr/escaped/, "POST $path: nothing escapes");
}

for my $m (qw(PUT DELETE PATCH OPTIONS)) {
    is($t->http($port, '/app', method => $m)->{status}, 503, "$m: 503");
}

my $head = $t->http($port, '/ret', method => 'HEAD');
is($head->{status}, 503, 'HEAD: 503');
is($head->{body}, '', 'HEAD: headers only');
ok($head->{headers}{'content-length'} > 0, 'HEAD: Content-Length of the page');
is($head->{headers}{'retry-after'}, '120', 'HEAD: Retry-After');
is($head->{headers}{'cache-control'}, 'no-store', 'HEAD: no-store');

my $get = $t->http($port, '/ret');
is($head->{headers}{'content-length'}, length $get->{body},
   'HEAD and GET agree on the length');

is($t->http($port, '/open')->{status}, 200,
   'maintenance off in a location wins over http-level on');

my $redir = $t->http($t->port('redir'), '/a');
is($redir->{status}, 301, 'server-level return still runs');
is($redir->{headers}{location}, 'https://escape.test/a',
   'to the gated TLS block');

$t->set_state('r', 'default', 'off', 8);
ok($t->wait_for(sub { $t->http($port, '/ret')->{status} == 200 }, 5),
   'flag off: open again');
is($t->http($port, '/rw')->{body}, "escaped\n", 'rewrite runs again');

$t->stop_nginx('n');
$t->check_logs('n');

done_testing;
