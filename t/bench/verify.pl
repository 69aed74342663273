# verify.pl: what history drift costs to find.  A generated Django app of
# 300 migrations (models, fields, indexes), migrated for real, one column
# dropped by hand: `migctl verify` (one Django process for all 300) next
# to one `manage.py sqlmigrate` (what each of 300 separate calls would
# cost).  Then `migctl diagnose` against a database of 10,000 tables.
# Reported, not asserted: the times depend on the machine.
use strict;
use warnings;
use lib 't/lib';
use MigTest;
use Time::HiRes qw(time);

my $n = $ENV{BENCH_MIGRATIONS} || 300;
my $ntables = $ENV{BENCH_TABLES} || 10000;
my $t = MigTest->new;
my $root = $t->root;
my $bin = $ENV{MIGCTL} || "$root/build/migctl";
my $manage = "/usr/bin/python3 $root/t/django/manage.py";
$t->start_pg('pg');
my %pg = $t->pg_env('pg');

# --- the generated app: benchgen, $n migrations -------------------------

my $app = $t->dir . '/py/benchgen';
$t->write_file("$app/__init__.py", '');
$t->write_file("$app/models.py", "from django.db import models  # noqa\n");
$t->write_file("$app/migrations/__init__.py", '');
my (@models, $prev, %added);
for my $i (1 .. $n) {
    my $name = sprintf('%04d_step', $i);
    my $dep = $prev ? "[(\"benchgen\", \"$prev\")]" : '[]';
    my $op;
    if ($i == 1 || $i % 6 == 0) {
        my $m = 'M' . scalar(@models);
        push @models, $m;
        $op = "migrations.CreateModel(name=\"$m\", fields=[(\"id\", "
            . "models.AutoField(primary_key=True, serialize=False)), "
            . "(\"label\", models.CharField(max_length=40))])";
    } elsif ($i % 10 == 0) {
        my $m = lc $models[-1];
        $op = "migrations.AddIndex(model_name=\"$m\", index=models.Index("
            . "fields=[\"label\"], name=\"bg_idx_$i\"))";
    } else {
        my $m = lc $models[$i % @models];
        $added{$i} = $m;
        $op = "migrations.AddField(model_name=\"$m\", name=\"f$i\", "
            . "field=models.IntegerField(null=True))";
    }
    $t->write_file("$app/migrations/$name.py",
        "from django.db import migrations, models\n\n\n"
        . "class Migration(migrations.Migration):\n"
        . ($i == 1 ? "    initial = True\n" : '')
        . "    dependencies = $dep\n"
        . "    operations = [$op]\n");
    $prev = $name;
}

my %e = (%pg, MIGTEST_APPS => 'benchgen', PYTHONPATH => $t->dir . '/py',
         PYTHONDONTWRITEBYTECODE => 1);
my $t0 = time;
my $r = $t->run({ env => \%e, timeout => 1800 }, '/usr/bin/python3',
                "$root/t/django/manage.py", 'migrate', 'benchgen');
die "migrate: $r->{err}" if $r->{rc};
printf "migrate of %d migrations: %.1f s\n", $n, time - $t0;

# drift: a column of a migration in the middle dropped by hand
my $mid = int($n / 2);
$mid++ until $added{$mid};
$t->psql('pg', "ALTER TABLE benchgen_$added{$mid} DROP COLUMN f$mid");

$t0 = time;
$r = $t->run({ env => \%e, timeout => 1800 }, $bin, '--json', 'verify',
             '--manage', $manage);
my $verify = time - $t0;
my ($drift) = $r->{out} =~ /"name": "(\d+_step)",\s*"status": "missing"/;
printf "verify, %d migrations, one Django process: %.2f s (exit %d, "
     . "drift found in %s)\n", $n, $verify, $r->{rc}, $drift // 'none';

$t0 = time;
$r = $t->run({ env => \%e, timeout => 600 }, '/usr/bin/python3',
             "$root/t/django/manage.py", 'sqlmigrate', 'benchgen',
             sprintf('%04d', $n));
my $one = time - $t0;
printf "one manage.py sqlmigrate: %.2f s (x %d separate calls: ~%.0f s)\n",
       $one, $n, $one * $n;

# --- diagnose against $ntables tables ------------------------------------

