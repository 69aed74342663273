# release_step.t: conf-examples/release-step.sh against a real stack
# (nginx with the module, Redis, PostgreSQL 15, Django 3.2): a release
# whose migration fails leaves the site in maintenance with diagnose and
# evidence printed; the fixed release migrates, restarts web then workers,
# passes health, reopens and keeps its plan for the next release.  The CI
# examples call the script with the variables it needs.
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use MigTest;

my $t = MigTest->new;
my $root = $t->root;
my $dir = $t->dir;
my $DJ = "$root/t/django";
my $script = "$root/conf-examples/release-step.sh";

$t->start_pg('pg');
$t->start_redis('r');
$t->nginx_conf('n', <<'CONF');
load_module %%MODULE%%;
worker_processes 1;
events { worker_connections 64; }
http {
    access_log off;
    maintenance_redis 127.0.0.1:%%PORT_r%%;
    maintenance_poll 200ms;
    maintenance on;
    server {
        listen 127.0.0.1:%%PORT_n%%;
        location / { return 200 "app\n"; }
    }
}
CONF
$t->start_nginx('n');
my $port = $t->port('n');

sub dirname_of { my ($p) = @_; $p =~ s{/[^/]+$}{}; return $p }

my $state = "$dir/release";
my $runs = "$dir/runs";
my $manage = "/usr/bin/python3 $DJ/manage.py";
my $bindir = dirname_of($ENV{MIGCTL} || "$root/build/migctl");
my %env = ($t->pg_env('pg'), DJANGO_SETTINGS_MODULE => 'webproj.settings',
           PYTHONDONTWRITEBYTECODE => 1, MIGCTL_ACTOR => 'deploy-bot',
           PATH => "$bindir:$ENV{PATH}",
           MANAGE => $manage, STATE_DIR => $state, LOCK_TIMEOUT => '3s');

my $rport = $t->port('r');
$env{MIGCTL_CONFIG} = $t->write_file('migctl.conf', <<"CONF");
redis = { host = "127.0.0.1"; port = $rport; };
runs = { dir = "$runs"; };
health = {
    checks = (
        { name = "no-pending-migrations";
          command = "$manage migrate --check > /dev/null";
          timeout_ms = 60000; }
    );
};
CONF

sub django {
    my (@args) = @_;
    my $r = $t->run({ env => \%env, cwd => $DJ, timeout => 120 },
                    split(' ', $manage), @args);
    die "manage.py @args: $r->{err}" if $r->{rc};
    return $r->{out};
}

# the release still serving: release.0001 applied, its plan kept by the
# last successful run of the step
django('migrate', '--noinput', 'release', '0001');
mkdir $state;
my $prevplan = join('', grep { !/0002_note_body/ }
                        split /^/, django('showmigrations', '--plan'));
$t->write_file("$state/previous.plan", $prevplan);
is($t->http($port, '/')->{status}, 200, 'the site is open before the release');

# --- the release whose migration fails ---------------------------------
my $r = $t->run({ env => \%env, cwd => $DJ, timeout => 300 }, 'bash', $script);
my $all = $r->{out} . $r->{err};
is($r->{rc}, 5, 'release-step: the migration fails, exit 5') or diag($all);
like($all, qr/release-step: the migration failed: maintenance is ON/,
     'it says the site is in maintenance');
ok($t->wait_for(sub { $t->http($port, '/')->{status} == 503 }, 5),
   'the edge serves the maintenance page');
like($all, qr/migctl .*diagnose .*0002_note_body/,
     'the diagnose command for the failed migration is printed');
my ($ev) = $all =~ /release-step: evidence: (\S+)/;
ok($ev && -f "$ev/summary.md", 'an evidence bundle with summary.md')
    or diag($all);
my @plans = glob("$runs/*/plan.txt");
is(scalar @plans, 1, 'the run kept the previous plan');
is($t->read_file($plans[0] // '/dev/null') // '', $prevplan,
   '... which is the plan of the release still serving');

# --- the fixed release ---------------------------------------------------
my $order = "$dir/restarts.log";
$r = $t->run({ env => { %env, RELEASE_MIGRATIONS => 'release.migrations_fixed',
                        RESTART_WEB => "echo web >> $order",
                        RESTART_WORKERS => "echo workers >> $order" },
               cwd => $DJ, timeout => 300 }, 'bash', $script);
is($r->{rc}, 0, 'release-step: the fixed release goes through, exit 0')
    or diag($r->{out}, $r->{err});
is($t->read_file($order) // '', "web\nworkers\n", 'web restarted, then workers');
ok($t->wait_for(sub { $t->http($port, '/')->{status} == 200 }, 5),
   'health passed and the site reopened');
like($t->read_file("$state/previous.plan") // '',
     qr/^\[X\]\s+release\.0002_note_body$/m,
     'the new plan is kept for the next release');

# a second run of the same release changes nothing and stays open
$r = $t->run({ env => { %env, RELEASE_MIGRATIONS => 'release.migrations_fixed' },
               cwd => $DJ, timeout => 300 }, 'bash', $script);
is($r->{rc}, 0, 'the step is idempotent') or diag($r->{out}, $r->{err});
is($t->http($port, '/')->{status}, 200, 'still open');

# --- the CI examples call the script with what it needs -----------------
my @ci = glob("$root/conf-examples/ci/*");
ok(@ci >= 2, 'GitHub and GitLab examples');
for my $ci (@ci) {
    my $text = $t->read_file($ci);
    my $name = $ci =~ s{.*/}{}r;
    like($text, qr{release-step\.sh}, "$name runs release-step.sh");
    like($text, qr/\bMANAGE\b/, "$name sets MANAGE");
    (my $code = $text) =~ s/^\s*#.*$//mg;              # not the comments
    for my $cmd ($code =~ /\bmigctl ([a-z]+)/g) {
        my $h = $t->migctl({}, $cmd, '--help');
        is($h->{rc}, 0, "$name: 'migctl $cmd' exists");
    }
}

$t->check_logs('n');
done_testing;
