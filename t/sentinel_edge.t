# sentinel_edge.t: two edges (HTTP, TLS) find the Redis master through
# Redis Sentinel (maintenance_redis_sentinel), with Debian's redis-server
# and redis-sentinel: a master, a replica, three sentinels and a stale fake
# sentinel listed first.
#  1. migctl maintenance on --wait, then the master SIGKILLed: the edges
#     follow the failover, no request gets the app while the flag is on,
#     migctl status reads the new master and off --wait reaches both
#     edges within 2 s of the failover;
#  2. SENTINEL FAILOVER (graceful): the same; the old master, now a
#     replica, is not read or written by the edges;
#  3. one sentinel down, the fake one (first) names the replica: the ROLE
#     check sends the edges on to the real master; a third edge configured
#     with the dead sentinel only finds the others it learned from it, also
#     after its worker 0 was killed;
#  4. with migctl through the same sentinels: on --wait, a graceful
#     failover, status from the new master, off --wait reaches both edges;
#  5. every sentinel down: the edges keep their state under the failure
#     policy, status says so with the sentinels tried; back: reconnected;
#  6. configuration errors;
#  7. under valgrind (nginx single process): the stale sentinel, a graceful
#     failover, every sentinel hung and back, a graceful exit: no error,
#     no socket left open;
#  8. a sentinel with a password: sentinel_password_file; a wrong one is
#     refused, said in status and the log, the password never logged.
# A sentinel SIGSTOPped and continued enters TILT mode for 30 s and starts
# no failover meanwhile: the failovers come before the stops (1-4), and 7
# waits for the TILT to end.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use POSIX ();
use JSON::PP;
use lib 't/lib';
use MigTest;

plan skip_all => 'redis-sentinel not installed'
    unless -x '/usr/bin/redis-sentinel';

my $t = MigTest->new;
my ($crt, $key) = $t->self_signed_cert('edge');
my $NAME = 'mymaster';

my $g = $t->start_sentinels('g', master => $NAME, down_after => 3000,
                            failover_timeout => 3000);
ok($g && @{ $g->{nodes} } == 3, 'master, replica and three sentinels up');
is($t->sentinel_master($g), 'g-m', 'the sentinels name g-m the master');

# the stale sentinel: it names the replica as the master
$t->start_fake_sentinel('fs', $NAME, '127.0.0.1', $t->port('g-r'));
my $fake = '127.0.0.1:' . $t->port('fs');

# the fake first, then g-s2 (killed in 3), g-s1, g-s3
my %node = map { $_ => '127.0.0.1:' . $t->port($_) } @{ $g->{sentinels} };
my $sentinels = join ' ', $fake, @node{qw(g-s2 g-s1 g-s3)};

# e1: HTTP, failure policy last; e2: TLS, failure policy closed
sub edge_conf {
    my ($n, $policy, $tls, $list) = @_;
    $list //= $sentinels;
    my $listen = $tls ? "listen 127.0.0.1:%%PORT_$n%% ssl;\n"
                        . "        ssl_certificate $crt;\n"
                        . "        ssl_certificate_key $key;"
                      : "listen 127.0.0.1:%%PORT_$n%%;";
    return <<"EOF";
load_module %%MODULE%%;
worker_processes 2;
events { worker_connections 128; }
http {
    access_log off;
    maintenance_redis_sentinel $NAME $list timeout=500ms;
    maintenance_poll 200ms;
    maintenance_node_id $n;
    maintenance_redis_failure $policy;
    maintenance on;

    server {
        $listen
        server_name localhost;
        location / { return 200 "app $n\\n"; }
    }

    server {
        listen 127.0.0.1:%%PORT_${n}_st%%;
        maintenance off;
        location /status { maintenance_status; }
    }
}
EOF
}

$t->nginx_conf('e1', edge_conf('e1', 'last', 0));
$t->nginx_conf('e2', edge_conf('e2', 'closed', 1));
# e3: only g-s2, which dies in 3: the other sentinels are learned from it
$t->nginx_conf('e3', edge_conf('e3', 'last', 0, $node{'g-s2'}));
$t->start_nginx($_) for qw(e1 e2 e3);

my %tls = (e1 => 0, e2 => 1, e3 => 0);

sub code {
    my ($n) = @_;
    return $t->http($t->port($n), '/', tls => $tls{$n}, timeout => 3)
        ->{status};
}

