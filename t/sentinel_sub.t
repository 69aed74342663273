# sentinel_sub.t: the +switch-master subscription gets back to a live
# sentinel at once after a failure, walking past dead sentinels (refused,
# or a blackhole: accepts TCP, never answers) without a backoff; it backs
# off only after a whole round failed.  Debian's redis-server and
# redis-sentinel: a master, a replica, three sentinels, listed with dead
# ones between them:  g-s1 r1 bh1 r2 r3 r4 g-s2 r5 bh2 r6 r7 g-s3.
#  1. the subscription is on g-s1 (status: sentinel.subscribed); g-s1
#     SIGKILLed and a graceful SENTINEL FAILOVER at once: the subscription
#     is on g-s2 within the timeouts of the dead ones between them plus a
#     round, and the edge on the new master within 1 s of that bound or of
#     g-s2's own switch, whichever is later;
#  2. g-s2 SIGSTOPped (silent, its TCP up) and a graceful failover: the
#     subscription's PING notices it, the subscription is on g-s3 within
#     a ping interval, its timeout and the dead ones' timeouts; the edge on
#     the new master likewise;
#  3. every sentinel down: the subscription says so (subscribed ""), the
#     round is logged once; with every sentinel failing at once (refused,
#     or closing the connection) the rounds come after a backoff each, not
#     in a loop, and not a backoff per sentinel;
#  4. under valgrind (nginx single process): a fake sentinel holding the
#     subscription drops it, the walk goes on to a live sentinel past a
#     refused one and a blackhole; a graceful exit, valgrind says nothing.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use POSIX ();
use IO::Socket::INET;
use JSON::PP;
use lib 't/lib';
use MigTest;

plan skip_all => 'redis-sentinel not installed'
    unless -x '/usr/bin/redis-sentinel';

my $t = MigTest->new;
my $NAME = 'mymaster';
my $TIMEOUT = 0.5;                 # timeout=500ms below
my $PING = 1.0;                    # NGX_HTTP_MAINTENANCE_SENTINEL_PING

my $g = $t->start_sentinels('g', master => $NAME, down_after => 3000,
                            failover_timeout => 3000);
ok($g && @{ $g->{nodes} } == 3, 'master, replica and three sentinels up');

sub addr { '127.0.0.1:' . $t->port($_[0]) }

# refused: a free port nothing listens on; a blackhole: a listener that
# never accepts (the kernel completes the handshake, nothing answers)
my @bh;
for my $n (qw(bh1 bh2)) {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                  LocalPort => $t->port($n), Proto => 'tcp',
                                  Listen => 128, ReuseAddr => 1)
        or die "blackhole $n: $!";
    push @bh, $s;
}

my @order = qw(g-s1 r1 bh1 r2 r3 r4 g-s2 r5 bh2 r6 r7 g-s3);
my $list = join ' ', map { addr($_) } @order;

$t->nginx_conf('e', <<"EOF");
load_module %%MODULE%%;
worker_processes 2;
events { worker_connections 128; }
http {
    access_log off;
    maintenance_redis_sentinel $NAME $list timeout=500ms;
    maintenance_poll 200ms;
    maintenance_node_id e;
    maintenance on;

    server {
        listen 127.0.0.1:%%PORT_e_st%%;
        maintenance off;
        location /status { maintenance_status; }
    }
}
EOF
$t->start_nginx('e');

sub status {
    my ($n) = @_;
    my $r = $t->http($t->port("${n}_st"), '/status', timeout => 3);
    return eval { decode_json($r->{body}) } // {};
}

