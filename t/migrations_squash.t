#!/usr/bin/perl

# migrations_squash.t: `migctl migrations` with squashes, against real
# Django 3.2 and PostgreSQL 15.  A plan has no replaces lists: migctl
# guesses them from "N_squashed_M" names and says so; with --manage /
# --previous-manage it reads Django's own.  A squash made with
# --squashed-name (sqnamed), and one whose name says more than it replaces
# (squashy), where the guess gives the wrong answer.  A Django that fails,
# and django_migrations locked while Django reads it.

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
my $py = '/usr/bin/python3 ' . $t->root . '/t/django/manage.py';
my %mods = (
    cur  => 'sqnamed=sqnamed.migrations,squashy=squashy.migrations',
    prev => 'sqnamed=sqnamed.migrations_prev,squashy=squashy.migrations_prev',
);

# a release's manage.py command line, as an operator gives --manage
sub manage {
    my ($rel, $apps) = @_;
    return "DJANGO_SETTINGS_MODULE=sqproj.settings MIGTEST_APPS=$apps"
           . " MIGTEST_MIGRATIONS=$mods{$rel} $py";
}

sub new_db {
    my ($name) = @_;
    $t->psql('pg', "CREATE DATABASE sq_$name", db => 'postgres');
    return { %pg, PGDATABASE => "sq_$name", PYTHONDONTWRITEBYTECODE => 1 };
}

sub sql {
    my ($env, $sql) = @_;
    return $t->psql('pg', $sql, db => $env->{PGDATABASE});
}

sub dj {
    my ($env, $rel, $apps, @args) = @_;
    my $r = $t->django({ env => { %$env, MIGTEST_APPS => $apps,
                                  MIGTEST_MIGRATIONS => $mods{$rel},
                                  DJANGO_SETTINGS_MODULE => 'sqproj.settings' } },
                       'django', @args);
    return $r;
}

# showmigrations --plan of a release, in a file
sub plan_of {
    my ($env, $rel, $apps) = @_;
    my $r = dj($env, $rel, $apps, 'showmigrations', '--plan');
    is($r->{rc}, 0, "showmigrations --plan ($rel $apps)") or diag($r->{err});
    return $t->write_file("plan_${rel}_$env->{PGDATABASE}.txt", $r->{out});
}

sub mc {
    my ($env, @args) = @_;
    my $o = ref $args[0] eq 'HASH' ? shift @args : {};
    my $r = $t->migctl({ timeout => 300, %$o, env => $env }, @args);
    unlike($r->{err}, qr/Sanitizer|runtime error/,
           "no sanitizer report: @args[0 .. ($#args < 3 ? $#args : 3)]");
    $r->{json} = eval { $json->decode($r->{out}) } // {};
    return $r;
}

sub names {
    my ($list) = @_;
    return [map { "$_->{app}.$_->{name}" } @{ $list || [] }];
}

sub replaced {
    my ($r) = @_;
    return [map { "$_->{name}>$_->{squashed_into}" }
            @{ $r->{json}{replaced_by_squash} || [] }];
}

# --- a squash made with --squashed-name: "0001_compact" -----------------

