#!/usr/bin/perl

# classify.t: `migctl classify` on real Django / psycopg2 tracebacks and
# PostgreSQL logs (t/fixtures/classify: django_* and psycopg2_* and pglog_*
# were produced by the real failures, hand_* are written from Django's and
# PostgreSQL's message formats), unknown text, empty and missing input.

use strict;
use warnings;

use lib 't/lib';
use MigTest;
use Test::More;
use JSON::PP;
use Time::HiRes ();
use POSIX ();

my $t = MigTest->new;
my $fx = MigTest->root . '/t/fixtures/classify';

# fixture => [class, sqlstate or undef, exception or undef]
my %want = (
    django_dupes        => ['high_risk', '23505', 'django.db.utils.IntegrityError'],
    django_concidx      => ['high_risk', '23505', 'django.db.utils.IntegrityError'],
    django_locky        => ['transient', '55P03', 'django.db.utils.OperationalError'],
    django_halfway      => ['code_fix',  undef,   'KeyError'],
    django_halfway_rerun => ['high_risk', '42701', 'django.db.utils.ProgrammingError'],
    django_badsql       => ['code_fix',  '42601', 'django.db.utils.ProgrammingError'],
    django_laterstep    => ['code_fix',  undef,   'ModuleNotFoundError'],
    django_faked        => ['code_fix',  '42703', 'django.db.utils.ProgrammingError'],
    django_rewrite      => ['high_risk', '57014', 'django.db.utils.OperationalError'],
    django_noddl        => ['high_risk', '42501', 'django.db.utils.ProgrammingError'],
    django_unreachable  => ['transient', '08001', 'django.db.utils.OperationalError'],
    django_addindexconcurrently_atomic => ['code_fix', undef,
                                           'django.db.utils.NotSupportedError'],
    psycopg2_admin_shutdown => ['transient', '08006', 'psycopg2.OperationalError'],
    psycopg2_check      => ['high_risk', '23514', 'psycopg2.errors.CheckViolation'],
    psycopg2_concurrently_in_tx => ['code_fix', '25001',
                                    'psycopg2.errors.ActiveSqlTransaction'],
    psycopg2_deadlock   => ['transient', '40P01', 'psycopg2.errors.DeadlockDetected'],
    psycopg2_duplicate_table => ['high_risk', '42P07', 'psycopg2.errors.DuplicateTable'],
    psycopg2_foreign_key => ['high_risk', '23503', 'psycopg2.errors.ForeignKeyViolation'],
    psycopg2_invalid_text => ['high_risk', '22P02',
                              'psycopg2.errors.InvalidTextRepresentation'],
    psycopg2_not_null   => ['high_risk', '23502', 'psycopg2.errors.NotNullViolation'],
    psycopg2_serialization => ['transient', '40001',
                               'psycopg2.errors.SerializationFailure'],
    psycopg2_undefined_function => ['code_fix', '42883',
                                    'psycopg2.errors.UndefinedFunction'],
    psycopg2_undefined_table => ['code_fix', '42P01', 'psycopg2.errors.UndefinedTable'],
    pglog_admin_shutdown => ['transient', '57P01', undef],
    pglog_lock_timeout  => ['transient', '55P03', undef],
    hand_conflicting    => ['code_fix',  undef,   'CommandError'],
    hand_node_not_found => ['code_fix',  undef,
                            'django.db.migrations.exceptions.NodeNotFoundError'],
    hand_inconsistent_history => ['high_risk', undef,
                 'django.db.migrations.exceptions.InconsistentMigrationHistory'],
    hand_disk_full      => ['high_risk', '53100', undef],
    hand_too_many       => ['transient', '53300', 'django.db.utils.OperationalError'],
    hand_verbose_log    => ['transient', '40P01', undef],
    hand_explicit_sqlstate => ['high_risk', '42501', undef],
    hand_killed         => ['transient', undef,   undef],
    hand_user_cancel    => ['transient', '57014', 'django.db.utils.OperationalError'],
    unknown_deploy_log  => ['unknown',   undef,   undef],
    unknown_noise       => ['unknown',   undef,   undef],
);

# every fixture is in the table and the other way round
my @files = map { m{/([^/]+)\.txt$} ? $1 : () } glob("$fx/*.txt");
is_deeply([sort grep { $_ ne 'empty' } @files], [sort keys %want],
          'every fixture has an expected class');

sub j {
    my ($text) = @_;
    my $h = eval { JSON::PP->new->decode($text) };
    return $h // {};
}

