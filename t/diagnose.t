#!/usr/bin/perl

# diagnose.t: `migctl diagnose` beyond the real scenarios: usage errors,
# an unreachable server, a database that is not Django's, garbage and
# empty SQL, and the decision table's rows that the scenarios do not reach
# (no traceback, unknown class, a non-atomic RunPython that may have run,
# a record that lies about part of its objects).

use strict;
use warnings;

use lib 't/lib';
use MigTest;
use Test::More;
use JSON::PP;
use Time::HiRes qw(time);

my $t = MigTest->new;
my $json = JSON::PP->new;
my $fx = MigTest->root . '/t/fixtures/classify';

sub mc {
    my ($env, @args) = @_;
    my $o = ref $env eq 'HASH' && exists $env->{stdin}
          ? { stdin => delete $env->{stdin}, env => $env } : { env => $env };
    my $r = $t->migctl($o, @args);
    unlike($r->{err}, qr/Sanitizer|runtime error/, "no sanitizer report: " . join(" ", grep { defined } @args[0..1]));
    return $r;
}

sub js {
    my $v = eval { $json->decode($_[0]{out}) };
    return $v // {};
}

sub has_line {
    my ($list, $re, $name) = @_;
    ok((grep { /$re/ } @{ $list || [] }), $name) or diag(explain($list));
}

my $sql_ok = $t->write_file('add_col.sql', <<'EOF');
BEGIN;
--
-- Add field note to customer
--
ALTER TABLE "dupes_customer" ADD COLUMN "note" varchar(20) NULL;
COMMIT;
EOF

# --- usage: before any connection -------------------------------------

{
    my $dead = { PGHOST => '127.0.0.1', PGPORT => $t->port('nothing'),
                 PGUSER => 'postgres', PGDATABASE => 'app' };
    my $r = mc($dead, 'diagnose');
    is($r->{rc}, 2, 'no options: exit 2');
    like($r->{err}, qr/^migctl: diagnose: --app, --migration and --sql are required/,
         'no options: says what is needed');
    $r = mc($dead, 'diagnose', '--app', 'a', '--migration', 'm');
    is($r->{rc}, 2, 'no --sql: exit 2');
    $r = mc($dead, 'diagnose', '--app', 'a', '--migration', 'm', '--sql');
    is($r->{rc}, 2, '--sql without a value: exit 2');
    like($r->{err}, qr/--sql needs FILE: see migctl diagnose --help/, '... named');
    $r = mc($dead, 'diagnose', '--bogus');
    is($r->{rc}, 2, 'unknown option: exit 2');
    $r = mc($dead, 'diagnose', '--app', '', '--migration', 'm', '--sql', $sql_ok);
    is($r->{rc}, 2, 'empty --app: exit 2');
    $r = mc($dead, 'diagnose', '--app', 'a', '--migration', 'm', '--sql', '-',
            '--traceback', '-');
    is($r->{rc}, 2, 'two inputs from stdin: exit 2');
    like($r->{err}, qr/only one of .* can be stdin/, '... said so');
    $r = mc($dead, 'diagnose', '--help');
    is($r->{rc}, 0, '--help: exit 0');
    like($r->{out}, qr/^usage: migctl \[--json\] diagnose --app A/m, '--help on stdout');

    # a bad traceback file is a usage error, found before the connection
    $r = mc($dead, 'diagnose', '--app', 'a', '--migration', 'm', '--sql',
            $sql_ok, '--traceback', $t->dir . '/missing.tb');
    is($r->{rc}, 2, 'missing traceback file: exit 2, not 3');
    like($r->{err}, qr/--traceback: cannot open .*missing\.tb/, '... named');
    $r = mc($dead, 'diagnose', '--app', 'a', '--migration', 'm', '--sql',
            $sql_ok, '--traceback', "$fx/empty.txt");
    is($r->{rc}, 2, 'empty traceback: exit 2');
    like($r->{err}, qr/--traceback: .*empty\.txt is empty/, '... said so');

    # unreachable server: exit 3, one line, no password
    $r = mc({ %$dead, PGPASSWORD => 'hunter2-secret' }, 'diagnose',
            '--app', 'a', '--migration', 'm', '--sql', $sql_ok);
    is($r->{rc}, 3, 'unreachable server: exit 3');
    like($r->{err}, qr/^migctl: diagnose: cannot connect to PostgreSQL: .*\n\z/,
         'unreachable: one line');
    unlike($r->{err} . $r->{out}, qr/hunter2/, 'unreachable: no password shown');
}