{
    my $e = new_db('named');
    # the database as the previous release left it: 0001..0003 recorded
    my $m = dj($e, 'prev', 'sqnamed', 'migrate', 'sqnamed');
    is($m->{rc}, 0, 'named: the previous release migrated') or diag($m->{err});
    my $cur = plan_of($e, 'cur', 'sqnamed');
    my $prev = plan_of($e, 'prev', 'sqnamed');
    like($t->read_file($cur), qr/^\[X\]  sqnamed\.0001_compact$/m,
         'named: this release shows the squash applied');

    # the guess from names: the squash is not seen, its rows are unknown
    my $r = mc($e, '--json', 'migrations', '--plan', $cur,
               '--previous-plan', $prev);
    is($r->{json}{squash_source}, 'names', 'named: names: squash_source');
    is($r->{json}{previous_squash_source}, 'names',
       'named: names: previous_squash_source');
    is_deeply(names($r->{json}{unknown_to_release}),
              ['sqnamed.0001_initial', 'sqnamed.0002_item_size',
               'sqnamed.0003_item_color'],
              'named: names: the guess cannot see a custom squash name');

    my $tx = mc($e, 'migrations', '--plan', $cur, '--previous-plan', $prev);
    like($tx->{out}, qr/^squashes: guessed from names .*give --manage/m,
         'named: names: the text says the squashes are guessed');
    like($tx->{out}, qr/^the previous release's squashes: guessed from names .*give --previous-manage/m,
         'named: names: and for the previous release');

    # Django's replaces lists
    my $t0 = time;
    $r = mc($e, '--json', 'migrations', '--plan', $cur,
            '--manage', manage('cur', 'sqnamed'),
            '--previous-plan', $prev);
    my $el = time - $t0;
    is($r->{rc}, 1, 'named: django: exit 1 (0004 pending)') or diag($r->{err});
    is($r->{json}{squash_source}, 'django', 'named: django: squash_source');
    is_deeply(names($r->{json}{unknown_to_release}), [],
              'named: django: nothing unknown to this release');
    is_deeply(replaced($r),
              ['0001_initial>0001_compact', '0002_item_size>0001_compact',
               '0003_item_color>0001_compact'],
              'named: django: replaced by the squash, from its replaces');
    is_deeply(names($r->{json}{pending}), ['sqnamed.0004_item_note'],
              'named: django: only 0004 pending (the squash is applied)');
    is_deeply($r->{json}{plan_mismatch}, [],
              'named: django: plan and database agree');
    ok($r->{json}{rollback_safe}, 'named: django: rollback safe');
    diag(sprintf('migrations --manage, one Django process: %.2f s', $el));

    # --manage alone: this release's migrations from Django, no plan file
    $r = mc($e, '--json', 'migrations', '--manage', manage('cur', 'sqnamed'),
            '--previous-manage', manage('prev', 'sqnamed'));
    is($r->{rc}, 1, 'named: --manage alone: exit 1');
    ok($r->{json}{plan}, 'named: --manage alone: the release is known');
    is_deeply(names($r->{json}{pending}), ['sqnamed.0004_item_note'],
              'named: --manage alone: 0004 pending');
    is_deeply(names($r->{json}{unknown_to_release}), [],
              'named: --manage alone: nothing unknown');
    is($r->{json}{previous_squash_source}, 'django',
       'named: --previous-manage: previous_squash_source');
    is_deeply(names($r->{json}{unknown_to_previous}), [],
              'named: --previous-manage: nothing unknown to previous');
    ok($r->{json}{rollback_safe}, 'named: --previous-manage: rollback safe');

    $tx = mc($e, 'migrations', '--manage', manage('cur', 'sqnamed'));
    like($tx->{out}, qr/^squashes: from Django's replaces lists/m,
         'named: text: the squashes come from Django');
    like($tx->{out}, qr/^replaced by a squash: sqnamed\.0001_initial -> 0001_compact$/m,
         'named: text: replaced');

    # after this release's migrate: the squash row is recorded too
    $m = dj($e, 'cur', 'sqnamed', 'migrate', 'sqnamed');
    is($m->{rc}, 0, 'named: this release migrated') or diag($m->{err});
    $r = mc($e, '--json', 'migrations', '--manage', manage('cur', 'sqnamed'),
            '--previous-manage', manage('prev', 'sqnamed'));
    is($r->{rc}, 0, 'named: migrated: exit 0') or diag($r->{out});
    is_deeply(names($r->{json}{unknown_to_previous}),
              ['sqnamed.0004_item_note', 'sqnamed.0001_compact'],
              'named: migrated: 0004 and the squash (recorded last) unknown '
              . 'to previous');
    ok(!$r->{json}{rollback_safe}, 'named: migrated: rollback unsafe');

    # a fully migrated database still fails the guess (health's
    # migrations check reads a plan this way): exit 1
    $cur = plan_of($e, 'cur', 'sqnamed');
    $r = mc($e, '--json', 'migrations', '--plan', $cur);
    is($r->{rc}, 1, 'named: migrated: names: exit 1, the replaced rows unknown');
    $r = mc($e, '--json', 'migrations', '--plan', $cur, '--manage',
            manage('cur', 'sqnamed'));
    is($r->{rc}, 0, 'named: migrated: django: exit 0') or diag($r->{out});
}

# --- a squash whose name says more than it replaces ---------------------

