#!/usr/bin/perl

# migrations.t: `migctl migrations` against a real PostgreSQL:
# django_migrations vs `showmigrations --plan` (and list) output of this
# and the previous release; errors for a non-Django database, bad plans
# and an unreachable server.

use strict;
use warnings;

use lib 't/lib';
use JSON::PP;
use MigTest;
use Test::More;

my $t = MigTest->new;
my $fx = $t->root . '/t/fixtures/db';
$t->start_pg('pg');
my %env = $t->pg_env('pg');

sub mig {
    my (@args) = @_;
    my $o = ref $args[0] eq 'HASH' ? shift @args : {};
    my $r = $t->migctl({ env => \%env, %$o }, '--json', 'migrations', @args);
    $r->{json} = eval { decode_json($r->{out}) };
    unlike($r->{err}, qr/AddressSanitizer|runtime error|LeakSanitizer/,
           "no sanitizer report (@args)");
    return $r;
}

sub names {
    my ($list) = @_;
    return [map { "$_->{app}.$_->{name}" } @{ $list || [] }];
}

# not a Django database yet: exit 2, one clear line

my $r = mig();
is($r->{rc}, 2, 'no django_migrations: exit 2');
like($r->{err}, qr/^migctl: migrations: not a Django database: no django_migrations table in database "app"/,
     'no django_migrations: says so');
is(scalar(() = $r->{err} =~ /\n/g), 1, 'no django_migrations: one line');

$t->psql('pg', $t->read_file("$fx/django_migrations.sql"));
$t->psql('pg', <<'SQL');
INSERT INTO django_migrations (app, name, applied) VALUES
  ('contenttypes', '0001_initial', '2026-11-25 10:22:33+00'),
  ('auth', '0001_initial', '2026-11-25 10:22:33+00'),
  ('shop', '0001_initial', '2026-11-25 10:22:33+00'),
  ('shop', '0002_auto_20261125_1022', '2026-11-25 10:22:34+00'),
  ('legacy', '0001_initial', '2026-11-25 10:22:35+00');
SQL

# without a plan: what the database has

$r = mig();
is($r->{rc}, 0, 'no plan: exit 0');
is_deeply(names($r->{json}{applied}),
          ['contenttypes.0001_initial', 'auth.0001_initial',
           'shop.0001_initial', 'shop.0002_auto_20261125_1022',
           'legacy.0001_initial'], 'applied, in the order applied');
is($r->{json}{applied}[3]{applied_at}, '2026-11-25T10:22:34Z',
   'applied_at in UTC');
ok(!$r->{json}{plan}, 'plan: false');
ok(!defined $r->{json}{rollback_safe}, 'rollback_safe null without a plan');

# this release's plan (showmigrations --plan -v 2) and the previous one's

$r = mig('--plan', "$fx/plan_current.txt", '--previous-plan',
         "$fx/plan_previous.txt");
is($r->{rc}, 1, 'pending and unknown: exit 1');
is_deeply(names($r->{json}{pending}), ['shop.0003_data'], 'pending');
is_deeply(names($r->{json}{unknown_to_release}), ['legacy.0001_initial'],
          'recorded but unknown to this release');
is_deeply(names($r->{json}{unknown_to_previous}),
          ['shop.0002_auto_20261125_1022'],
          'recorded but unknown to the previous release');
ok($r->{json}{rollback_safe} == JSON::PP::false,
   'rolling back code is unsafe');
is_deeply($r->{json}{plan_mismatch}, [], 'plan agrees with the database');

# the list format of showmigrations gives the same answer

$r = mig('--plan', "$fx/list_current.txt");
is($r->{rc}, 1, 'list format: exit 1');
is_deeply(names($r->{json}{pending}), ['shop.0003_data'], 'list: pending');
is_deeply(names($r->{json}{unknown_to_release}), ['legacy.0001_initial'],
          'list: unknown to release');

# from stdin

$r = mig({ stdin => $t->read_file("$fx/plan_current.txt") }, '--plan', '-');
is_deeply(names($r->{json}{pending}), ['shop.0003_data'], 'plan on stdin');

# text output

$r = $t->migctl({ env => \%env }, 'migrations', '--plan',
                "$fx/plan_current.txt", '--previous-plan',
                "$fx/plan_previous.txt");
like($r->{out}, qr/^applied \(5\):\n  contenttypes\s+0001_initial\s+2026-11-25T10:22:33Z$/m,
     'text: applied table');
like($r->{out}, qr/^pending \(in this release, not recorded\) \(1\):\n  shop\.0003_data$/m,
     'text: pending');
like($r->{out}, qr/^unknown to the previous release \(1\):\n  shop\.0002_auto_20261125_1022$/m,
     'text: unknown to previous');
like($r->{out}, qr/^rolling back code: UNSAFE/m, 'text: rollback unsafe');

# everything recorded and known: exit 0, rollback safe

$t->psql('pg', "DELETE FROM django_migrations WHERE app = 'legacy';"
               . " INSERT INTO django_migrations (app, name, applied)"
               . " VALUES ('shop', '0003_data', now())");
my $prev = $t->write_file('prev_all.txt',
                          $t->read_file("$fx/plan_current.txt"));
$r = mig('--plan', "$fx/plan_current.txt", '--previous-plan', $prev);
is($r->{rc}, 0, 'all applied and known: exit 0') or diag($r->{out});
is_deeply($r->{json}{pending}, [], 'nothing pending');
ok($r->{json}{rollback_safe} == JSON::PP::true, 'rollback safe');

# the plan says "[ ]" for a recorded migration: made against another db

