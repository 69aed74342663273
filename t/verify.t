#!/usr/bin/perl

# verify.t: `migctl verify` against real Django 3.2 and PostgreSQL 15: one
# Django process gives the SQL of every migration; each recorded one is
# checked against the catalog.  History drift (a --fake, a row inserted
# by hand), a squash known by its replaces list, the exact repair acted
# on, a Django that cannot load its migrations, usage errors.

use strict;
use warnings;

use lib 't/lib';
use MigTest;
use Test::More;
use JSON::PP;
use Time::HiRes qw(time);

my $t = MigTest->new;
$t->start_pg('pg');
my %pg = $t->pg_env('pg');
my $json = JSON::PP->new;
my $manage = '/usr/bin/python3 ' . $t->root . '/t/django/manage.py';

sub new_db {
    my ($name) = @_;
    $t->psql('pg', "CREATE DATABASE v_$name", db => 'postgres');
    return { %pg, PGDATABASE => "v_$name", PYTHONDONTWRITEBYTECODE => 1 };
}

sub sql {
    my ($env, $sql) = @_;
    return $t->psql('pg', $sql, db => $env->{PGDATABASE});
}

sub dj {
    my ($env, $apps, @args) = @_;
    my $r = $t->django({ env => { %$env, MIGTEST_APPS => $apps } },
                       'django', @args);
    return $r;
}

sub mc {
    my ($env, @args) = @_;
    my $o = ref $args[0] eq 'HASH' ? shift @args : {};
    my $r = $t->migctl({ %$o, env => { %$env, %{ $o->{env} || {} } } },
                       @args);
    unlike($r->{err}, qr/Sanitizer|runtime error/,
           "no sanitizer report: @args[0 .. ($#args < 2 ? $#args : 2)]");
    $r->{json} = eval { $json->decode($r->{out}) } // {};
    return $r;
}

sub verify {
    my ($env, $apps, @args) = @_;
    return mc($env, { env => { MIGTEST_APPS => $apps }, timeout => 300 },
              '--json', 'verify', '--manage', $manage, @args);
}

sub drift_of {
    my ($r, $name) = @_;
    my ($d) = grep { $_->{name} eq $name } @{ $r->{json}{drift} || [] };
    return $d || {};
}

# --- usage, before Django or the database -------------------------------

{
    my $r = mc({ %pg }, 'verify');
    is($r->{rc}, 2, 'no --manage and no config: exit 2');
    like($r->{err}, qr/^migctl: verify: no Django command: give --manage/,
         'no --manage: says how');
    $r = mc({ %pg }, 'verify', '--app', 'a,b', '--manage', 'x');
    is($r->{rc}, 2, 'a bad app label: exit 2');
    $r = mc({ %pg }, 'verify', '--print-script');
    is($r->{rc}, 0, '--print-script: exit 0');
    like($r->{out}, qr/^# migctl verify: .*\nmigctl_verify\(\)\n\z/s,
         '--print-script: the script');
    my $py = $t->write_file('script.py', $r->{out});
    my $c = $t->run({}, '/usr/bin/python3', '-m', 'py_compile', $py);
    is($c->{rc}, 0, 'the script compiles') or diag($c->{err});
    $r = mc({ %pg, PGPORT => $t->port('nothing') }, 'verify', '--manage',
            $manage);
    is($r->{rc}, 3, 'unreachable PostgreSQL: exit 3 (before Django)');
}

# --- drift: 0002 recorded with --fake, 0003 fails on its column ---------

