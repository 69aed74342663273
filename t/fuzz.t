# fuzz.t: the short run of every libFuzzer target (FUZZ_TEST_S seconds
# each, default 30) over its corpus, regression inputs included; the long
# run is make fuzz (FUZZ_S, default 600).  A crash, a leak in our code or a
# sanitizer report fails the test and leaves the input in build/fuzz/.
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use MigTest;

my $t = MigTest->new;
my $root = $t->root;
my $s = $ENV{FUZZ_TEST_S} // 30;
my @targets = map { m{t/fuzz/(\w+)\.c$} ? $1 : () } glob("$root/t/fuzz/*.c");
ok(@targets >= 5, scalar(@targets) . ' fuzz targets');

for my $name (@targets) {
    my $bin = "$root/build/fuzz/$name";
    ok(-x $bin, "$name is built (make fuzzers)") or next;
    my @seeds = glob("$root/t/fuzz/corpus/$name/*");
    ok(@seeds > 0, "$name has " . scalar(@seeds) . ' seed inputs');
    my $r = $t->run({ timeout => $s + 120, cwd => $root,
                      env => { FUZZ_S => $s } },
                    'bash', "$root/t/fuzz/run.sh", $bin);
    is($r->{rc}, 0, "$name: ${s}s without a crash") or diag($r->{out});
    my ($units) = $r->{out} =~ /number_of_executed_units: (\d+)/;
    ok(($units // 0) > @seeds, "$name ran " . ($units // 0) . ' inputs');
}

done_testing;
