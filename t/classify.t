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
is_deeply([sort grep { $_ ne 'empty' && !/^live_|_then_others$/ } @files],
          [sort keys %want],
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
    my $re = '^migctl: classify: cannot open .*no-such-file\.txt: '
           . 'No such file.*: check the path';
    like($r->{err}, qr/$re/,
         'missing file: named, and what to do');
    $r = $t->migctl('classify', "$fx/empty.txt", "$fx/empty.txt");
    is($r->{rc}, 2, 'two inputs: exit 2');
    $r = $t->migctl('classify', '--bogus');
    is($r->{rc}, 2, 'unknown option: exit 2');
    like($r->{err}, qr/unknown option '--bogus'/, 'unknown option: named');
    $r = $t->migctl('classify', '--help');
    is($r->{rc}, 0, '--help: exit 0');
    like($r->{out}, qr/^usage: migctl \[--json\] classify/m, '--help: usage on stdout');
}

# what a log carries is not replayed to the operator's terminal: a
# password in a statement, a terminal's escape sequences
{
    my $log = "ERROR:  could not create unique index \"x\e[31m\"\n"
            . "STATEMENT:  ALTER ROLE app PASSWORD 'hunter2'\n";
    my $r = $t->migctl({ stdin => $log }, 'classify');
    unlike($r->{out}, qr/hunter2/, 'a password in a statement is not shown');
    like($r->{out}, qr/^statement\s+\(not shown: it carries a password\)$/m,
         '... it says why');
    unlike($r->{out}, qr/\e/, 'no escape sequence reaches the terminal');
    like($r->{out}, qr/unique index "x\\x1b\[31m"/, '... it is shown as \\x1b');
    $r = $t->migctl({ stdin => $log }, '--json', 'classify');
    unlike($r->{out}, qr/hunter2/, '--json: the password is not shown either');
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

# migctl run's output.log: the streams interleaved by time, each line
# tagged; Python flushes "Applying X..." (no newline) after the traceback
# of stderr, or the log writer splits its " OK" off
{
    my $tb = join('', map { "2026-11-29T17:04:03.119Z err $_\n" }
                  split /\n/, $t->read_file("$fx/django_badsql.txt"));
    my $log = "2026-11-29T17:04:03.112Z out Operations to perform:\n"
            . "2026-11-29T17:04:03.113Z out Running migrations:\n"
            . $tb
            . "2026-11-29T17:04:03.114Z out   Applying badsql.0002_note_body...\n";
    my $h = j($t->migctl({ stdin => $log }, '--json', 'classify')->{out});
    ok(!$h->{interrupted}, 'traceback of this run before its Applying line: '
                           . 'not interrupted');
    is($h->{sqlstate}, '42601', '... the traceback decides');
    $log = "2026-11-29T17:04:03.113Z out Running migrations:\n"
         . "2026-11-29T17:04:03.114Z out   Applying a.0001_x...\n"
         . "2026-11-29T17:04:03.115Z err a warning of the migration\n"
         . "2026-11-29T17:04:03.116Z out  OK\n";
    $h = j($t->migctl({ stdin => $log }, '--json', 'classify')->{out});
    ok(!$h->{interrupted}, 'its OK on a line of its own: not interrupted');
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
    $h = j($t->migctl({ stdin => "Running migrations:\n  Unapplying slow.0002_backfill..." },
                      '--json', 'classify')->{out});
    ok($h->{interrupted}, 'Unapplying (backwards) without OK: interrupted');
    is($h->{migration}, 'slow.0002_backfill', '... the migration');
    $h = j($t->migctl({ stdin => "$run\nKilled\n" }, '--json', 'classify')->{out});
    ok($h->{interrupted}, 'Applying then Killed: interrupted');
    $h = j($t->migctl({ stdin => "$run\nERROR: Job failed: exit code 137\n" },
                      '--json', 'classify')->{out});
    ok($h->{interrupted}, 'exit code 137: interrupted');
    $h = j($t->migctl({ stdin => "Killed\n" }, '--json', 'classify')->{out});
    ok($h->{interrupted}, 'a bare Killed: interrupted');
    isnt($h->{class}, 'transient', 'a bare Killed is no proof of a transient cause');
    is($h->{migration}, undef, '... no migration known');

    # a kill after a traceback is not that run's end; a new run's is
    my $tb = merged('dupes.0002_email_unique', $t->read_file("$fx/django_dupes.txt"));
    $h = j($t->migctl({ stdin => "$tb\nworker 12 Terminated\n" }, '--json',
                      'classify')->{out});
    ok(!$h->{interrupted}, 'a kill word after a traceback: not interrupted');
    is($h->{sqlstate}, '23505', '... the traceback decides');
    $h = j($t->migctl({ stdin => "$tb\nOperations to perform:\nKilled\n" },
                      '--json', 'classify')->{out});
    ok($h->{interrupted}, 'a new run killed after a traceback: interrupted');
    is($h->{history}[0]{sqlstate}, '23505', '... the traceback is history');
    $h = j($t->migctl({ stdin => "  Applying a.0001_x... OK\nKilled\n" },
                      '--json', 'classify')->{out});
    ok($h->{interrupted}, 'killed after the last migration applied: interrupted');
    is($h->{class}, 'unknown', '... with no migration in progress: unknown');
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
    for my $e ("decimal.InvalidOperation: [<class 'decimal.DivisionUndefined'>]",
               'RuntimeError: rates table not loaded',
               '__fake__.Order.DoesNotExist: Order matching query does not exist.',
               'halfway.models.Order.MultipleObjectsReturned: get() returned more than one Order -- it returned 2!')
    {
        my $x = $t->read_file("$fx/django_halfway.txt");
        $x =~ s/^KeyError: 'CHF'$/$e/m;
        $h = j($t->migctl({ stdin => $x }, '--json', 'classify')->{out});
        my ($n) = $e =~ /^(\S+):/;
        is($h->{class}, 'code_fix', "$n in RunPython: code_fix");
    }
    # an exception no table knows, raised outside any migration: unknown
    my $x = $t->read_file("$fx/django_laterstep.txt");
    $x =~ s/^ModuleNotFoundError: .*$/decimal.InvalidOperation: [<class 'decimal.DivisionUndefined'>]/m;
    $h = j($t->migctl({ stdin => $x }, '--json', 'classify')->{out});
    is($h->{class}, 'unknown', 'an unknown exception outside a migration: unknown');
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

# --- live: real Django 3.2 failures against PostgreSQL 15 ------------------
#
# Each scenario makes `manage.py migrate` fail for real and keeps what a
# deploy log holds: stdout and stderr merged (as CI shows them) and the
# shell's exit line; two keep the server log (prefix with %p) with other
# sessions' errors after the migration's.  MIGTEST_CAPTURE=1 writes them to
# t/fixtures/classify/live_*.txt; without it every live run must classify
# as its stored fixture does, so the fixtures cannot drift from Django.

my $capture = $ENV{MIGTEST_CAPTURE};
my $manage = MigTest->root . '/t/django/manage.py';
$t->start_pg('pg');
my %pg = $t->pg_env('pg');
my $pglog = "$t->{pg}{pg}{dir}/postgres.log";
my @bg;
END {
    for my $b (@bg) {
        kill 'KILL', $b->{pid};
        waitpid($b->{pid}, 0);
    }
}

# Debian's log_line_prefix: the backend pid in brackets
$t->psql('pg', "ALTER SYSTEM SET log_line_prefix = '%m [%p] %q%u\@%d '",
         db => 'postgres');
$t->psql('pg', 'SELECT pg_reload_conf()', db => 'postgres');
$t->psql('pg', 'CREATE ROLE deployer LOGIN', db => 'postgres');

sub live_db {
    my ($name, $apps, %more) = @_;
    $t->psql('pg', "CREATE DATABASE c_$name", db => 'postgres');
    return { %pg, PGDATABASE => "c_$name", MIGTEST_APPS => $apps,
             PYTHONDONTWRITEBYTECODE => 1, %more };
}

sub lsql {
    my ($e, $sql, %o) = @_;
    return $t->psql('pg', $sql, db => $e->{PGDATABASE}, %o);
}

sub deploy_cmd {
    return ('/bin/bash', '-c',
            '/usr/bin/python3 "$0" "$@" 2>&1; '
            . 'echo "deploy step exited with status $?"', $manage, @_);
}

# a step that must work (setting the scene)
sub dj_ok {
    my ($e, @args) = @_;
    my $r = $t->run({ env => $e, timeout => 120 }, '/usr/bin/python3',
                    $manage, @args);
    is($r->{rc}, 0, "setup: manage.py @args") or diag($r->{err});
}

sub deploy {
    my ($e, @args) = @_;
    my $r = $t->run({ env => $e, timeout => 120 }, deploy_cmd(@args));
    return $r->{out} . $r->{err};
}

sub deploy_bg {
    my ($e, @args) = @_;
    my $out = $t->dir . '/bg' . (scalar(@bg) + 1) . '.log';
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $ENV{$_} = $e->{$_} for keys %$e;
        open STDIN, '<', '/dev/null' or POSIX::_exit(1);
        open STDOUT, '>', $out or POSIX::_exit(1);
        open STDERR, '>&', \*STDOUT or POSIX::_exit(1);
        exec(deploy_cmd(@args)) or POSIX::_exit(127);
    }
    my $b = { pid => $pid, out => $out };
    push @bg, $b;
    return $b;
}

sub bg_done {
    my ($b, $secs) = @_;
    my $done = $t->wait_for(sub {
        waitpid($b->{pid}, POSIX::WNOHANG()) == $b->{pid} }, $secs);
    ok($done, "the deploy step ended within $secs s");
    unless ($done) {
        kill 'KILL', $b->{pid};
        waitpid($b->{pid}, 0);
    }
    @bg = grep { $_ != $b } @bg;
    return $t->read_file($b->{out}) // '';
}

# the migrating backend, once it runs the statement
sub backend_running {
    my ($e, $like) = @_;
    return $t->wait_for(sub {
        lsql($e, "SELECT pid FROM pg_stat_activity WHERE datname = "
                 . "current_database() AND pid <> pg_backend_pid() AND "
                 . "query LIKE '$like' AND state = 'active'") }, 30);
}

sub log_size { return -s $pglog // 0 }

sub log_since {
    my ($off, $re) = @_;
    $t->wait_for(sub { ($t->read_file($pglog) // '') =~ $re }, 10);
    return substr($t->read_file($pglog) // '', $off);
}

# other sessions' errors: an operator ends an idle session, and a
# repeatable-read writer loses to a concurrent update (40001)
sub other_sessions {
    my ($e) = @_;
    lsql($e, 'CREATE TABLE acct (id int PRIMARY KEY, v int); '
             . 'INSERT INTO acct VALUES (1, 0)');
    my $idle = $t->pg_session('pg', db => $e->{PGDATABASE}, app => 'report');
    $idle->send('SELECT 1;');
    my $vpid = $t->wait_for(sub {
        lsql($e, "SELECT pid FROM pg_stat_activity WHERE application_name "
                 . "= 'report' AND state = 'idle'") }, 15);
    lsql($e, "SELECT pg_terminate_backend($vpid)");
    my $a = $t->pg_session('pg', db => $e->{PGDATABASE}, app => 'worker');
    $a->send('BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT v FROM acct;');
    ok($t->wait_for(sub { $a->output =~ /^0$/m }, 15), 'worker: snapshot taken');
    lsql($e, 'UPDATE acct SET v = v + 1 WHERE id = 1');
    $a->send('UPDATE acct SET v = v + 1 WHERE id = 1;');
    ok($t->wait_for(sub { $a->output =~ /could not serialize/ }, 15),
       'worker: 40001');
    $a->close;
    $idle->close;
}

my %scene;

$scene{live_lock_timeout} = sub {
    my $e = live_db('lock', 'locky');
    dj_ok($e, 'migrate', 'locky', '0001');
    my $h = $t->pg_session('pg', db => $e->{PGDATABASE}, app => 'holder');
    $h->send('BEGIN; LOCK TABLE locky_item IN ACCESS SHARE MODE;');
    ok($t->wait_for(sub {
        lsql($e, "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a "
                 . "USING (pid) WHERE a.application_name = 'holder' AND "
                 . "l.relation = 'locky_item'::regclass AND l.granted") }, 15),
       'lock: the holder has the table');
    my $out = deploy({ %$e, PGOPTIONS => '-c lock_timeout=300ms' },
                     'migrate', 'locky');
    $h->close;
    return $out;
};

$scene{live_terminated} = sub {
    my $e = live_db('term', 'cls_slow');
    dj_ok($e, 'migrate', 'cls_slow', '0001');
    my $b = deploy_bg($e, 'migrate', 'cls_slow');
    my $bpid = backend_running($e, 'SELECT pg_sleep%');
    ok($bpid, 'terminated: the migration runs');
    lsql($e, "SELECT pg_terminate_backend($bpid)");
    return bg_done($b, 60);
};

$scene{live_killed} = sub {
    my $e = live_db('killed', 'cls_slow');
    dj_ok($e, 'migrate', 'cls_slow', '0001');
    my $b = deploy_bg($e, 'migrate', 'cls_slow');
    my $bpid = backend_running($e, 'SELECT pg_sleep%');
    ok($bpid, 'killed: the migration runs');
    my $kids = $t->read_file("/proc/$b->{pid}/task/$b->{pid}/children") // '';
    my ($py) = $kids =~ /(\d+)/;
    ok($py, 'killed: the migrate process') and kill 'KILL', $py;
    my $out = bg_done($b, 30);
    lsql($e, "SELECT pg_terminate_backend($bpid)") if $bpid;
    return $out;
};

# a CI timeout: the job runner sends SIGTERM to the migrate process
$scene{live_ci_timeout} = sub {
    my $e = live_db('cito', 'cls_slow');
    dj_ok($e, 'migrate', 'cls_slow', '0001');
    my $b = deploy_bg($e, 'migrate', 'cls_slow');
    my $bpid = backend_running($e, 'SELECT pg_sleep%');
    ok($bpid, 'CI timeout: the migration runs');
    my $kids = $t->read_file("/proc/$b->{pid}/task/$b->{pid}/children") // '';
    my ($py) = $kids =~ /(\d+)/;
    ok($py, 'CI timeout: the migrate process') and kill 'TERM', $py;
    my $out = bg_done($b, 30);
    lsql($e, "SELECT pg_terminate_backend($bpid)") if $bpid;
    return $out;
};

# the app host's disk is full: a deploy step writing a file (ENOSPC from
# /dev/full, as collectstatic meets it on a full disk)
$scene{live_app_host_disk_full} = sub {
    my $e = live_db('hostdisk', 'shop');
    return deploy($e, 'shell', '-c',
                  "f = open('/dev/full', 'w'); f.write('x' * 65536); f.close()");
};

$scene{live_deadlock} = sub {
    my $e = live_db('deadlock', 'cls_deadlock');
    dj_ok($e, 'migrate', 'cls_deadlock', '0001');
    my $h = $t->pg_session('pg', db => $e->{PGDATABASE}, app => 'holder');
    $h->send("SET deadlock_timeout = '60s'; BEGIN; "
             . 'LOCK TABLE cls_deadlock_ledger IN SHARE MODE;');
    ok($t->wait_for(sub {
        lsql($e, "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a "
                 . "USING (pid) WHERE a.application_name = 'holder' AND "
                 . "l.relation = 'cls_deadlock_ledger'::regclass") }, 15),
       'deadlock: the holder has the ledger');
    my $b = deploy_bg({ %$e, PGOPTIONS => '-c deadlock_timeout=5s' },
                      'migrate', 'cls_deadlock');
    ok($t->wait_for(sub {
        lsql($e, "SELECT count(*) FROM pg_locks WHERE NOT granted AND "
                 . "relation = 'cls_deadlock_ledger'::regclass") }, 30),
       'deadlock: the migration waits for the ledger');
    $h->send('SELECT count(*) FROM cls_deadlock_account; COMMIT;');
    my $out = bg_done($b, 60);
    $h->close;
    return $out;
};

$scene{live_runpython_doesnotexist} = sub {
    my $e = live_db('dne', 'cls_runpy');
    return deploy($e, 'migrate', 'cls_runpy');
};

$scene{live_runpython_runtime} = sub {
    my $e = live_db('rte', 'cls_runpy', MIGTEST_RUNPY => 'runtime');
    return deploy($e, 'migrate', 'cls_runpy');
};

$scene{live_runpython_keyerror} = sub {
    my $e = live_db('half', 'halfway');
    dj_ok($e, 'migrate', 'halfway', '0001');
    lsql($e, "INSERT INTO halfway_order (amount, currency) VALUES "
             . "(100, 'EUR'), (200, 'USD'), (400, 'CHF'), (500, 'EUR')");
    my $out = deploy($e, 'migrate', 'halfway');
    # partial non-transactional changes: the column stayed; a rerun
    # meets it
    $scene{live_partial_rerun_out} = deploy($e, 'migrate', 'halfway');
    return $out;
};

$scene{live_partial_rerun} = sub {
    return delete $scene{live_partial_rerun_out};
};

$scene{live_invalid_sql} = sub {
    my $e = live_db('badsql', 'badsql');
    dj_ok($e, 'migrate', 'badsql', '0001');
    return deploy($e, 'migrate', 'badsql');
};

$scene{live_missing_import} = sub {
    my $e = live_db('import', 'cls_import');
    return deploy($e, 'migrate', 'cls_import');
};

$scene{live_node_not_found} = sub {
    my $e = live_db('nonode', 'cls_nonode');
    return deploy($e, 'migrate', 'cls_nonode');
};

$scene{live_conflicting_leaves} = sub {
    my $e = live_db('leaves', 'cls_leaves');
    return deploy($e, 'migrate', 'cls_leaves');
};

$scene{live_inconsistent_history} = sub {
    my $e = live_db('hist', 'shop');
    dj_ok($e, 'migrate', 'shop', '0001');
    lsql($e, "UPDATE django_migrations SET name = '0002_product_price_cents' "
             . "WHERE app = 'shop'");
    return deploy($e, 'migrate', 'shop');
};

$scene{live_unique_violation} = sub {
    my $e = live_db('dupes', 'dupes');
    dj_ok($e, 'migrate', 'dupes', '0001');
    lsql($e, "INSERT INTO dupes_customer (email) VALUES ('a\@example.com'), "
             . "('b\@example.com'), ('a\@example.com')");
    my $off = log_size();
    my $out = deploy($e, 'migrate', 'dupes');
    other_sessions($e);
    $scene{pglog_unique_then_others_out} =
        log_since($off, qr/could not serialize access/);
    return $out;
};

$scene{pglog_unique_then_others} = sub {
    return delete $scene{pglog_unique_then_others_out};
};

$scene{live_statement_timeout} = sub {
    my $e = live_db('rewrite', 'rewrite');
    dj_ok($e, 'migrate', 'rewrite', '0001');
    lsql($e, "INSERT INTO rewrite_reading (value) "
             . "SELECT g FROM generate_series(1, 600000) g", timeout => 120);
    my $off = log_size();
    my $out = deploy({ %$e, PGOPTIONS => '-c statement_timeout=100ms' },
                     'migrate', 'rewrite');
    other_sessions($e);
    $scene{pglog_timeout_then_others_out} =
        log_since($off, qr/could not serialize access/);
    return $out;
};

$scene{pglog_timeout_then_others} = sub {
    return delete $scene{pglog_timeout_then_others_out};
};

$scene{live_insufficient_privilege} = sub {
    my $e = live_db('noddl', 'noddl');
    dj_ok($e, 'migrate', 'noddl', '0001');
    lsql($e, 'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA '
             . 'public TO deployer; GRANT USAGE ON ALL SEQUENCES IN SCHEMA '
             . 'public TO deployer');
    return deploy({ %$e, PGUSER => 'deployer' }, 'migrate', 'noddl');
};

$scene{live_drift} = sub {
    my $e = live_db('drift', 'cls_drift');
    dj_ok($e, 'migrate', 'cls_drift', '0001');
    dj_ok($e, 'migrate', 'cls_drift', '0002', '--fake');
    return deploy($e, 'migrate', 'cls_drift');
};

# name => [class, sqlstate, exception, migration, interrupted]
my %live_want = (
    live_lock_timeout => ['transient', '55P03', 'django.db.utils.OperationalError',
                          'locky.0002_item_flag', 0],
    live_terminated   => ['transient', '08006', 'django.db.utils.OperationalError',
                          'cls_slow.0002_job_backfill', 0],
    live_killed       => ['transient', undef, undef, 'cls_slow.0002_job_backfill', 1],
    live_ci_timeout   => ['transient', undef, undef, 'cls_slow.0002_job_backfill', 1],
    live_app_host_disk_full => ['transient', undef, 'OSError', undef, 0],
    live_deadlock     => ['transient', '40P01', 'django.db.utils.OperationalError',
                          'cls_deadlock.0002_account_flag', 0],
    live_runpython_doesnotexist => ['code_fix', undef, '__fake__.Rate.DoesNotExist',
                                    'cls_runpy.0002_rate_check', 0],
    live_runpython_runtime => ['code_fix', undef, 'RuntimeError',
                               'cls_runpy.0002_rate_check', 0],
    live_runpython_keyerror => ['code_fix', undef, 'KeyError',
                                'halfway.0002_order_amount_eur', 0],
    live_partial_rerun => ['high_risk', '42701', 'django.db.utils.ProgrammingError',
                           'halfway.0002_order_amount_eur', 0],
    live_invalid_sql  => ['code_fix', '42601', 'django.db.utils.ProgrammingError',
                          'badsql.0002_note_body', 0],
    live_missing_import => ['code_fix', undef, 'ModuleNotFoundError',
                            'cls_import.0002_page_slug', 0],
    live_node_not_found => ['code_fix', undef,
                            'django.db.migrations.exceptions.NodeNotFoundError', undef, 0],
    live_conflicting_leaves => ['code_fix', undef,
                                'CommandError', undef, 0],
    live_inconsistent_history => ['high_risk', undef,
        'django.db.migrations.exceptions.InconsistentMigrationHistory', undef, 0],
    live_unique_violation => ['high_risk', '23505', 'django.db.utils.IntegrityError',
                              'dupes.0002_email_unique', 0],
    pglog_unique_then_others => ['high_risk', '23505', undef, undef, 0],
    live_statement_timeout => ['high_risk', '57014', 'django.db.utils.OperationalError',
                               'rewrite.0002_value_bigint', 0],
    pglog_timeout_then_others => ['high_risk', '57014', undef, undef, 0],
    live_insufficient_privilege => ['high_risk', '42501',
                                    'django.db.utils.ProgrammingError',
                                    'noddl.0002_thing_color', 0],
    live_drift => ['code_fix', '42703', 'django.db.utils.ProgrammingError',
                   'cls_drift.0003_invoice_due_date_index', 0],
);

sub verdict {
    my ($text, $name) = @_;
    my $r = $t->migctl({ stdin => $text }, '--json', 'classify');
    unlike($r->{err}, qr/Sanitizer|runtime error/, "$name: no sanitizer report");
    return j($r->{out});
}

# in this order: the rerun after the partial run needs it first
my @order = qw(live_runpython_keyerror live_partial_rerun
               live_unique_violation pglog_unique_then_others
               live_statement_timeout pglog_timeout_then_others);
my %seen = map { $_ => 1 } @order;
push @order, sort grep { !$seen{$_} } keys %live_want;
is_deeply([sort @order], [sort keys %scene], 'every live scene has its verdict');

for my $name (@order) {
    my $live = $scene{$name}->() // '';
    my $file = "$fx/$name.txt";
    if ($capture) {
        $t->write_file($file, $live);
        note("captured $file");
    }
    my $want = $live_want{$name};
    my ($class, $code, $exc, $mig, $intr) = @$want;
    my $l = verdict($live, "$name live");
    my $f = verdict($t->read_file($file) // '', "$name fixture");
    for my $h ([live => $l], [fixture => $f]) {
        my ($k, $v) = @$h;
        is($v->{class}, $class, "$name $k: class $class");
        is($v->{sqlstate}, $code, "$name $k: sqlstate " . ($code // 'none'));
        is($v->{exception}, $exc, "$name $k: exception " . ($exc // 'none'))
            if defined $exc || $name =~ /^pglog/;
        is($v->{migration}, $mig, "$name $k: migration " . ($mig // 'none'));
        is($v->{interrupted} ? 1 : 0, $intr, "$name $k: interrupted $intr");
    }
}

# what the real runs show besides the class
{
    my $h = verdict($t->read_file("$fx/pglog_unique_then_others.txt"), 'pglog');
    my ($pid) = $t->read_file("$fx/pglog_unique_then_others.txt")
                =~ /\[(\d+)\] \S+ ERROR:  could not create unique index/;
    is($h->{pid}, $pid, 'server log: the backend of the failed ALTER');
    ok($h->{correlated}, '... correlated by its pid');
    like($h->{statement}, qr/^ALTER TABLE "dupes_customer" ADD CONSTRAINT/,
         '... its statement');
    like($h->{detail}, qr/Key \(email\)=\(a\@example\.com\) is duplicated/,
         '... its DETAIL');
    is($h->{other_sessions}, 2, '... two errors of other sessions left aside');
    is_deeply($h->{history}, [], '... and no history');

    # the deploy output and the server log together: tied by the message
    my $both = $t->read_file("$fx/live_unique_violation.txt")
             . $t->read_file("$fx/pglog_unique_then_others.txt");
    $h = verdict($both, 'deploy log and server log');
    is($h->{exception}, 'django.db.utils.IntegrityError',
       'deploy and server log: the traceback decides');
    is($h->{pid}, $pid, '... tied to its backend');
    ok($h->{correlated}, '... correlated');
    like($h->{statement}, qr/^ALTER TABLE "dupes_customer"/, '... its statement');

    # no DDL logged: the last error decides, and the text says it is a guess
    my $nodl = $t->read_file("$fx/pglog_unique_then_others.txt");
    $nodl =~ s/STATEMENT:  ALTER TABLE/STATEMENT:  UPDATE/;
    my $r = $t->migctl({ stdin => $nodl }, 'classify');
    like($r->{out}, qr/^correlated\s+no: the server log does not tie/m,
         'no DDL in the server log: says the failure is not tied');

    # an operator's later DDL that did not fail does not move the decision
    my $later = $t->read_file("$fx/pglog_unique_then_others.txt")
              . "2026-11-29 16:20:00.000 UTC [40001] ops\@c_dupes LOG:  statement: "
              . "DROP INDEX CONCURRENTLY IF EXISTS \"dupes_x\"\n";
    $h = verdict($later, 'pglog, later DDL');
    is($h->{pid}, $pid, "an operator's later DDL: still the failed backend");
    is($h->{sqlstate}, '23505', '... and its 23505');

    # its own session ended while idle after the error: the error decides
    my $ended = $t->read_file("$fx/pglog_unique_then_others.txt")
              . "2026-11-29 16:21:00.000 UTC [$pid] postgres\@c_dupes FATAL:  "
              . "terminating connection due to administrator command\n";
    $h = verdict($ended, 'pglog, own session ended');
    is($h->{sqlstate}, '23505', 'its idle session terminated later: 23505 still decides');
    my $busy = $ended . "2026-11-29 16:21:00.000 UTC [$pid] postgres\@c_dupes "
             . "STATEMENT:  ALTER TABLE \"dupes_customer\" ADD COLUMN x int\n";
    $h = verdict($busy, 'pglog, own session terminated while busy');
    is($h->{sqlstate}, '57P01', 'terminated while running a statement: 57P01 decides');
    is($h->{class}, 'transient', '... transient');
    is($h->{history}[0]{sqlstate}, '23505', '... the 23505 is history');

    # without %p in the prefix: the error with a DDL statement decides
    my $nopid = $t->read_file("$fx/pglog_timeout_then_others.txt");
    $nopid =~ s/ \[\d+\]//g;
    $h = verdict($nopid, 'pglog without pids');
    is($h->{sqlstate}, '57014', 'server log without pids: the DDL error decides');
    ok(!$h->{correlated}, '... not correlated by pid');

    $h = verdict($t->read_file("$fx/live_runpython_keyerror.txt"), 'keyerror');
    like($h->{file}, qr{/t/django/halfway/migrations/0002_order_amount_eur\.py$},
         'real merged output: the migration file');
    like($h->{line}, qr/^\d+$/, '... and line');

    $h = verdict($t->read_file("$fx/live_killed.txt"), 'killed');
    like($h->{reason}, qr/interrupted while applying cls_slow\.0002_job_backfill \(killed/,
         'killed: the reason names the migration and the kill');

    # a deploy log of two real attempts: lock timeout, then RunPython
    my $two = $t->read_file("$fx/live_lock_timeout.txt")
            . "deploy: retrying in 10 s (attempt 2 of 3)\n"
            . $t->read_file("$fx/live_runpython_keyerror.txt");
    $h = verdict($two, 'two attempts');
    is($h->{class}, 'code_fix', 'real two attempts: the last one decides');
    is($h->{exception}, 'KeyError', '... KeyError');
    is(scalar @{ $h->{history} }, 1, '... one earlier failure');
    is($h->{history}[0]{sqlstate}, '55P03', '... the lock timeout, as history');

    # the same with a CI runner's timestamp on every line
    (my $ci = $two) =~ s/^/2026-11-29T16:00:00.1234567Z /mg;
    $h = verdict($ci, 'two attempts, CI prefix');
    is($h->{exception}, 'KeyError', 'CI timestamps on every line: KeyError decides');
    is($h->{line}, 13, '... its line in the migration');
    is($h->{history}[0]{sqlstate}, '55P03', '... the lock timeout as history');

    # a 20 MB server log: the migration's error, then other sessions'
    # lines and one cancel by a user near the end
    my @real = split /^/, $t->read_file("$fx/pglog_unique_then_others.txt");
    my $log = join '', @real[0 .. 2];
    my $i = 0;
    while (length($log) < 20 * 1024 * 1024) {
        $i++;
        my $p = 20000 + $i % 50;
        $log .= "2026-11-29 16:12:0" . ($i % 10) . ".000 UTC [$p] app\@c_dupes "
              . "LOG:  duration: 0.$i ms  statement: SELECT * FROM shop_product "
              . "WHERE id = $i\n";
        $log .= "2026-11-29 16:12:0" . ($i % 10) . ".000 UTC [$p] app\@c_dupes "
              . "ERROR:  relation \"missing_$i\" does not exist at character 15\n"
              . "2026-11-29 16:12:0" . ($i % 10) . ".000 UTC [$p] app\@c_dupes "
              . "STATEMENT:  SELECT * FROM missing_$i\n" if $i % 1000 == 0;
    }
    $log .= "2026-11-29 16:13:00.000 UTC [30001] ops\@c_dupes ERROR:  canceling "
          . "statement due to user request\n"
          . "2026-11-29 16:13:00.000 UTC [30001] ops\@c_dupes STATEMENT:  "
          . "SELECT count(*) FROM dupes_customer\n";
    my $f = $t->write_file('big-server.log', $log);
    my $t0 = Time::HiRes::time();
    $r = $t->migctl('--json', 'classify', $f);
    my $secs = Time::HiRes::time() - $t0;
    $h = j($r->{out});
    is($h->{sqlstate}, '23505', '20 MB server log: the migration\'s 23505 decides');
    is($h->{pid}, $pid, '... its backend');
    ok($h->{other_sessions} > 100, '... thousands of other errors left aside');
    note(sprintf("20 MB server log classified in %.2f s (%s)", $secs,
                 $ENV{MIGCTL} ? 'sanitizer build' : 'build/migctl'));

    # 100,000 errors of other sessions after it: memory stays bounded
    # (they are compacted into a count) and the decision stays
    my $many = join '', @real[0 .. 2];
    $many .= "2026-11-29 16:13:00.000 UTC [" . (50000 + $_ % 700) . "] app\@c_dupes "
           . "ERROR:  could not serialize access due to concurrent update\n"
        for 1 .. 100_000;
    $h = j($t->migctl({ stdin => $many }, '--json', 'classify')->{out});
    is($h->{sqlstate}, '23505', '100,000 later errors of other sessions: 23505 decides');
    is($h->{other_sessions}, 100_000, '... every one counted as another session\'s');
}

done_testing;