sub subscribed { status($_[0])->{sentinel}{subscribed} // '' }

sub prom_subscribed {
    my ($n) = @_;
    my $b = $t->http($t->port("${n}_st"), '/status?format=prometheus',
                     timeout => 3)->{body} // '';
    return $b =~ /^nginx_maintenance_sentinel_subscribed (\d)$/m ? $1 : '';
}

sub on_master {
    my ($n, $who) = @_;
    my $s = status($n);
    return ($s->{sentinel}{master} // '') eq addr($who) && $s->{redis}{up};
}

# the master as sentinel $s names it ("" if it does not answer)
sub named_by {
    my ($s) = @_;
    my $r = eval { $t->redis($s, 'SENTINEL', 'get-master-addr-by-name',
                             $NAME) };
    return ref $r eq 'ARRAY' ? "$r->[0]:$r->[1]" : '';
}

# SENTINEL FAILOVER on $s, retried while the sentinel has no good replica
# yet or is still busy (bounded): the time it was accepted
sub failover {
    my ($s) = @_;
    my ($at, $err);
    $t->wait_for(sub {
        my $r = eval { $t->redis($s, 'SENTINEL', 'FAILOVER', $NAME) };
        $err = $@;
        return 0 unless defined $r && $r eq 'OK';
        $at = time;
    }, 30);
    diag("SENTINEL FAILOVER on $s: $err") unless $at;
    return $at;
}

# the old master in sync as a replica of the new one, seen so by $s
sub replica_ready {
    my ($s, $who) = @_;
    return $t->wait_for(sub {
        my $info = eval { $t->redis($who, 'INFO', 'replication') } // '';
        return 0 unless $info =~ /master_link_status:up/;
        my $r = eval { $t->redis($s, 'SENTINEL', 'replicas', $NAME) };
        return 0 unless ref $r eq 'ARRAY';
        my $want = $t->port($who);
        return grep {
            my %h = @$_;
            ($h{port} // 0) == $want && ($h{flags} // '') eq 'slave'
                && ($h{'master-link-status'} // '') eq 'ok'
        } @$r;
    }, 30);
}

# the conditions polled together until all hold (bounded by $limit s):
# for each, the seconds since $t0 when it first held (undef: never)
sub race {
    my ($t0, $limit, @cond) = @_;
    my @at;
    my $end = time + $limit;
    while (time < $end && grep { !defined } @at[0 .. $#cond]) {
        for my $i (0 .. $#cond) {
            $at[$i] //= time - $t0 if $cond[$i]->();
        }
        sleep 0.01;
    }
    return @at[0 .. $#cond];
}

sub fmt { defined $_[0] ? sprintf('%.2f s', $_[0]) : 'never' }

ok($t->wait_for(sub { subscribed('e') eq addr('g-s1') }, 10),
   'the subscription is on g-s1, the first sentinel')
    or diag(explain(status('e')->{sentinel}));
ok($t->wait_for(sub { on_master('e', 'g-m') }, 10), 'the edge on g-m');
is(prom_subscribed('e'), 1,
   'Prometheus: nginx_maintenance_sentinel_subscribed 1');

# --- 1. the subscription's sentinel killed, a graceful failover -----------

# r1 to r4 refuse at once, bh1 takes the timeout: then g-s2; a round of
# refusals and the scheduling: 1 s (a backoff per sentinel, 100 ms doubling:
# more than 3 s)
my $bound1 = 1 * $TIMEOUT + 1.0;
my $t0 = time;
$t->kill_redis('g-s1', 'KILL');
my $fo = failover('g-s3');
ok($fo, '1: SENTINEL FAILOVER accepted by g-s3');
# the edge hears +switch-master from g-s2, which learns the switch from
# g-s3 (its hello messages, every 2 s) or does it itself: the edge is on
# the new master within 1 s of the later of g-s2's switch and the bound
my ($sub1, $sw1, $held1, $edge1) = race($t0, 30,
    sub { subscribed('e') eq addr('g-s2') },
    sub { named_by('g-s3') eq addr('g-r') },
    sub { named_by('g-s2') eq addr('g-r') },
    sub { on_master('e', 'g-r') });
diag(sprintf('1: subscription on g-s2 after %s (bound %.1f s), g-s3 '
             . 'switched after %s, g-s2 after %s, edge on g-r after %s',
             fmt($sub1), $bound1, fmt($sw1), fmt($held1), fmt($edge1)));
ok(defined $sub1 && $sub1 <= $bound1,
   "1: the subscription on g-s2 within $bound1 s of g-s1's death");
ok(defined $edge1 && defined $held1
   && $edge1 <= ($held1 > $bound1 ? $held1 : $bound1) + 1.0,
   '1: the edge on the new master within 1 s of g-s2\'s switch or the '
   . 'bound');

# --- 2. the subscription's sentinel silent (SIGSTOP), a failover ----------

ok(replica_ready('g-s3', 'g-m'), '2: g-m a replica in sync, seen by g-s3');

# a ping, its timeout; r5 refuses, bh2 takes the timeout, r6 and r7 refuse
my $bound2 = $PING + $TIMEOUT + 1 * $TIMEOUT + 1.0;
$t0 = time;
$t->kill_redis('g-s2', 'STOP');
$fo = failover('g-s3');
ok($fo, '2: SENTINEL FAILOVER accepted by g-s3');
my ($sub2, $sw2, $edge2) = race($t0, 30,
    sub { subscribed('e') eq addr('g-s3') },
    sub { named_by('g-s3') eq addr('g-m') },
    sub { on_master('e', 'g-m') });
diag(sprintf('2: subscription on g-s3 after %s (bound %.1f s), sentinels '
             . 'switched after %s, edge on g-m after %s', fmt($sub2),
             $bound2, fmt($sw2), fmt($edge2)));
ok(defined $sub2 && $sub2 <= $bound2,
   "2: a silent sentinel left, the subscription on g-s3 within $bound2 s");
ok(defined $edge2 && defined $sw2
   && $edge2 <= ($sw2 > $bound2 ? $sw2 : $bound2) + 1.0,
   '2: the edge on the new master within 1 s of g-s3\'s switch or the '
   . 'bound');

# --- 3. every sentinel down: a round, then a backoff ------------------------

$t->kill_redis('g-s2', 'KILL');
$t->kill_redis('g-s3', 'KILL');
ok($t->wait_for(sub {
       my $s = status('e')->{sentinel};
       ($s->{subscribed} // 'x') eq '' && !$s->{reachable}
   }, 10), '3: every sentinel down: subscribed "", not reachable');
is(prom_subscribed('e'), 0,
   '3: Prometheus: nginx_maintenance_sentinel_subscribed 0');

# bh1 and bh2 now accept and close at once (counted): every sentinel
# fails at once, only the backoff after each round spaces the attempts:
# 100 ms doubling with jitter after the first round, so 5 to 8 rounds in
# 4 s, each connecting to bh1 once (thousands without a backoff, one or
# two with a backoff per sentinel)
sub queued {
    my ($s) = @_;
    my $n = 0;
    $s->blocking(0);
    while (my $c = $s->accept) { $n++; close $c; last if $n > 10000 }
    return $n;
}
queued($_) for @bh;
my $conns = 0;
my $end = time + 4;
while (time < $end) {
    $conns += queued($bh[0]);
    queued($bh[1]);
    sleep 0.005;
}
cmp_ok($conns, '<=', 10, "3: bh1 connected to $conns times in 4 s: no "
       . 'loop');
cmp_ok($conns, '>=', 3, '3: ... and tried again once per round');

my $log = $t->error_log('e');
my $down = () = $log =~ /sentinel subscriber to \S+ down/g;
cmp_ok($down, '<=', 3, "3: the subscriber's failures logged once each "
       . "($down)");

$t->check_logs('e');
$t->stop_nginx('e');

# --- 4. under valgrind (nginx single process) -----------------------------

SKIP: {
skip 'valgrind not installed', 5
    unless grep { -x "$_/valgrind" } split /:/, $ENV{PATH};

# a sentinel again, for the walk to end on: a fake one naming g-m (the
# master now), listed first; then r1, bh1, and a second fake one
$t->start_fake_sentinel('fs', $NAME, '127.0.0.1', $t->port('g-m'));
$t->start_fake_sentinel('fs2', $NAME, '127.0.0.1', $t->port('g-m'));
my $vlist = join ' ', map { addr($_) } qw(fs r1 bh1 fs2);

my $dir = $t->nginx_dir('v');
$t->nginx_conf('v', <<"CONF");
load_module %%MODULE%%;
master_process off;
daemon off;
pid %%DIR%%/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    maintenance_redis_sentinel $NAME $vlist timeout=500ms;
    maintenance_poll 200ms;
    maintenance on;

    server {
        listen 127.0.0.1:%%PORT_v_st%%;
        maintenance off;
        location /status { maintenance_status; }
    }
}
CONF
my $vpid = $t->start_nginx_valgrind($dir);

ok($t->wait_for(sub { subscribed('v') eq addr('fs') }, 60),
   '4: under valgrind: the subscription on fs')
    or diag(explain(status('v')->{sentinel}));
$t->redis('fs', 'FAKE', 'KICK');
ok($t->wait_for(sub { subscribed('v') eq addr('fs2') }, 30),
   '4: ... dropped by fs, on fs2 past r1 and bh1')
    or diag(explain(status('v')->{sentinel}));

my ($w) = $t->quit_nginx_valgrind($vpid, 30);
is($w, $vpid, '4: graceful exit');
is($t->read_file("$dir/valgrind.log") // '', '', '4: valgrind reports nothing');
$t->check_logs('v');
}

done_testing();
