# reconnect.t: no reconnect storm.  Against a frozen Redis (SIGSTOP: TCP
# connects, nothing answers) and a "Redis" answering -LOADING, worker 0's
# links back off: at most one connect per backoff step, counted by the
# server over a bounded window.  The backoff outlives a respawn of worker 0,
# and the link comes back once the server answers.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use POSIX ();
use lib 't/lib';
use MigTest;

my $t = MigTest->new;
my $WINDOW = 12;          # seconds observed
my $TIMEOUT = 0.3;        # maintenance_redis timeout=
my $MIN = 0.1;            # the module's backoff: 100 ms doubling to 5 s,
my $MAX = 5;              # each wait jittered into [backoff/2, backoff]

# the most connects one link can make in $w seconds: each attempt costs at
# least half its backoff step plus $cost (the reply timeout, or ~0)
sub max_steps {
    my ($w, $cost) = @_;
    my ($n, $sum, $b) = (0, 0, $MIN);
    while ($sum <= $w && $n < 1000) {
        $sum += $b / 2 + $cost;
        $n++;
        $b = $b * 2 > $MAX ? $MAX : $b * 2;
    }
    return $n;
}

sub start_fake {
    my ($name) = @_;
    my $port = $t->port($name);
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $t->dir . "/$name.out";
        open STDERR, '>&', \*STDOUT;
        exec $^X, MigTest->root . '/t/fake_redis.pl', $port
            or POSIX::_exit(127);
    }
    $t->wait_port($port, 10) or die "fake redis did not start";
    return $pid;
}

my $fake = start_fake('fake');
END { local $?; if ($fake) { kill 'TERM', $fake; waitpid($fake, 0); } }

$t->start_redis('r');

for my $n (qw(frozen loading)) {
    my $port = $n eq 'frozen' ? 'r' : 'fake';
    $t->nginx_conf($n, <<"CONF");
load_module %%MODULE%%;
worker_processes 1;
events { worker_connections 64; }
http {
    access_log off;
    maintenance_redis 127.0.0.1:%%PORT_$port%% timeout=300ms;
    maintenance_poll 200ms;
    maintenance on;

    server {
        listen 127.0.0.1:%%PORT_${n}_http%%;
        location / { return 200 "app\\n"; }
    }

    server {
        listen 127.0.0.1:%%PORT_${n}_st%%;
        maintenance off;
        location /status { maintenance_status; }
    }
}
CONF
}

sub status { $t->http($t->port("$_[0]_st"), '/status')->{body} // '' }
sub redis_up { status($_[0]) =~ /"redis":\{[^}]*"up":true/ ? 1 : 0 }
sub counter { status($_[0]) =~ /"$_[1]":(\d+)/ ? $1 : -1 }
sub accepted {
    $t->redis('r', 'INFO', 'stats') =~ /total_connections_received:(\d+)/
        ? $1 : -1;
}
sub fake_accepts { my %s = split ' ', $t->redis('fake', 'FAKE', 'STATS');
                   $s{accepts} }

# --- a frozen Redis ------------------------------------------------------

$t->start_nginx('frozen');
ok($t->wait_for(sub { redis_up('frozen') }, 5), 'frozen: synced first');
$t->set_state('r', 'default', 'on', 1);
ok($t->wait_for(sub {
    $t->http($t->port('frozen_http'), '/')->{status} == 503 }, 3),
   'frozen: in maintenance');

my $c0 = accepted();                 # this INFO's own connection counts too
my $r0 = counter('frozen', 'reconnects');
$t->kill_redis('r', 'STOP');
my $t0 = time;
sleep($WINDOW);                      # the observation window
my $r1 = counter('frozen', 'reconnects');
my $dt = time - $t0;
$t->kill_redis('r', 'CONT');
my $c1 = accepted();
my $conns = $c1 - $c0 - 1;           # less this INFO's connection
my $bound = 2 * max_steps($dt, $TIMEOUT) + 2;   # two links, window edges
diag(sprintf("frozen Redis: %d connects accepted, %d reconnects counted in "
             . "%.1f s (bound %d)", $conns, $r1 - $r0, $dt, $bound));
cmp_ok($conns, '<=', $bound, 'frozen: connects bounded by the backoff');
cmp_ok($r1 - $r0, '<=', $bound, 'frozen: reconnects counter agrees');
cmp_ok($r1 - $r0, '>=', 2, 'frozen: and it does retry');
is($t->http($t->port('frozen_http'), '/')->{status}, 503,
   'frozen: the last state is served');
ok($t->wait_for(sub { redis_up('frozen') }, $MAX + 2),
   'frozen: Redis resumed, the link is up within one backoff step');

# --- a Redis answering -LOADING ------------------------------------------

$t->start_nginx('loading');
ok($t->wait_for(sub { redis_up('loading') }, 5), 'loading: synced first');
is($t->http($t->port('loading_http'), '/')->{status}, 503,
   'loading: the fake says on');

my $loading = unpack('H*',
                     "-LOADING Redis is loading the dataset in memory\r\n");
$t->redis('fake', 'FAKE', 'FRAME', 'ANY', $loading);
my $a0 = fake_accepts();
$r0 = counter('loading', 'reconnects');
$t->redis('fake', 'FAKE', 'KICK');
$t0 = time;
sleep($WINDOW);
my $a1 = fake_accepts();
$r1 = counter('loading', 'reconnects');
$dt = time - $t0;
$bound = 2 * max_steps($dt, 0) + 2;
diag(sprintf("-LOADING: %d connects, %d reconnects counted in %.1f s "
             . "(bound %d)", $a1 - $a0, $r1 - $r0, $dt, $bound));
cmp_ok($a1 - $a0, '<=', $bound, 'loading: connects bounded by the backoff');
cmp_ok($a1 - $a0, '>=', 2, 'loading: and it does retry');
is($t->http($t->port('loading_http'), '/')->{status}, 503,
   'loading: the last state is served');
my @refused = grep { /link to \S+: HGETALL refused: LOADING/ }
              split /\n/, $t->error_log('loading');
is(scalar @refused, 1, 'loading: the refusal is logged once');

# worker 0 killed while backing off: the new one does not start over
my ($w0) = $t->worker_pids('loading');
kill 'KILL', $w0;
my $w1;
ok($t->wait_for(sub {
    ($w1) = grep { $_ != $w0 } $t->worker_pids('loading'); $w1 }, 5),
   'loading: worker 0 respawned');
$a0 = fake_accepts();
sleep(1);                            # less than half the 5 s step
$a1 = fake_accepts();
is($a1 - $a0, 0, 'loading: the respawned worker 0 goes on backing off '
   . '(no connect in its first second)');

$t->redis('fake', 'FAKE', 'CLEAR');
ok($t->wait_for(sub { redis_up('loading') }, $MAX + 2),
   'loading done: the link is up within one backoff step');
like($t->error_log('loading'), qr/redis command link \S+ \S+ up again/,
     'loading: "up again" logged');

$t->stop_nginx($_) for qw(frozen loading);
$t->check_logs('frozen');
$t->check_logs('loading', qr/worker process $w0 exited on signal 9/);

done_testing;
