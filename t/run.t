#!/usr/bin/perl

# run.t: migctl run -- CMD against a real PostgreSQL, Redis and Django:
# usage errors change nothing; the run directory (command, env names only,
# timestamped output, exit status or signal, django_migrations before and
# after, the plan); PGOPTIONS reaching the child's sessions; signals
# forwarded; the audit entries; --maintenance-on-failure and --diagnose on
# a migration that fails; Redis down.

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
my $RUNS = $t->dir . '/var/runs';

my $conf = $t->write_file('migctl.conf', <<"EOF");
redis = { host = "127.0.0.1"; port = $rport; timeout_ms = 2000; };
prefix = "rt";
runs = { dir = "$RUNS"; };
EOF

sub new_db {
    my ($name) = @_;
    $t->psql('pg', "CREATE DATABASE $name", db => 'postgres');
    return (%pg, PGDATABASE => $name, MIGCTL_CONFIG => $conf,
            MIGCTL_ACTOR => 'deployer', PYTHONDONTWRITEBYTECODE => 1);
}

sub mc {
    my ($env, @args) = @_;
    my $r = $t->migctl({ env => $env, cwd => "$ROOT/t/django" }, @args);
    unlike($r->{err}, qr/Sanitizer|runtime error/,
           "migctl @args[0 .. ($#args < 2 ? $#args : 2)]: no sanitizer report");
    return $r;
}

