# health_status.t: maintenance_health (200 in and out of maintenance, with
# X-Maintenance), maintenance_health drain (503 in maintenance), and
# maintenance_status in JSON and Prometheus formats.
use strict;
use warnings;
use Test::More;
use JSON::PP;
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
    maintenance_node_id edge-h1;
    maintenance on;

    server {
        listen 127.0.0.1:%%PORT_http%%;
        location / { return 200 "app\n"; }
        location = /health { maintenance_health; }
        location = /drain { maintenance_health drain; }
        location = /other {
            maintenance_scope other;
            maintenance_health drain;
        }
        location = /status { maintenance_status; }
        location = /status/private {
            allow 192.0.2.1;
            deny all;
            maintenance_status;
        }
    }
}
CONF

$t->start_nginx('n');
my $p = $t->port('http');

sub status_json {
    my $r = $t->http($p, '/status');
    return eval { decode_json($r->{body}) } // {};
}

# open
my $r = $t->http($p, '/health');
is($r->{status}, 200, 'health: 200 when open');
is($r->{headers}{'x-maintenance'}, 'off', 'health: X-Maintenance: off');
like($r->{body}, qr/^maintenance=off epoch=\d+$/m, 'health: mode and epoch');
is($r->{headers}{'cache-control'}, 'no-store', 'health: no-store');
is($t->http($p, '/drain')->{status}, 200, 'drain: 200 when open');