is_deeply($r->{json}{plan_mismatch},
          [{ app => 'shop', name => '0003_data', plan_says => 'not applied',
             database_says => 'recorded' }], 'plan/database mismatch');

# a squashed migration: the plan shows the squash, the database keeps the
# replaced ones: they are known, not "unknown to this release"

$t->psql('pg', "INSERT INTO django_migrations (app, name, applied) VALUES"
               . " ('blog', '0001_initial', now()),"
               . " ('blog', '0002_post_title', now()),"
               . " ('blog', '0001_squashed_0002_post_title', now())");
my $sq = $t->write_file('squash.txt', $t->read_file("$fx/plan_current.txt")
                        . "[X]  blog.0001_squashed_0002_post_title\n"
                        . "[ ]  blog.0003_post_body\n");
$r = mig('--plan', $sq, '--previous-plan', $sq);
is_deeply(names($r->{json}{unknown_to_release}), [],
          'squash: replaced migrations are not unknown');
is_deeply($r->{json}{replaced_by_squash},
          [{ app => 'blog', name => '0001_initial',
             squashed_into => '0001_squashed_0002_post_title' },
           { app => 'blog', name => '0002_post_title',
             squashed_into => '0001_squashed_0002_post_title' }],
          'squash: replaced ones listed');
is_deeply(names($r->{json}{unknown_to_previous}), [],
          'squash: known to the previous release too');
is_deeply(names($r->{json}{pending}), ['blog.0003_post_body'],
          'squash: the next one pending');
$t->psql('pg', "DELETE FROM django_migrations WHERE app = 'blog'");

# bad input

my $empty = $t->write_file('empty.txt', '');
$r = mig('--plan', $empty);
is($r->{rc}, 2, 'empty plan: exit 2');
like($r->{err}, qr/^migctl: migrations: .*empty\.txt: no migration in it: give the output of manage.py showmigrations --plan$/m,
     'empty plan: says so');

$r = mig('--plan', "$fx/nonexistent.txt");
is($r->{rc}, 2, 'missing plan file: exit 2');
like($r->{err}, qr/cannot open .*nonexistent\.txt/, 'missing plan: says so');

$r = mig('--plan');
is($r->{rc}, 2, '--plan without a file: exit 2');

$r = mig('--frobnicate');
is($r->{rc}, 2, 'unknown option: exit 2');

$r = $t->migctl({ env => \%env }, 'migrations', '--help');
is($r->{rc}, 0, '--help: exit 0');
like($r->{out}, qr/^usage: migctl .*migrations/, '--help on stdout');

# unreachable server

$r = mig({ env => { %env, PGPORT => $t->port('nothing') } });
is($r->{rc}, 3, 'unreachable: exit 3');
like($r->{err}, qr/^migctl: migrations: cannot connect to PostgreSQL/,
     'unreachable: says so');

# a DATABASE_URL wins over PG* variables
$r = mig({ env => { %env, PGPORT => $t->port('nothing'),
                    DATABASE_URL => "postgresql://postgres\@127.0.0.1:"
                                    . $t->port('pg') . '/app' } });
is($r->{rc}, 0, 'DATABASE_URL used') or diag($r->{err});

# big plans (the index behind the comparison): 10,000 lines each, the
# same answers a scan would give; duplicates and squashes included
{
    my (@plan, @prev, @rows);
    for my $a (1 .. 100) {
        for my $m (1 .. 100) {
            my $name = sprintf '%04d_m', $m;
            push @plan, "[X]  big$a.$name";
            push @prev, "[X]  big$a.$name" unless $a == 7 && $m > 98;
            push @rows, "('big$a', '$name', now())"
                unless $a == 3 && $m == 50;
        }
    }
    push @plan, '[X]  big1.0001_m';                   # listed twice
    push @plan, '[X]  squashy.0001_squashed_0004_s';  # replaces 0001..0004
    push @rows, map { "('squashy', '000${_}_s', now())" } 1 .. 4;
    push @rows, "('gone', '0001_old', now())";
    $t->psql('pg', 'INSERT INTO django_migrations (app, name, applied)'
                   . ' VALUES ' . join(',', @rows));
    my $p = $t->write_file('big_plan.txt', join("\n", @plan) . "\n");
    my $q = $t->write_file('big_prev.txt', join("\n", @prev) . "\n");
    $r = mig('--plan', $p, '--previous-plan', $q);
    is($r->{rc}, 1, 'big plans: pending and unknown: exit 1');
    is_deeply(names($r->{json}{pending}),
              ['big3.0050_m', 'squashy.0001_squashed_0004_s'],
              'big plans: the unrecorded ones are pending');
    ok((grep { $_ eq 'gone.0001_old' } @{ names($r->{json}{unknown_to_release}) })
       && !grep({ /^(big|squashy)/ } @{ names($r->{json}{unknown_to_release}) }),
       'big plans: unknown to this release: only gone.0001_old');
    is_deeply([map { "$_->{app}.$_->{name}>$_->{squashed_into}" }
               @{ $r->{json}{replaced_by_squash} }],
              [map { "squashy.000${_}_s>0001_squashed_0004_s" } 1 .. 4],
              'big plans: replaced by the squash');
    my @up = grep { /^big/ } @{ names($r->{json}{unknown_to_previous}) };
    is_deeply(\@up, ['big7.0099_m', 'big7.0100_m'],
              'big plans: unknown to the previous release');
    $t->psql('pg', "DELETE FROM django_migrations WHERE app LIKE 'big%'"
                   . " OR app IN ('squashy', 'gone')");
}

$t->check_pg_log('pg');   # migctl's queries never failed

done_testing;
