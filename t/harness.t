# harness.t: the test harness itself starts and stops real daemons.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time);
use lib 't/lib';
use MigTest;

my $t = MigTest->new;

$t->start_redis('r');
is($t->redis('r', 'PING'), 'PONG', 'redis answers PING');
$t->redis('r', 'HSET', 'h', 'a', '1');
is_deeply($t->redis('r', 'HGETALL', 'h'), ['a', '1'], 'RESP arrays decode');
ok(!eval { $t->redis('r', 'NOSUCH'); 1 }, 'an error reply dies');

$t->nginx_conf('n', <<'CONF');
events { worker_connections 64; }
http {
    access_log off;
    server {
        listen 127.0.0.1:%%PORT_http%%;
        location / { return 200 "hello\n"; }
    }
}
CONF
my $pid = $t->start_nginx('n');
my $r = $t->http($t->port('http'), '/');
is($r->{status}, 200, 'nginx answers');
is($r->{body}, "hello\n", 'with the body');
ok(scalar($t->worker_pids('n')) >= 1, 'worker pids are found');
$t->reload_nginx('n');
is($t->http($t->port('http'), '/')->{status}, 200, 'answers after reload');
$t->stop_nginx('n');
ok(!MigTest::pid_alive($pid), 'nginx master stopped by pid');
$t->check_logs('n');

$t->start_pg('pg');
is($t->psql('pg', 'SELECT 1 + 1'), '2', 'postgres answers');
my $pgpid = $t->pg_pid('pg');
$t->stop_pg('pg');
ok(!MigTest::pid_alive($pgpid), 'postgres stopped by pid');

# Sentinel: a master, a replica, three sentinels; a failover; a fake
my $g = $t->start_sentinels('g', down_after => 3000, failover_timeout => 3000);
is($t->sentinel_master($g), 'g-m', 'the sentinels name the master');
is($t->redis('g-r', 'ROLE')->[0], 'slave', 'the replica is a replica');
$t->start_fake_sentinel('fs', 'mymaster', '127.0.0.1', $t->port('g-r'));
is_deeply($t->redis('fs', 'SENTINEL', 'get-master-addr-by-name', 'mymaster'),
          ['127.0.0.1', $t->port('g-r')], 'the fake sentinel names the replica');
is($t->redis('fs', 'SENTINEL', 'get-master-addr-by-name', 'other'), undef,
   'and no master for another name');
is($t->redis('fs', 'ROLE')->[0], 'sentinel', 'it says it is a sentinel');
$t->redis($g->{sentinels}[0], 'SENTINEL', 'FAILOVER', 'mymaster');
is($t->wait_failover($g, 'g-m', 30), 'g-r', 'a failover promotes the replica');
$t->kill_redis('g-r');
is($t->wait_failover($g, 'g-r', 30), 'g-m',
   'killing the new master fails over back to the old one');
$t->stop_redis($_) for 'fs', @{ $g->{sentinels} };

# Ports: two harnesses at once (two processes) never get the same one, and
# none is in the kernel's ephemeral range (where this test's own client
# sockets could take it between "found free" and the daemon's bind)
my ($eph) = split ' ', ($t->read_file('/proc/sys/net/ipv4/ip_local_port_range')
                        // '32768');
my $list = $t->dir . '/ports.child';
my $go = $t->dir . '/ports.go';
my $kid = fork // die "fork: $!";
if ($kid == 0) {
    my $c = MigTest->new;
    my $end = time + 30;
    select(undef, undef, undef, 0.005) until -e $go || time > $end;
    my @p = map { $c->port("c$_") } 1 .. 200;
    open my $fh, '>', "$list.tmp" or POSIX::_exit(1);
    print $fh "@p\n";
    close $fh;
    rename "$list.tmp", $list;
    # hold the locks until the parent has looked
    select(undef, undef, undef, 0.01) until -e "$go.done" || time > $end;
    POSIX::_exit(0);
}
$t->write_file($go, '');
my @mine = map { $t->port("p$_") } 1 .. 200;
ok($t->wait_for(sub { -e $list }, 30), 'the other harness picked its ports');
my %mine = map { $_ => 1 } @mine;
my @theirs = split ' ', $t->read_file($list) // '';
is(scalar @theirs, 200, 'it got 200');
is(scalar(grep { $mine{$_} } @theirs), 0,
   'no port given to both harnesses');
is(scalar(grep { $_ >= $eph } @mine, @theirs), 0,
   "every port below the ephemeral range ($eph)");
$t->write_file("$go.done", '');
waitpid($kid, 0);

# a port another process holds: start_redis says so at once
my $squat = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Listen => 1, Proto => 'tcp') or die $!;
$t->{ports}{squat} = $squat->sockport;
my $t0 = time;
ok(!eval { $t->start_redis('squat'); 1 }, 'redis on a taken port: dies');
like($@, qr/port \d+ in use by another process/, 'and says the port is in use');
cmp_ok(time - $t0, '<', 9, 'at once, not after the 10 s start timeout');
close $squat;

done_testing;
