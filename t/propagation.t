# propagation.t: HSET + PUBLISH reaches every worker (worker_processes 2)
# within 100 ms; HSET without PUBLISH within one poll interval.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time);
use lib 't/lib';
use MigTest;

my $t = MigTest->new;
$t->start_redis('r');

# poll 2s: a change seen in under 100 ms came through pub/sub, not a poll
$t->nginx_conf('n', <<'CONF');
load_module %%MODULE%%;
worker_processes 2;
events { worker_connections 128; }
http {
    access_log off;
    maintenance_redis 127.0.0.1:%%PORT_r%%;
    maintenance_poll 2s;
    maintenance_node_id prop1;
    maintenance on;

    server {
        listen 127.0.0.1:%%PORT_http%% reuseport;
        add_header X-Pid $pid always;
        location / { return 200 "app\n"; }
    }

    server {
        listen 127.0.0.1:%%PORT_st%%;
        maintenance off;
        location /status { maintenance_status; }
    }
}
CONF

$t->start_nginx('n');
my $port = $t->port('http');
my @workers = $t->worker_pids('n');
is(scalar @workers, 2, 'two workers');

ok($t->wait_for(sub {
    my $r = $t->redis('r', 'PUBSUB', 'NUMSUB', 'migctl:events');
    $r->[1] >= 1;
}, 5), 'worker 0 subscribed to migctl:events');
ok($t->wait_for(sub { $t->redis('r', 'EXISTS', 'migctl:edge:prop1') }, 5),
   'worker 0 heartbeat is in');

# Requests until each worker pid has answered with $want; fails on any
# other answer once the first $want was seen (the zone is shared: once one
# worker serves the change, all do).  Returns (seconds to the first $want,
# seconds until every worker answered $want) after $t0, or () on timeout.
sub until_all {
    my ($want, $t0, $limit) = @_;
    my (%seen, $first);
    my $end = $t0 + $limit;
    for (1 .. 100000) {
        my $r = $t->http($port, '/');
        my $now = time;
        if ($r->{status} == $want) {
            $first //= $now - $t0;
            $seen{ $r->{headers}{'x-pid'} // '' } = 1;
            return ($first, $now - $t0)
                if scalar(grep { $seen{$_} } @workers) == @workers;
        } elsif (defined $first) {
            diag("worker $r->{headers}{'x-pid'} answered $r->{status} after"
                 . " another answered $want");
            return ();
        }
        return () if $now > $end;
    }
    return ();
}

my ($first, $all) = until_all(200, time, 5);
ok(defined $all, 'both workers answer 200 while the flag is off');

# pub/sub: five changes, each seen by both workers
my $epoch = 0;
my @lat;
for my $i (1 .. 6) {
    my $mode = $i % 2 ? 'on' : 'off';
    $epoch++;
    my $t0 = time;
    $t->set_state('r', 'default', $mode, $epoch);
    my ($f, $a) = until_all($mode eq 'on' ? 503 : 200, $t0, 3);
    ok(defined $a, "change $i ($mode): both workers serve it");
    push @lat, [$f // 99, $a // 99];
}

my @f = sort { $a <=> $b } map { $_->[0] } @lat;
my @a = sort { $a <=> $b } map { $_->[1] } @lat;
diag(sprintf("pub/sub propagation over %d changes: first worker median "
             . "%.1f ms max %.1f ms; every worker median %.1f ms max %.1f ms",
             scalar @lat, 1000 * $f[$#f / 2], 1000 * $f[-1],
             1000 * $a[$#a / 2], 1000 * $a[-1]));
cmp_ok($a[-1], '<', 0.100, 'HSET + PUBLISH served by every worker within'
       . ' 100 ms (every change)');

my $st = $t->http($t->port('st'), '/status');
like($st->{body}, qr/"events":[1-9]/, 'status counts the events');

# poll only: HSET without PUBLISH
$epoch++;
my $t0 = time;
$t->redis('r', 'HSET', 'migctl:state:default', mode => 'on',
          epoch => $epoch);
my ($pf, $pa) = until_all(503, $t0, 5);
ok(defined $pa, 'HSET without PUBLISH: both workers serve it');
diag(sprintf("HSET without PUBLISH: every worker after %.0f ms (poll 2000"
             . " ms)", 1000 * ($pa // 99)));
cmp_ok($pa // 99, '<=', 2.0 + 0.25, 'within one poll interval');

# the same for a person with only redis-cli: no epoch field at all
$t->redis('r', 'HDEL', 'migctl:state:default', 'epoch');
$t->redis('r', 'HSET', 'migctl:state:default', 'mode', 'off');
$t0 = time;
($pf, $pa) = until_all(200, $t0, 5);
ok(defined $pa, 'a bare "HSET mode off" (no epoch) reopens within a poll');

$t->stop_nginx('n');
$t->check_logs('n');

done_testing;