sub status {
    my ($n) = @_;
    my $r = $t->http($t->port("${n}_st"), '/status');
    return eval { decode_json($r->{body}) } // {};
}

sub prom {
    my ($n) = @_;
    return $t->http($t->port("${n}_st"), '/status?format=prometheus')
        ->{body} // '';
}

sub addr { '127.0.0.1:' . $t->port($_[0]) }

sub both { my ($c) = @_; code('e1') == $c && code('e2') == $c }

sub on_master {
    my ($who, @edges) = @_;
    my $want = addr($who);
    @edges = qw(e1 e2) unless @edges;
    return !grep {
        my $s = status($_);
        ($s->{sentinel}{master} // '') ne $want || !$s->{redis}{up}
    } @edges;
}

# A child samples both edges until told to stop (bounded in time and
# count): "time status edge" per answer, time taken when the answer came.
sub sampler {
    my ($tag, @edges) = @_;
    @edges = qw(e1 e2) unless @edges;
    my $out = $t->dir . "/samples.$tag";
    unlink "$out.stop";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open my $fh, '>', $out or POSIX::_exit(1);
        $fh->autoflush(1);
        my $end = time + 40;
        for (1 .. 100000) {
            last if time > $end || -e "$out.stop";
            for my $n (@edges) {
                my $c = code($n);
                printf $fh "%.6f %d %s\n", time, $c, $n;
            }
        }
        close $fh;
        POSIX::_exit(0);
    }
    return { pid => $pid, out => $out };
}

