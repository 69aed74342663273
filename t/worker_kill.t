# worker_kill.t: worker 0 (the one that talks to Redis) killed with SIGKILL:
# nginx respawns it as worker 0, it reconnects and the gate keeps working;
# the served state does not flicker; no [alert] but nginx's own one for the
# killed worker.
use strict;
use warnings;
use Test::More;
use Time::HiRes ();
use lib 't/lib';
use MigTest;

my $t = MigTest->new;

$t->start_redis('r');

$t->nginx_conf('n', <<'CONF');
load_module %%MODULE%%;
worker_processes 2;
events { worker_connections 64; }
http {
    access_log off;
    maintenance_redis 127.0.0.1:%%PORT_r%%;
    maintenance_poll 200ms;
    maintenance_node_id killme;
    maintenance on;

    server {
        listen 127.0.0.1:%%PORT_http%% reuseport;
        add_header X-Pid $pid always;
        location / { return 200 "app\n"; }
    }
}
CONF

sub edge_pid {
    my $r = $t->redis('r', 'HGET', 'migctl:edge:killme', 'pid');
    return $r // 0;
}

# connections from nginx, as Redis sees them (without this query's own)
sub nginx_clients {
    my $list = $t->redis('r', 'CLIENT', 'LIST');
    my @c = grep { !/ cmd=client\|list/ && !/ cmd=client / }
            split /\n/, $list;
    return (scalar @c, scalar grep { / sub=1 / } @c);
}

$t->start_nginx('n');
my @before = $t->worker_pids('n');
is(scalar @before, 2, 'two workers');

$t->set_state('r', 'default', 'on', 1);
ok($t->wait_for(sub { $t->http($t->port('http'), '/')->{status} == 503 }, 3),
   'in maintenance');
ok($t->wait_for(sub { edge_pid() }, 3), 'heartbeat in');
my $w0 = edge_pid();
ok((grep { $_ == $w0 } @before), "worker 0 is $w0");
ok($t->wait_for(sub { my ($n, $s) = nginx_clients(); $n == 2 && $s == 1 }, 3),
   'Redis sees two connections from nginx, one subscribed');

kill 'KILL', $w0;

# every answer during the respawn is still the maintenance page
my ($served, $bad, $new) = (0, 0, 0);
for (1 .. 2000) {
    my $r = $t->http($t->port('http'), '/');
    $served++;
    $bad++ if $r->{status} != 503;
    my $p = edge_pid();
    if ($p && $p != $w0) { $new = $p; last }
}
ok($new, "a respawned worker 0 ($new) took over the heartbeat");
is($bad, 0, "no request escaped the gate during the respawn ($served "
   . "requests)");
ok(!grep({ $_ == $w0 } $t->worker_pids('n')), 'the old worker is gone');
is(scalar($t->worker_pids('n')), 2, 'two workers again');

ok($t->wait_for(sub { my ($n, $s) = nginx_clients(); $n == 2 && $s == 1 }, 3),
   'Redis sees two connections again: the killed ones are gone, one new'
   . ' pair');

# the respawned worker 0 serves changes at once
$t->set_state('r', 'default', 'off', 2);
ok($t->wait_for(sub {
    my %seen;
    for (1 .. 20) {
        my $r = $t->http($t->port('http'), '/');
        return 0 unless $r->{status} == 200;
        $seen{ $r->{headers}{'x-pid'} } = 1;
    }
    return keys(%seen) == 2;
}, 3), 'a published change reaches both workers after the respawn');

$t->set_state('r', 'default', 'on', 3);
ok($t->wait_for(sub { $t->http($t->port('http'), '/')->{status} == 503 }, 3),
   'and the next one');
# the heartbeat goes to Redis after the zone changed: wait for it
ok($t->wait_for(sub {
    ($t->redis('r', 'HGET', 'migctl:edge:killme', 'default') // '') eq 'on:3'
}, 3), 'heartbeat follows');

my @alerts = grep { /\[alert\]/ } split /\n/, $t->error_log('n');
is(scalar @alerts, 1, 'exactly one [alert]');
like($alerts[0] // '', qr/worker process $w0 exited on signal 9/,
     "nginx's own, for the killed worker");

# graceful shutdown (QUIT) with Redis hung and a poll in flight: the
# module's timers are cancelable and its links idle, nothing waits
$t->kill_redis('r', 'STOP');
my $master = $t->nginx_pid('n');
my $t0 = Time::HiRes::time();
kill 'QUIT', $master;
# gone, or a zombie waiting for a reaper that is none of nginx's business
sub gone {
    my ($pid) = @_;
    my $st = $t->read_file("/proc/$pid/stat") // return 1;
    return $st =~ /^\d+ \(.*\) Z/s ? 1 : 0;
}
ok($t->wait_for(sub { gone($master) }, 5), 'QUIT: nginx exits');
my $dt = Time::HiRes::time() - $t0;
diag(sprintf("graceful shutdown with Redis hung: %.0f ms", 1000 * $dt));
cmp_ok($dt, '<', 1, 'without waiting for Redis or a poll timer');
unlike($t->error_log('n'), qr/open socket .* left/, 'no socket left open');
$t->kill_redis('r', 'CONT');

$t->stop_nginx('n');
$t->check_logs('n', qr/worker process $w0 exited on signal 9/);

done_testing;
