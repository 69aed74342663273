#!/usr/bin/perl
# soak.pl: make soak.  Two nginx edges (HTTP and TLS servers gating a small
# app in a third nginx) under wrk, while the flag toggles, Redis restarts
# (twice losing its data), nginx reloads and worker 0 is killed, interleaved
# over SOAK_S seconds.  Every response is attributed through the edges'
# access logs ($msec, $request_time, $status, $upstream_addr) to the flag
# timeline the driver records; TAP on stdout, the report also in
# build/soak/results.md; exit status non-zero when an invariant fails.
#
# The propagation window of a change is 100 ms after migctl returned
# (pub/sub); a change near a fault (a Redis outage, a reload, a worker 0
# kill, from W_EXT before the change to the end of its window) gets the
# fault's end + W_EXT, W_EXT = 2 polls + 100 ms (reconnect backoff, at most
# a poll, then a read).  Responses whose request began inside a window are
# counted apart, not judged; a toggle that fails (Redis down: exit 3) is
# counted as not toggled and changes nothing in the timeline.  nginx's
# $msec is cached per event loop turn and can be older than the decision:
# an answer in the next change's mode logged under that change's epoch
# straddled it and is counted apart too.  At the end a canary change made
# behind the timeline's back must be counted as violations.
use strict;
use warnings;

use lib 't/lib';
use File::Copy qw(copy);
use File::Path qw(make_path);
use JSON::PP;
use List::Util qw(max min sum shuffle);
use MigTest;
use POSIX ();
use Test::More;
use Time::HiRes qw(time sleep);

my $S     = $ENV{SOAK_S} // 600;
die "SOAK_S must be a number of seconds >= 20\n"
    unless $S =~ /^\d+$/ && $S >= 20;
my $SCALE = $S >= 600 ? 1 : $S / 600;

# the issue's counts at SOAK_S >= 600, in proportion below that
sub count {
    my ($env, $full, $min) = @_;
    return $ENV{$env} // max($min, int($full * $SCALE + 0.5));
}

my $N_TOGGLE  = count('SOAK_TOGGLES', 1000, 20);
my $N_RESTART = count('SOAK_REDIS_RESTARTS', 20, 2);
my $N_LOST    = $ENV{SOAK_REDIS_LOST} // min(2, int($N_RESTART / 2));
my $N_RELOAD  = count('SOAK_RELOADS', 20, 2);
my $N_KILL    = count('SOAK_KILLS', 20, 2);
my $DELAY_MS  = $ENV{SOAK_DELAY_MS} // 15;    # wrk: pause per connection
my $CONNS     = $ENV{SOAK_CONNS} // 4;        # wrk: connections per port
my $SEED      = $ENV{SOAK_SEED} // (time() ^ $$) & 0xffffff;
my $POLL      = 0.25;
my $W_PUB     = 0.100;
my $W_EXT     = 2 * $POLL + 0.100;
my @EDGES     = qw(e1 e2);

srand($SEED);

my $t    = MigTest->new;
my $ROOT = $t->root;
my $OUT  = $ENV{SOAK_OUT} // "$ROOT/build/soak";
make_path($OUT);

my (@timeline, @commits, @fails, @faults, @anomalies, %killed, @wrk);
my $T0;

