# heartbeat.t: P:edges lists the node with a fresh score; P:edge:<node>
# shows the mode:epoch each scope serves (within one poll of a change),
# seen_ms, version, pid, and expires unless refreshed.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time);
use lib 't/lib';
use MigTest;

my $t = MigTest->new;
my $POLL = 0.2;
my $P = 'hbt';

$t->start_redis('r');

my $conf = <<'CONF';
load_module %%MODULE%%;
worker_processes 2;
events { worker_connections 64; }
http {
    access_log off;
    maintenance_redis 127.0.0.1:%%PORT_r%%;
    maintenance_poll 200ms;
    maintenance_prefix hbt;
    maintenance_node_id edge-7.example;
    maintenance on;

    server {
        listen 127.0.0.1:%%PORT_a%%;
        location / { return 200 "a\n"; }
    }

    server {
        listen 127.0.0.1:%%PORT_b%%;
        maintenance_scope api;
        location / { return 200 "b\n"; }
    }
}
CONF
$t->nginx_conf('n', $conf);

sub edge {
    my $r = $t->redis('r', 'HGETALL', "$P:edge:edge-7.example") || [];
    return { @$r };
}

$t->start_nginx('n');
my ($w0) = $t->worker_pids('n');

ok($t->wait_for(sub { edge()->{default} }, 5), 'the edge hash appears');
my $e = edge();
is($e->{default}, 'off:0', 'default: off:0 (no state yet)');
is($e->{api}, 'off:0', 'api: off:0');
like($e->{version}, qr/^\d+\.\d+\.\d+$/, 'version');
ok((grep { $_ == $e->{pid} } $t->worker_pids('n')),
   "pid is a worker's ($e->{pid})");
my $now = int(time * 1000);
cmp_ok(abs($e->{seen_ms} - $now), '<', 2000, 'seen_ms is now, in ms');

my $ttl = $t->redis('r', 'TTL', "$P:edge:edge-7.example");
ok($ttl > 0 && $ttl <= 10, "the edge hash expires (TTL $ttl s)");

my $score = $t->redis('r', 'ZSCORE', "$P:edges", 'edge-7.example');
ok(defined $score, "$P:edges lists the node");
cmp_ok(abs($score - $now), '<', 2000, 'its score is now, in ms');

my $seen = $e->{seen_ms};
ok($t->wait_for(sub { edge()->{seen_ms} > $seen }, 3 * $POLL + 1),
   'seen_ms advances every poll');

# --- a change with PUBLISH: at once --------------------------------------

my $t0 = time;
$t->set_state('r', 'default', 'on', 4, prefix => $P);
ok($t->wait_for(sub { (edge()->{default} // '') eq 'on:4' }, 2),
   'default on: the edge shows on:4');
my $dt = time - $t0;
diag(sprintf("edge hash shows a published change after %.0f ms", 1000 * $dt));
cmp_ok($dt, '<', $POLL, 'published change: before the next poll');
is(edge()->{api}, 'off:0', 'api unchanged');

# --- a change without PUBLISH: within one poll -----------------------------

$t0 = time;
$t->redis('r', 'HSET', "$P:state:api", mode => 'on', epoch => 9);
ok($t->wait_for(sub { (edge()->{api} // '') eq 'on:9' }, 2),
   'api on without publish: the edge shows on:9');
$dt = time - $t0;
diag(sprintf("edge hash shows an unpublished change after %.0f ms (poll "
             . "%.0f ms)", 1000 * $dt, 1000 * $POLL));
cmp_ok($dt, '<=', $POLL + 0.15, 'within one poll');

# --- a scope dropped on reload leaves the hash -----------------------------

(my $conf2 = $conf)
    =~ s/\n    server \{\n        listen [^\n]*PORT_b[^}]*\}\n    \}\n//s;
unlike($conf2, qr/maintenance_scope api/, 'second configuration has no api');
$t->nginx_conf('n', $conf2);
$t->reload_nginx('n');
ok($t->wait_for(sub { !exists edge()->{api} && edge()->{default} }, 3),
   'after a reload without scope api, the edge hash drops it');
is(edge()->{default}, 'on:4', 'default still on:4');

# --- a refused heartbeat is logged once ------------------------------------

$t->redis('r', 'DEL', "$P:edges");
$t->redis('r', 'SET', "$P:edges", 'not a zset');
ok($t->wait_for(sub {
       $t->error_log('n') =~ /heartbeat into .* refused: WRONGTYPE/ }, 2),
   'heartbeat refused: logged');
Time::HiRes::sleep(4 * $POLL);   # an observation window of several polls
my $n = () = $t->error_log('n') =~ /heartbeat into .* refused/g;
is($n, 1, 'logged once, not every poll');
is(edge()->{default}, 'on:4', 'and the rest of the heartbeat is not lost');
is($t->http($t->port('a'), '/')->{status}, 503, 'the gate does not care');

$t->stop_nginx('n');
$t->check_logs('n');

done_testing;
