# fake_redis.t: a "Redis" (t/fake_redis.pl) answers with malformed frames:
# short arrays, wrong types, huge lengths, truncated frames, -LOADING,
# -NOAUTH, binary junk.  nginx keeps serving the last good state, no worker
# is ever killed by a signal, and the link comes back when the peer behaves.
use strict;
use warnings;
use Test::More;
use Time::HiRes ();
use POSIX ();
use lib 't/lib';
use MigTest;

my $t = MigTest->new;

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
END {
    local $?;
    if ($fake) { kill 'TERM', $fake; waitpid($fake, 0); }
}

$t->nginx_conf('n', <<'CONF');
load_module %%MODULE%%;
worker_processes 2;
events { worker_connections 64; }
http {
    access_log off;
    maintenance_redis 127.0.0.1:%%PORT_fake%% timeout=300ms;
    maintenance_poll 200ms;
    maintenance on;

    server {
        listen 127.0.0.1:%%PORT_http%%;
        location / { return 200 "app\n"; }
    }

    server {
        listen 127.0.0.1:%%PORT_st%%;
        maintenance off;
        location /status { maintenance_status; }
    }
}
CONF

sub port { $_[0] eq 'n' ? $t->port($_[1]) : $t->port("$_[0]_$_[1]") }
sub code { $t->http(port($_[0], 'http'), '/', timeout => 10)->{status} }
sub status { $t->http(port($_[0], 'st'), '/status', timeout => 10)->{body}
             // '' }
sub redis_up { status($_[0]) =~ /"redis":\{[^}]*"up":true/ ? 1 : 0 }
sub stats {
    my %s = split ' ', $t->redis('fake', 'FAKE', 'STATS');
    return \%s;
}
sub bad_sent { my $s = stats(); my $n = 0; $n += $s->{$_} for grep { /^bad_/ }
               keys %$s; $n }
sub signals { scalar grep { /exited on signal/ }
              split /\n/, $t->error_log($_[0]) }

$t->start_nginx('n');
ok($t->wait_for(sub { redis_up('n') }, 5), 'synced with the fake');
is(code('n'), 503, 'state on (epoch 1) served');
my @workers = $t->worker_pids('n');
is(scalar @workers, 2, 'two workers');

my $busy = "-BUSY Redis is busy running a script.\r\n";
my @frames = (
    # the subscriber
    [ 'SUBSCRIBE', 'short array', "*1\r\n\$7\r\nmessage\r\n" ],
    [ 'SUBSCRIBE', 'two elements', "*2\r\n\$7\r\nmessage\r\n\$3\r\nfoo\r\n" ],
    [ 'SUBSCRIBE', 'short confirmation', "*1\r\n\$9\r\nsubscribe\r\n" ],
    [ 'SUBSCRIBE', 'integers', "*3\r\n:1\r\n:2\r\n:3\r\n" ],
    [ 'SUBSCRIBE', 'nested array',
      "*3\r\n*1\r\n:1\r\n\$1\r\nx\r\n\$1\r\ny\r\n" ],
    [ 'SUBSCRIBE', 'nil elements', "*3\r\n\$7\r\nmessage\r\n\$-1\r\n\$-1\r\n" ],
    [ 'SUBSCRIBE', 'an integer', ":5\r\n" ],
    [ 'SUBSCRIBE', 'a status', "+OK\r\n" ],
    [ 'SUBSCRIBE', 'confirmed, then a short message',
      "*3\r\n\$9\r\nsubscribe\r\n\$13\r\nmigctl:events\r\n:1\r\n"
      . "*1\r\n\$7\r\nmessage\r\n" ],
    [ 'SUBSCRIBE', 'confirmed, then an empty array',
      "*3\r\n\$9\r\nsubscribe\r\n\$13\r\nmigctl:events\r\n:1\r\n*0\r\n" ],
    [ 'SUBSCRIBE', 'confirmed, then a pmessage of 2',
      "*3\r\n\$9\r\nsubscribe\r\n\$13\r\nmigctl:events\r\n:1\r\n"
      . "*2\r\n\$8\r\npmessage\r\n\$1\r\nx\r\n" ],
    [ 'SUBSCRIBE', 'confirmed, then unsubscribe of 1',
      "*3\r\n\$9\r\nsubscribe\r\n\$13\r\nmigctl:events\r\n:1\r\n"
      . "*1\r\n\$11\r\nunsubscribe\r\n" ],
    # the command link
    [ 'HGETALL', 'odd array', "*1\r\n\$4\r\nmode\r\n" ],
    [ 'HGETALL', 'wrong types', "*4\r\n:1\r\n:2\r\n*0\r\n\$-1\r\n" ],
    [ 'HGETALL', 'nil bulk', "\$-1\r\n" ],
    [ 'HGETALL', 'nil array', "*-1\r\n" ],
    [ 'HGETALL', 'an integer', ":42\r\n" ],
    [ 'HGETALL', 'huge bulk length', "\$2147483647\r\nabc" ],
    [ 'HGETALL', 'huge array length', "*2147483647\r\n" ],
    [ 'HGETALL', 'array over INT_MAX', "*4294967297\r\n:1\r\n" ],
    [ 'HGETALL', 'negative array length', "*-5\r\n" ],
    [ 'HGETALL', 'truncated frame', "*4\r\n\$4\r\nmo" ],
    [ 'HGETALL', 'deep nesting', "*1\r\n" x 12 ],
    [ 'HGETALL', 'binary junk', "\x00\xff\xfe\x80junk\r\n" ],
    [ 'MULTI', 'an array', "*0\r\n" ],
    [ 'EXEC', 'nil (aborted)', "*-1\r\n" ],
    [ 'EXEC', 'nested junk', "*2\r\n*1\r\n:1\r\n\$-1\r\n" ],
    [ 'ANY', '-LOADING',
      "-LOADING Redis is loading the dataset in memory\r\n" ],
    [ 'ANY', '-NOAUTH', "-NOAUTH Authentication required.\r\n" ],
    [ 'ANY', '-BUSY', $busy ],
    [ 'ANY', 'binary junk', join('', map { chr } 0 .. 255) ],
);

# each frame, then a good peer again: the link must come back (and its
# backoff start over) before the next one
sub frames {
    my ($n, $slow) = @_;
    for my $f (@frames) {
        my ($cmd, $what, $bytes) = @$f;
        my $before = bad_sent();
        my @w = $t->worker_pids($n);
        my $sig = signals($n);
        $t->redis('fake', 'FAKE', 'FRAME', $cmd, unpack('H*', $bytes));
        $t->redis('fake', 'FAKE', 'KICK');
        ok($t->wait_for(sub { bad_sent() > $before }, 5 * $slow),
           "$n: $cmd $what: sent to nginx");
        # an observation window: a worker aborted now would be respawned
        Time::HiRes::sleep(0.4);
        is(code($n), 503, "$n: $cmd $what: the last good state is served");
        is(join(' ', $t->worker_pids($n)), join(' ', @w),
           "$n: $cmd $what: no worker died");
        is(signals($n) - $sig, 0,
           "$n: $cmd $what: no worker exited on a signal");
        $t->redis('fake', 'FAKE', 'CLEAR');
        ok($t->wait_for(sub { redis_up($n) }, 8 * $slow),
           "$n: $cmd $what: the link comes back");
    }
}

frames('n', 1);

is(join(' ', $t->worker_pids('n')), join(' ', @workers),
   'the workers of the start still run');
is(signals('n'), 0, 'no worker ever exited on a signal');
is(code('n'), 503, 'the state is served');
my ($malformed) = status('n') =~ /"malformed":(\d+)/;
cmp_ok($malformed // 0, '>=', 20, "malformed replies counted ($malformed)");

# a change through the fake still applies: the link works after all that
$t->redis('fake', 'FAKE', 'STATE', 'off', 2);
ok($t->wait_for(sub { code('n') == 200 }, 5), 'a good state applies again');

my @lines = grep { /malformed/ } split /\n/, $t->error_log('n');
cmp_ok(scalar @lines, '<=', 2 * @frames, 'malformed logged about once each ('
       . scalar(@lines) . ' lines)');

$t->stop_nginx('n');
$t->check_logs('n');

# --- the same under valgrind (nginx single process) ------------------------

SKIP: {
    skip 'valgrind not installed', 1
        unless grep { -x "$_/valgrind" } split /:/, $ENV{PATH};

    $t->redis('fake', 'FAKE', 'STATE', 'on', 3);
    my $dir = $t->nginx_dir('v');
    $t->nginx_conf('v', <<'CONF');
load_module %%MODULE%%;
master_process off;
daemon off;
pid %%DIR%%/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    maintenance_redis 127.0.0.1:%%PORT_fake%% timeout=1s;
    maintenance_poll 200ms;
    maintenance on;

    server {
        listen 127.0.0.1:%%PORT_v_http%%;
        location / { return 200 "app\n"; }
    }

    server {
        listen 127.0.0.1:%%PORT_v_st%%;
        maintenance off;
        location /status { maintenance_status; }
    }
}
CONF
    my $vglog = "$dir/valgrind.log";
    my $pid = $t->start_nginx_valgrind($dir);
    ok($t->wait_port($t->port('v_st'), 60), 'valgrind: nginx listens');
    ok($t->wait_for(sub { redis_up('v') }, 20), 'valgrind: synced');

    frames('v', 4);

    my ($w) = $t->quit_nginx_valgrind($pid, 30);
    is($w, $pid, 'valgrind: graceful exit');
    is($t->read_file($vglog) // '', '', 'valgrind reports nothing');
    unlike($t->error_log('v'), qr/open socket .* left/,
           'valgrind: no socket left open');
    $t->check_logs('v');
}

done_testing;
