#!/usr/bin/perl
# maintenance_cli.t: migctl maintenance on/off/status against a real
# redis-server: the state hash, publish, the audit stream (one entry per
# change, 100 toggles), the health gate (refused / forced), and SIGKILL of
# migctl at random points of a change never leaving a half-written state.

use strict;
use warnings;

use lib 't/lib';
use MigTest;
use Test::More;
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);

my $t = MigTest->new;
my $rport = $t->start_redis('r');

my $conf = $t->write_file('migctl.conf', <<"EOF");
redis = { host = "127.0.0.1"; port = $rport; timeout_ms = 2000; };
prefix = "mt";
health = { checks = ( { name = "app"; command = "true"; } ); };
EOF
my $nochecks = $t->write_file('nochecks.conf', <<"EOF");
redis = { host = "127.0.0.1"; port = $rport; timeout_ms = 2000; };
prefix = "mt";
EOF

my %env = (MIGCTL_CONFIG => $conf, MIGCTL_ACTOR => 'alice');
my %nenv = (%env, MIGCTL_CONFIG => $nochecks);

sub mig { $t->migctl({ env => \%env }, @_) }

sub state {
    my $a = $t->redis('r', 'HGETALL', "mt:state:" . ($_[0] // 'default'));
    return { @$a };
}

sub audit {                        # every entry, oldest first
    my $a = $t->redis('r', 'XRANGE', 'mt:audit', '-', '+');
    return [ map { { id => $_->[0], @{ $_->[1] } } } @$a ];
}

# --- on: the state hash, and the publish ------------------------------

my $sub = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $rport,
                                Proto => 'tcp', Timeout => 5) or die $!;
print $sub "*2\r\n\$9\r\nSUBSCRIBE\r\n\$9\r\nmt:events\r\n";
my $subbuf = '';
ok(read_until(qr/subscribe.*\r\n:1\r\n/s), 'subscribed to mt:events');

my $before = int(time);
my $r = mig(qw(maintenance on --reason), 'schema half applied',
            qw(--release abc123 --retry-after 90));
is($r->{rc}, 0, 'on: exit 0') or diag($r->{err});
like($r->{out}, qr/maintenance on for scope default \(epoch 1\)/,
     'on: says scope and epoch');
is($r->{err}, '', 'on: nothing on stderr');

my $s = state();
is($s->{mode}, 'on', 'state: mode on');
is($s->{epoch}, 1, 'state: epoch 1');
is($s->{reason}, 'schema half applied', 'state: reason');
is($s->{release}, 'abc123', 'state: release');
is($s->{retry_after}, 90, 'state: retry_after');
is($s->{actor}, 'alice', 'state: actor from $MIGCTL_ACTOR');
ok($s->{since} >= $before && $s->{since} <= time + 1, 'state: since is now');

ok(read_until(qr/mt:events\r\n\$9\r\ndefault 1\r\n/),
   'published "default 1" on mt:events');

my $a = audit();
is(scalar @$a, 1, 'audit: one entry');
is_deeply([ @{ $a->[0] }{qw(action scope mode epoch actor reason release
                            result)} ],
          [ 'on', 'default', 'on', 1, 'alice', 'schema half applied',
            'abc123', 'ok' ], 'audit: every field');

# --- status, text and JSON --------------------------------------------

$r = mig(qw(maintenance status));
is($r->{rc}, 0, 'status: exit 0 (no edges, nothing inconsistent)');
like($r->{out}, qr/scope default: ON \(epoch 1\) since \d{4}-\d\d-\d\dT/,
     'status: mode, epoch, since');
like($r->{out}, qr/reason:\s+schema half applied/, 'status: reason');
like($r->{out}, qr/release:\s+abc123/, 'status: release');
like($r->{out}, qr/actor:\s+alice/, 'status: actor');

$r = mig(qw(--json maintenance status));
is($r->{rc}, 0, 'status --json: exit 0');
my $j = eval { decode_json($r->{out}) };
ok($j, 'status --json: valid JSON') or diag($r->{out});
is($j->{mode}, 'on', 'json: mode');
is($j->{epoch}, 1, 'json: epoch');
is($j->{reason}, 'schema half applied', 'json: reason');
is($j->{release}, 'abc123', 'json: release');
is($j->{actor}, 'alice', 'json: actor');
is($j->{since}, $s->{since}, 'json: since');
is($j->{audit}[0]{action}, 'on', 'json: audit tail');

# --- off: refused with no checks; passes with one; publishes -----------

$r = $t->migctl({ env => \%nenv }, qw(maintenance off));
is($r->{rc}, 4, 'off without checks: exit 4 (nothing says the app is'
   . ' healthy)');
like($r->{err}, qr/off refused: no health check configured/,
     '... and says so');
is(state()->{mode}, 'on', '... the flag stays on');
is($t->redis('r', 'XLEN', 'mt:audit'), 2, '... the refusal is audited');

$r = mig(qw(maintenance off));
is($r->{rc}, 0, 'off with a passing check: exit 0') or diag($r->{err});
is(state()->{mode}, 'off', 'off: mode off');
is(state()->{epoch}, 2, 'off: epoch 2');
ok(read_until(qr/default 2\r\n/), 'published "default 2"');
close $sub;

# --- 100 toggles: 100 entries, epoch + 100 ----------------------------

my $e0 = state()->{epoch};
my $n0 = $t->redis('r', 'XLEN', 'mt:audit');
my $fails = 0;
for my $i (1 .. 100) {
    $r = mig('maintenance', $i % 2 ? 'on' : 'off', '--reason', "toggle $i");
    $fails++ if $r->{rc} != 0;
}
is($fails, 0, '100 toggles: every one exit 0');
is($t->redis('r', 'XLEN', 'mt:audit'), $n0 + 100,
   '100 toggles: exactly 100 more audit entries');
is(state()->{epoch}, $e0 + 100, '100 toggles: epoch 100 higher');
$a = audit();
my @tail = @$a[-100 .. -1];
is_deeply([ map { $_->{epoch} } @tail ], [ $e0 + 1 .. $e0 + 100 ],
          'audit epochs follow the changes one by one');
is($tail[-1]{reason}, 'toggle 100', 'last entry is the last toggle');

# --- the health gate ---------------------------------------------------

my $gconf = $t->write_file('gate.conf', <<"EOF");
redis = { port = $rport; timeout_ms = 2000; };
prefix = "mt";
health = {
    checks = (
        { name = "app"; command = "echo 'GET /health: 500'; exit 1"; },
        { name = "db"; command = "true"; },
        { name = "slow"; command = "sleep 30"; timeout_ms = 300; }
    );
};
EOF
my %genv = (%env, MIGCTL_CONFIG => $gconf);

$r = mig(qw(maintenance on --reason gate));
is($r->{rc}, 0, 'on before the gate test');
my $eg = state()->{epoch};
my $ng = $t->redis('r', 'XLEN', 'mt:audit');

my $t0 = time;
$r = $t->migctl({ env => \%genv }, qw(maintenance off));
my $took = time - $t0;
is($r->{rc}, 4, 'off with failing checks: exit 4');
like($r->{err}, qr/health check app failed: exit 1: GET \/health: 500/,
     'names the failed check and its output');
like($r->{err}, qr/health check slow failed: timed out after 300 ms/,
     'a hung check is killed at its timeout');
unlike($r->{err}, qr/check db failed/, 'the passing check is not listed');
like($r->{err}, qr/^migctl: maintenance: off refused: .*--force --reason/m,
     'says what to do');
ok($took < 10, sprintf('refused within bounds (%.1f s)', $took));
is(state()->{mode}, 'on', 'refused: flag still on');
is(state()->{epoch}, $eg, 'refused: epoch unchanged');
is($t->redis('r', 'XLEN', 'mt:audit'), $ng + 1, 'refused: one audit entry');
$a = audit();
is_deeply([ @{ $a->[-1] }{qw(action mode epoch result actor)} ],
          [ 'off', 'on', $eg, 'refused', 'alice' ],
          'audit says refused, with the state that stays');

$r = $t->migctl({ env => \%genv }, qw(maintenance off --force));
is($r->{rc}, 2, '--force without --reason: exit 2');
is($t->redis('r', 'XLEN', 'mt:audit'), $ng + 1, '... nothing written');

$r = $t->migctl({ env => \%genv }, qw(--json maintenance off --force
                                      --reason), 'app checked by hand');
is($r->{rc}, 0, 'off --force --reason: exit 0') or diag($r->{err});
is(state()->{mode}, 'off', 'forced: flag off');
is(state()->{epoch}, $eg + 1, 'forced: epoch + 1');
$a = audit();
is_deeply([ @{ $a->[-1] }{qw(action mode result reason)} ],
          [ 'off', 'off', 'forced', 'app checked by hand' ],
          'audit says forced, with the reason');
$j = eval { decode_json($r->{out}) } || {};
is($j->{result}, 'forced', 'json: result forced');
is(scalar(grep { !$_->{ok} } @{ $j->{health}{checks} || [] }), 2,
   'json: the two failed checks');

# the same runner as a command
$r = $t->migctl({ env => \%genv }, qw(health));
is($r->{rc}, 1, 'health with a failing check: exit 1');
like($r->{out}, qr/^FAIL app\s+\d+ ms  exit 1: GET \/health: 500$/m,
     'health: the failed check and its output');
like($r->{out}, qr/^ok\s+db\s/m, 'health: the passing check');
$r = $t->migctl({ env => \%genv }, qw(--json health));
$j = eval { decode_json($r->{out}) } || {};
is_deeply([ map { $_->{ok} ? 1 : 0 } @{ $j->{checks} || [] } ], [0, 1, 0],
          'health --json: each check');
$r = $t->migctl({ env => \%nenv }, qw(health));
is($r->{rc}, 0, 'health with no checks: exit 0');
like($r->{out}, qr/no health checks configured/, '... and says so');

# --- scopes are separate ----------------------------------------------

$r = mig(qw(--scope api maintenance on));
is($r->{rc}, 0, '--scope api on');
is(state('api')->{mode}, 'on', 'api scope on');
is(state()->{mode}, 'off', 'default scope untouched');

# --- a state written by hand that the codec rejects --------------------

$t->redis('r', 'HSET', 'mt:state:bad', 'mode', 'maybe', 'epoch', '3');
$r = mig(qw(--scope bad maintenance status));
is($r->{rc}, 1, 'status of a malformed state: exit 1');
like($r->{out}, qr/malformed/, 'status says malformed');

# --- edge flags, with edges written by hand ----------------------------

# heartbeats are written once, by hand: under valgrind the runs below take
# minutes, so "live" must last that long there
my $live = $ENV{MIGCTL_WRAP} ? 600000 : 5000;
my $fconf = $t->write_file('fx.conf', <<"EOF");
redis = { port = $rport; };
prefix = "fx";
edge_live_ms = $live;
EOF
my %fenv = (%env, MIGCTL_CONFIG => $fconf);
$r = $t->migctl({ env => \%fenv }, qw(maintenance on --reason fx));
is($r->{rc}, 0, 'fx: on');
my $fe = $t->redis('r', 'HGET', 'fx:state:default', 'epoch');
my $now = int(time * 1000);
$t->redis('r', 'ZADD', 'fx:edges', $now, 'e-ok', $now, 'e-behind',
          $now - 4 * $live, 'e-stale', $now - 4 * $live, 'e-gone', $now,
          'e-other',
          $now, 'bad:id');
$t->redis('r', 'HSET', 'fx:edge:e-ok', 'default', "on:$fe", 'pid', 11,
          'version', '0.1.0');
$t->redis('r', 'HSET', 'fx:edge:e-behind', 'default', 'off:' . ($fe - 1));
$t->redis('r', 'HSET', 'fx:edge:e-stale', 'default', "on:$fe");
$t->redis('r', 'HSET', 'fx:edge:e-other', 'api', 'on:3');
$r = $t->migctl({ env => \%fenv }, qw(--json maintenance status));
is($r->{rc}, 1, 'status with an edge behind and one stale: exit 1');
$j = eval { decode_json($r->{out}) } || {};
my %flag = map { $_->{node} => $_->{status} } @{ $j->{edges} || [] };
is_deeply(\%flag, { 'e-ok' => 'ok', 'e-behind' => 'behind',
                    'e-stale' => 'stale', 'e-gone' => 'gone',
                    'e-other' => 'other_scopes' },
          'flags: ok, behind, stale, gone, other scopes; bad id skipped');
is_deeply([ sort map { $_->{problem} } @{ $j->{problems} } ],
          [ 'edges_behind', 'edges_stale' ], 'problems listed');
$r = $t->migctl({ env => \%fenv }, qw(maintenance status));
like($r->{out}, qr/^\s+e-behind\s+off:\d+\s+[\d.]+ s\s+BEHIND$/m,
     'text: BEHIND');
my ($stale_age) = $r->{out} =~ /^\s+e-stale\s+on:$fe\s+([\d.]+) s\s+STALE/m;
ok(defined $stale_age && $stale_age >= 4 * $live / 1000,
   'text: STALE with its age (' . ($stale_age // '?') . ' s)');

$r = $t->migctl({ env => \%fenv }, qw(maintenance on --wait=1));
is($r->{rc}, 1, 'on --wait=1 with edges that never acknowledge: exit 1');
like($r->{err}, qr{0/2 live edges acknowledged}, 'progress 0/2');
my ($named) = $r->{err} =~ /after 1 s: (.*): check nginx/;
like($named // '', qr/e-ok \(serving on:$fe, heartbeat [\d.]+ s ago\)/,
     'names e-ok and what it serves');
like($named // '', qr/e-behind \(serving off:/, 'names e-behind');
unlike($named // '', qr/e-stale|e-gone|e-other/,
       'names no edge that is not live or not gating the scope');
$r = $t->migctl({ env => \%fenv }, qw(maintenance on --wait 1 --reason sp));
is($r->{rc}, 1, 'on --wait 1 (space-separated) is --wait=1: exit 1');
like($r->{err}, qr/after 1 s: .*e-ok/, '... the same wait, e-ok named');
is($t->redis('r', 'HGET', 'fx:state:default', 'reason'), 'sp',
   '... and the next option still read');

$t->redis('r', 'DEL', 'fx:state:default');
$r = $t->migctl({ env => \%fenv }, qw(--json maintenance status));
$j = eval { decode_json($r->{out}) } || {};
is($j->{state}, 'missing', 'state deleted: missing');
is((grep { $_->{node} eq 'e-ok' } @{ $j->{edges} })[0]{status}, 'lost',
   'an edge serving a state Redis no longer has: lost');
ok((grep { $_->{problem} eq 'redis_lost_data' } @{ $j->{problems} }),
   'problem: redis_lost_data');
$r = $t->migctl({ env => \%fenv }, qw(maintenance status));
like($r->{out}, qr/Redis lost its data: .*re-assert it with migctl maintenance on or off/,
     'text: says what to do');

# --- SIGKILL at random points of a change ------------------------------

SKIP: {
skip 'under valgrind: a SIGKILLed process is not checked, and the kill test'
     . ' runs in the plain and ASan runs', 1 if $ENV{MIGCTL_WRAP};

my $bin = $ENV{MIGCTL} || $t->root . '/build/migctl';
my @wrap = $ENV{MIGCTL_WRAP} ? split(' ', $ENV{MIGCTL_WRAP}) : ();
my ($killed, $bad, $rounds) = (0, 0, 60);
srand(42);

# kill points spread over a whole run: measure how long one takes here
# (ASan and valgrind are slower)
my $t1 = time;
mig(qw(--scope killtime maintenance on)) for 1 .. 5;
my $span = 1.3 * (time - $t1) / 5;
diag(sprintf('one change takes %.1f ms here', $span / 1.3 * 1000));
for my $i (1 .. $rounds) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $ENV{$_} = $env{$_} for keys %env;
        $ENV{ASAN_OPTIONS} = 'detect_leaks=0';
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', '/dev/null';
        { exec @wrap, $bin, '--scope', 'kill', 'maintenance',
               $i % 2 ? 'on' : 'off', '--reason', "kill $i",
               '--release', "r$i" }
        POSIX::_exit(127);
    }
    # a random point of the run, not a synchronisation
    sleep(rand($span));
    $killed++ if kill('KILL', $pid);
    waitpid($pid, 0);

    my $st = state('kill');
    my $ents = [ grep { $_->{scope} eq 'kill' } @{ audit() } ];
    my $last = $ents->[-1];
    next if !%$st && !$last;                 # killed before anything
    my $ok = $last && %$st
        && $st->{mode} eq $last->{mode} && $st->{epoch} eq $last->{epoch}
        && $st->{reason} eq $last->{reason}
        && $st->{release} eq $last->{release}
        && $st->{epoch} == scalar(@$ents)
        && 7 == grep { defined $st->{$_} }
                qw(mode epoch since retry_after reason release actor);
    unless ($ok) {
        $bad++;
        diag("round $i: state @{[ %$st ]} vs last audit "
             . join(' ', %{ $last || {} }));
    }
}
is($bad, 0, "SIGKILL in $rounds changes: state, epoch and last audit entry"
    . " always agree");
my $nk = scalar grep { $_->{scope} eq 'kill' } @{ audit() };
diag("kill test: $nk of $rounds changes landed, $killed kills sent");
}

# --- who acts under sudo: the person, not root --------------------------

{
    my %e = (%nenv, SUDO_USER => 'bob', LOGNAME => 'root');
    delete $e{MIGCTL_ACTOR};
    my $r = $t->migctl({ env => \%e }, qw(--scope sudo maintenance on
                                           --reason), 'sudo test');
    is($r->{rc}, 0, 'on under sudo: exit 0') or diag($r->{err});
    is(state('sudo')->{actor}, 'bob', 'under sudo: the actor is $SUDO_USER');
    my ($last) = grep { $_->{scope} eq 'sudo' } reverse @{ audit() };
    is($last && $last->{actor}, 'bob', 'and the audit entry names bob');
    $e{MIGCTL_ACTOR} = 'carol';
    $r = $t->migctl({ env => \%e }, qw(--scope sudo maintenance on
                                        --reason), 'sudo test');
    is(state('sudo')->{actor}, 'carol', '$MIGCTL_ACTOR still comes first');
}

done_testing();


sub read_until {
    my ($re) = @_;
    my $sel = IO::Select->new($sub);
    my $end = time + 5;
    while (time < $end) {
        return 1 if $subbuf =~ s/^.*?$re//s;
        next unless $sel->can_read(0.1);
        my $n = sysread($sub, $subbuf, 4096, length $subbuf);
        return 0 unless $n;
    }
    return $subbuf =~ s/^.*?$re//s;
}