# in chunks: one transaction of 10,000 CREATE TABLEs runs out of locks
for (my $k = 1; $k <= $ntables; $k += 1000) {
    my $to = $k + 999 > $ntables ? $ntables : $k + 999;
    $t->psql('pg', "DO \$\$ BEGIN FOR i IN $k..$to LOOP "
                 . "EXECUTE format('CREATE TABLE wide_%s (id int, v text)', i); "
                 . "END LOOP; END \$\$", timeout => 1800);
}
my $sql = $t->write_file('wide.sql', <<'SQL');
BEGIN;
--
-- Add field note to wide
--
ALTER TABLE "wide_5000" ADD COLUMN "note" varchar(20) NULL;
CREATE INDEX "wide_5000_note" ON "wide_5000" ("note");
COMMIT;
SQL
my $tb = $t->write_file('wide.tb',
    "psycopg2.errors.LockNotAvailable: canceling statement due to lock timeout\n");
$t0 = time;
$r = $t->run({ env => \%e, timeout => 600 }, $bin, '--json', 'diagnose',
             '--app', 'benchgen', '--migration', '9999_wide', '--sql', $sql,
             '--traceback', $tb);
my ($path) = $r->{out} =~ /"path": "(\w+)"/;
printf "diagnose against %d tables: %.2f s (exit %d, path %s)\n", $ntables,
       time - $t0, $r->{rc}, $path // '?';
$tb = $t->write_file('drift.tb', "psycopg2.errors.UndefinedColumn: column "
                     . "\"f$mid\" of relation \"benchgen_$added{$mid}\" does "
                     . "not exist\n");
$t0 = time;
$r = $t->run({ env => \%e, timeout => 600 }, $bin, '--json', 'diagnose',
             '--app', 'benchgen', '--migration', '9999_wide', '--sql', $sql,
             '--traceback', $tb, '--manage', $manage);
($path) = $r->{out} =~ /"path": "(\w+)"/;
my ($cause) = $r->{out} =~ /"history_drift": \{[^}]*?"name": "(\w+)"/s;
printf "diagnose of a 42703 with the drift check (one Django process, %d "
     . "migrations, %d tables): %.2f s (exit %d, path %s, root cause %s)\n",
       $n, $ntables, time - $t0, $r->{rc}, $path // '?', $cause // 'none';

# --- inspect at 1,000 and 10,000 tables, peak RSS, start-up ---------------

# wall seconds and peak RSS (KB) of one command, by GNU time
sub measure {
    my (@cmd) = @_;
    my $f = $t->dir . '/time.out';
    my $r = $t->run({ env => \%e, timeout => 600 }, '/usr/bin/time', '-f',
                    '%e %M', '-o', $f, @cmd);
    # the last line: GNU time writes "Command exited with ..." before it
    my @l = split /\n/, ($t->read_file($f) // '0 0');
    my ($secs, $kb) = split ' ', ($l[-1] // '0 0');
    return ($secs, $kb, $r);
}

for my $k (1000, $ntables) {
    my $body = join('', map { "ALTER TABLE \"wide_$_\" ADD COLUMN \"note\" "
                              . "integer NULL;\n" } 1 .. $k);
    my $f = $t->write_file("wide_$k.sql", "BEGIN;\n$body" . "COMMIT;\n");
    my ($secs, $kb, $r) = measure($bin, 'inspect', '--sql', $f);
    printf "inspect of %d added columns (%d tables in the database): "
         . "%.2f s, peak RSS %.1f MB (exit %d)\n", $k, $ntables, $secs,
           $kb / 1024, $r->{rc};
}

{
    my ($secs, $kb) = measure($bin, 'diagnose', '--app', 'benchgen',
                              '--migration', '9999_wide', '--sql', $sql,
                              '--traceback', $tb);
    printf "diagnose against %d tables: peak RSS %.1f MB\n", $ntables,
           $kb / 1024;
}

{
    my $runs = 50;
    my $t0 = time;
    for (1 .. $runs) {
        $t->run({}, $bin, '--version');
    }
    my ($secs, $kb) = measure($bin, '--version');
    printf "start-up: migctl --version %.1f ms (mean of %d), peak RSS "
         . "%.1f MB\n", (time - $t0) * 1000 / $runs, $runs, $kb / 1024;
}
