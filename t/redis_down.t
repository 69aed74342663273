# redis_down.t: Redis down at start (nginx starts, serves the default);
# Redis killed or hung while running: maintenance_redis_failure last keeps
# the last state, open opens, closed closes; Redis back: resynced within two
# poll intervals, no reload.  Each link failure is logged once.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time);
use POSIX ();
use lib 't/lib';
use MigTest;

my $t = MigTest->new;
my $POLL = 0.3;

sub conf {
    my ($name, $redis, $policy, $prefix) = @_;
    my $pfx = $prefix ? "maintenance_prefix $prefix;" : '';
    $t->nginx_conf($name, <<"CONF");
load_module %%MODULE%%;
worker_processes 1;
events { worker_connections 64; }
http {
    access_log off;
    maintenance_redis 127.0.0.1:%%PORT_$redis%% timeout=300ms;
    maintenance_poll 300ms;
    maintenance_node_id $name;
    maintenance_redis_failure $policy;
    $pfx
    maintenance on;

    server {
        listen 127.0.0.1:%%PORT_${name}_http%%;
        location / { return 200 "app\\n"; }
    }

    server {
        listen 127.0.0.1:%%PORT_${name}_st%%;
        maintenance off;
        location /status { maintenance_status; }
    }
}
CONF
}

sub code { $t->http($t->port("$_[0]_http"), '/')->{status} }
sub status { $t->http($t->port("$_[0]_st"), '/status')->{body} // '' }
sub redis_up { status($_[0]) =~ /"redis":\{[^}]*"up":true/ ? 1 : 0 }
sub source { status($_[0]) =~ /"default":\{[^}]*"source":"(\w+)"/ ? $1 : '' }

sub count_log {
    my ($name, $re) = @_;
    return scalar(grep { /$re/ } split /\n/, $t->error_log($name));
}

# --- Redis down when nginx starts --------------------------------------

conf('cold', 'nothing', 'last');
$t->start_nginx('cold');
is(code('cold'), 200, 'Redis down at start: nginx starts and serves the '
   . 'default (open)');
is(source('cold'), 'default', 'source default');
is(redis_up('cold'), 0, 'status: redis down');
# both links have failed once (worker 0 logs as it tries, on its own time)
$t->wait_for(sub {
    count_log('cold', qr/redis command link .* down/)
        && count_log('cold', qr/redis subscriber link .* down/)
}, 5);
# an observation window, not a synchronisation: several reconnect attempts
# (backoff 100, 200, 300 ms...) fail in it, and must not log again
Time::HiRes::sleep(5 * $POLL);
is(code('cold'), 200, 'still serving the default');
is(count_log('cold', qr/redis command link .* down/), 1,
   'the command link failure is logged once');
is(count_log('cold', qr/redis subscriber link .* down/), 1,
   'the subscriber link failure is logged once');

# Redis appears: reconnect without a reload
$t->start_redis('nothing');
$t->set_state('nothing', 'default', 'on', 1);
ok($t->wait_for(sub { code('cold') == 503 }, 2 * $POLL + 1),
   'Redis comes up later: reconnected and synced without a reload');
like($t->error_log('cold'), qr/redis command link to \S+ up/,
     'link up logged');
$t->stop_nginx('cold');
$t->stop_redis('nothing');
$t->check_logs('cold');

# --- killed while running: last, open, closed ---------------------------

$t->start_redis('r');
# n_closed reads its own prefix: open from Redis when Redis dies, so that
# "closed" is seen closing, not just staying closed
conf("n_$_", 'r', $_) for qw(last open);
conf('n_closed', 'r', 'closed', 'nc');
$t->start_nginx("n_$_") for qw(last open closed);

ok($t->wait_for(sub { redis_up('n_last') && redis_up('n_open')
                      && redis_up('n_closed') }, 5), 'all three synced');

# descriptors of the only worker: none may leak over the failures below
sub fds {
    my ($w) = $t->worker_pids($_[0]);
    my @fd = glob "/proc/$w/fd/*";
    return scalar @fd;
}
my $fds = fds('n_last');

# last and open: in maintenance; closed: open
$t->set_state('r', 'default', 'on', 1);
$t->set_state('r', 'default', 'off', 1, prefix => 'nc');
ok($t->wait_for(sub { code('n_last') == 503 && code('n_open') == 503 }, 3),
   'last, open: in maintenance from Redis');
ok($t->wait_for(sub { code('n_closed') == 200
                      && source('n_closed') eq 'redis' }, 3),
   'closed: open from Redis (its own prefix)');

$t->kill_redis('r', 'KILL');

ok($t->wait_for(sub { !redis_up('n_last') }, 3), 'last: Redis seen down');
is(code('n_last'), 503, 'last: keeps serving the last state (on)');
is(source('n_last'), 'redis', 'last: source still redis');
ok($t->wait_for(sub { code('n_open') == 200 }, 3),
   'open: serves the application while Redis is down');
# each nginx sees the kill on its own links: wait for this one
ok($t->wait_for(sub { code('n_closed') == 503 }, 3),
   'closed: serves maintenance while Redis is down');

# a reload while Redis is down: the new worker 0 keeps the failure policy
# (no flicker to the last state); a child process requests all along
sub during_reload {
    my ($name) = @_;
    my $out = $t->dir . "/loop.$name";
    my $port = $t->port("${name}_http");
    unlink "$out.stop";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open my $fh, '>', $out or POSIX::_exit(1);
        my $end = time + 3;
        for (1 .. 20000) {
            last if time > $end || -e "$out.stop";
            my $r = $t->http($port, '/', timeout => 2);
            print $fh "$r->{status}\n";
        }
        close $fh;
        POSIX::_exit(0);
    }
    $t->reload_nginx($name);
    $t->write_file("$out.stop", '');
    waitpid($pid, 0);
    my %c;
    $c{$_}++ for split /\n/, $t->read_file($out) // '';
    return \%c;
}