{
    my $e = new_db('drift');
    is(dj($e, 'drift', 'migrate', 'drift', '0001')->{rc}, 0, 'drift: 0001');
    is(dj($e, 'drift', 'migrate', 'drift', '0002', '--fake')->{rc}, 0,
       'drift: 0002 faked');
    my $f = dj($e, 'drift', 'migrate', 'drift');
    isnt($f->{rc}, 0, 'drift: 0003 fails');
    like($f->{err}, qr/column "due_date" does not exist/, 'drift: on the missing column');

    my $t0 = time;
    my $r = verify($e, 'drift');
    my $el = time - $t0;
    is($r->{rc}, 1, 'drift: verify exit 1') or diag($r->{err});
    is(scalar @{ $r->{json}{drift} || [] }, 1, 'drift: one migration drifted');
    my $d = drift_of($r, '0002_invoice_due_date');
    is($d->{status}, 'missing', 'drift: 0002 missing');
    is($d->{objects}[0]{name}, 'due_date', 'drift: the column');
    is($r->{json}{checked}, 2, 'drift: two recorded migrations checked');
    is(scalar @{ $r->{json}{pending} }, 1, 'drift: 0003 pending');
    like($d->{repair}[0], qr/^psql -c "DELETE FROM django_migrations WHERE app = 'drift' AND name = '0002_invoice_due_date'"/,
         'drift: repair: unrecord exactly 0002');
    unlike(join("\n", @{ $d->{repair} }), qr/--fake/, 'drift: no --fake suggested');
    diag(sprintf('verify of 3 migrations: %.2f s', $el));

    # text output
    my $tx = mc({ %$e, MIGTEST_APPS => 'drift' }, { timeout => 300 },
                'verify', '--manage', $manage);
    like($tx->{out}, qr/^DRIFT drift\.0002_invoice_due_date: missing$/m,
         'text: the drifted migration');

    # act on it
    my ($del) = $d->{repair}[0] =~ /^psql -c "(.*?)"/;
    sql($e, $del);
    is(dj($e, 'drift', 'migrate', 'drift')->{rc}, 0,
       'drift: after the repair migrate applies 0002 and 0003');
    $r = verify($e, 'drift');
    is($r->{rc}, 0, 'drift: verify exit 0 after the repair') or diag($r->{out});
    is(scalar @{ $r->{json}{drift} }, 0, 'drift: no drift');
}

# --- drift under a later record: unrecording would break the history ---

{
    my $e = new_db('later');
    is(dj($e, 'drift', 'migrate', 'drift', '0001')->{rc}, 0, 'later: 0001');
    is(dj($e, 'drift', 'migrate', 'drift', '0003', '--fake')->{rc}, 0,
       'later: 0002 and 0003 faked');
    my $r = verify($e, 'drift');
    is($r->{rc}, 1, 'later: exit 1');
    my $d2 = drift_of($r, '0002_invoice_due_date');
    my $d3 = drift_of($r, '0003_due_date_index');
    is($d2->{status}, 'missing', 'later: 0002 missing');
    is($d3->{status}, 'missing', 'later: 0003 missing');
    like($d2->{repair}[0], qr/^# do not unrecord drift\.0002_invoice_due_date: 1 recorded migration\(s\) build on it \(drift\.0003_due_date_index\)/,
         'later: 0002 is not unrecorded: 0003 builds on it');
    like($d2->{repair}[1], qr/^ALTER TABLE "drift_invoice" ADD COLUMN "due_date" date NULL;\s+-- column due_date/,
         'later: the statement that makes the column');
    like($d3->{repair}[0], qr/^psql -c "DELETE FROM django_migrations WHERE app = 'drift' AND name = '0003_due_date_index'"/,
         'later: 0003, the last one, may be unrecorded');
    unlike(join("\n", map { @{ $_->{repair} } } @{ $r->{json}{drift} }),
           qr/--fake/, 'later: never a --fake');

    # act on it: the column by hand, 0003 unrecorded and applied
    my ($stmt) = $d2->{repair}[1] =~ /^(.*?;)\s+--/;
    sql($e, $stmt);
    my ($del) = $d3->{repair}[0] =~ /^psql -c "(.*?)"/;
    sql($e, $del);
    my $m3 = dj($e, 'drift', 'migrate', 'drift');
    is($m3->{rc}, 0, 'later: migrate applies 0003') or diag($m3->{err});
    $r = verify($e, 'drift');
    is($r->{rc}, 0, 'later: no drift after the repair') or diag($r->{out});
}

# --- a row inserted by hand, a squash known by its replaces list --------