# --- a database, not Django's, then Django's -------------------------

$t->start_pg('pg');
my %pg = $t->pg_env('pg');

{
    my $r = mc({ %pg }, 'diagnose', '--app', 'dupes', '--migration',
               '0002_email_unique', '--sql', $sql_ok);
    is($r->{rc}, 2, 'not a Django database: exit 2');
    like($r->{err}, qr/^migctl: diagnose: .*not a Django database/m,
         'not a Django database: said so');
}

$t->psql('pg', 'CREATE DATABASE dj', db => 'postgres');
my $e = { %pg, PGDATABASE => 'dj' };
my $r = $t->django({ env => { %$e, PYTHONDONTWRITEBYTECODE => 1 } }, 'django',
                   'migrate', 'dupes', '0001');
is($r->{rc}, 0, 'dupes 0001 applied') or diag($r->{err});
$r = $t->django({ env => { %$e, PYTHONDONTWRITEBYTECODE => 1 } }, 'django',
                'showmigrations', '--plan');
my $plan = $t->write_file('plan', $r->{out});
my $prev = $t->write_file('prev', join '', grep { !/dupes\.0002/ }
                                           split /^/, $r->{out});

sub diag_json {
    my (@args) = @_;
    my $o = ref $args[0] eq 'HASH' ? shift @args : {};
    my $r = mc({ %$e, %$o }, '--json', 'diagnose', @args);
    is($r->{rc}, 0, "diagnose @args[0..3]: exit 0") or diag($r->{err});
    return js($r);
}

# garbage and empty SQL
{
    my $g = $t->write_file('garbage.sql', "this is not SQL at all ;;; \x01\n");
    my $r = mc($e, 'diagnose', '--app', 'dupes', '--migration', 'x', '--sql', $g);
    is($r->{rc}, 2, 'garbage SQL: exit 2');
    like($r->{err}, qr/^migctl: diagnose: .*garbage\.sql.*syntax error/m,
         'garbage SQL: the file and the error');
    my $z = $t->write_file('empty.sql', '');
    $r = mc($e, 'diagnose', '--app', 'dupes', '--migration', 'x', '--sql', $z);
    is($r->{rc}, 2, 'empty SQL: exit 2');
    like($r->{err}, qr/^migctl: diagnose: .*empty\.sql/m, 'empty SQL: named');
    $r = mc($e, 'diagnose', '--app', 'dupes', '--migration', 'x', '--sql',
            $t->dir . '/none.sql');
    is($r->{rc}, 2, 'missing SQL file: exit 2');

    # a syntax error traceback does not excuse garbage in a non-atomic file
    $r = mc($e, 'diagnose', '--app', 'dupes', '--migration', 'x', '--sql', $g,
            '--traceback', "$fx/django_badsql.txt");
    is($r->{rc}, 2, 'garbage, not atomic, with a syntax error traceback: exit 2');
}

