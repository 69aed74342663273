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

done_testing;