{
    my $e = new_db('squash');
    # migrate records the squash and what it replaces; without its own row
    # it is the history of a database migrated before the squash shipped
    my $m2 = dj($e, 'squashy', 'migrate', 'squashy', '0001_squashed_0003_box');
    is($m2->{rc}, 0, 'squash: applied') or diag($m2->{err});
    sql($e, "DELETE FROM django_migrations WHERE name = '0001_squashed_0003_box'");
    is(sql($e, "SELECT string_agg(name, ',' ORDER BY id) FROM django_migrations WHERE app = 'squashy'"),
       '0001_initial,0002_box_weight', 'squash: the originals are recorded');
    my $r = verify($e, 'squashy');
    is($r->{rc}, 0, 'squash: no drift') or diag($r->{out}, $r->{err});
    my ($m) = grep { $_->{name} eq '0001_squashed_0003_box' }
              @{ $r->{json}{migrations} || [] };
    ok($m && $m->{recorded}, 'squash: recorded through the rows it replaces');
    is($m->{status}, 'ok', 'squash: its objects checked');
    is_deeply([sort map { "$_->{name}>$_->{squashed_into}" } @{ $r->{json}{replaced} }],
              ['0001_initial>squashy.0001_squashed_0003_box',
               '0002_box_weight>squashy.0001_squashed_0003_box'],
              'squash: from its replaces list');
    ok(!grep({ $_->{name} eq '0003_box_color' && $_->{recorded} }
             @{ $r->{json}{migrations} }),
       'squash: 0003 is not taken as replaced (the name says 0003, the list does not)');
    is(scalar @{ $r->{json}{pending} }, 1, 'squash: 0003 pending');

    # the weight column dropped by hand: the squash drifts
    sql($e, 'ALTER TABLE squashy_box DROP COLUMN weight');
    $r = verify($e, 'squashy');
    is($r->{rc}, 1, 'squash: a column gone: exit 1');
    is(drift_of($r, '0001_squashed_0003_box')->{status}, 'incomplete',
       'squash: incomplete (table there, column not)');

    # a row nobody's code knows
    sql($e, "INSERT INTO django_migrations (app, name, applied) VALUES ('squashy', '0099_ghost', now())");
    $r = verify($e, 'squashy');
    is_deeply([map { $_->{name} } @{ $r->{json}{unknown} }], ['0099_ghost'],
              'a row inserted by hand: unknown to the code');
}

# --- RunPython: listed as unverifiable, not drift ------------------------

{
    my $e = new_db('runpython');
    is(dj($e, 'halfway', 'migrate', 'halfway')->{rc}, 0,
       'runpython: halfway applied (no rows: its RunPython passes)');
    my $r = verify($e, 'halfway');
    is($r->{rc}, 0, 'runpython: exit 0: not drift') or diag($r->{err});
    is_deeply([map { "$_->{name}: $_->{reason}" } @{ $r->{json}{unverifiable} }],
              ['0002_order_amount_eur: the catalog cannot confirm: RunPython'],
              'runpython: listed as unverifiable, with what');
}

# --- Django cannot load its migrations: no SQL, exit 5 ------------------

{
    my $e = new_db('broken');
    is(dj($e, 'drift', 'migrate', 'drift')->{rc}, 0,
       'broken: a Django database (another app migrated)');
    my $r = verify($e, 'brokenimport');
    is($r->{rc}, 5, 'ImportError in a migration: exit 5');
    like($r->{err}, qr/^migctl: verify: '.*manage\.py shell' failed \(exit 1\): ModuleNotFoundError: No module named 'brokenimport\.slugtools'/,
         'ImportError: the last line of the traceback');
    $r = verify($e, 'brokendep');
    is($r->{rc}, 5, 'NodeNotFoundError: exit 5');
    like($r->{err}, qr/NodeNotFoundError/, 'NodeNotFoundError named');
    $r = verify($e, 'nosuchapp');
    is($r->{rc}, 5, 'an app that is not installed: exit 5');

    # a command that hangs is killed at --timeout, one that prints no
    # document is named
    my $t0 = time;
    $r = mc($e, { timeout => 60 }, 'verify', '--manage', 'sleep 30; true',
            '--timeout', '1s');
    my $el = time - $t0;
    is($r->{rc}, 5, 'a hanging command: exit 5');
    ok($el < 5, sprintf('a hanging command: killed at --timeout 1s (%.2f s)', $el));
    like($r->{err}, qr/did not finish in 1000 ms \(killed\): raise --timeout/,
         'a hanging command: says so');
    $r = mc($e, 'verify', '--manage', 'echo hello; true #');
    is($r->{rc}, 5, 'no document printed: exit 5');
    like($r->{err}, qr/printed no migctl-verify-json line: check --manage/,
         'no document printed: says so');
    $r = mc($e, '--json', 'verify', '--manage', 'exit 3; true');
    is($r->{json}{exit}, 5, '--json: the error object has exit 5');
    like($r->{json}{error}, qr/failed \(exit 3\)/, '--json: and the error');
}

# --- the command from migctl.conf, the document from a file -------------