# unchanged database, no traceback: no retry, fix forward or roll back
{
    my $d = diag_json('--app', 'dupes', '--migration', '0002_note',
                      '--sql', $sql_ok);
    is($d->{path}, 'fix_forward', 'no traceback: fix_forward');
    is($d->{class}, undef, 'no traceback: class null');
    has_line($d->{reasons}, qr/no --traceback: the cause is unknown, so no retry/,
             'no traceback: says why no retry');
    has_line($d->{risks}, qr/no --previous-plan/, 'rollback safety unknown');
    ok($d->{state}{database_unchanged}, 'unchanged');
    for my $k (qw(path state class rollback_safe reasons risks next inspect migrations)) {
        ok(exists $d->{$k}, "json has $k");
    }

    $d = diag_json('--app', 'dupes', '--migration', '0002_note', '--sql',
                   $sql_ok, '--plan', $plan, '--previous-plan', $prev);
    is($d->{path}, 'rollback_code', 'no traceback, compatible previous: rollback_code');

    # unknown class: same, never a retry
    $d = diag_json('--app', 'dupes', '--migration', '0002_note', '--sql',
                   $sql_ok, '--traceback', "$fx/unknown_deploy_log.txt");
    is($d->{path}, 'fix_forward', 'unknown class: fix_forward');
    is($d->{class}{class}, 'unknown', 'class unknown');
    has_line($d->{reasons}, qr/no retry on a guess/, 'unknown: no guess');

    # transient: retry, the traceback from stdin
    my $tb = $t->read_file("$fx/django_locky.txt");
    my $r = mc({ %$e, stdin => $tb }, 'diagnose', '--app', 'dupes',
               '--migration', '0002_note', '--sql', $sql_ok, '--traceback', '-');
    is($r->{rc}, 0, 'transient from stdin: exit 0');
    like($r->{out}, qr/^path\s+retry$/m, 'transient, unchanged: retry');
    like($r->{out}, qr/^class\s+transient 55P03 \(django\.db\.utils\.OperationalError\)$/m,
         'text: class line');
    like($r->{out}, qr/^state\s+not_applied \(not recorded; 0 done, 1 not done/m,
         'text: state line');
    like($r->{out}, qr/^  \$ migctl run -- python manage\.py migrate dupes 0002_note --noinput$/m,
         'text: the exact retry');
    unlike($r->{out}, qr/still holds/, 'nobody holds the table');
}

# a non-atomic migration with a RunPython: not proven unchanged
{
    my $s = $t->write_file('runpython.sql', <<'EOF');
--
-- Add field note to customer
--
ALTER TABLE "dupes_customer" ADD COLUMN "note" varchar(20) NULL;
--
-- MIGRATION NOW PERFORMS OPERATION THAT CANNOT BE WRITTEN AS SQL:
-- Raw Python operation
--
EOF
    my $d = diag_json('--app', 'dupes', '--migration', '0002_note', '--sql', $s,
                      '--traceback', "$fx/django_locky.txt");
    is($d->{inspect}{verdict}, 'not_applied', 'inspect: not_applied');
    ok(!$d->{state}{database_unchanged}, 'but not proven unchanged');
    isnt($d->{path}, 'retry', 'transient, yet no blind retry');
    is($d->{path}, 'restore_or_repair', 'restore_or_repair');
    has_line($d->{reasons}, qr/not atomic .* may have changed rows/, 'says why');
}

# a record that lies about part of its objects
{
    $t->psql('pg', "INSERT INTO django_migrations (app, name, applied) "
                   . "VALUES ('dupes', '0009_hand', now()); "
                   . "ALTER TABLE dupes_customer ADD COLUMN a int", db => 'dj');
    my $s = $t->write_file('hand.sql', <<'EOF');
BEGIN;
ALTER TABLE "dupes_customer" ADD COLUMN "a" integer NULL;
ALTER TABLE "dupes_customer" ADD COLUMN "b" integer NULL;
COMMIT;
EOF
    my $d = diag_json('--app', 'dupes', '--migration', '0009_hand', '--sql', $s);
    is($d->{inspect}{verdict}, 'recorded_but_incomplete', 'recorded_but_incomplete');
    is($d->{path}, 'restore_or_repair', 'restore_or_repair');
    has_line($d->{risks}, qr/^do not --fake: column b of dupes_customer is missing$/,
             'names the missing column');
    ok(!(grep { /--fake\s+#/ } @{ $d->{next} }),
       'no unfake advice while part of it exists');
    has_line($d->{next}, qr/^python manage\.py sqlmigrate dupes 0009_hand/,
             'repair by hand from sqlmigrate');
    has_line($d->{next}, qr/^psql -c 'ALTER TABLE "dupes_customer" ADD COLUMN "b" integer NULL;'\s+# column b: present$/,
             'the statement that makes what is missing');

    # a prefix, as Django takes it
    $d = diag_json('--app', 'dupes', '--migration', '0009', '--sql', $s);
    is($d->{migration}, '0009_hand', 'a prefix resolves to the recorded name');
    is($d->{inspect}{verdict}, 'recorded_but_incomplete', '... and is inspected by it');
    has_line($d->{reasons}, qr/^--migration 0009 is dupes\.0009_hand$/, '... said so');
    my $r = mc($e, 'diagnose', '--app', 'dupes', '--migration', '0', '--sql', $s);
    is($r->{rc}, 2, 'an ambiguous prefix: exit 2');
    like($r->{err}, qr/--migration 0 is ambiguous in dupes/, '... said so');

    # with this release's plan: the record it does not know, what is pending
    $d = diag_json('--app', 'dupes', '--migration', '0009_hand', '--sql', $s,
                   '--plan', $plan);
    has_line($d->{risks}, qr/records 1 migration\(s\) this release does not know \(dupes\.0009_hand\)/,
             'a record unknown to this release');
    has_line($d->{reasons}, qr/1 more migration\(s\) of dupes are pending .*: dupes\.0002_email_unique$/,
             'the pending migration of the app');
}

# --- every object in place, no record: record exactly it ----------------

{
    $t->psql('pg', "ALTER TABLE dupes_customer ADD COLUMN p1 integer", db => 'dj');
    my $s = $t->write_file('present.sql', <<'EOF');
BEGIN;
--
-- Add field p1 to customer
--
ALTER TABLE "dupes_customer" ADD COLUMN "p1" integer NULL;
COMMIT;
EOF
    my $d = diag_json('--app', 'dupes', '--migration', '0010_p1', '--sql', $s);
    is($d->{state}{verdict}, 'present_but_unrecorded', 'present, no record: present_but_unrecorded');
    is($d->{path}, 'restore_or_repair', 'present, no record: restore_or_repair');
    has_line($d->{next}, qr/^python manage\.py migrate dupes 0010_p1 --fake\s+# records exactly dupes\.0010_p1/,
             'present, no record: next: record exactly it');
}

# --- diagnose without SQL: Django could not load the migration graph ----
# (real tracebacks of Django 3.2: an import in a migration, a dependency
# on a migration not shipped, two leaves of one app)

{
    my $db = 'nosql';
    $t->psql('pg', "CREATE DATABASE $db", db => 'postgres');
    my $ne = { %pg, PGDATABASE => $db, PYTHONDONTWRITEBYTECODE => 1 };
    my %first = (brokenimport => '0002_thing_slug',
                 brokendep => '0002_thing_slug', conflict => '0002_thing_a');
    my $r = $t->django({ env => { %$ne, MIGTEST_APPS => 'dupes' } },
                       'django', 'migrate', 'dupes', '0001');
    is($r->{rc}, 0, 'nosql: the previous release migrated dupes.0001');
    my $prevp = $t->write_file('nosql.prev', "[X]  dupes.0001_initial\n");
    for my $app (qw(brokenimport brokendep conflict)) {
        $r = $t->django({ env => { %$ne, MIGTEST_APPS => "dupes,$app" } },
                        'django', 'migrate', $app);
        isnt($r->{rc}, 0, "$app: migrate fails") or next;
        my $tb = $t->write_file("$app.tb", $r->{err});
        is($t->psql('pg', "SELECT count(*) FROM django_migrations WHERE app = '$app'",
                    db => $db), 0, "$app: nothing of it recorded");

        my $d = diag_json({ PGDATABASE => $db }, '--app', $app,
                          '--migration', $first{$app}, '--traceback', $tb);
        is($d->{state}{verdict}, 'not_applied', "$app: no --sql: not_applied");
        ok($d->{state}{database_unchanged}, "$app: nothing ran");
        is($d->{class}{class}, 'code_fix', "$app: class from the traceback");
        is($d->{path}, 'fix_forward', "$app: fix_forward without a previous plan");
        has_line($d->{reasons}, qr/^nothing ran: Django could not load the migration graph/,
                 "$app: says nothing ran");
        $d = diag_json({ PGDATABASE => $db }, '--app', $app,
                       '--migration', $first{$app}, '--traceback', $tb,
                       '--previous-plan', $prevp);
        is($d->{path}, 'rollback_code',
           "$app: the previous release knows every recorded migration: rollback_code");
    }

    # the merge is the fix of conflicting leaves
    my $d = diag_json({ PGDATABASE => $db }, '--app', 'conflict',
                      '--migration', '0002_thing_a', '--traceback',
                      $t->dir . '/conflict.tb');
    has_line($d->{next}, qr/^python manage\.py makemigrations --merge conflict/,
             'conflict: next: makemigrations --merge');

    # a failure inside a migration is no graph failure: --sql stays required
    $r = mc({ %$e }, 'diagnose', '--app', 'dupes', '--migration', 'x',
            '--traceback', "$fx/django_halfway.txt");
    is($r->{rc}, 2, 'RunPython failure without --sql: exit 2');
    like($r->{err}, qr/--sql FILE is required: the traceback does not show a migration graph that failed to load/,
         '... says why');
}

# --- a table held in ACCESS EXCLUSIVE: diagnose answers, bounded --------

{
    my $s = $t->write_file('setnn.sql', <<'EOF');
BEGIN;
ALTER TABLE "dupes_customer" ALTER COLUMN "email" SET DEFAULT 'x';
ALTER TABLE "dupes_customer" ALTER COLUMN "email" DROP DEFAULT;
ALTER TABLE "dupes_customer" ADD COLUMN "c9" integer NULL;
COMMIT;
EOF
    my $h = $t->pg_session('pg', db => 'dj', app => 'diag-holder');
    $h->send('BEGIN; LOCK TABLE dupes_customer IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120);');
    ok($t->wait_for(sub {
        $t->psql('pg', "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                     . "WHERE a.application_name = 'diag-holder' AND l.granted "
                     . "AND l.mode = 'AccessExclusiveLock'", db => 'dj') > 0
    }, 15), 'a session holds dupes_customer in ACCESS EXCLUSIVE');
    my $t0 = time;
    my $r = $t->migctl({ env => { %$e }, timeout => 60 }, '--json', 'diagnose',
                       '--app', 'dupes', '--migration', '0003_c9', '--sql', $s,
                       '--traceback', "$fx/django_locky.txt");
    my $el = time - $t0;
    ok($el < 5, sprintf('diagnose under ACCESS EXCLUSIVE returns (%.2f s)', $el));
    is($r->{rc}, 0, 'under ACCESS EXCLUSIVE: exit 0') or diag($r->{err});
    my $d = js($r);
    is($d->{state}{verdict}, 'not_applied', 'under ACCESS EXCLUSIVE: not_applied');
    is($d->{path}, 'retry', 'under ACCESS EXCLUSIVE: retry');
    has_line($d->{risks}, qr/^session \d+ .* still holds AccessExclusiveLock on dupes_customer/,
             'under ACCESS EXCLUSIVE: the holder named');
    $t->psql('pg', "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                   . "WHERE application_name = 'diag-holder'", db => 'dj');
    $h->close;
}

done_testing;