my $c = during_reload('n_open');
ok(!$c->{503} && $c->{200}, 'open: reload with Redis down, every answer'
   . ' open (' . join(' ', map { "$_=$c->{$_}" } sort keys %$c) . ')');
$c = during_reload('n_closed');
ok(!$c->{200} && $c->{503}, 'closed: reload with Redis down, every answer'
   . ' maintenance (' . join(' ', map { "$_=$c->{$_}" } sort keys %$c) . ')');

# back, empty (no persistence): write a state without PUBLISH, as a person
# with redis-cli would; every node must pick it up within two polls
$t->start_redis('r');
my $t0 = time;
$t->redis('r', 'HSET', "${_}:state:default", mode => 'off', epoch => 2)
    for qw(migctl nc);
my $ok = $t->wait_for(sub {
    code('n_last') == 200 && code('n_open') == 200 && code('n_closed') == 200
}, 5);
my $dt = time - $t0;
ok($ok, 'Redis back: every node resynced, no reload');
diag(sprintf("resync after Redis came back: %.0f ms (poll %.0f ms)",
             1000 * $dt, 1000 * $POLL));
cmp_ok($dt, '<=', 2 * $POLL + 0.2, 'within two poll intervals');
ok(redis_up('n_closed'), 'status: redis up again');
# n_open serves 200 whether its link is up or not: wait for the link itself
ok($t->wait_for(sub { redis_up('n_open') && redis_up('n_last') }, 5),
   'status: redis up again on every node');

# (n_open and n_closed were reloaded: their new worker 0 logs for itself)
for my $n (qw(n_last n_open n_closed)) {
    my ($w) = $t->worker_pids($n);
    is(count_log($n, qr/#$w: .*redis command link .* down/), 1,
       "$n: link down logged once by worker 0 ($w)");
    # n_last's worker 0 saw the first start too: "up", then "up again"
    is(count_log($n, qr/#$w: .*redis command link \S+ \S+ up( again)?$/),
       $n eq 'n_last' ? 2 : 1, "$n: link up logged once per transition");
}

# --- hung (SIGSTOP): only our timeout notices ---------------------------

$t->set_state('r', 'default', 'off', 3);
$t->set_state('r', 'default', 'off', 3, prefix => 'nc');
ok($t->wait_for(sub { code('n_closed') == 200 }, 3), 'closed: open again');

$t->kill_redis('r', 'STOP');
$t0 = time;
ok($t->wait_for(sub { code('n_closed') == 503 }, 3),
   'Redis hung: closed serves maintenance after the command timeout');
diag(sprintf("hung Redis detected after %.0f ms (timeout 300 ms, poll "
             . "300 ms)", 1000 * (time - $t0)));
is(code('n_open'), 200, 'open: still open');
like($t->error_log('n_closed'), qr/redis command link .* down: timed out/,
     'the timeout is logged');

$t->kill_redis('r', 'CONT');
ok($t->wait_for(sub { code('n_closed') == 200 }, 2 * $POLL + 1),
   'Redis resumed: closed back to the Redis state');

# a reload while Redis hangs (connects succeed, commands time out): the new
# worker 0 must not serve the last state until its own timeout
$t->set_state('r', 'default', 'on', 4);
ok($t->wait_for(sub { code('n_open') == 503 }, 3), 'open: in maintenance');
$t->kill_redis('r', 'STOP');
ok($t->wait_for(sub { code('n_open') == 200 }, 3),
   'open: Redis hung, open after the timeout');
$c = during_reload('n_open');
ok(!$c->{503} && $c->{200}, 'open: reload with Redis hung, every answer'
   . ' open (' . join(' ', map { "$_=$c->{$_}" } sort keys %$c) . ')');
$t->kill_redis('r', 'CONT');
ok($t->wait_for(sub { code('n_open') == 503 }, 2 * $POLL + 1),
   'Redis resumed: in maintenance again');
$t->set_state('r', 'default', 'off', 5);
ok($t->wait_for(sub { code('n_open') == 200 }, 2), 'off again');

ok($t->wait_for(sub { redis_up('n_last') }, 3), 'last: synced');
ok($t->wait_for(sub { fds('n_last') == $fds }, 2),
   "after kill, restart, hang: worker 0 has the same $fds descriptors (no"
   . " socket leaked)") or diag('now ' . fds('n_last'));

$t->stop_nginx("n_$_") for qw(last open closed);
$t->check_logs("n_$_") for qw(last open closed);

done_testing;