{
    my $e = new_db('conf');
    is(dj($e, 'drift', 'migrate', 'drift')->{rc}, 0, 'conf: drift applied');
    my $conf = $t->write_file('migctl.conf',
                              "django = { manage = \"$manage\"; timeout = 120; };\n");
    my $r = mc({ %$e, MIGTEST_APPS => 'drift' }, { timeout => 300 },
               '-c', $conf, '--json', 'verify');
    is($r->{rc}, 0, 'django.manage from migctl.conf') or diag($r->{err});
    is($r->{json}{checked}, 3, 'conf: 3 checked');

    my $s = mc({ %pg }, 'verify', '--print-script');
    my $out = $t->run({ env => { %$e, MIGTEST_APPS => 'drift' },
                        stdin => $s->{out}, timeout => 300 },
                      '/usr/bin/python3', $t->root . '/t/django/manage.py',
                      'shell');
    is($out->{rc}, 0, 'the script run by hand');
    my $doc = $t->write_file('doc.txt', $out->{out});
    $r = mc($e, '--json', 'verify', '--from', $doc);
    is($r->{rc}, 0, '--from: the saved output') or diag($r->{err});
    is($r->{json}{checked}, 3, '--from: 3 checked');
    # a table held in ACCESS EXCLUSIVE: neither Django's SQL nor the
    # catalog checks wait on it
    my $h = $t->pg_session('pg', db => $e->{PGDATABASE}, app => 'verify-holder');
    $h->send('BEGIN; LOCK TABLE drift_invoice IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120);');
    ok($t->wait_for(sub {
        sql($e, "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                . "WHERE a.application_name = 'verify-holder' AND l.granted "
                . "AND l.mode = 'AccessExclusiveLock'") > 0 }, 15),
       'a session holds drift_invoice in ACCESS EXCLUSIVE');
    my $t0 = time;
    $r = verify($e, 'drift');
    my $el = time - $t0;
    is($r->{rc}, 0, 'under ACCESS EXCLUSIVE: verify answers, no drift');
    ok($el < 30, sprintf('under ACCESS EXCLUSIVE: bounded (%.2f s, one Django start-up)', $el));
    sql($e, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            . "WHERE application_name = 'verify-holder'");
    $h->close;

    # django_migrations held: Django's read gives up after its lock_timeout;
    # migctl's own read names the blocker, as every read of migctl does
    $h = $t->pg_session('pg', db => $e->{PGDATABASE}, app => 'verify-dm');
    $h->send('BEGIN; LOCK TABLE django_migrations IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120);');
    ok($t->wait_for(sub {
        sql($e, "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                . "WHERE a.application_name = 'verify-dm' AND l.granted "
                . "AND l.mode = 'AccessExclusiveLock'") > 0 }, 15),
       'a session holds django_migrations in ACCESS EXCLUSIVE');
    $t0 = time;
    $r = verify($e, 'drift');
    $el = time - $t0;
    my $hpid = sql($e, "SELECT pid FROM pg_stat_activity WHERE application_name = 'verify-dm'");
    is($r->{rc}, 3, 'django_migrations held: exit 3');
    like($r->{err}, qr/lock timeout/, 'django_migrations held: a lock timeout, said');
    like($r->{err}, qr/^migctl: verify: '.*manage\.py shell' failed on a lock: reading django_migrations: blocked by pid $hpid \(user postgres, application verify-dm, active, \d+ s, AccessExclusiveLock on public\.django_migrations\): SELECT pg_sleep\(120\);: gave up after lock_timeout 2 s/,
         'django_migrations held: the blocker named');
    is(scalar(() = $r->{err} =~ /\n/g), 1, 'django_migrations held: one line');
    is(($r->{json}{blockers} || [])->[0]{pid}, $hpid,
       'django_migrations held: --json: the blocker');
    ok($el < 30, sprintf('django_migrations held: bounded (%.2f s)', $el));
    diag(sprintf('verify behind a locked django_migrations: %.2f s', $el));
    # no Django read at all (--from): migctl's own read meets the lock
    $r = mc($e, '--json', 'verify', '--from', $doc);
    is($r->{rc}, 3, 'django_migrations held, --from: exit 3, not 1 (drift)');
    like($r->{err}, qr/django_migrations.*blocked by pid $hpid \(user postgres, application verify-dm,/,
         'django_migrations held, --from: the blocker named');
    sql($e, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            . "WHERE application_name = 'verify-dm'");
    $h->close;

    my $bad = $t->write_file('bad.txt', "not json\n");
    $r = mc($e, 'verify', '--from', $bad);
    is($r->{rc}, 2, '--from garbage: exit 2');
    like($r->{err}, qr/not a migctl verify document/, '--from garbage: says so');
}

# migctl's queries never failed, but the read that met the held
# django_migrations on purpose
$t->check_pg_log('pg',
                 allow => qr/^migctl ERROR:  canceling statement due to lock timeout( at character \d+)?$/);

done_testing;
