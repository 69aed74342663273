#!/usr/bin/perl

# run_lock.t: the runner lock and lock safety of migctl run, for real:
# two runs at once (one refused at once, naming the first; --wait-lock
# gets it after), migctl SIGKILLed during a run (the command stops, the
# lock is free), and a migration blocked by a long transaction retried
# under --lock-timeout while a concurrent reader never waits long.

use strict;
use warnings;

use lib 't/lib';
use MigTest;
use Test::More;
use JSON::PP;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);

my $t = MigTest->new;
$t->start_pg('pg');
my $rport = $t->start_redis('r');
my %pg = $t->pg_env('pg');
my $json = JSON::PP->new;
my $ROOT = $t->root;
my $MANAGE = "$ROOT/t/django/manage.py";
my $RUNS = $t->dir . '/runs';
my $BIN = $ENV{MIGCTL} || "$ROOT/build/migctl";
my $KEY = 120299473564780;             # 0x6d696763746c

my $conf = $t->write_file('migctl.conf', <<"EOF");
redis = { host = "127.0.0.1"; port = $rport; };
prefix = "rl";
runs = { dir = "$RUNS"; };
EOF

$t->psql('pg', 'CREATE DATABASE rl', db => 'postgres');
my %e = (%pg, PGDATABASE => 'rl', MIGCTL_CONFIG => $conf,
         MIGCTL_ACTOR => 'ci', PYTHONDONTWRITEBYTECODE => 1,
         ASAN_OPTIONS => 'detect_leaks=1:abort_on_error=0');

my @bg;
END { for (@bg) { kill 'KILL', $_; waitpid($_, 0) } }

sub slurp { return $t->read_file($_[0]) // '' }
sub sql { return $t->psql('pg', $_[0], db => 'rl') }

# migctl in the background: pid, and files with its stdout and stderr
sub spawn {
    my ($tag, @args) = @_;
    my %o = (env => { MIGTEST_APPS => 'locky' });
    my $out = $t->dir . "/$tag.out";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $ENV{$_} = $e{$_} for keys %e;
        $ENV{$_} = $o{env}{$_} for keys %{ $o{env} || {} };
        chdir "$ROOT/t/django";
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out or POSIX::_exit(1);
        open STDERR, '>', "$out.err" or POSIX::_exit(1);
        exec($BIN, @args) or POSIX::_exit(127);
    }
    push @bg, $pid;
    return { pid => $pid, out => $out, err => "$out.err" };
}