{
    # squashy.0001_squashed_0003_box replaces 0001 and 0002 only.  The
    # previous release: those and the squash; this release adds
    # 0003_box_color, applied; a 0003_box_legacy row from a migration
    # since renamed
    my $e = new_db('mislead');
    my $m = dj($e, 'prev', 'squashy', 'migrate', 'squashy');
    is($m->{rc}, 0, 'mislead: the previous release migrated') or diag($m->{err});
    $m = dj($e, 'cur', 'squashy', 'migrate', 'squashy');
    is($m->{rc}, 0, 'mislead: this release migrated') or diag($m->{err});
    sql($e, "INSERT INTO django_migrations (app, name, applied)"
            . " VALUES ('squashy', '0003_box_legacy', now())");
    my $cur = plan_of($e, 'cur', 'squashy');
    my $prev = plan_of($e, 'prev', 'squashy');

    # the guess: 0003_box_color and 0003_box_legacy are "in" 0001..0003
    my $r = mc($e, '--json', 'migrations', '--plan', $cur,
               '--previous-plan', $prev);
    is_deeply(names($r->{json}{unknown_to_release}), [],
              'mislead: names: the renamed 0003 is taken as replaced');
    ok($r->{json}{rollback_safe},
       'mislead: names: rollback "safe" (wrong: the previous release '
       . 'does not know 0003_box_color)');

    # Django's replaces lists
    $r = mc($e, '--json', 'migrations', '--plan', $cur, '--previous-plan',
            $prev, '--manage', manage('cur', 'squashy'), '--previous-manage',
            manage('prev', 'squashy'));
    is($r->{rc}, 1, 'mislead: django: exit 1 (unknown to this release)')
        or diag($r->{err});
    is_deeply(names($r->{json}{unknown_to_release}),
              ['squashy.0003_box_legacy'],
              'mislead: django: the renamed 0003 is unknown to this release');
    is_deeply(replaced($r),
              ['0001_initial>0001_squashed_0003_box',
               '0002_box_weight>0001_squashed_0003_box'],
              'mislead: django: only what the squash replaces');
    is_deeply(names($r->{json}{unknown_to_previous}),
              ['squashy.0003_box_color', 'squashy.0003_box_legacy'],
              'mislead: django: unknown to the previous release');
    ok(defined $r->{json}{rollback_safe} && !$r->{json}{rollback_safe},
       'mislead: django: rollback unsafe');
    is($r->{json}{previous_squash_source}, 'django',
       'mislead: django: previous_squash_source');
}

# --- a Django that fails, bad input -------------------------------------

{
    my $e = new_db('fail');
    is(dj($e, 'prev', 'sqnamed', 'migrate', 'sqnamed')->{rc}, 0,
       'fail: a Django database');
    my $r = mc($e, '--json', 'migrations', '--manage', manage('cur', 'nosuchapp'));
    is($r->{rc}, 5, 'fail: Django cannot load: exit 5');
    like($r->{json}{error}, qr/manage\.py shell' failed \(exit \d+\)/,
         'fail: says which command failed');
    $r = mc($e, 'migrations', '--manage', 'echo hello; true #');
    is($r->{rc}, 5, 'fail: no document: exit 5');
    like($r->{err}, qr/^migctl: migrations: .*printed no migctl-verify-json line/,
         'fail: no document: says so');
    $r = mc($e, 'migrations', '--manage');
    is($r->{rc}, 2, 'fail: --manage without a command: exit 2');
    my $t1 = time;
    $r = mc($e, 'migrations', '--manage', 'sleep 30; true #',
            '--timeout', '1s');
    my $el1 = time - $t1;
    is($r->{rc}, 5, 'fail: a hanging Django: exit 5');
    like($r->{err}, qr/did not finish in 1000 ms \(killed\)/,
         'fail: a hanging Django: killed at --timeout');
    ok($el1 < 15, sprintf('fail: a hanging Django: bounded (%.2f s)', $el1));

    # django_migrations held: Django gives up; migctl names the blocker
    my $h = $t->pg_session('pg', db => $e->{PGDATABASE}, app => 'sq-holder');
    $h->send('BEGIN; LOCK TABLE django_migrations IN ACCESS EXCLUSIVE MODE;'
             . " SELECT 'held'; SELECT pg_sleep(120);");
    ok($t->wait_for(sub {
        sql($e, "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                . "WHERE a.application_name = 'sq-holder' AND l.granted "
                . "AND l.mode = 'AccessExclusiveLock'") > 0 }, 15),
       'a session holds django_migrations in ACCESS EXCLUSIVE');
    my $hpid = sql($e, "SELECT pid FROM pg_stat_activity WHERE application_name = 'sq-holder'");
    # migctl's own read of django_migrations would meet the lock first:
    # give it the plan from Django only
    my $t0 = time;
    $r = mc($e, { timeout => 120 }, '--json', '--lock-timeout', '1s',
            'migrations', '--manage', manage('cur', 'sqnamed'));
    my $el = time - $t0;
    is($r->{rc}, 3, 'locked: exit 3') or diag($r->{err});
    like($r->{err}, qr/blocked by pid $hpid \(user \w+, application sq-holder, [^)]*AccessExclusiveLock on public\.django_migrations\)/,
         'locked: the blocker named');
    is(($r->{json}{blockers} || [])->[0]{pid}, $hpid,
       'locked: --json: the blocker');
    ok($el < 60, sprintf('locked: bounded (%.2f s)', $el));
    diag(sprintf('migrations --manage behind a lock: %.2f s', $el));
    sql($e, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            . "WHERE application_name = 'sq-holder'");
    $h->close;
}

# migctl's queries never failed, but the read that met the held
# django_migrations on purpose
$t->check_pg_log('pg',
                 allow => qr/^migctl ERROR:  canceling statement due to lock timeout( at character \d+)?$/);

done_testing;