ok($t->wait_for(sub { (status_json()->{redis}{up} // 0) }, 5),
   'status: the Redis link comes up');

$t->set_state('r', 'default', 'on', 3, reason => "db \"locked\" \\ </b> caf\xc3\xa9",
              release => 'abc123', actor => 'ops');
ok($t->wait_for(sub { $t->http($p, '/')->{status} == 503 }, 5), 'flag on');

$r = $t->http($p, '/health');
is($r->{status}, 200, 'health: 200 in maintenance (balancer keeps the node)');
is($r->{headers}{'x-maintenance'}, 'on', 'health: X-Maintenance: on');
is($r->{headers}{'x-maintenance-epoch'}, '3', 'health: X-Maintenance-Epoch');
like($r->{body}, qr/^maintenance=on epoch=3$/m, 'health: epoch in the body');

$r = $t->http($p, '/health', method => 'HEAD');
is($r->{status}, 200, 'health: HEAD 200');
is($r->{body}, '', 'health: HEAD has no body');
is($t->http($p, '/health', method => 'POST')->{status}, 405,
   'health: POST is not allowed');

$r = $t->http($p, '/drain');
is($r->{status}, 503, 'drain: 503 in maintenance');
is($r->{headers}{'x-maintenance'}, 'on', 'drain: X-Maintenance: on');

$r = $t->http($p, '/other');
is($r->{status}, 200, 'drain of another scope: 200');
is($r->{headers}{'x-maintenance'}, 'off', 'it reads its own scope');

# some gated traffic for the counters
$t->http($p, '/x') for 1 .. 3;

$r = $t->http($p, '/status');
is($r->{status}, 200, 'status: 200 in maintenance (never gated)');
is($r->{headers}{'content-type'}, 'application/json', 'status: JSON');
my $s = eval { decode_json($r->{body}) };
ok($s, 'status: valid JSON') or diag($r->{body});
$s //= {};
is($s->{node}, 'edge-h1', 'status: node id');
is($s->{version}, '0.1.0', 'status: version');
ok($s->{pid} > 0, 'status: pid');
is($s->{redis}{configured}, JSON::PP::true, 'status: redis configured');
is($s->{redis}{up}, JSON::PP::true, 'status: redis link up');
is($s->{redis}{addr}, '127.0.0.1:' . $t->port('r'), 'status: redis address');
is($s->{override}, JSON::PP::false, 'status: no override');
my $d = $s->{scopes}{default} // {};
is($d->{mode}, 'on', 'status: default scope on');
is($d->{epoch}, 3, 'status: epoch');
is($d->{source}, 'redis', 'status: source redis');
is($d->{lost}, JSON::PP::false, 'status: not lost');
is($d->{state}{reason}, "db \"locked\" \\ </b> caf\x{e9}",
   'status: reason escaped and decoded back');
is($d->{state}{release}, 'abc123', 'status: release');
is($d->{state}{actor}, 'ops', 'status: actor');
is($s->{scopes}{other}{mode}, 'off', 'status: the other scope is off');
ok(defined $s->{last_sync_age_ms} && $s->{last_sync_age_ms} >= 0
   && $s->{last_sync_age_ms} < 5000, 'status: sync age in ms')
    or diag(explain $s->{last_sync_age_ms});
ok($s->{last_sync} > 1_700_000_000, 'status: last sync time');
ok($s->{counters}{requests_gated} >= 4, 'status: gated counter')
    or diag(explain $s->{counters});
ok(exists $s->{counters}{$_}, "status: counter $_")
    for qw(requests_bypassed requests_passed polls events malformed
           reconnects);

$r = $t->http($p, '/status?format=prometheus');
is($r->{status}, 200, 'prometheus: 200');
like($r->{headers}{'content-type'}, qr{^text/plain; version=0\.0\.4},
     'prometheus: content type');
my $m = $r->{body};
like($m, qr/^nginx_maintenance_mode\{scope="default"\} 1$/m,
     'prometheus: mode');
like($m, qr/^nginx_maintenance_mode\{scope="other"\} 0$/m,
     'prometheus: the other scope');
like($m, qr/^nginx_maintenance_epoch\{scope="default"\} 3$/m,
     'prometheus: epoch');
like($m, qr/^nginx_maintenance_source\{scope="default",source="redis"\} 1$/m,
     'prometheus: source');
like($m, qr/^nginx_maintenance_redis_up 1$/m, 'prometheus: link up');
like($m, qr/^nginx_maintenance_sync_age_seconds \d+\.\d{3}$/m,
     'prometheus: sync age');
like($m, qr/^nginx_maintenance_requests_total\{result="gated"\} \d+$/m,
     'prometheus: counters');
like($m, qr/^# TYPE nginx_maintenance_requests_total counter$/m,
     'prometheus: TYPE lines');
unlike($m, qr/[^\x{20}-\x{7e}\n]/, 'prometheus: plain ASCII');
like($m, qr/^nginx_maintenance_state_lost\{scope="other"\} 0$/m,
     'prometheus: each scope of the configuration, from its own slot');
like($m, qr/^nginx_maintenance_source\{scope="other",source="default"\} 1$/m,
     'prometheus: the other scope\'s source');

# the status shows Redis, node, pid, reason: allow/deny restrict it
$r = $t->http($p, '/status/private');
is($r->{status}, 403, 'status behind deny: 403');
unlike($r->{body}, qr/edge-h1|abc123/, 'and none of it is shown');

# bytes from the network that are not UTF-8 make the record malformed: the
# last good state (and its reason) is kept, and counted
my $malformed = status_json()->{counters}{malformed} // 0;
$t->set_state('r', 'default', 'on', 5, reason => "caf\xc3\xa9 \xff\xc3");
ok($t->wait_for(sub {
    (status_json()->{counters}{malformed} // 0) > $malformed
}, 5), 'status: invalid UTF-8 in the reason is counted as malformed');
$s = status_json();
is($s->{scopes}{default}{epoch}, 3, 'status: the last good epoch is kept');
is($s->{scopes}{default}{state}{reason}, "db \"locked\" \\ </b> caf\x{e9}",
   'status: the last good reason is kept');

is($t->http($p, '/status?format=xml')->{status}, 400,
   'status: an unknown format is a 400');

$t->set_state('r', 'default', 'off', 4, reason => 'repaired');
ok($t->wait_for(sub {
    $t->http($p, '/drain')->{status} == 200
}, 5), 'drain: 200 again when open');
is($t->http($p, '/health')->{headers}{'x-maintenance-epoch'}, '4',
   'health: the new epoch');

$t->stop_nginx('n');
$t->check_logs('n');

done_testing;