sub reap {
    my ($p, $secs) = @_;
    my $end = time + ($secs // 60);
    while (time < $end) {
        my $w = waitpid($p->{pid}, WNOHANG);
        if ($w == $p->{pid}) {
            @bg = grep { $_ != $p->{pid} } @bg;
            return $? & 127 ? 128 + ($? & 127) : $? >> 8;
        }
        sleep 0.02;
    }
    return -1;
}

sub holder_pid {
    return sql("SELECT coalesce(max(pid), 0) FROM pg_locks WHERE locktype = 'advisory' "
               . "AND granted AND classid = " . ($KEY >> 32)
               . " AND objid = " . ($KEY & 0xffffffff) . " AND objsubid = 1");
}

sub children {
    my ($ppid) = @_;
    my @k;
    for my $s (glob '/proc/[0-9]*/stat') {
        my $l = slurp($s);
        push @k, $1 if $l =~ /^(\d+) \(.*\) \S (\d+)/s && $2 == $ppid;
    }
    return @k;
}

my $SLEEP = ['/usr/bin/python3', '-c',
             'import time; print("working", flush=True); time.sleep(3)'];

# --- item 3: two runs started together -----------------------------------

{
    my @p = map { spawn("two$_", 'run', '--', @$SLEEP) } 1 .. 2;
    my $t0 = time;
    my (%rc, %at);
    while (time - $t0 < 30 && keys %rc < 2) {
        for my $i (0, 1) {
            next if exists $rc{$i};
            my $w = waitpid($p[$i]{pid}, WNOHANG);
            next unless $w == $p[$i]{pid};
            $rc{$i} = $? >> 8;
            $at{$i} = time - $t0;
        }
        sleep 0.01;
    }
    my @refused = grep { ($rc{$_} // -1) == 4 } 0, 1;
    my @ran = grep { ($rc{$_} // -1) == 0 } 0, 1;
    is(scalar @refused, 1, 'two at once: one refused with exit 4');
    is(scalar @ran, 1, 'two at once: the other ran, exit 0');
    my $r = $refused[0] // 0;
    my $w = $ran[0] // 1;
    ok(defined $at{$r} && $at{$r} < 1.0,
       sprintf('two at once: refused within 1 s (%.2f s)', $at{$r} // -1));
    ok(defined $at{$w} && $at{$w} >= 3, 'two at once: the runner ran its 3 s');
    my $err = slurp($p[$r]{err});
    like($err, qr/runner lock held by pid \d+ \(client 127\.0\.0\.1, application "migctl run \/usr\/bin\/python3 -c .*", user postgres, since \d{4}-\d\d-\d\dT[\d:]+Z, \d+ s\)/,
         'refused: names pid, client, application, user and since');
    like($err, qr/: run \S+-$p[$w]{pid} by ci: \/usr\/bin\/python3 -c 'import time; print\("working", flush=True\); time\.sleep\(3\)'$/m,
         'refused: the first runner\'s full command line from its audit entry');
    like($err, qr/^migctl: run: another migration runner holds the lock: nothing was run/m,
         'refused: says nothing was run');
    unlike(slurp($p[$r]{out}), qr/working/, 'refused: its command did not run');
    @bg = ();
    my $a = $t->redis('r', 'XRANGE', 'rl:audit', '-', '+');
    my @res = map { { @{ $_->[1] } }->{result} } @$a;
    is_deeply([ sort @res ], [qw(ok refused started)], 'audit: started, refused, ok');
}

# --- item 3: --wait-lock gets the lock once the first ends ----------------

{
    my $first = spawn('wl1', 'run', '--', @$SLEEP);
    ok($t->wait_for(sub { slurp($first->{out}) =~ /working/ }, 20), 'wait-lock: first runs');
    my $t0 = time;
    my $second = spawn('wl2', 'run', '--wait-lock', '30s', '--', '/usr/bin/python3', '-c',
                       'import time; print("second at %.3f" % time.time(), flush=True)');
    is(reap($first), 0, 'wait-lock: first exit 0');
    my $first_end = time;
    is(reap($second), 0, 'wait-lock: second exit 0 after waiting');
    my ($at) = slurp($second->{out}) =~ /second at ([\d.]+)/;
    ok($at && $at >= $first_end - 0.5, 'wait-lock: the second command ran after the first ended');
    like(slurp($second->{err}), qr/runner lock waiting: held by pid \d+ .*: run \S+ by ci: /,
         'wait-lock: says who holds it while waiting');

    # --wait-lock that runs out: exit 4
    my $third = spawn('wl3', 'run', '--', @$SLEEP);
    ok($t->wait_for(sub { slurp($third->{out}) =~ /working/ }, 20), 'wait-lock timeout: holder runs');
    my $r = $t->migctl({ env => \%e }, 'run', '--wait-lock', '1s', '--', 'touch', $t->dir . '/wl4');
    is($r->{rc}, 4, 'wait-lock 1s: exit 4 when still held');
    like($r->{err}, qr/still held after --wait-lock/, 'wait-lock 1s: says so');
    ok(!-e $t->dir . '/wl4', 'wait-lock 1s: nothing run');
    is(reap($third), 0, 'holder exit 0');
}

# --- item 4: migctl SIGKILLed during a run ---------------------------------

{
    my $p = spawn('kill', 'run', '--', '/usr/bin/python3', '-c',
                  'import time; print("up", flush=True); time.sleep(60)');
    ok($t->wait_for(sub { slurp($p->{out}) =~ /up/ }, 20), 'kill: the command runs');
    my @all = children($p->{pid});
    my @kids = grep { $t->process_title($_) =~ m{^/usr/bin/python3} } @all;
    my @watch = grep { $t->process_title($_) !~ m{^/usr/bin/python3} } @all;
    is(scalar @kids, 1, 'kill: one child runs the command');
    is(scalar @watch, 1, 'kill: and one watcher');
    ok(holder_pid() > 0, 'kill: the lock is held');
    kill 'KILL', $p->{pid};
    my $t0 = time;
    reap($p, 5);
    ok($t->wait_gone($kids[0], 1), sprintf('kill: the command stopped (%.2f s)', time - $t0));
    ok($t->wait_gone($watch[0], 1), 'kill: the watcher is gone too');
    ok($t->wait_for(sub { holder_pid() == 0 }, 1),
       sprintf('kill: the lock is free within a second (%.2f s)', time - $t0));
    my $r = $t->migctl({ env => \%e }, 'run', '--', 'true');
    is($r->{rc}, 0, 'kill: the next run gets the lock');
}

# --- the same through a wrapper that forks: the grandchild stops too --------

{
    my $mark = $t->dir . '/gc.pid';
    my $p = spawn('killwrap', 'run', '--', 'sh', '-c',
                  '/usr/bin/python3 -c \'import os, time; open("' . $mark
                  . '", "w").write(str(os.getpid())); print("up", flush=True); '
                  . 'time.sleep(60)\'; echo wrapper-after');
    ok($t->wait_for(sub { slurp($p->{out}) =~ /up/ }, 20), 'wrapper: the command runs');
    my $gc = slurp($mark);
    ok($gc && MigTest::pid_alive($gc), "wrapper: the grandchild ($gc) runs");
    my @kids = children($p->{pid});
    ok(@kids && !grep({ $_ == $gc } @kids), 'wrapper: it is not migctl\'s direct child');
    my $wrapper = $kids[0];
    kill 'KILL', $p->{pid};
    my $t0 = time;
    reap($p, 5);
    ok($t->wait_gone($gc, 1), sprintf('wrapper: the grandchild stopped (%.2f s)', time - $t0));
    ok($t->wait_for(sub { holder_pid() == 0 }, 1), 'wrapper: the lock is free');
}

# --- idle_session_timeout set by the DBA does not end the lock's session ----

{
    sql("ALTER DATABASE rl SET idle_session_timeout = '1s'");
    my $p = spawn('idle', 'run', '--', 'sh', '-c', 'echo up; sleep 3');
    ok($t->wait_for(sub { slurp($p->{out}) =~ /up/ }, 20), 'idle: the command runs');
    is(reap($p, 30), 0, 'idle: exit 0 after 3 s idle on the lock session');
    unlike(slurp($p->{err}), qr/LOST/, 'idle: the lock was never lost');
    sql("ALTER DATABASE rl RESET idle_session_timeout");
}

# --- the lock's session terminated mid-run: said, recorded, no retry --------

{
    my $p = spawn('lost', 'run', '--lock-timeout', '1s', '--retries', '3', '--',
                  'sh', '-c', 'echo up; sleep 3; echo "psycopg2.errors.LockNotAvailable: '
                  . 'canceling statement due to lock timeout" >&2; exit 1');
    ok($t->wait_for(sub { slurp($p->{out}) =~ /up/ }, 20), 'lost: the command runs');
    my $hp = holder_pid();
    ok($hp > 0, 'lost: the lock is held');
    sql("SELECT pg_terminate_backend($hp)");
    is(reap($p, 30), 5, 'lost: the command still ends, exit 5');
    like(slurp($p->{err}), qr/the session holding the runner lock ended .* the lock is LOST/,
         'lost: said loudly');
    my ($d) = reverse sort glob("$RUNS/*");
    my $res = eval { $json->decode(slurp("$d/result.json")) } // {};
    is($res->{lock_lost}, JSON::PP::true, 'lost: recorded in result.json');
    is(scalar @{ $res->{attempts} || [] }, 1, 'lost: a lock timeout is not retried without the lock');
}

# --- item 5: a migration blocked by a long transaction ----------------------

{
    my %dj = (%e, MIGTEST_APPS => 'locky');
    is($t->django({ env => \%dj }, 'django', 'migrate', 'locky', '0001')->{rc}, 0,
       'locky: 0001 applies');
    sql("INSERT INTO locky_item (name) SELECT 'n' || g FROM generate_series(1, 100) g");

    # the long transaction: a reader that keeps its AccessShareLock
    my $holder = $t->pg_session('pg', db => 'rl', app => 'longtx');
    $holder->send("BEGIN; SELECT count(*) FROM locky_item; SELECT 'holding';");
    ok($t->wait_for(sub { $holder->output =~ /holding/ }, 10), 'long transaction open');

    # the site: reads of the table, each timed by psql
    my $reads = $t->dir . '/reads.sql';
    $t->write_file($reads, "\\timing on\n"
        . ("SELECT count(*) FROM locky_item;\nSELECT pg_sleep(0.05);\n" x 400));
    my $reader = fork // die;
    if ($reader == 0) {
        $ENV{$_} = $e{$_} for keys %e;
        $ENV{PGAPPNAME} = 'site';
        open STDOUT, '>', $t->dir . '/reads.out';
        open STDERR, '>&', \*STDOUT;
        exec('psql', '-X', '-q', '-A', '-t', '-f', $reads) or POSIX::_exit(127);
    }
    push @bg, $reader;

    my $run = spawn('locky', 'run', '--lock-timeout', '1s', '--retries', '3',
                    '--', '/usr/bin/python3', $MANAGE, 'migrate', 'locky', '--noinput');
    # two failed attempts seen, then the transaction ends
    my $log;
    ok($t->wait_for(sub {
        my ($d) = reverse sort glob("$RUNS/*");
        $log = $d ? "$d/output.log" : undef;
        $log && (() = slurp($log) =~ /--- attempt \d+: exit 1$/mg) >= 2;
    }, 60), 'two attempts failed on the lock');
    $holder->send("COMMIT;");
    $holder->close;
    is(reap($run, 60), 0, 'the retry applies once the transaction ended: exit 0')
        or diag(slurp($run->{err}));
    waitpid($reader, 0);
    @bg = grep { $_ != $reader } @bg;

    my ($d) = reverse sort glob("$RUNS/*");
    my $res = eval { $json->decode(slurp("$d/result.json")) } // {};
    my @att = @{ $res->{attempts} || [] };
    ok(@att >= 3, scalar(@att) . ' attempts');
    my @failed = grep { ($_->{exit} // 0) != 0 } @att;
    ok(@failed >= 2 && !grep({ $_->{retry} !~ /^yes: lock timeout/ } @failed),
       'every failed attempt was a lock timeout on an unchanged database');
    my $max_fail = 0;
    $max_fail < $_->{duration_ms} and $max_fail = $_->{duration_ms} for @failed;
    ok($max_fail < 15000, "each failed attempt failed fast (longest $max_fail ms, lock_timeout 1 s + Django start)");
    is($att[-1]{exit}, 0, 'the last attempt exit 0');
    like(slurp("$d/output.log"), qr/canceling statement due to lock timeout/, 'output: the lock timeout');
    like(slurp($run->{err}), qr/lock timeout \(55P03\) on an unchanged database: retry 1 of 3 in 1\.0 s/,
         'says why it retries');
    is(sql("SELECT count(*) FROM django_migrations WHERE app = 'locky' AND name = '0002_item_flag'"),
       1, 'recorded once');
    is(sql("SELECT count(*) FROM pg_attribute WHERE attrelid = 'locky_item'::regclass "
           . "AND attname = 'flag'"), 1, 'the column is there');

    my @ms = slurp($t->dir . '/reads.out') =~ /^Time: ([\d.]+) ms/mg;
    my $max = 0;
    $max < $_ and $max = $_ for @ms;
    ok(@ms > 100, scalar(@ms) . ' timed statements from the concurrent reader');
    ok($max < 1600, sprintf('the reader never waited more than about 1 s (longest %.0f ms)', $max));
    diag(sprintf('reader: %d statements, longest %.0f ms; attempts %d, longest failed %d ms',
                 scalar @ms, $max, scalar @att, $max_fail));
}

$t->check_pg_log('pg');
# (the session this test terminated on purpose excepted)
my @bad = grep { /^migctl run .*(ERROR|FATAL):/ && !/terminating connection due to administrator command/ }
          split /\n/, $t->read_file($t->dir . '/pg/postgres.log') // '';
ok(!@bad, 'postgres log: no error from the runner session') or diag(join "\n", @bad);

done_testing();
