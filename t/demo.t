# demo.t: make demo's script runs an incident end to end on a local stack
# (run, diagnose, health, maintenance off, evidence);
# with KEEP=1 the stack stays up, env.sh points migctl at it and stop.sh
# stops it; every command it prints can be pasted (quoted).
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use MigTest;

my $t = MigTest->new;
my $root = $t->root;

my $r = $t->run({ timeout => 300, env => { KEEP => 1 } },
                'bash', "$root/conf-examples/demo.sh");
is($r->{rc}, 0, 'the demo runs to the end') or diag($r->{out} . $r->{err});
my $out = $r->{out};
$out =~ s/\e\[[0-9;]*m//g;

like($out, qr/http  -> 503\n\s+https -> 503/, 'contained: both ports 503');
like($out, qr/the shop app answers/, 'the bypass token reaches the app');
like($out, qr/\(exit 4\)/, 'maintenance off refused while unhealthy');
like($out, qr/http  -> 200\n\s+https -> 200\s*\n(?:(?!-> 503).)*\z/s,
     'reopened at the end: both ports 200');

# the printed commands parse as shell words, quoting kept
my @cmds = $out =~ /^\$ (.+)$/mg;
cmp_ok(scalar @cmds, '>=', 10, scalar(@cmds) . ' commands printed');
for my $c (grep { /'/ } @cmds) {
    my $p = $t->run({}, 'bash', '-n', '-c', $c);
    is($p->{rc}, 0, "pasteable: $c");
}
like($out, qr/^\$ migctl run .*--plan-cmd 'cat \S+previous\.plan' -- /m,
     'an argument with spaces is quoted');
like($out, qr/\(exit 5: the site went into maintenance before migctl returned\)/,
     'the migration step runs under migctl run, which sets the flag');
like($out, qr/^FAIL +migrations /m, 'health shows the failing check');
like($out, qr/^FAIL +migrations +\d+ ms +1 pending migration: dupes\.0002_email_unique$/m,
     'and names the migration still pending');
like($out, qr/^4 checks, 0 failed/m, 'health passes after the fix');
like($out, qr/^# Incident evidence, /m, 'the evidence summary is shown');

my ($dir) = $out =~ m{(/tmp/migctl-demo-\w+)/stop\.sh};
ok($dir && -x "$dir/stop.sh", 'KEEP=1 leaves stop.sh') or BAIL_OUT('no stack');
my $s = $t->run({}, 'bash', '-c', ". $dir/env.sh && migctl maintenance status");
is($s->{rc}, 0, 'env.sh: migctl reaches the kept stack') or diag($s->{err});
like($s->{out}, qr/scope default: off/, '... and reads its state');
my $pid = $t->read_file("$dir/nginx/nginx.pid");
chomp $pid if defined $pid;
$s = $t->run({ timeout => 60 }, "$dir/stop.sh");
ok(!-e $dir, 'stop.sh removes the stack');
ok($pid && $t->wait_for(sub { !MigTest::pid_alive($pid) }, 10),
   'stop.sh stopped nginx');

done_testing;