sub rel { sprintf '%.3f', $_[0] - ($T0 // $_[0]) }

sub event {
    my ($what, %f) = @_;
    my $now = time;
    push @timeline, join("\t", rel($now), $what,
                         map { "$_=$f{$_}" } sort keys %f);
    return $now;
}

sub anomaly {
    my ($text) = @_;
    event('anomaly', text => $text);
    push @anomalies, $text;
}

# --- the stack ----------------------------------------------------------

my ($crt, $key) = $t->self_signed_cert('edge');
$t->start_redis('r', persist => 1);
my $rdb = $t->dir . '/r/dump.rdb';

$t->nginx_conf('app', <<'CONF');
worker_processes 1;
events { worker_connections 1024; }
http {
    access_log off;
    server {
        listen 127.0.0.1:%%PORT_app%% reuseport;
        keepalive_requests 100000;
        location / { return 200 "app\n"; }
    }
}
CONF
$t->start_nginx('app');

for my $e (@EDGES) {
    $t->nginx_conf($e, <<"CONF");
load_module %%MODULE%%;
worker_processes 2;
events { worker_connections 1024; }
http {
    log_format soak '\$msec \$request_time \$status \$upstream_addr '
                    '\$maintenance \$maintenance_epoch \$pid \$server_port';
    access_log off;
    maintenance_redis 127.0.0.1:%%PORT_r%% timeout=300ms;
    maintenance_poll 250ms;
    maintenance_node_id $e;

    upstream app {
        server 127.0.0.1:%%PORT_app%%;
        keepalive 16;
    }

    server {
        listen 127.0.0.1:%%PORT_${e}_http%%;
        server_name soak.test;
        maintenance on;
        access_log %%DIR%%/access.log soak;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }

    server {
        listen 127.0.0.1:%%PORT_${e}_tls%% ssl;
        server_name soak.test;
        ssl_certificate $crt;
        ssl_certificate_key $key;
        maintenance on;
        access_log %%DIR%%/access.log soak;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }

    server {
        listen 127.0.0.1:%%PORT_${e}_st%%;
        server_name status.test;
        maintenance off;
        location /status { maintenance_status; }
    }
}
CONF
    $t->start_nginx($e);
}

my $mconf = $t->write_file('migctl.conf', sprintf(<<'EOF', $t->port('r')));
redis = { host = "127.0.0.1"; port = %d; timeout_ms = 1000; };
EOF
my %menv = (MIGCTL_CONFIG => $mconf, MIGCTL_ACTOR => 'soak');

sub status_json {
    my ($e) = @_;
    my $r = $t->http($t->port("${e}_st"), '/status', timeout => 3);
    return eval { decode_json($r->{body}) };
}

sub serving {                      # what a gated server answers now
    my ($e, $kind) = @_;
    my $r = $t->http($t->port("${e}_$kind"), '/', tls => $kind eq 'tls',
                     timeout => 3);
    return $r->{body} =~ /^app$/m ? 'off' : $r->{status} == 503 ? 'on'
         : "status $r->{status}";
}

sub all_serve {
    my ($mode) = @_;
    for my $e (@EDGES) {
        for my $k (qw(http tls)) {
            return 0 unless serving($e, $k) eq $mode;
        }
    }
    return 1;
}

sub numsub {
    my $r = eval { $t->redis('r', 'PUBSUB', 'NUMSUB', 'migctl:events') };
    return ref $r ? $r->[1] : -1;
}

sub rss {                          # kB: VmRSS, RssAnon; age in s
    my ($pid) = @_;
    my $st = $t->read_file("/proc/$pid/status") // return;
    my ($vm) = $st =~ /^VmRSS:\s+(\d+)/m;
    my ($an) = $st =~ /^RssAnon:\s+(\d+)/m;
    my $stat = $t->read_file("/proc/$pid/stat") // '';
    $stat =~ s/^.*\) //s;
    my $start = (split ' ', $stat)[19] // 0;
    my ($up) = split ' ', ($t->read_file('/proc/uptime') // '0');
    my $age = $up - $start / POSIX::sysconf(POSIX::_SC_CLK_TCK());
    return { pid => $pid, rss => $vm, anon => $an, age => $age };
}

sub workers_rss {
    my ($e) = @_;
    return [ map { rss($_) } grep { $t->process_title($_) =~
                                    /worker process$/ } $t->worker_pids($e) ];
}

# the initial state, committed and seen everywhere before the load starts
ok($t->wait_for(sub { numsub() == scalar @EDGES }, 10),
   'both edges subscribed');
{
    my $s = time;
    my $r = $t->migctl({ env => \%menv }, qw(maintenance off --force
                                             --reason), 'soak start');
    die "migctl maintenance off: $r->{err}" if $r->{rc};
    my ($ep) = $r->{out} =~ /\(epoch (\d+)\)/;
    push @commits, { s => $s, e => time, mode => 'off', epoch => $ep,
                     numsub => scalar @EDGES, life => 0 };
}
ok($t->wait_for(sub { all_serve('off') }, 5),
   'every gated server serves the app before the load starts');

# --- the load -----------------------------------------------------------

my $lua = $t->write_file('pace.lua',
                         "function delay()\n  return $DELAY_MS\nend\n");
for my $e (@EDGES) {
    for my $k (qw(http tls)) {
        my $url = sprintf '%s://127.0.0.1:%d/', $k eq 'tls' ? 'https'
                                                            : 'http',
                          $t->port("${e}_$k");
        my $out = $t->dir . "/wrk.$e.$k.out";
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            open STDOUT, '>', $out or POSIX::_exit(1);
            open STDERR, '>&', \*STDOUT or POSIX::_exit(1);
            exec 'wrk', '-t1', "-c$CONNS", '-d' . ($S + 120) . 's',
                 '--timeout', '5s', '-s', $lua, $url
                or POSIX::_exit(127);
        }
        push @wrk, { pid => $pid, out => $out, name => "$e $k" };
    }
}

END {
    # wrk is ours: stopped by PID, also when the driver dies
    for my $w (@wrk) {
        next if $w->{done};
        kill 'KILL', $w->{pid};
        waitpid($w->{pid}, 0);
    }
}

# --- the schedule -------------------------------------------------------

# faults spread over [3 %, 88 %] of the run, one per slot at a random
# place in it; the last 12 % toggles only, so that the workers measured at
# the end have lived a while
sub slots {
    my ($n, $kind, %f) = @_;
    my $span = 0.85 * $S / $n;
    return map { { t => 0.03 * $S + ($_ + 0.1 + 0.8 * rand) * $span,
                   kind => $kind, i => $_, %f } } 0 .. $n - 1;
}

my @sched;
my $step = $S / $N_TOGGLE;
push @sched, map { { t => ($_ + 0.3 + 0.4 * rand) * $step,
                     kind => 'toggle', i => $_ } } 0 .. $N_TOGGLE - 1;
my %lost = map { $_ => 1 } (shuffle 0 .. $N_RESTART - 1)[0 .. $N_LOST - 1];
my $n_lost = 0;
push @sched, map { $_->{lost} = $lost{ $_->{i} } ? 1 : 0; $_ }
             slots($N_RESTART, 'redis_down');
push @sched, map { $_->{edge} = $EDGES[$_->{i} % @EDGES]; $_ }
             slots($N_RELOAD, 'reload');
push @sched, map { $_->{edge} = $EDGES[($_->{i} + 1) % @EDGES]; $_ }
             slots($N_KILL, 'kill');
@sched = sort { $a->{t} <=> $b->{t} } @sched;

# the commit times: the audit entry's stream id is Redis's clock (ms) at
# the change, in the same script as the publish
my %commit_ms;                     # "life epoch" => ms

sub audit_times {
    my ($life) = @_;
    my $x = eval { $t->redis('r', 'XRANGE', 'migctl:audit', '-', '+') }
        || [];
    for my $en (@$x) {
        my %f = @{ $en->[1] };
        my ($ms) = $en->[0] =~ /^(\d+)-/;
        $commit_ms{"$life $f{epoch}"} = $ms if $f{result} ne 'refused';
    }
}

sub later {                        # re-insert an event $dt from now
    my ($ev, $dt) = @_;
    $ev->{t} = time - $T0 + $dt;
    my $i = 0;
    $i++ while $i < @sched && $sched[$i]{t} <= $ev->{t};
    splice @sched, $i, 0, $ev;
}

my $belief = 'off';                # the last committed mode
my $redis_up = 1;
my $life = 0;                      # Redis data lifetimes (a loss: +1)
my @audit_lost;                    # XLEN of migctl:audit at each loss
my (%w0, $outage);
my (%rss_start, $rss_taken);
my ($n_ok, $n_fail, $n_kill, $n_reload, $n_restart) = (0) x 5;
my @san;

sub worker0 {                      # the pid of worker 0 of an edge, or 0
    my ($e) = @_;
    if ($redis_up) {
        my $p = eval { $t->redis('r', 'HGET', "migctl:edge:$e", 'pid') };
        $w0{$e} = $p if $p;
    }
    my $p = $w0{$e} // return 0;
    return 0 unless grep { $_ == $p } $t->worker_pids($e);
    return 0 unless $t->process_title($p) =~ /worker process$/;
    return 0 if $killed{$e}{$p};
    return $p;
}

sub toggle {
    my ($ev) = @_;
    my $want = $belief eq 'on' ? 'off' : 'on';
    my $ns = numsub();
    my $s = time;
    my $r = $t->migctl({ env => \%menv, timeout => 20 }, 'maintenance',
                       $want, $want eq 'off' ? '--force' : (), '--reason',
                       "soak $ev->{i}");
    my $e = time;
    push @san, $r->{err}
        if $r->{err} =~ /AddressSanitizer|LeakSanitizer|runtime error:/;
    if ($r->{rc} == 0) {
        my ($ep) = $r->{out} =~ /\(epoch (\d+)\)/;
        push @commits, { s => $s, e => $e, mode => $want, epoch => $ep // -1,
                         numsub => $ns, life => $life };
        $belief = $want;
        $n_ok++;
        event('commit', mode => $want, epoch => $ep // '?',
              ms => sprintf('%.1f', 1000 * ($e - $s)), numsub => $ns);
    } else {
        (my $err = $r->{err}) =~ s/\n.*//s;
        push @fails, { s => $s, e => $e, rc => $r->{rc}, err => $err,
                       redis_up => $redis_up };
        $n_fail++;
        event('toggle_failed', mode => $want, rc => $r->{rc},
              redis => $redis_up ? 'up' : 'down', err => $err);
        anomaly("toggle failed with exit $r->{rc} while Redis was up: $err")
            if $redis_up;
    }
}

sub redis_down {
    my ($ev) = @_;
    if (!$redis_up) {              # an outage still running: after it
        later($ev, 1);
        return;
    }
    # the first loss while the flag is on: the edges must keep it on
    if ($ev->{lost} && $n_lost == 0 && $belief ne 'on'
        && ($ev->{tries} //= 0)++ < 20)
    {
        later($ev, 0.2);
        return;
    }
    my $t0 = time;
    if ($ev->{lost}) {
        push @audit_lost, $t->redis('r', 'XLEN', 'migctl:audit');
        audit_times($life);
        $t->kill_redis('r', 'KILL');
        unlink $rdb;
        $n_lost++;
    } else {
        $t->stop_redis('r');       # SIGTERM: saves dump.rdb, then exits
    }
    $redis_up = 0;
    $outage = { kind => 'redis', t0 => $t0, lost => $ev->{lost},
                mode => $belief };
    event('redis_down', lost => $ev->{lost}, mode => $belief);
    later({ kind => 'redis_up', lost => $ev->{lost} }, 0.3 + 2.2 * rand);
}

sub redis_up {
    my ($ev) = @_;
    $t->start_redis('r', persist => 1);
    $redis_up = 1;
    $n_restart++;
    $outage->{t1} = time;
    push @faults, $outage;
    event('redis_up', lost => $ev->{lost},
          down_ms => sprintf('%.0f', 1000 * ($outage->{t1} - $outage->{t0})));
    if ($ev->{lost}) {
        $life++;
        # a node that saw a state reads the missing key as lost and keeps
        # its state: wait for both to say so before the next change
        my $ok = $t->wait_for(sub {
            !grep { my $j = status_json($_);
                    !($j && $j->{scopes}{default}{lost}) } @EDGES;
        }, 3);
        event('lost_seen', ok => $ok ? 1 : 0);
        anomaly('after a restart without data, not every edge reported the'
                . ' state lost within 3 s') unless $ok;
        $outage->{t1} = time;
    } else {
        my $m = eval { $t->redis('r', 'HGET', 'migctl:state:default',
                                 'mode') } // '';
        anomaly("after a restart with persistence the state is '$m', the"
                . " last change was '$belief'") if $m ne $belief;
    }
}

sub reload {
    my ($ev) = @_;
    my $t0 = time;
    my $ok = eval { $t->reload_nginx($ev->{edge}); 1 };
    my $t1 = time;
    push @faults, { kind => 'reload', edge => $ev->{edge}, t0 => $t0,
                    t1 => $t1 };
    $n_reload++ if $ok;
    event('reload', edge => $ev->{edge},
          ms => sprintf('%.0f', 1000 * ($t1 - $t0)), ok => $ok ? 1 : 0);
    anomaly("reload of $ev->{edge} failed: $@") unless $ok;
}

sub kill_w0 {
    my ($ev) = @_;
    my $p = worker0($ev->{edge});
    unless ($p) {
        # just reloaded or killed, no heartbeat yet: a little later
        if (($ev->{tries} //= 0)++ < 50) {
            later($ev, 0.1);
        } else {
            anomaly("worker 0 of $ev->{edge} not found for 5 s");
        }
        return;
    }
    my $t0 = time;
    kill 'KILL', $p;
    $killed{ $ev->{edge} }{$p} = 1;
    $n_kill++;
    push @faults, { kind => 'kill', edge => $ev->{edge}, t0 => $t0,
                    t1 => $t0, pid => $p };
    event('kill', edge => $ev->{edge}, pid => $p);
}

my %do = (toggle => \&toggle, redis_down => \&redis_down,
          redis_up => \&redis_up, reload => \&reload, kill => \&kill_w0);

diag(sprintf('soak: %d s, seed %d: %d toggles, %d Redis restarts (%d'
             . ' without data), %d reloads, %d worker 0 kills; wrk %d'
             . ' connections per port, %d ms apart', $S, $SEED, $N_TOGGLE,
             $N_RESTART, $N_LOST, $N_RELOAD, $N_KILL, $CONNS, $DELAY_MS));

$T0 = time;
event('start', seed => $SEED);
my $deadline = $T0 + 3 * $S + 60;  # a driver that falls behind still ends
while (my $ev = shift @sched) {
    my $due = $T0 + $ev->{t};
    while ((my $now = time) < $due) {
        if (!$rss_taken && $now - $T0 > min(10, $S / 10)) {
            %rss_start = map { $_ => workers_rss($_) } @EDGES;
            $rss_start{"$_ master"} = rss($t->nginx_pid($_)) for @EDGES;
            $rss_taken = 1;
        }
        sleep(min(0.01, $due - $now));
    }
    if (time > $deadline) {
        anomaly('the driver fell behind: ' . (1 + @sched)
                . ' events not run');
        last;
    }
    $do{ $ev->{kind} }->($ev);
}
$redis_up or redis_up({ lost => 0 });
my $T1 = time;
event('schedule_done');

# the end: the last change is served everywhere; then the measurements
ok($t->wait_for(sub { all_serve($belief) }, 3),
   "at the end every gated server serves the last change ($belief)");
my %rss_end = map { $_ => workers_rss($_) } @EDGES;
$rss_end{"$_ master"} = rss($t->nginx_pid($_)) for @EDGES;
my %st = map { $_ => status_json($_) } @EDGES;
audit_times($life);

# the canary: a change the timeline does not know of (HSET and PUBLISH
# behind migctl's back); the attribution must count its answers as
# violations, or it could not see one
my $TC = time;
my $canary = $belief eq 'on' ? 'off' : 'on';
my $canary_epoch = $commits[-1]{epoch} + 1000;
$t->set_state('r', 'default', $canary, $canary_epoch);
my $canary_seen = $t->wait_for(sub { all_serve($canary) }, 3);
sleep 0.5;
event('canary', mode => $canary, seen => $canary_seen ? 1 : 0);

for my $w (@wrk) {
    kill 'INT', $w->{pid};         # wrk prints its summary on SIGINT
}
for my $w (@wrk) {
    unless ($t->wait_gone($w->{pid}, 10)) {
        kill 'KILL', $w->{pid};
    }
    waitpid($w->{pid}, 0);
    $w->{done} = 1;
}
my $T2 = time;
event('load_stopped');

my $audit_total = sum(0, @audit_lost)
                + $t->redis('r', 'XLEN', 'migctl:audit');

for my $e (@EDGES, 'app') { $t->stop_nginx($e) }

# --- attribution --------------------------------------------------------

# a change's window ends at e + W_PUB, or W_EXT after a fault near it
for my $c (@commits) {
    $c->{a} = $c->{e} + $W_PUB;
    $c->{ext} = 0;
    for (1 .. 10) {
        my $a0 = $c->{a};
        for my $f (@faults) {
            next if $f->{t1} < $c->{s} - $W_EXT || $f->{t0} > $c->{a};
            $c->{a} = max($c->{a}, $f->{t1} + $W_EXT);
        }
        last if $c->{a} == $a0;
        $c->{ext} = 1;
    }
}
for my $i (0 .. $#commits) {
    $commits[$i]{b} = $i < $#commits ? $commits[$i + 1]{s} : $TC;
    $commits[$i]{stale} = 0;
}

my %n = (total => 0, app => 0, maint => 0, other => 0, judged => 0,
         window => 0, early => 0, app_on => 0, maint_off => 0, canary => 0,
         straddle => 0, logvar => 0);
for my $c (@commits) {
    my $ms = $commit_ms{"$c->{life} $c->{epoch}"};
    $c->{c} = defined $ms ? $ms / 1000 : undef;
}
my (%other, @viol, %judged);
my %server = map { my $e = $_; map { ($t->port("${e}_$_") => "$e $_") }
                                   qw(http tls) } @EDGES;
my @cs = map { $_->{s} } @commits;

sub commit_at {                    # the last change begun at or before $x
    my ($x) = @_;
    my ($lo, $hi) = (0, $#cs);
    return -1 if $x < $cs[0];
    while ($lo < $hi) {
        my $mid = int(($lo + $hi + 1) / 2);
        if ($cs[$mid] <= $x) { $lo = $mid } else { $hi = $mid - 1 }
    }
    return $lo;
}

# $ep is the epoch of one of the two changes after change $i
sub next_epoch {
    my ($i, $ep) = @_;
    for my $k ($i + 1, $i + 2) {
        my $x = $k <= $#commits ? $commits[$k]{epoch}
              : $k == @commits ? $canary_epoch : undef;
        return 1 if defined $x && $x == $ep;
    }
    return 0;
}

for my $e (@EDGES) {
    my $path = $t->dir . "/$e/access.log";
    open my $fh, '<', $path or die "$path: $!";
    while (my $l = <$fh>) {
        my ($msec, $rt, $status, $up, $m, $ep, $pid, $port) = split ' ', $l;
        next unless defined $port;
        $n{total}++;
        my $kind = $up ne '-' && $status == 200 ? 'app'
                 : $up eq '-' && $status == 503 ? 'maint' : 'other';
        $n{$kind}++;
        $other{$status}++ if $kind eq 'other';
        my $rs = $msec - $rt;
        my $i = commit_at($rs);
        if ($i < 0) { $n{early}++; next }
        my $c = $commits[$i];
        my $served = $kind eq 'app' ? 'off' : $kind eq 'maint' ? 'on' : '';
        $n{logvar}++ if $served && $m ne $served;
        if ($rs >= $TC) {          # the canary's: judged apart
            $n{canary}++ if $served && $served ne $c->{mode}
                            && $rs >= $TC + 0.2;
            next;
        }
        if ($rs >= $c->{a} && $msec <= $c->{b}) {
            $n{judged}++;
            $judged{ $server{$port} // "$e ?" }++;
            if ($served && $served ne $c->{mode}
                && next_epoch($i, $ep))
            {
                # logged under the next change: nginx's time is cached
                # per event loop turn, so $msec can be older than the
                # moment of the decision; the state at log time shows
                # that the request straddled the next change
                $n{straddle}++;
            } elsif ($served && $served ne $c->{mode}) {
                $n{ $c->{mode} eq 'on' ? 'app_on' : 'maint_off' }++;
                chomp $l;
                push @viol, sprintf('%s: %s (begun %.3f s after change'
                                    . ' %d "%s" epoch %d returned; window'
                                    . ' %.3f s%s)', $e, $l, $rs - $c->{e},
                                    $i, $c->{mode}, $c->{epoch},
                                    $c->{a} - $c->{e},
                                    $c->{ext} ? ', extended' : '')
                    if @viol < 20;
            }
        } else {
            $n{window}++;
            if ($served && $served ne $c->{mode} && defined $c->{c}
                && $rs >= $c->{c})
            {
                $c->{stale} = max($c->{stale}, $rs - $c->{c});
            }
        }
    }
    close $fh;
}

# --- the error logs -----------------------------------------------------

my (%alerts, %lines);
my %count = ('link down'          => qr/maintenance: redis \w+ link .*down/,
             'link up again'      => qr/maintenance: redis \w+ link .*up again/,
             'state lost'         => qr/is gone from redis/,
             'exited on signal 9' => qr/exited on signal 9/,
             '[error]'            => qr/\[error\]/);
for my $e (@EDGES, 'app') {
    for my $l (split /\n/, $t->error_log($e)) {
        for my $k (keys %count) {
            $lines{"$e $k"}++ if $l =~ $count{$k};
        }
        next unless $l =~ /\[(alert|crit|emerg)\]/;
        next if $l =~ /worker process (\d+) exited on signal 9/
                && $killed{$e}{$1};
        push @{ $alerts{$e} }, $l;
    }
}

# --- wrk ----------------------------------------------------------------

my %wrk;
for my $w (@wrk) {
    my $o = $t->read_file($w->{out}) // '';
    my ($req) = $o =~ /(\d+) requests in/;
    my ($c, $r, $wr, $to) = $o =~ /Socket errors: connect (\d+), read (\d+),
                                   \s+write (\d+), timeout (\d+)/x;
    my ($non2xx) = $o =~ /Non-2xx or 3xx responses: (\d+)/;
    $wrk{ $w->{name} } = { req => $req // 0, non2xx => $non2xx // 0,
                           err => sum(0, map { $_ // 0 } $c, $r, $wr, $to),
                           detail => sprintf('connect %d, read %d, write %d,'
                                             . ' timeout %d', map { $_ // 0 }
                                             $c, $r, $wr, $to) };
    anomaly("wrk $w->{name}: no summary: $o") unless defined $req;
}

# --- the report ---------------------------------------------------------

sub pct {
    my ($p, @v) = @_;
    return 0 unless @v;
    @v = sort { $a <=> $b } @v;
    return $v[ min($#v, int($p / 100 * @v)) ];
}

my @base = map { $_->{stale} } grep { !$_->{ext} } @commits[1 .. $#commits];
my @ext  = map { $_->{stale} } grep { $_->{ext} } @commits[1 .. $#commits];
my @cms  = map { 1000 * ($_->{e} - $_->{s}) } @commits[1 .. $#commits];
my @rl   = map { 1000 * ($_->{t1} - $_->{t0}) }
           grep { $_->{kind} eq 'reload' } @faults;
my @ro   = map { 1000 * ($_->{t1} - $_->{t0}) }
           grep { $_->{kind} eq 'redis' } @faults;
my @nsub = grep { $_->{numsub} < @EDGES && !$_->{ext} } @commits;
my $alerts = sum(0, map { scalar @{ $alerts{$_} || [] } } keys %alerts);
my $epoch_gaps = 0;
for my $i (1 .. $#commits) {
    my ($p, $c) = @commits[$i - 1, $i];
    my $want = $c->{life} != $p->{life} ? 1 : $p->{epoch} + 1;
    $epoch_gaps++ if $c->{epoch} != $want;
}

my $head = `git -C '$ROOT' describe --always --dirty 2>/dev/null` || '?';
chomp $head;
my @r;
push @r, "# make soak: results", '',
    sprintf('%s; SOAK_S=%d, seed %d; driver %.0f s, load %.0f s; tree'
            . ' %s.', scalar(gmtime($T0)) . ' UTC', $S, $SEED, $T1 - $T0,
            $T2 - $T0, $head),
    '', '## Invariants', '',
    '| invariant | measured | must be |', '|---|---:|---:|',
    "| app answers while the flag was on, after the window | $n{app_on} | 0 |",
    "| maintenance answers while off, after the window | $n{maint_off} | 0 |",
    "| [alert]/[crit]/[emerg] other than the killed workers | $alerts | 0 |",
    sprintf('| audit entries (XLEN, summed over %d data losses) | %d | %d'
            . ' (changes) |', scalar @audit_lost, $audit_total,
            scalar @commits),
    "| epochs not +1 (or 1 after a loss) | $epoch_gaps | 0 |",
    sprintf('| migctl sanitizer reports | %d | 0 |', scalar @san),
    sprintf('| anomalies (see below) | %d | 0 |', scalar @anomalies),
    '', '## Faults', '',
    sprintf('- toggles: %d scheduled, %d committed, %d failed (%s); plus'
            . ' the initial "off"', $N_TOGGLE, $n_ok, $n_fail,
            join(', ', map { my $rc = $_; sprintf('exit %d: %d', $rc,
                 scalar grep { $_->{rc} == $rc } @fails) }
                 sort { $a <=> $b } keys %{{ map { $_->{rc} => 1 } @fails }})
            || 'none'),
    sprintf('- migctl per change: median %.0f ms, p99 %.0f ms, max %.0f ms',
            pct(50, @cms), pct(99, @cms), pct(100, @cms)),
    sprintf('- Redis restarts: %d (%d without data); outage median %.0f ms,'
            . ' max %.0f ms', $n_restart, $n_lost, pct(50, @ro),
            pct(100, @ro)),
    sprintf('- nginx reloads: %d (HUP to new workers up, old gone: median'
            . ' %.0f ms, max %.0f ms)', $n_reload, pct(50, @rl),
            pct(100, @rl)),
    sprintf('- worker 0 killed (SIGKILL): %d', $n_kill),
    '', '## Requests', '',
    sprintf('- access logs: %d responses: app %d, maintenance %d, other %d%s',
            $n{total}, $n{app}, $n{maint}, $n{other},
            %other ? ' (' . join(', ', map { "$_: $other{$_}" }
                                 sort keys %other) . ')' : ''),
    sprintf('- judged (begun after a window, ended before the next change):'
            . ' %d; in a window: %d; before the first change: %d',
            $n{judged}, $n{window}, $n{early}),
    sprintf('- access log lines whose $maintenance differs from the'
            . ' answer served: %d (the variables keep the gate\'s'
            . ' decision)', $n{logvar}),
    '- judged per server: ' . join(', ', map { "$_ $judged{$_}" }
                                   sort keys %judged),
    sprintf('- of the judged, answered in the next change\'s mode and'
            . ' logged under its epoch, not counted (nginx\'s $msec is'
            . ' cached per event loop turn: older than the decision): %d',
            $n{straddle}),
    map({ sprintf('- wrk %s: %d requests, %d non-2xx, socket errors %s',
                  $_, $wrk{$_}{req}, $wrk{$_}{non2xx}, $wrk{$_}{detail}) }
        sort keys %wrk),
    '', '## Propagation', '',
    sprintf('- window: %.0f ms after migctl returned (%d changes); near a'
            . ' fault: the fault\'s end + %.0f ms (%d changes)',
            1000 * $W_PUB, scalar @base, 1000 * $W_EXT, scalar @ext),
    sprintf('- the last answer of the old mode begun after the commit'
            . ' (Redis\'s clock: the audit entry\'s id), per change:'
            . ' p50 %.1f ms, p99 %.1f ms, max %.1f ms; near a fault:'
            . ' p50 %.1f ms, p99 %.1f ms, max %.1f ms (changes without a'
            . ' commit time: %d)',
            (map { 1000 * $_ } pct(50, @base), pct(99, @base),
             pct(100, @base), pct(50, @ext), pct(99, @ext), pct(100, @ext)),
            scalar grep { !defined $_->{c} } @commits),
    sprintf('- the canary (a change behind the timeline\'s back, at the'
            . ' end): %d answers counted against it (must be > 0)',
            $n{canary}),
    sprintf('- changes made while fewer than %d subscribers were on'
            . ' migctl:events, outside any fault window: %d',
            scalar @EDGES, scalar @nsub),
    '', '## Workers (kB: VmRSS / RssAnon, age)', '',
    '| edge | start | end |', '|---|---|---|';
sub fmt_rss {
    my ($l) = @_;
    return join('; ', map { sprintf('%d: %d / %d, %.0f s', $_->{pid},
                                    $_->{rss}, $_->{anon}, $_->{age}) }
                grep { $_ } @$l);
}
for my $k (@EDGES, map { "$_ master" } @EDGES) {
    my ($a, $b) = map { ref $_ eq 'ARRAY' ? $_ : [$_] }
                  $rss_start{$k}, $rss_end{$k};
    push @r, "| $k | " . fmt_rss($a) . ' | ' . fmt_rss($b) . ' |';
}
push @r, '', '## Edges at the end', '';
for my $e (@EDGES) {
    my $c = $st{$e} ? $st{$e}{counters} : {};
    push @r, sprintf('- %s: redis %s, %s; counters: %s; log: %s', $e,
                     $st{$e} && $st{$e}{redis}{up} ? 'up' : 'down',
                     $st{$e} ? "mode $st{$e}{scopes}{default}{mode} epoch"
                               . " $st{$e}{scopes}{default}{epoch}" : '?',
                     join(', ', map { "$_ $c->{$_}" } sort keys %$c),
                     join(', ', map { (my $k = $_) =~ s/^$e //;
                                      "$k $lines{$_}" }
                          grep { /^$e / } sort keys %lines));
}
if (@viol) {
    push @r, '', '## Violations (first 20)', '', map { "    $_" } @viol;
}
if ($alerts) {
    push @r, '', '## Alerts', '',
        map { my $e = $_; map { "    $e: $_" } @{ $alerts{$e} } }
        sort keys %alerts;
}
if (@anomalies || @san) {
    push @r, '', '## Anomalies', '', map({ "- $_" } @anomalies),
        map { "- migctl: $_" } @san[0 .. min(4, $#san)];
}

my $report = join("\n", @r) . "\n";
$t->write_file("$OUT/results.md", $report);
$t->write_file("$OUT/timeline.tsv", join("\n", @timeline) . "\n");
$t->write_file("$OUT/changes.tsv", join('', "# times relative to the"
    . " start, s: migctl began, returned; Redis's commit; window end;"
    . " next change; stale: the last old-mode answer after the commit\n",
    map { my $c = $_; join("\t", $c->{mode}, $c->{epoch}, $c->{life},
          (map { defined $c->{$_} ? rel($c->{$_}) : '-' } qw(s e c a b)),
          $c->{ext} ? 'near-fault' : 'clean',
          sprintf('%.1f ms', 1000 * $c->{stale})) . "\n" } @commits));
for my $e (@EDGES) {
    copy($t->dir . "/$e/error.log", "$OUT/$e.error.log");
    copy($t->dir . "/$e/access.log", "$OUT/$e.access.log") if @viol;
}
print $report;

# --- the verdict --------------------------------------------------------

is($n{app_on}, 0, 'no app answer while the flag was on, after the window');
is($n{maint_off}, 0, 'no maintenance answer while off, after the window');
is($alerts, 0, 'no [alert], [crit] or [emerg] but the killed workers\'');
is($audit_total, scalar @commits, 'audit entries = changes committed');
is($epoch_gaps, 0, 'every change took the next epoch');
is($n{logvar}, 0, 'every log line\'s $maintenance is the answer served');
is(scalar @san, 0, 'migctl: no sanitizer report');
is(scalar @anomalies, 0, 'no anomaly') or diag(join "\n", @anomalies);
cmp_ok($n{judged}, '>', 0, 'responses were judged');
ok($canary_seen, 'the canary change reached every gated server');
cmp_ok($n{canary}, '>', 0, 'the attribution counts the canary\'s answers'
       . ' as violations');
is($n_restart, $N_RESTART, "Redis restarted $N_RESTART times");
is($n_lost, $N_LOST, "$N_LOST of them without the data");
is($n_reload, $N_RELOAD, "nginx reloaded $N_RELOAD times");
is($n_kill, $N_KILL, "worker 0 killed $N_KILL times");
for my $e (@EDGES) {
    my $s = max(map { $_->{anon} } @{ $rss_start{$e} || [] }) // 0;
    my $x = max(map { $_->{anon} } @{ $rss_end{$e} || [] }) // 0;
    cmp_ok($x, '<=', max($s * 1.25, $s + 2048),
           "$e: worker RssAnon at the end ($x kB) within noise of the"
           . " start ($s kB)");
}

done_testing;