for my $name (sort keys %want) {
    my ($class, $code, $exc) = @{ $want{$name} };
    my $r = $t->migctl('--json', 'classify', "$fx/$name.txt");
    my $h = j($r->{out});
    is($r->{rc}, $class eq 'unknown' ? 1 : 0, "$name: exit code");
    is($h->{class}, $class, "$name: class $class");
    is($h->{sqlstate}, $code, "$name: sqlstate " . ($code // 'none'));
    is($h->{exception}, $exc, "$name: exception " . ($exc // 'none'));
    if ($class ne 'unknown') {
        ok(defined $h->{reason} && length $h->{reason} > 20, "$name: a reason");
        ok(defined $h->{evidence}, "$name: the evidence line");
    }
    is($r->{err}, '', "$name: nothing on stderr");
}

# the DETAIL line of the server comes along
{
    my $r = $t->migctl('--json', 'classify', "$fx/django_dupes.txt");
    like(j($r->{out})->{detail}, qr/Key \(email\)=\(a\@example\.com\) is duplicated/,
         'detail of a unique violation');
}

# where in the migration a Python error was raised
{
    my $r = $t->migctl('--json', 'classify', "$fx/django_halfway.txt");
    like(j($r->{out})->{frame},
         qr{^File "[^"]*/halfway/migrations/0002_order_amount_eur\.py", line 13, in backfill$},
         'frame: the migration file and line');
    $r = $t->migctl('--json', 'classify', "$fx/django_laterstep.txt");
    is(j($r->{out})->{frame}, undef, 'frame: none outside migrations');
    $r = $t->migctl('--json', 'classify', "$fx/django_noddl.txt");
    is(j($r->{out})->{frame}, undef, "frame: not Django's own migrations package");
    $r = $t->migctl({ stdin => qq{failed: "sqlstate": "40P01"\n} }, 'classify');
    like($r->{out}, qr/^sqlstate\s+40P01$/m, 'a code in JSON form');
}

# a log with an earlier error that was retried: the latest error decides
{
    my $log = "ERROR:  55P03: canceling statement due to lock timeout\n"
            . "retrying in 5s\n"
            . "psql: SQLSTATE 00000 (a success code is not a failure)\n"
            . "psycopg2.errors.UniqueViolation: could not create unique index \"x\"\n"
            . "django.db.utils.IntegrityError: could not create unique index \"x\"\n";
    my $h = j($t->migctl({ stdin => $log }, '--json', 'classify')->{out});
    is($h->{sqlstate}, '23505', 'latest error wins over an earlier retried one');
    is($h->{source}, 'exception', "psycopg's class stays the source when Django repeats it");
    $h = j($t->migctl({ stdin => "SQLSTATE 00000\n" }, '--json', 'classify')->{out});
    is($h->{class}, 'unknown', 'SQLSTATE 00000 alone: unknown');
}

# statement timeout and a cancel by an operator share 57014
{
    my $r = $t->migctl('classify', "$fx/django_rewrite.txt");
    like($r->{out}, qr/^reason\s+statement_timeout expired/m,
         'a statement timeout is explained as one');
}

# text output, from standard input
{
    my $text = $t->read_file("$fx/django_locky.txt");
    my $r = $t->migctl({ stdin => $text }, 'classify');
    is($r->{rc}, 0, 'stdin: exit 0');
    like($r->{out}, qr/^class\s+transient$/m, 'stdin: class line');
    like($r->{out}, qr/^sqlstate\s+55P03$/m, 'stdin: sqlstate line');
    like($r->{out}, qr/^condition\s+lock_not_available$/m, 'stdin: condition');
    $r = $t->migctl({ stdin => $text }, 'classify', '-');
    like($r->{out}, qr/^class\s+transient$/m, '"-" is stdin');
    $r = $t->migctl({ stdin => $text }, 'classify', '--json');
    like($r->{out}, qr/"class": "transient"/, '--json after the command');
}

# an explicit code not in the table: its class only where unambiguous
{
    my $r = $t->migctl({ stdin => "failed: SQLSTATE 23P99\n" }, 'classify');
    like($r->{out}, qr/^class\s+high_risk$/m, 'class 23 is high_risk');
    $r = $t->migctl({ stdin => "failed: SQLSTATE 72000\n" }, 'classify');
    is($r->{rc}, 1, 'an unknown code of an unknown class: exit 1');
    like($r->{out}, qr/^class\s+unknown$/m, '... unknown');
    like($r->{out}, qr/^sqlstate\s+72000$/m, '... with its code');
    $r = $t->migctl({ stdin => "ERROR:  ABCDE: nothing\n" }, 'classify');
    is($r->{rc}, 1, 'five capitals without a digit are no code');
}

# errors: empty, blank, missing, extra arguments, unknown options
{
    my $r = $t->migctl('classify', "$fx/empty.txt");
    is($r->{rc}, 2, 'empty file: exit 2');
    like($r->{err}, qr/^migctl: classify: .*empty\.txt is empty: give the traceback/,
         'empty file: one clear line');
    $r = $t->migctl({ stdin => "\n \n\t\n" }, 'classify');
    is($r->{rc}, 2, 'blank stdin: exit 2');
    like($r->{err}, qr/standard input is empty/, 'blank stdin: said so');
    $r = $t->migctl('classify', "$fx/no-such-file.txt");
    is($r->{rc}, 2, 'missing file: exit 2');
    like($r->{err}, qr/^migctl: classify: cannot open .*no-such-file\.txt: No such file/,
         'missing file: named');
    $r = $t->migctl('classify', "$fx/empty.txt", "$fx/empty.txt");
    is($r->{rc}, 2, 'two inputs: exit 2');
    $r = $t->migctl('classify', '--bogus');
    is($r->{rc}, 2, 'unknown option: exit 2');
    like($r->{err}, qr/unknown option '--bogus'/, 'unknown option: named');
    $r = $t->migctl('classify', '--help');
    is($r->{rc}, 0, '--help: exit 0');
    like($r->{out}, qr/^usage: migctl \[--json\] classify/m, '--help: usage on stdout');
}

# binary garbage with NUL bytes and invalid UTF-8 does not upset it
{
    my $bin = join '', map { chr(($_ * 37) % 256) } 0 .. 4095;
    my $r = $t->migctl({ stdin => $bin }, '--json', 'classify');
    ok($r->{rc} == 0 || $r->{rc} == 1, 'binary: exit 0 or 1');
    like($r->{out}, qr/"class": "/, 'binary: still JSON');
    is($r->{err}, '', 'binary: no sanitizer report');
    $r = $t->migctl({ stdin => "\xff\xfe ERROR:  could not create unique index \"\xc3\"\n" },
                    '--json', 'classify');
    like($r->{out}, qr/"class": "high_risk"/, 'invalid UTF-8 around a message');
}

# fuzz: fixture lines cut, shuffled and mixed with bytes, a fixed seed;
# every answer is JSON with a class and exit 0 or 1, never a crash
{
    srand(4242);
    my @lines = map { split /^/, $t->read_file($_) } glob("$fx/*.txt");
    my ($bad, $runs) = (0, 60);
    for my $i (1 .. $runs) {
        my $text = '';
        for (1 .. 1 + int(rand(12))) {
            my $l = $lines[int(rand(@lines))];
            $l = substr($l, 0, int(rand(length($l) + 1))) if rand() < 0.3;
            $l .= join '', map { chr(int(rand(256))) } 1 .. int(rand(8))
                if rand() < 0.2;
            $text .= $l;
        }
        $text .= "x" unless $text =~ /\S/;
        my $r = $t->migctl({ stdin => $text }, '--json', 'classify');
        my $h = eval { JSON::PP->new->decode($r->{out}) };
        unless (($r->{rc} == 0 || $r->{rc} == 1) && $h && $h->{class}
                && $r->{err} eq '')
        {
            $bad++;
            diag("fuzz case $i: rc $r->{rc}: $r->{err}");
            last if $bad > 3;
        }
    }
    is($bad, 0, "fuzz: $runs mixed inputs, every answer well formed");
}

# --- issue 7 item 5: the last failure of this run decides -----------------

# a deploy log, stdout and stderr merged: attempt 1 times out on a lock,
# attempt 2 fails in RunPython; Django prints the traceback right after
# "Applying x..." on the same line
sub merged {
    my ($mig, $tb) = @_;
    return "Operations to perform:\n  Apply all migrations: x\n"
         . "Running migrations:\n  Applying $mig..." . $tb;
}
{
    my $lock = $t->read_file("$fx/django_locky.txt");
    my $key = $t->read_file("$fx/django_halfway.txt");
    my $log = merged('locky.0002_item_flag', $lock)
            . "deploy: migrate failed (exit 1), retrying in 10 s, attempt 2/3\n"
            . merged('halfway.0002_order_amount_eur', $key)
            . "deploy: migrate failed (exit 1), giving up\n";
    my $r = $t->migctl({ stdin => $log }, '--json', 'classify');
    my $h = j($r->{out});
    is($h->{class}, 'code_fix', 'two attempts: the KeyError of the last one decides');
    is($h->{exception}, 'KeyError', '... its exception');
    is($h->{sqlstate}, undef, '... no SQLSTATE of the earlier attempt');
    is($h->{migration}, 'halfway.0002_order_amount_eur', '... the failing migration');
    like($h->{file} // '', qr{/halfway/migrations/0002_order_amount_eur\.py$},
         '... the migration file, from a traceback on the Applying line');
    is($h->{line}, 13, '... and its line');
    is(scalar @{ $h->{history} || [] }, 1, '... one earlier failure as history');
    is($h->{history}[0]{sqlstate}, '55P03', '... the lock timeout');
    is($h->{history}[0]{class}, 'transient', '... was transient');
    is($h->{history}[0]{migration}, 'locky.0002_item_flag', '... on its migration');
    $r = $t->migctl({ stdin => $log }, 'classify');
    like($r->{out}, qr/^class\s+code_fix$/m, 'text: class');
    like($r->{out}, qr/^earlier\s+transient 55P03 locky\.0002_item_flag: .*lock timeout/m,
         'text: the earlier failure shown as history');
}

# a traceback on the Applying line alone: file and line come out
{
    my $r = $t->migctl({ stdin => merged('halfway.0002_order_amount_eur',
                                         $t->read_file("$fx/django_halfway.txt")) },
                       '--json', 'classify');
    my $h = j($r->{out});
    like($h->{frame} // '', qr{^File ".*/0002_order_amount_eur\.py", line 13, in backfill$},
         'Applying x...Traceback: the frame');
    is($h->{line}, 13, 'Applying x...Traceback: the line');
}

# a server log: the migration's error, then other sessions' lines
sub pglog {
    my ($pid, $sev, $msg, @more) = @_;
    my $p = "2026-11-25 10:19:14.065 UTC [$pid] ";
    my $s = "$p$sev:  $msg\n";
    while (@more) {
        my ($k, $v) = splice(@more, 0, 2);
        $s .= "$p$k:  $v\n";
    }
    return $s;
}
my $others = pglog(11001, 'FATAL', 'terminating connection due to administrator command')
           . pglog(11002, 'ERROR', 'could not serialize access due to concurrent update',
                   STATEMENT => 'UPDATE accounts SET balance = balance - 1 WHERE id = 7')
           . pglog(11003, 'ERROR', 'canceling statement due to user request',
                   STATEMENT => 'SELECT count(*) FROM orders');
{
    my $uniq = pglog(10992, 'ERROR', 'could not create unique index "dupes_customer_email_key"',
                     DETAIL => 'Key (email)=(a@example.com) is duplicated.',
                     STATEMENT => 'ALTER TABLE "dupes_customer" ADD CONSTRAINT '
                                . '"dupes_customer_email_key" UNIQUE ("email")');
    my $h = j($t->migctl({ stdin => $uniq . $others }, '--json', 'classify')->{out});
    is($h->{sqlstate}, '23505', 'server log: 23505 then other sessions: 23505');
    is($h->{class}, 'high_risk', '... high_risk');
    is($h->{pid}, 10992, '... the migrating backend');
    like($h->{statement} // '', qr/^ALTER TABLE "dupes_customer"/, '... its statement');

    my $slow = pglog(20001, 'ERROR', 'canceling statement due to statement timeout',
                     STATEMENT => 'ALTER TABLE "rewrite_reading" ALTER COLUMN "value" '
                                . 'TYPE bigint USING "value"::bigint');
    $h = j($t->migctl({ stdin => $slow . $others }, '--json', 'classify')->{out});
    is($h->{sqlstate}, '57014', 'server log: 57014 then other sessions: 57014');
    is($h->{class}, 'high_risk', '... a statement timeout stays high_risk');
}

# a 20 MB log: the migration failed early, one cancel of another session
# near the end does not decide
{
    my $noise = '';
    my $i = 0;
    while (length($noise) < 20 * 1024 * 1024) {
        $i++;
        $noise .= "2026-11-25 10:2" . ($i % 10) . ":00.000 UTC [3000] LOG:  "
                . "duration: 0.$i ms  statement: SELECT * FROM shop_product WHERE id = $i\n"
                . "web.1 | 10.0.0.$i - - \"GET /api/items/$i HTTP/1.1\" 200 512\n";
    }
    my $log = merged('dupes.0002_email_unique', $t->read_file("$fx/django_dupes.txt"))
            . $noise
            . pglog(3001, 'ERROR', 'canceling statement due to user request',
                    STATEMENT => 'SELECT * FROM shop_product');
    my $f = $t->write_file('big.log', $log);
    my $t0 = Time::HiRes::time();
    my $r = $t->migctl('--json', 'classify', $f);
    my $secs = Time::HiRes::time() - $t0;
    my $h = j($r->{out});
    is($h->{sqlstate}, '23505', '20 MB log: the unique violation decides');
    is($h->{class}, 'high_risk', '20 MB log: high_risk');
    note(sprintf("20 MB log classified in %.2f s (%s)", $secs,
                 $ENV{MIGCTL} ? 'sanitizer build' : 'build/migctl'));
}

# an interrupted run: Applying without an outcome, or killed
{
    my $run = "Operations to perform:\n  Apply all migrations: slow\n"
            . "Running migrations:\n  Applying slow.0001_initial... OK\n"
            . "  Applying slow.0002_backfill...";
    my $h = j($t->migctl({ stdin => $run }, '--json', 'classify')->{out});
    ok($h->{interrupted}, 'Applying without OK and nothing after: interrupted');
    is($h->{migration}, 'slow.0002_backfill', '... the migration');
    is($h->{class}, 'transient', '... transient if the state is unchanged');
    like($h->{reason}, qr/unchanged/, '... and says it depends on the state');
    $h = j($t->migctl({ stdin => "$run\nKilled\n" }, '--json', 'classify')->{out});
    ok($h->{interrupted}, 'Applying then Killed: interrupted');
    $h = j($t->migctl({ stdin => "$run\nERROR: Job failed: exit code 137\n" },
                      '--json', 'classify')->{out});
    ok($h->{interrupted}, 'exit code 137: interrupted');
    $h = j($t->migctl({ stdin => "Killed\n" }, '--json', 'classify')->{out});
    ok($h->{interrupted}, 'a bare Killed: interrupted');
    isnt($h->{class}, 'transient', 'a bare Killed is no proof of a transient cause');
    is($h->{migration}, undef, '... no migration known');
}

# the app host's disk is not the database's; Python errors in RunPython
{
    my $tb = "Traceback (most recent call last):\n"
           . "  File \"/srv/app/manage.py\", line 22, in <module>\n"
           . "    main()\n"
           . "  File \"/usr/lib/python3/dist-packages/django/contrib/staticfiles/storage.py\", line 40, in _save\n"
           . "    fd = os.open(full_path, self.OS_OPEN_FLAGS, 0o666)\n"
           . "OSError: [Errno 28] No space left on device: '/srv/app/static/app.css'\n";
    my $h = j($t->migctl({ stdin => $tb }, '--json', 'classify')->{out});
    is($h->{sqlstate}, undef, 'OSError errno 28: not SQLSTATE 53100');
    is($h->{exception}, 'OSError', '... OSError');
    like($h->{reason}, qr/app host/, '... the app host\'s disk');
    for my $e ('RuntimeError: rates table not loaded',
               '__fake__.Order.DoesNotExist: Order matching query does not exist.',
               'halfway.models.Order.MultipleObjectsReturned: get() returned more than one Order -- it returned 2!')
    {
        my $x = $t->read_file("$fx/django_halfway.txt");
        $x =~ s/^KeyError: 'CHF'$/$e/m;
        $h = j($t->migctl({ stdin => $x }, '--json', 'classify')->{out});
        my ($n) = $e =~ /^(\S+):/;
        is($h->{class}, 'code_fix', "$n in RunPython: code_fix");
    }
}

# at a terminal without a file: one line and exit 2, not a silent wait.
# script(1) gives migctl a terminal; script's own input is a pipe kept
# open, so a migctl that reads the terminal waits until it is killed.
SKIP: {
    skip 'script(1) is needed for a terminal', 3 unless -x '/usr/bin/script';
    my $bin = $ENV{MIGCTL} || MigTest->root . '/build/migctl';
    my $out = $t->dir . '/tty.out';
    pipe(my $rd, my $wr) or die "pipe: $!";
    my $t0 = Time::HiRes::time();
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        close $wr;
        open STDIN, '<&', $rd or POSIX::_exit(1);
        open STDOUT, '>', $out or POSIX::_exit(1);
        open STDERR, '>&', \*STDOUT or POSIX::_exit(1);
        exec('/usr/bin/script', '-qec', "$bin classify", '/dev/null')
            or POSIX::_exit(127);
    }
    close $rd;
    my $status;
    while (Time::HiRes::time() - $t0 < 10) {
        if (waitpid($pid, POSIX::WNOHANG()) == $pid) { $status = $?; last }
        Time::HiRes::sleep(0.02);
    }
    unless (defined $status) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
    }
    close $wr;
    ok(defined $status, 'terminal on stdin, no file: returns without input');
    is(defined $status ? $status >> 8 : -1, 2, '... exit 2');
    like($t->read_file($out) // '',
         qr/^migctl: classify: no input: give the traceback or log as FILE/m,
         '... says so in one line');
}

done_testing;