sub sampler_stop {
    my ($s) = @_;
    $t->write_file("$s->{out}.stop", '');
    waitpid($s->{pid}, 0);
    return [ map { [ split ' ' ] } split /\n/,
             $t->read_file($s->{out}) // '' ];
}

ok($t->wait_for(sub { on_master('g-m', qw(e1 e2 e3)) }, 10),
   'the edges on g-m through the sentinels (the fake one skipped)')
    or diag(explain(status('e1')));
like($t->error_log('e1'),
     qr/sentinel: \Q127.0.0.1:${\ $t->port('g-r')}\E, named by sentinel \Q$fake\E as the master of "$NAME", answers ROLE "slave"/,
     'the stale sentinel is logged: the address and who named it');

# migctl, through the same sentinels (the real ones)
my $nodes = join(', ', map { "\"$_\"" } @{ $g->{nodes} });
my $mconf = $t->write_file('migctl.conf', <<"EOF");
redis = { sentinel = { master = "$NAME"; nodes = ( $nodes ); };
          timeout_ms = 1000; };
edge_live_ms = 3000;
health = { checks = ( { name = "app"; command = "true"; } ); };
EOF
my %menv = (MIGCTL_CONFIG => $mconf, MIGCTL_ACTOR => 'edgar');
sub mig { $t->migctl({ env => \%menv, timeout => 60 }, @_) }

sub mig_status {
    my $r = mig('--json', 'maintenance', 'status');
    return eval { decode_json($r->{out}) } // {};
}

# Replication is asynchronous, and a failover promotes the replica with
# what it has: before one, wait until the replica holds the state the
# master holds (after a diskless full sync the master even holds the
# stream back until the replica's first REPLCONF ACK, up to 1 s later)
sub replicated {
    my ($master, $replica) = @_;
    my $want = $t->redis($master, 'HGET', 'migctl:state:default', 'epoch')
        // return 0;
    return ($t->redis($replica, 'HGET', 'migctl:state:default', 'epoch')
            // '') eq $want;
}

# --- 1. the master SIGKILLed --------------------------------------------

my $epoch = 1;
my $res = mig('maintenance', 'on', '--wait=10', '--reason', 'sigkill drill');
is($res->{rc}, 0, '1: migctl maintenance on --wait: done')
    or diag($res->{err});
ok(both(503), '1: flag on: both edges 503');
ok($t->wait_for(sub { replicated('g-m', 'g-r') }, 10),
   '1: the replica holds the flag before the kill');

my $s = sampler('kill');
my $t_kill = time;
$t->kill_redis('g-m');
my $new = $t->wait_failover($g, 'g-m', 30);
my $t_fo = time;
is($new, 'g-r', '1: the sentinels promoted g-r');
diag(sprintf('1: failover done %.2f s after the SIGKILL (down-after 3 s)',
             $t_fo - $t_kill));

my $js1;
ok($t->wait_for(sub {
    $js1 = mig_status();
    ($js1->{redis}{addr} // '') eq addr($new);
}, 2), '1: migctl maintenance status reads from the new master within 2 s'
   . ' of the failover');
is($js1->{mode}, 'on', '1: ... and finds the flag on there');
diag(sprintf('1: migctl status on the new master %.0f ms after the failover',
             1000 * (time - $t_fo)));

ok($t->wait_for(sub { on_master($new) }, 2),
   '1: both edges on the new master within 2 s of the failover');
diag(sprintf('1: edges on the new master %.0f ms after the failover',
             1000 * (time - $t_fo)));

$epoch++;
my $t_off = time;
$res = mig('maintenance', 'off', '--wait=10');
is($res->{rc}, 0, '1: migctl maintenance off --wait: done')
    or diag($res->{err});
ok(both(200), '1: both edges 200');
cmp_ok(time - $t_fo, '<=', 2, '1: off --wait reached both edges within 2 s'
       . ' of the failover');
diag(sprintf('1: off --wait returned %.0f ms after the failover, %.0f ms'
             . ' after it began', 1000 * (time - $t_fo),
             1000 * (time - $t_off)));
is($t->redis($new, 'HGET', 'migctl:state:default', 'epoch'), $epoch,
   '1: migctl wrote epoch 1 (on) and 2 (off)');

my $samples = sampler_stop($s);
my @early = grep { $_->[0] < $t_off && $_->[1] == 200 } @$samples;
cmp_ok(scalar @$samples, '>', 20, '1: the edges were sampled during the '
       . 'failover (' . scalar(@$samples) . ' answers)');
is(scalar @early, 0, '1: no request got the app while the flag was on');
my %codes;
$codes{"$_->[2]=$_->[1]"}++ for grep { $_->[0] < $t_off } @$samples;
diag('1: answers while on: '
     . join(' ', map { "$_ x$codes{$_}" } sort keys %codes));

for my $n (qw(e1 e2)) {
    my $st = status($n);
    is($st->{sentinel}{failovers}, 1, "1: $n: one failover counted");
    my $ls = $st->{sentinel}{last_switch} // 0;
    ok($ls >= 1000 * $t_kill - 1000 && $ls <= 1000 * time + 1000,
       "1: $n: last_switch is the time of the switch ($ls)");
    is($st->{sentinel}{reachable}, JSON::PP::true, "1: $n: sentinels "
       . 'reachable');
    like(prom($n), qr/^nginx_maintenance_redis_master\{name="$NAME",addr="\Q${\ addr($new)}\E"\} 1$/m,
         "1: $n: Prometheus shows the master");
    like(prom($n), qr/^nginx_maintenance_sentinel_failovers_total 1$/m,
         "1: $n: Prometheus counts the failover");
}

# --- 2. graceful failover -----------------------------------------------

# $who is a replica in sync, as every live sentinel sees it
sub healthy_replica {
    my ($who) = @_;
    my $ok = 1;
    for my $sn (grep { $t->redis_pid($_) } @{ $g->{sentinels} }) {
        my $r = $t->redis($sn, 'SENTINEL', 'replicas', $NAME);
        my ($e) = grep { { @$_ }->{port} == $t->port($who) } @$r;
        my %h = $e ? @$e : ();
        $ok &&= ($h{flags} // '') eq 'slave'
                && ($h{'master-link-status'} // '') eq 'ok';
    }
    return $ok;
}

# the old master back, as a replica of the new one
$t->start_redis('g-m', args => ['--replicaof', '127.0.0.1',
                                 $t->port($new)]);
ok($t->wait_for(sub { healthy_replica('g-m') }, 30),
   '2: g-m is back as a healthy replica, as every sentinel sees it');

$epoch++;
$t->set_state($new, 'default', 'on', $epoch);
ok($t->wait_for(sub { both(503) }, 3), '2: flag on: both edges 503');
ok($t->wait_for(sub { replicated($new, 'g-m') }, 10),
   '2: the replica holds the flag before the failover');

my $old = $new;
$s = sampler('graceful');
my $t_gf = time;
is($t->redis('g-s1', 'SENTINEL', 'FAILOVER', $NAME), 'OK',
   '2: SENTINEL FAILOVER accepted');
$new = $t->wait_failover($g, $old, 30);
$t_fo = time;
is($new, 'g-m', '2: g-m is the master again');
diag(sprintf('2: graceful failover done in %.2f s', $t_fo - $t_gf));
ok($t->wait_for(sub { on_master($new) }, 2),
   '2: both edges on the new master within 2 s');
diag(sprintf('2: edges on the new master %.0f ms after the failover',
             1000 * (time - $t_fo)));
ok($t->wait_for(sub { on_master($new, 'e3') }, 2), '2: e3 too');
# (the sentinels turn it into a replica after their next INFO, <= 10 s)
ok($t->wait_for(sub { $t->redis($old, 'ROLE')->[0] eq 'slave' }, 15),
   "2: $old is a replica now");
is($t->redis($new, 'ROLE')->[0], 'master', "2: the edges' master says "
   . 'master');

# the old master: from now on no read and no write of the edges' (their
# poll reads every 200 ms, their heartbeat writes)
$t->redis($old, 'CONFIG', 'RESETSTAT');
$t->redis($new, 'CONFIG', 'RESETSTAT');
ok($t->wait_for(sub {
    $t->redis($new, 'INFO', 'commandstats') =~ /cmdstat_hgetall:calls=(\d+)/
        && $1 >= 10;
}, 5), '2: the edges poll the new master');
my $info = $t->redis($old, 'INFO', 'commandstats');
unlike($info, qr/cmdstat_hgetall/, "2: the old master is not read ($old)");
unlike($t->redis($old, 'INFO', 'errorstats'), qr/READONLY/,
       '2: no write was refused by the old master (none was tried)');
unlike($info, qr/cmdstat_zadd/, '2: the old master gets no heartbeat');

$epoch++;
$t_off = time;
$t->set_state($new, 'default', 'off', $epoch);
ok($t->wait_for(sub { both(200) }, 2), '2: off: both edges 200');
$samples = sampler_stop($s);
@early = grep { $_->[0] < $t_off && $_->[1] == 200 } @$samples;
cmp_ok(scalar @$samples, '>', 20, '2: sampled during the failover');
is(scalar @early, 0, '2: no request got the app while the flag was on');
is(status('e1')->{sentinel}{failovers}, 2, '2: e1: two failovers counted');

# --- 3. one sentinel down, the fake one first names the replica ---------

$t->kill_redis('g-s2');
$t->redis('fs', 'FAKE', 'SENTINEL', $NAME, '127.0.0.1', $t->port($old));

# e3's command link dropped: its one configured sentinel is dead
ok($t->wait_for(sub { on_master($new, 'e3') }, 5), '3: e3 on the master');
my $drops = () = $t->error_log('e3') =~ /redis command link .* down/g;
$t->redis($new, 'CLIENT', 'KILL', 'TYPE', 'normal');
ok($t->wait_for(sub {
    my $n = () = $t->error_log('e3') =~ /redis command link .* down/g;
    $n > $drops || $t->error_log('e3') =~ /\Q$node{'g-s2'}\E: connect\(\) failed/;
}, 5), '3: e3: the command link dropped (CLIENT KILL), the sentinels asked');
ok($t->wait_for(sub { on_master($new, 'e3') }, 10),
   '3: e3 back on the master through the sentinels it learned');
ok($t->wait_for(sub { status('e3')->{sentinel}{reachable} }, 10),
   '3: e3: its +switch-master subscription moved to a learned sentinel');
like($t->error_log('e3'), qr/\Q$node{'g-s2'}\E: connect\(\) failed|sentinel subscriber to \Q$node{'g-s2'}\E down/,
     '3: e3 tried its configured sentinel first');

# e3's worker 0 killed: the one nginx starts in its place knows the
# learned sentinels from the zone (its one configured sentinel is dead)
my $fo3 = status('e3')->{sentinel}{failovers};
my %old3 = map { $_ => 1 } $t->worker_pids('e3');
my ($w3) = $t->error_log('e3') =~ /.*\b(\d+)#\d+: maintenance: /s;
ok($w3 && $old3{$w3}, "3: e3: worker 0 is $w3");
kill 'KILL', $w3;
my $w3new;
ok($t->wait_for(sub {
    ($w3new) = grep { !$old3{$_} } $t->worker_pids('e3');
}, 10), '3: e3: worker 0 respawned');
ok($t->wait_for(sub {
    $t->error_log('e3') =~ /#$w3new: .*maintenance: redis command link to \Q${\ addr($new)}\E \S+ up/
}, 10), '3: e3: the new worker 0 is on the master through the sentinels '
   . 'learned');
is(status('e3')->{sentinel}{failovers}, $fo3,
   '3: e3: the respawn is no failover (' . ($fo3 // 'undef') . ')');

# a reload: the new worker 0 asks the sentinels in the configured order
$t->reload_nginx($_) for qw(e1 e2);
ok($t->wait_for(sub { on_master($new) }, 10),
   '3: after a reload: both edges on the real master');
for my $n (qw(e1 e2)) {
    my ($w) = grep { $t->process_title($_) =~ /worker process$/ }
              $t->worker_pids($n);
    my @l = grep { /answers ROLE "slave"/ && /\Q$fake\E/ }
            split /\n/, $t->error_log($n);
    cmp_ok(scalar @l, '>=', 2, "3: $n: the stale answer of the fake "
           . 'sentinel was refused again after the reload');
}
$epoch++;
$t->set_state($new, 'default', 'on', $epoch);
ok($t->wait_for(sub { both(503) && code('e3') == 503 }, 2),
   '3: a change reaches every edge');
$t->stop_nginx('e3');
$t->check_logs('e3', qr/worker process $w3 exited on signal 9/);

# --- 4. migctl and the edges through the sentinels ---------------------

my $live = join(' ', @node{qw(g-s1 g-s3)});
$t->nginx_conf('m1', edge_conf('m1', 'last', 0, $live));
$t->nginx_conf('m2', edge_conf('m2', 'last', 1, $live));
%tls = (%tls, m1 => 0, m2 => 1);
$t->start_nginx($_) for qw(m1 m2);
my $m4 = $t->sentinel_master($g);
# and their heartbeats in: on --wait below waits for the live edges only
ok($t->wait_for(sub {
    on_master($m4, qw(m1 m2))
        && !grep { !$t->redis($m4, 'ZSCORE', 'migctl:edges', $_) } qw(m1 m2)
}, 10), '4: both edges on the master');

# e3, stopped in 3, is no live edge any more
ok($t->wait_for(sub {
    my $hb = $t->redis($m4, 'ZSCORE', 'migctl:edges', 'e3') // 0;
    1000 * time - $hb > 3500;
}, 10), '4: e3 (stopped) is no live edge');
$res = mig('maintenance', 'on', '--wait=10', '--reason', 'sentinel');
is($res->{rc}, 0, '4: migctl maintenance on --wait: done')
    or diag($res->{err});
ok(code('m1') == 503 && code('m2') == 503, '4: both edges 503');

my $r8 = $m4 eq 'g-m' ? 'g-r' : 'g-m';
ok($t->wait_for(sub { healthy_replica($r8) && replicated($m4, $r8) }, 30),
   "4: $r8 a healthy replica");
$s = sampler('migctl', qw(m1 m2));
my $fo8;
$t->wait_for(sub {
    $fo8 = eval { $t->redis('g-s1', 'SENTINEL', 'FAILOVER', $NAME) };
    $fo8 || (sleep(0.2), 0);
}, 15);
my $m3 = $t->wait_failover($g, $m4, 30);
$t_fo = time;
is($m3, $r8, "4: graceful failover to $r8");
$res = mig('--json', 'maintenance', 'status');
# (1: a problem found: the edges stopped in 3 are stale; 3 would be Redis)
ok($res->{rc} == 0 || $res->{rc} == 1, '4: migctl maintenance status read '
   . "the master (exit $res->{rc})") or diag($res->{err});
my $js = eval { decode_json($res->{out}) } // {};
is($js->{mode}, 'on', '4: status reads the flag (on)');
is($js->{redis}{addr}, addr($m3), '4: ... from the new master');
# the heartbeats the edges wrote to the old master after the promotion
# are not on the new one: they write again once they are on it
ok($t->wait_for(sub { on_master($m3, qw(m1 m2)) }, 2),
   '4: both edges on the new master');
$t_off = time;
$res = mig('maintenance', 'off', '--wait=10');
is($res->{rc}, 0, '4: migctl maintenance off --wait: done')
    or diag($res->{err});
ok(code('m1') == 200 && code('m2') == 200, '4: both edges 200');
diag(sprintf('4: off --wait returned %.2f s after the failover',
             time - $t_fo));
cmp_ok(time - $t_fo, '<=', 2, '4: within 2 s of the failover');
$samples = sampler_stop($s);
@early = grep { $_->[0] < $t_off && $_->[1] == 200 } @$samples;
is(scalar @early, 0, '4: no request got the app while the flag was on');
is($t->redis($m3, 'HGET', 'migctl:state:default', 'mode'), 'off',
   '4: the new master holds "off"');
# before 5 stops the sentinels: the old master must be told it is none
ok($t->wait_for(sub { $t->redis($m4, 'ROLE')->[0] eq 'slave' }, 15),
   "4: $m4 is a replica now");
$t->stop_nginx($_) for qw(m1 m2);
$t->check_logs($_) for qw(m1 m2);

# what 5 writes goes to the master of now, after the epoch migctl wrote
$new = $m3;
$epoch = $t->redis($new, 'HGET', 'migctl:state:default', 'epoch');

# --- 5. every sentinel down -------------------------------------------

$epoch++;
$t->set_state($new, 'default', 'off', $epoch);
ok($t->wait_for(sub { both(200) }, 2), '5: flag off: both edges 200');

$t->kill_redis('fs', 'STOP');
$t->kill_redis($_, 'STOP') for qw(g-s1 g-s3);

ok($t->wait_for(sub {
    !grep { status($_)->{sentinel}{reachable} } qw(e1 e2)
}, 15), '5: status: no sentinel reachable');
ok(both(200), '5: links to the master stay up: both edges still 200');

# drop the edges' command links: the discovery fails, the policy rules
$t->redis($new, 'CLIENT', 'KILL', 'TYPE', 'normal');
ok($t->wait_for(sub { !status('e1')->{redis}{up}
                      && !status('e2')->{redis}{up} }, 5),
   '5: command links down: no sentinel names the master');
ok($t->wait_for(sub { code('e2') == 503 }, 3),
   '5: e2 (failure policy closed) serves maintenance');
is(code('e1'), 200, '5: e1 (failure policy last) keeps its state (off)');
my $st = status('e1');
is($st->{sentinel}{in_use}, '', '5: status: no sentinel in use');
for my $sn ($fake, @node{qw(g-s1 g-s2 g-s3)}) {
    like($st->{sentinel}{tried}, qr/\Q$sn\E: /,
         "5: status: the sentinels tried: $sn and why");
}
my $re = qr/no sentinel names the master of "$NAME" \(.*\Q$node{'g-s2'}\E: connect\(\) failed/;
ok($t->wait_for(sub { $t->error_log('e1') =~ $re }, 10),
   '5: logged, naming every sentinel and why');

$t->kill_redis($_, 'CONT') for qw(fs g-s1 g-s3);
my $t_back = time;
ok($t->wait_for(sub {
    my $m = $t->sentinel_master($g) // return 0;
    on_master($m) && both(200);
}, 20), '5: sentinels back: both edges reconnect, open');
diag(sprintf('5: reconnected %.2f s after the sentinels came back',
             time - $t_back));
my $m = $t->sentinel_master($g);
$epoch++;
$t->set_state($m, 'default', 'on', $epoch);
ok($t->wait_for(sub { both(503) }, 2), '5: a change reaches both edges');
ok($t->wait_for(sub {
    !grep { !status($_)->{sentinel}{reachable} } qw(e1 e2)
}, 10), '5: status: sentinels reachable again');

$t->stop_nginx($_) for qw(e1 e2);
$t->check_logs($_) for qw(e1 e2);

# --- 6. configuration errors ------------------------------------------

sub refuse {
    my ($name, $body, $re, $label) = @_;
    $t->nginx_conf($name, "load_module %%MODULE%%;\n"
                        . "events { worker_connections 64; }\n"
                        . "http {\n$body"
                        . "    server { listen 127.0.0.1:%%PORT_x%%; }\n"
                        . "}\n");
    my ($rc, $out) = $t->nginx_test($name);
    isnt($rc, 0, "6: $label: nginx -t fails");
    like($out, $re, "6: $label: one clear line") or diag($out);
}

refuse('both', "    maintenance_redis 127.0.0.1:6379;\n"
             . "    maintenance_redis_sentinel m 127.0.0.1:26379;\n",
       qr/"maintenance_redis_sentinel" and "maintenance_redis" \(line 4\) cannot both be set.* in \S+both\/nginx\.conf:5/,
       'both directives');
refuse('both2', "    maintenance_redis_sentinel m 127.0.0.1:26379;\n"
              . "    maintenance_redis 127.0.0.1:6379;\n",
       qr/"maintenance_redis" and "maintenance_redis_sentinel" \(line 4\) cannot both be set.* in \S+both2\/nginx\.conf:5/,
       'both directives, the other order');
refuse('badaddr', "    maintenance_redis_sentinel m 127.0.0.1:99999;\n",
       qr/invalid sentinel address "127\.0\.0\.1:99999": invalid port in \S+badaddr\/nginx\.conf:4/,
       'bad sentinel address');
refuse('unix', "    maintenance_redis_sentinel m unix:/tmp/s.sock;\n",
       qr/invalid sentinel address "unix:\/tmp\/s\.sock": use host:port/,
       'unix socket as a sentinel');
refuse('noaddr', "    maintenance_redis_sentinel m timeout=1s;\n",
       qr/needs at least one sentinel address \(host:port\) after the master name "m" in \S+noaddr\/nginx\.conf:4/,
       'no sentinel address');
refuse('noargs', "    maintenance_redis_sentinel m;\n",
       qr/invalid number of arguments in "maintenance_redis_sentinel"/,
       'only a name');
refuse('badname', "    maintenance_redis_sentinel 'my master' 127.0.0.1:1;\n",
       qr/invalid master name "my master"/, 'a master name with a space');
refuse('badparam', "    maintenance_redis_sentinel m 127.0.0.1:1 dbb=1;\n",
       qr/invalid parameter "dbb=1"/, 'an unknown parameter');
refuse('many', "    maintenance_redis_sentinel m "
               . join(' ', map { "127.0.0.1:" . (30000 + $_) } 1 .. 17)
               . ";\n",
       qr/more than 16 sentinel addresses/, '17 sentinels');

# --- 7. under valgrind ------------------------------------------------

SKIP: {
skip 'valgrind not installed', 12
    unless grep { -x "$_/valgrind" } split /:/, $ENV{PATH};

$m = $t->sentinel_master($g);
my $r = $m eq 'g-m' ? 'g-r' : 'g-m';
ok($t->wait_for(sub { $t->redis($r, 'ROLE')->[0] eq 'slave' }, 15),
   "7: $r is a replica");
$t->redis('fs', 'FAKE', 'SENTINEL', $NAME, '127.0.0.1', $t->port($r));
my $dir = $t->nginx_dir('v');
$t->nginx_conf('v', <<"CONF");
load_module %%MODULE%%;
master_process off;
daemon off;
pid %%DIR%%/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    maintenance_redis_sentinel $NAME $sentinels timeout=1s;
    maintenance_poll 200ms;
    maintenance on;

    server {
        listen 127.0.0.1:%%PORT_v%%;
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
my $vpid = $t->start_nginx_valgrind($dir);
ok($t->wait_port($t->port('v_st'), 60), '7: nginx under valgrind listens');
my $vst = sub {
    my $b = $t->http($t->port('v_st'), '/status', timeout => 10)->{body};
    return eval { decode_json($b) } // {};
};
ok($t->wait_for(sub { ($vst->()->{sentinel}{master} // '') eq addr($m) },
                30), '7: on the master (the stale sentinel refused)');

ok($t->wait_for(sub { healthy_replica($r) }, 30), "7: $r a healthy "
   . 'replica');
# after the stops of 5 the sentinels are in TILT mode (30 s): no failover
ok($t->wait_for(sub {
    !grep { $t->redis($_, 'INFO', 'sentinel') !~ /sentinel_tilt:0/ }
    grep { $t->redis_pid($_) } @{ $g->{sentinels} };
}, 40), '7: the sentinels are out of TILT mode');
# (a failover the sentinels still run refuses a new one: retried)
my $fo;
$t->wait_for(sub {
    $fo = eval { $t->redis('g-s1', 'SENTINEL', 'FAILOVER', $NAME) };
    $fo || (sleep(0.2), 0);
}, 15);
my $m2 = $t->wait_failover($g, $m, 30);
ok($m2 && $t->wait_for(sub {
    ($vst->()->{sentinel}{master} // '') eq addr($m2) }, 20),
   '7: graceful failover followed')
    or diag('FAILOVER: ' . ($fo // $@) . '; sentinels: '
            . ($t->sentinel_master($g) // 'none') . '; edge: '
            . explain($vst->()->{sentinel}));

# the real sentinels hung, the fake one answers a port as an integer
$t->redis('fs', 'FAKE', 'FRAME', 'SENTINEL',
          unpack('H*', "*2\r\n\$9\r\n127.0.0.1\r\n:6379\r\n"));
$t->kill_redis($_, 'STOP') for qw(g-s1 g-s3);
$t->redis($m2, 'CLIENT', 'KILL', 'TYPE', 'normal');
ok($t->wait_for(sub {
    $t->error_log('v') =~ /no sentinel names the master .*\Q$fake\E: malformed reply to get-master-addr-by-name/
}, 30), '7: sentinels hung or malformed: the discovery fails, says why');
$t->kill_redis($_, 'CONT') for qw(g-s1 g-s3);
$t->redis('fs', 'FAKE', 'CLEAR');
ok($t->wait_for(sub { $vst->()->{redis}{up} }, 30), '7: back');

my ($w) = $t->quit_nginx_valgrind($vpid, 30);
is($w, $vpid, '7: graceful exit');
is($t->read_file($vglog) // '', '', '7: valgrind reports nothing');
unlike($t->error_log('v'), qr/open socket .* left/, '7: no socket left open');
$t->check_logs('v');
}

# --- 8. a sentinel with a password --------------------------------------

$m = $t->sentinel_master($g);
my $s4 = 'g-s4';
my $s4dir = $t->dir . "/$s4";
$t->write_file("$s4dir/sentinel.conf", join('',
    "port ", $t->port($s4), "\nbind 127.0.0.1\nprotected-mode no\n",
    "daemonize no\ndir $s4dir\nlogfile $s4dir/redis.log\n",
    "sentinel monitor $NAME 127.0.0.1 ", $t->port($m), " 2\n"));
$t->start_redis($s4, sentinel => "$s4dir/sentinel.conf");
my $spw = 'Sentinel-pw-' . join('', map { ('a'..'z')[rand 26] } 1 .. 16);
$t->write_file('spw', "$spw\n");
$t->write_file('spw.bad', "not-$spw\n");
$t->redis($s4, 'ACL', 'SETUSER', 'default', 'on', ">$spw");

for my $n (qw(pw pwbad)) {
    my $f = $t->dir . ($n eq 'pw' ? '/spw' : '/spw.bad');
    my $s4port = $t->port($s4);
    $t->nginx_conf($n, <<"EOF");
load_module %%MODULE%%;
worker_processes 1;
events { worker_connections 64; }
http {
    access_log off;
    maintenance_redis_sentinel $NAME 127.0.0.1:$s4port
                               sentinel_password_file=$f;
    maintenance_poll 200ms;
    maintenance_node_id $n;
    maintenance on;

    server {
        listen 127.0.0.1:%%PORT_$n%%;
        location / { return 200 "app\\n"; }
    }

    server {
        listen 127.0.0.1:%%PORT_${n}_st%%;
        maintenance off;
        location /status { maintenance_status; }
    }
}
EOF
    $t->start_nginx($n);
    $tls{$n} = 0;
}

ok($t->wait_for(sub { on_master($m, 'pw') }, 10),
   '8: sentinel_password_file: AUTH accepted, on the master');
ok($t->wait_for(sub { status('pw')->{sentinel}{in_use} eq addr($s4) }, 10),
   '8: the +switch-master subscription authenticated too');
ok($t->wait_for(sub {
    (status('pwbad')->{sentinel}{tried} // '') =~ /AUTH refused/ }, 10),
   '8: a wrong sentinel password: status says AUTH refused');
like($t->error_log('pwbad'), qr/no sentinel names the master .*AUTH refused/,
     '8: and the log');
ok(!status('pwbad')->{redis}{up}, '8: no master without a sentinel');
for my $n (qw(pw pwbad)) {
    $t->stop_nginx($n);
    unlike($t->error_log($n), qr/\Q$spw\E/, "8: $n: no password in the log");
    $t->check_logs($n);
}

done_testing;
