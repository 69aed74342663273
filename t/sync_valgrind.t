# sync_valgrind.t: the Redis link under valgrind (nginx single process):
# connect refused, AUTH with a user, events, a malformed record, the
# override file, a hung Redis (our timeout frees a live context), a killed
# Redis, a refused password, FLUSHALL, graceful exit.  No invalid read,
# write or free (our cleanup vs hiredis's free), nothing left open at exit.
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
my $POLL = 0.2;

sub acl {
    my ($pw) = @_;
    return (args => [ '--user', 'alice', 'on', ">$pw", '~*', '&*', '+@all' ]);
}

$t->write_file("$dir/pw", "s3cret-value\n");
$t->nginx_conf('v', <<'CONF');
load_module %%MODULE%%;
master_process off;
daemon off;
pid %%DIR%%/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    maintenance_redis 127.0.0.1:%%PORT_r%% user=alice
                      password_file=%%DIR%%/pw timeout=400ms;
    maintenance_poll 200ms;
    maintenance_override_file %%DIR%%/override;
    maintenance_state_file %%DIR%%/state;
    maintenance on;

    server {
        listen 127.0.0.1:%%PORT_http%%;
        location / { return 200 "app\n"; }
    }

    server {
        listen 127.0.0.1:%%PORT_api%%;
        maintenance_scope api;
        location / { return 200 "api\n"; }
    }

    server {
        listen 127.0.0.1:%%PORT_st%%;
        maintenance off;
        location /status { maintenance_status; }
    }
}
CONF

my $vglog = "$dir/valgrind.log";
my $pid = $t->start_nginx_valgrind($dir);

ok($t->wait_port($t->port('st'), 60), 'nginx under valgrind listens');

sub code { $t->http($t->port($_[0] // 'http'), '/', timeout => 10)->{status} }
sub status { $t->http($t->port('st'), '/status', timeout => 10)->{body} // '' }
sub redis_up { status() =~ /"redis":\{[^}]*"up":true/ ? 1 : 0 }

# Redis is not there yet: connect refused, retried
is(code(), 200, 'Redis down at start: default');
Time::HiRes::sleep(3 * $POLL);       # several refused connects

$t->start_redis('r', acl('s3cret-value'));
ok($t->wait_for(sub { redis_up() }, 20), 'AUTH as alice: synced');

for my $e (1 .. 30) {
    $t->set_state('r', 'default', $e % 2 ? 'on' : 'off', $e);
}
$t->set_state('r', 'api', 'on', 1);
ok($t->wait_for(sub { code() == 200 && code('api') == 503 }, 20),
   'a burst of events: the last state served');

$t->redis('r', 'HSET', 'migctl:state:api', 'mode', 'banana');
ok($t->wait_for(sub { $t->error_log('v') =~ /malformed state/ }, 20),
   'malformed record: logged');

$t->write_file("$dir/override", '');
ok($t->wait_for(sub { code() == 503 }, 20), 'override on');
unlink "$dir/override";
ok($t->wait_for(sub { code() == 200 }, 20), 'override off');

$t->kill_redis('r', 'STOP');
ok($t->wait_for(sub { $t->error_log('v') =~ /down: timed out/ }, 20),
   'hung Redis: our timeout frees the live contexts');
$t->kill_redis('r', 'CONT');
ok($t->wait_for(sub { redis_up() }, 20), 'resumed: synced again');

$t->kill_redis('r', 'KILL');
ok($t->wait_for(sub { !redis_up() }, 20), 'killed: link down');

$t->start_redis('r', acl('another-password'));
ok($t->wait_for(sub { $t->error_log('v') =~ /AUTH refused/ }, 20),
   'wrong password: refused');
$t->stop_redis('r');

$t->start_redis('r', acl('s3cret-value'));
ok($t->wait_for(sub { redis_up() }, 20), 'right password again: synced');
$t->redis('r', 'FLUSHALL');
ok($t->wait_for(sub { status() =~ /"lost":true/ }, 20),
   'FLUSHALL: the seen state is kept, lost');

my ($w, $st) = $t->quit_nginx_valgrind($pid, 30);
is($w, $pid, 'graceful exit');
is($st >> 8, 0, 'exit code 0');

my $vg = $t->read_file($vglog) // '';
is($vg, '', 'valgrind reports nothing') or diag($vg);
unlike($t->error_log('v'), qr/open socket .* left/, 'no socket left open');
unlike($t->error_log('v'), qr/s3cret-value/, 'no password in the log');
$t->check_logs('v');

done_testing;
