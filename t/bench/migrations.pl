# migrations.pl: `migctl migrations` with two big plans (this release's and
# the previous one's) against a django_migrations of the same size: the
# time must grow linearly with the plan, not with its square.  Sizes
# 2,500, 5,000 and 10,000 lines side by side; the best of 3 runs each.
#   BENCH_MIGCTL=path   the binary (default build/migctl)
use strict;
use warnings;
use lib 't/lib';
use MigTest;
use Time::HiRes qw(time);

my $bin = $ENV{BENCH_MIGCTL} || MigTest->root . '/build/migctl';
my $t = MigTest->new;
$t->start_pg('pg');
my %env = $t->pg_env('pg');
$t->psql('pg', $t->read_file($t->root . '/t/fixtures/db/django_migrations.sql'));

for my $n (2500, 5000, 10000) {
    # 100 apps; this release adds 50 migrations, the previous knew them all
    # but the last 50; one squash per app in this release's plan
    my (@plan, @prev, @rows);
    my $per = $n / 100;
    for my $a (1 .. 100) {
        for my $m (1 .. $per) {
            my $name = sprintf '%04d_step_%d', $m, $m * 7;
            my $rec = $a * $per + $m <= 100 * $per + $per - 50;
            push @plan, sprintf '[%s]  app%d.%s', $rec ? 'X' : ' ', $a, $name;
            push @prev, sprintf '[X]  app%d.%s', $a, $name if $rec;
            push @rows, "('app$a', '$name', now())" if $rec;
        }
    }
    $t->psql('pg', 'TRUNCATE django_migrations; INSERT INTO django_migrations'
                   . ' (app, name, applied) VALUES ' . join(',', @rows));
    my $p = $t->write_file("plan.$n", join("\n", @plan) . "\n");
    my $q = $t->write_file("prev.$n", join("\n", @prev) . "\n");
    my $best;
    for (1 .. 3) {
        my $t0 = time;
        my $r = $t->run({ env => \%env, timeout => 600 }, $bin, '--json',
                        'migrations', '--plan', $p, '--previous-plan', $q);
        my $s = time - $t0;
        die "migctl migrations: exit $r->{rc}: $r->{err}" if $r->{rc} > 1;
        $best = $s if !defined $best || $s < $best;
    }
    printf "migrations  %6d-line plans, %6d recorded  %8.3f s\n",
           scalar @plan, scalar @rows, $best;
}