sub runs { my @d = sort glob("$RUNS/*"); return @d }
sub last_run { my @d = runs(); return $d[-1] }
sub slurp { return $t->read_file($_[0]) // '' }
sub result { return eval { $json->decode(slurp("$_[0]/result.json")) } // {} }

sub audit {
    my $a = $t->redis('r', 'XRANGE', 'rt:audit', '-', '+');
    return [ map { { id => $_->[0], @{ $_->[1] } } } @$a ];
}

# --- usage errors: a clear line, exit 2, nothing run or created -------

{
    my %e = new_db('r_usage');
    my $r = mc(\%e, 'run');
    is($r->{rc}, 2, 'no command: exit 2');
    like($r->{err}, qr/^migctl: run: no command to run: .*\n\z/, 'no command: one line');
    $r = mc(\%e, 'run', '--lock-timeout', 'soon', '--', 'true');
    is($r->{rc}, 2, 'bad duration: exit 2');
    like($r->{err}, qr/--lock-timeout wants a duration/, 'bad duration: named');
    $r = mc(\%e, 'run', '--retries', '2', '--', 'true');
    is($r->{rc}, 2, '--retries without --lock-timeout: exit 2');
    $r = mc(\%e, 'run', '--runs-dir', 'relative', '--', 'true');
    is($r->{rc}, 2, 'relative --runs-dir: exit 2');
    ok(!-e $RUNS, 'usage errors created no runs directory');

    # runs { } and evidence { }: errors name the file and the line
    for (['runs = { dir = "relative"; };', qr/:1: runs\.dir must be an absolute path/],
         ['runs = { dri = "/x"; };', qr/:1: unknown setting "dri" in runs/],
         ["runs = {\n  plan_cmd = 3; };", qr/:2: plan_cmd must be a string/],
         ['evidence = { secret_files = [ "rel" ]; };', qr/:1: evidence\.secret_files\[0\] must be an absolute path/])
    {
        my $bad = $t->write_file('bad.conf', "$_->[0]\n");
        my $r = mc({ %e, MIGCTL_CONFIG => $bad }, 'run', '--', 'touch', $t->dir . '/ran');
        is($r->{rc}, 2, "bad config '$_->[0]': exit 2");
        like($r->{err}, qr/^migctl: run: \S+bad\.conf$_->[1]/, "bad config: file and line named");
    }
    my $r2 = mc({ %e, MIGCTL_CONFIG => $t->root . '/conf-examples/migctl.conf',
                  PGPORT => $t->port('closed') }, 'run', '--', 'true');
    is($r2->{rc}, 3, 'conf-examples/migctl.conf loads (then the database is unreachable)');

    my %down = (%e, PGPORT => $t->port('closed'));
    $r = mc(\%down, 'run', '--', 'touch', $t->dir . '/ran');
    is($r->{rc}, 3, 'database unreachable: exit 3');
    ok(!-e $t->dir . '/ran', 'database unreachable: the command did not run');
}

# --- a release that works: the record of the run -----------------------

{
    my %e = (new_db('r_ok'), MIGTEST_APPS => 'shop',
             FOO_SECRET => 'topsecret-value-123', PGOPTIONS => '-c work_mem=8MB');
    my $r = mc(\%e, 'run', '--lock-timeout', '2s',
               '--plan-cmd', "/usr/bin/python3 $MANAGE showmigrations --plan",
               '--', '/usr/bin/python3', $MANAGE, 'migrate', '--noinput');
    is($r->{rc}, 0, 'migrate: exit 0') or diag($r->{err});
    like($r->{out}, qr/Applying shop\.0001_initial\.\.\. OK/, 'output streamed on stdout');
    like($r->{out}, qr/^migctl: run: ok: 2 migration\(s\) applied/m, 'says what it applied');

    my $d = last_run();
    ok($d && -d $d, 'a run directory');
    is((stat($RUNS))[2] & 07777, 0700, 'runs root created 0700');
    is((stat($d))[2] & 07777, 0700, 'run directory 0700');
    is((stat("$d/output.log"))[2] & 07777, 0600, 'output.log 0600');
    like(slurp("$d/command"), qr{^/usr/bin/python3 \S+manage\.py migrate --noinput\n\z},
         'command kept');

    my $env = slurp("$d/env");
    like($env, qr/^FOO_SECRET$/m, 'env: names kept');
    like($env, qr/^PGOPTIONS$/m, 'env: PGOPTIONS named');
    unlike($env, qr/=/, 'env: no NAME=value');
    my $all = join '', map { slurp($_) } glob("$d/*");
    unlike($all, qr/topsecret-value-123/, 'no secret value in any file of the run');

    my $log = slurp("$d/output.log");
    like($log, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z out\s+Applying shop\.0002_product_price_cents\.\.\. OK$/m,
         'output.log: timestamped stdout lines');
    like($log, qr/--- attempt 1: exit 0$/m, 'output.log: the exit status');
    like(slurp("$d/plan.txt"), qr/^\[ \]  shop\.0001_initial$/m,
         'plan.txt: showmigrations --plan before the run');
    is(slurp("$d/migrations_before.tsv"), '', 'before: nothing recorded');
    like(slurp("$d/migrations_after.tsv"), qr/\tshop\t0002_product_price_cents\t/,
         'after: the rows');
    like(slurp("$d/applied.tsv"), qr/^shop\t0001_initial\t.*\nshop\t0002_product_price_cents\t/,
         'applied.tsv: what this run applied');

    my $res = result($d);
    is($res->{exit}, 0, 'result.json: exit 0');
    ok(!defined $res->{signal}, 'result.json: no signal');
    is($res->{result}, 'ok', 'result.json: ok');
    is(scalar @{ $res->{applied} || [] }, 2, 'result.json: two applied');
    is($res->{pgoptions_added}, '-c lock_timeout=2000', 'result.json: the options added');

    my @a = grep { $_->{action} eq 'run' } @{ audit() };
    is(scalar @a, 2, 'audit: start and end');
    is($a[0]{result}, 'started', 'audit: started');
    is($a[1]{result}, 'ok', 'audit: ok');
    is($a[1]{run}, $res->{id}, 'audit: the run id');
    is($a[1]{actor}, 'deployer', 'audit: the actor');
    like($a[1]{reason}, qr/manage\.py migrate --noinput$/, 'audit: the command line');
    is($a[1]{applied}, 2, 'audit: applied count');

    # a second run: nothing to apply, the before snapshot has the rows
    $r = mc(\%e, 'run', '--', '/usr/bin/python3', $MANAGE, 'migrate', '--noinput');
    is($r->{rc}, 0, 'second migrate: exit 0');
    my $d2 = last_run();
    isnt($d2, $d, 'a new run directory');
    like(slurp("$d2/migrations_before.tsv"), qr/shop\t0002/, 'before: the rows of the first run');
    is(slurp("$d2/applied.tsv"), '', 'applied: nothing');

    # maintenance status shows the last run
    $r = mc(\%e, 'maintenance', 'status');
    like($r->{out}, qr{default/run ok}, 'maintenance status shows the run');
}

# --- the Redis password variable does not reach the command --------------

{
    my $c = $t->write_file('pwenv.conf', <<"EOF");
redis = { host = "127.0.0.1"; port = $rport; password_env = "RT_REDIS_PW"; };
prefix = "rt";
runs = { dir = "$RUNS"; };
EOF
    my %e = (new_db('r_pwenv'), MIGCTL_CONFIG => $c, RT_REDIS_PW => 'unused-here');
    my $r = mc(\%e, 'run', '--', 'sh', '-c', 'echo "pw=${RT_REDIS_PW:-unset} db=$PGDATABASE"');
    like($r->{out}, qr/^pw=unset db=r_pwenv$/m, 'the command sees the database, not the Redis password');
    unlike(slurp(last_run() . '/env'), qr/RT_REDIS_PW/, 'env: not listed');
}

# --- --json: the envelope, the run inside ----------------------------------

{
    my %e = new_db('r_json');
    my $r = mc(\%e, '--json', 'run', '--', 'sh', '-c', 'echo to-stdout; exit 2');
    is($r->{rc}, 5, '--json: exit 5');
    my $j = eval { $json->decode($r->{out}) } // {};
    is($j->{command}, 'run', '--json: command is run');
    is($j->{exit}, 5, '--json: exit 5 in the envelope');
    is($j->{run}{exit}, 2, '--json: the command\'s exit 2 in run');
    is($j->{run}{result}, 'failed', '--json: result failed');
    like($r->{err}, qr/^to-stdout$/m, '--json: the command\'s stdout goes to stderr');
}

# --- the child's environment: PGOPTIONS appended, reaching the server ----

{
    my %e = (new_db('r_env'), PGOPTIONS => '-c work_mem=8MB');
    my $r = mc(\%e, 'run', '--lock-timeout', '1500ms', '--statement-timeout', '1m',
               '--', 'sh', '-c', 'echo "PGOPTIONS=$PGOPTIONS"');
    is($r->{rc}, 0, 'sh: exit 0');
    like($r->{out}, qr/^PGOPTIONS=-c work_mem=8MB -c lock_timeout=1500 -c statement_timeout=60000$/m,
         'PGOPTIONS: the old options, then ours');
    $r = mc(\%e, 'run', '--lock-timeout', '1500ms', '--statement-timeout', '1m',
            '--', 'psql', '-XAtc', 'SHOW lock_timeout; SHOW statement_timeout; SHOW work_mem');
    is($r->{rc}, 0, 'psql: exit 0');
    is($r->{out} =~ s/^migctl: .*\n//mr, "1500ms\n1min\n8MB\n",
       'the child session has lock_timeout, statement_timeout and the old option');
}

# --- exit status and signal recorded -----------------------------------

{
    my %e = new_db('r_fail');
    my $r = mc(\%e, 'run', '--', 'sh', '-c', 'echo to-out; echo to-err >&2; exit 3');
    is($r->{rc}, 5, 'failing command: exit 5');
    like($r->{err}, qr/^to-err$/m, 'stderr streamed on stderr');
    like($r->{err}, qr/the command failed \(exit 3\)/, 'says exit 3');
    my $d = last_run();
    my $res = result($d);
    is($res->{exit}, 3, 'result.json: exit 3');
    is($res->{result}, 'failed', 'result.json: failed');
    my $log = slurp("$d/output.log");
    like($log, qr/Z out to-out$/m, 'output.log: stdout line tagged');
    like($log, qr/Z err to-err$/m, 'output.log: stderr line tagged');

    $r = mc(\%e, 'run', '--', 'sh', '-c', 'kill -TERM $$');
    is($r->{rc}, 5, 'killed command: exit 5');
    $res = result(last_run());
    is($res->{signal}, 'SIGTERM', 'result.json: signal SIGTERM');
    ok(!defined $res->{exit}, 'result.json: no exit code');

    $r = mc(\%e, 'run', '--', $t->dir . '/no-such-command');
    is($r->{rc}, 5, 'missing command: exit 5');
    like($r->{err}, qr/cannot run .*no-such-command: No such file/, 'missing command: said');
    is(result(last_run())->{exit}, 127, 'missing command: exit 127 recorded');

    my @a = grep { $_->{action} eq 'run' && $_->{result} eq 'failed'
                   && $_->{db} =~ m{/r_fail$} } @{ audit() };
    is(scalar @a, 3, 'audit: three failed runs');
    is($a[1]{status}, 'signal SIGTERM', 'audit: the signal');

    # a line begun on stdout ("Applying X..." waits for its OK) is logged
    # before what stderr says next: the log keeps the order of events
    $r = mc(\%e, 'run', '--', 'sh', '-c',
            'printf "  Applying a.0001_x..."; sleep 0.3; echo boom >&2;'
            . ' sleep 0.3; printf " OK\\n"; exit 1');
    $log = slurp(last_run() . '/output.log');
    like($log, qr/out   Applying a\.0001_x\.\.\.\n\S+ err boom\n\S+ out  OK\n/,
         'output.log: the partial stdout line first, then stderr, then OK');

}

# --- --retries: only a lock timeout, only on an unchanged database ---------

{
    my %e = new_db('r_retry');
    my $lt = 'echo "psycopg2.errors.LockNotAvailable: canceling statement due to lock timeout" >&2; exit 1';
    my $r = mc(\%e, 'run', '--lock-timeout', '1s', '--retries', '2', '--', 'sh', '-c', 'exit 3');
    is($r->{rc}, 5, 'not a lock timeout: exit 5');
    my $res = result(last_run());
    is(scalar @{ $res->{attempts} }, 1, 'not a lock timeout: never retried');
    is($res->{attempts}[0]{retry}, 'no: not a lock timeout', 'not a lock timeout: said in result.json');

    $r = mc(\%e, 'run', '--lock-timeout', '1s', '--retries', '2', '--', 'sh', '-c', $lt);
    is($r->{rc}, 5, 'lock timeout every time: exit 5');
    $res = result(last_run());
    is(scalar @{ $res->{attempts} }, 3, 'lock timeout on an unchanged database: 1 + 2 retries');
    like($r->{err}, qr/retry 1 of 2 in 1\.0 s.*\n(?:.*\n)*.*retry 2 of 2 in 2\.0 s/, 'backoff 1 s, then 2 s');

    $r = mc(\%e, 'run', '--lock-timeout', '1s', '--retries', '2', '--', 'sh', '-c',
            "psql -XAtqc 'CREATE TABLE half_done (i int)'; $lt");
    is($r->{rc}, 5, 'lock timeout after a change: exit 5');
    $res = result(last_run());
    is(scalar @{ $res->{attempts} }, 1, 'lock timeout after a change: not retried');
    is($res->{attempts}[0]{retry}, 'no: the database changed', 'the change is the reason');
    like($r->{err}, qr/the database changed during the attempt: not retried/, 'said on stderr');

    $t->psql('pg', 'CREATE TABLE django_migrations (id serial, app text, name text, applied timestamptz)',
             db => 'r_retry');
    $r = mc(\%e, 'run', '--lock-timeout', '1s', '--retries', '2', '--', 'sh', '-c',
            "psql -XAtqc \"INSERT INTO django_migrations (app, name, applied) VALUES ('a', '0001', now())\"; $lt");
    is(scalar @{ result(last_run())->{attempts} }, 1, 'lock timeout after a recorded migration: not retried');
}

# --- SIGTERM to migctl reaches the command's process group --------------

{
    my %e = new_db('r_sig');
    my $mark = $t->dir . '/sig.out';
    my $pid = fork // die;
    if ($pid == 0) {
        $ENV{$_} = $e{$_} for keys %e;
        open STDOUT, '>', $mark or POSIX::_exit(1);
        open STDERR, '>>', "$mark.err";
        exec($ENV{MIGCTL} || "$ROOT/build/migctl", 'run', '--', 'sh', '-c',
             'echo ready; sleep 30 & wait') or POSIX::_exit(127);
    }
    ok($t->wait_for(sub { slurp($mark) =~ /ready/ }, 20), 'command started');
    my @kids = grep { slurp("/proc/$_/stat") =~ /^\d+ \(.*?\) \S (\d+)/ && $1 == $pid }
               map { m{/proc/(\d+)/} ? $1 : () } glob('/proc/[0-9]*/stat');
    my $t0 = time;
    kill 'TERM', $pid;
    waitpid($pid, 0);
    my $rc = $? >> 8;
    is($rc, 5, 'SIGTERM: migctl exits 5');
    ok(time - $t0 < 5, 'SIGTERM: within 5 s');
    ok(@kids && !grep({ MigTest::pid_alive($_) } @kids), 'SIGTERM: the command is gone');
    is(result(last_run())->{signal}, 'SIGTERM', 'SIGTERM: recorded as the signal');
    like(slurp("$mark.err"), qr/Terminated forwarded to the command/, 'SIGTERM: forwarding said');
}

# --- item 1: a release whose migration fails: flag on, audited, diagnose --

{
    my %e = (new_db('r_bad'), MIGTEST_APPS => 'badsql');
    is($t->django({ env => \%e }, 'django', 'migrate', 'badsql', '0001')->{rc}, 0,
       'badsql: 0001 applies');
    my $r = mc(\%e, 'run', '--maintenance-on-failure', '--diagnose',
               '--plan-cmd', "/usr/bin/python3 $MANAGE showmigrations --plan",
               '--', '/usr/bin/python3', $MANAGE, 'migrate', '--noinput');
    is($r->{rc}, 5, 'failing migration: exit 5');
    my $st = { @{ $t->redis('r', 'HGETALL', 'rt:state:default') } };
    is($st->{mode}, 'on', 'the flag is on');
    like($st->{reason}, qr/^migctl run failed: exit 1 applying badsql\.0002_note_body \(run \S+\)$/,
         'the reason names the migration');
    is($st->{actor}, 'deployer', 'the actor');
    my @on = grep { $_->{action} eq 'on' } @{ audit() };
    is(scalar @on, 1, 'audit: the change');
    like($on[0]{reason}, qr/^migctl run failed: /, 'audit: its reason');
    my ($end) = grep { $_->{action} eq 'run' && $_->{result} eq 'failed' } reverse @{ audit() };
    is($end->{migration}, 'badsql.0002_note_body', 'audit: the run names the migration');
    ok($on[0]{id} gt $end->{id}, 'audit: the flag after the run end, before exit');

    my $d = last_run();
    my ($cmd) = $r->{out} =~ /^  (migctl .*diagnose.*)$/m;
    ok($cmd, 'prints the diagnose command') or diag($r->{out}, $r->{err});
    like($cmd // '', qr/--app badsql --migration 0002_note_body --sql \Q$d\E\/badsql\.0002_note_body\.sql --traceback \Q$d\E\/output\.log --previous-plan \Q$d\E\/plan\.txt$/,
         'diagnose: sql, traceback and plan from the run');
    like(slurp("$d/badsql.0002_note_body.sql"), qr/SET DEFAUT/, 'sqlmigrate output kept');
    my @w = split ' ', ($cmd // 'x');
    shift @w;
    $r = mc(\%e, '--json', @w);
    is($r->{rc}, 0, 'the printed diagnose runs') or diag($r->{err});
    my $dg = eval { $json->decode($r->{out}) } // {};
    is($dg->{state}{verdict}, 'not_applied', 'diagnose: state not_applied');
    # the kept plan knows every recorded migration: rolling back is safe
    is($dg->{path}, 'rollback_code', 'diagnose: path rollback_code (from the kept plan)');
    is($dg->{rollback_safe}, JSON::PP::true, 'diagnose: rollback safe per plan.txt');
    is($dg->{class}{class}, 'code_fix', 'diagnose: the traceback from output.log classified');
    is($dg->{class}{sqlstate}, '42601', 'diagnose: the SQLSTATE from output.log');
}

# --- Redis down -------------------------------------------------------------

{
    my $bad = $t->write_file('down.conf', <<"EOF");
redis = { host = "127.0.0.1"; port = ${\ $t->port('closed2')}; timeout_ms = 300; };
runs = { dir = "$RUNS"; };
EOF
    my %e = (new_db('r_noredis'), MIGCTL_CONFIG => $bad);
    my $n = scalar runs();
    my $r = mc(\%e, 'run', '--', 'true');
    is($r->{rc}, 0, 'Redis down: the run still runs (exit 0)');
    like($r->{err}, qr/no audit entry \(Redis unreachable\): the run goes on/, 'Redis down: said once');
    is(scalar runs(), $n + 1, 'Redis down: the run is kept');
    $r = mc(\%e, 'run', '--maintenance-on-failure', '--', 'touch', $t->dir . '/ran2');
    is($r->{rc}, 3, 'Redis down with --maintenance-on-failure: exit 3');
    like($r->{err}, qr/--maintenance-on-failure needs Redis .* nothing was run/, 'Redis down: says why');
    ok(!-e $t->dir . '/ran2', 'Redis down with --maintenance-on-failure: not run');
}

$t->check_pg_log('pg');
unlike($t->read_file($t->dir . '/pg/postgres.log') // '', qr/^migctl run .*(ERROR|FATAL):/m,
       'postgres log: no error from the runner session');

done_testing();
