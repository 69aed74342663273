# harness.t: the test harness itself starts and stops real daemons.
use strict;
use warnings;
use Test::More;
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

done_testing;
