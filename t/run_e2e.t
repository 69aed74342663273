#!/usr/bin/perl

# run_e2e.t: the incident end to end, all real: nginx with the module (HTTP
# and TLS) -> a Django 3.2 app under gunicorn -> PostgreSQL 15; Redis for
# the flag.  A release whose migration fails: `migctl run
# --maintenance-on-failure --diagnose` exits 5, both ports answer 503 to
# the public while the bypass reaches the app; the printed diagnose (with
# the plan the run kept) names state and path; the fix is shipped; run
# succeeds; health passes; maintenance off --wait; both ports answer 200.

use strict;
use warnings;

use lib 't/lib';
use MigTest;
use Test::More;
use JSON::PP;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);

my $ROOT = MigTest->root;
plan skip_all => 'build/ngx_http_maintenance_module.so not built (make module)'
    unless -f "$ROOT/build/ngx_http_maintenance_module.so";
plan skip_all => 'python3-gunicorn not installed'
    unless system('/usr/bin/python3 -c "import gunicorn" 2>/dev/null') == 0;

my $t = MigTest->new;
my $json = JSON::PP->new;
my ($crt, $key) = $t->self_signed_cert('e2e');
$t->start_pg('pg');
$t->start_redis('r');
my $DJ = "$ROOT/t/django";
my $MANAGE = "$DJ/manage.py";
my $RUNS = $t->dir . '/runs';
my $TOKEN = 'tok-' . join('', map { ('a' .. 'z')[rand 26] } 1 .. 24);
my $tokfile = $t->write_file('bypass.token', "$TOKEN\n");
my $appport = $t->port('app');
my $http = $t->port('http');
my $https = $t->port('https');

my %env = ($t->pg_env('pg'), DJANGO_SETTINGS_MODULE => 'webproj.settings',
           PYTHONDONTWRITEBYTECODE => 1, MIGCTL_ACTOR => 'release-bot');

# --- gunicorn ---------------------------------------------------------------

my $gpid = fork // die;
if ($gpid == 0) {
    $ENV{$_} = $env{$_} for keys %env;
    open STDIN, '<', '/dev/null';
    open STDOUT, '>', $t->dir . '/gunicorn.log';
    open STDERR, '>&', \*STDOUT;
    exec('/usr/bin/python3', '-m', 'gunicorn', '--bind', "127.0.0.1:$appport",
         '--workers', '2', '--chdir', $DJ, 'webproj.wsgi:application')
        or POSIX::_exit(127);
}
END {
    if ($gpid) {
        kill 'TERM', $gpid;
        waitpid($gpid, 0);
    }
}
ok($t->wait_port($appport, 30), 'gunicorn listens');

# --- nginx with the module, HTTP and TLS, the app upstream ------------------

$t->nginx_conf('n', <<"CONF");
load_module %%MODULE%%;
worker_processes 2;
events { worker_connections 128; }
http {
    access_log off;
    maintenance_redis 127.0.0.1:%%PORT_r%%;
    maintenance_poll 200ms;
    maintenance_node_id edge1;
    maintenance on;
    maintenance_bypass_token $tokfile;

    upstream app { server 127.0.0.1:$appport; }

    server {
        listen 127.0.0.1:%%PORT_http%%;
        server_name shop.test;
        location / { proxy_pass http://app; }
    }

    server {
        listen 127.0.0.1:%%PORT_https%% ssl;
        server_name shop.test;
        ssl_certificate $crt;
        ssl_certificate_key $key;
        location / { proxy_pass http://app; }
    }
}
CONF
$t->start_nginx('n');

my $conf = $t->write_file('migctl.conf', <<"EOF");
redis = { host = "127.0.0.1"; port = ${\ $t->port('r')}; };
runs = { dir = "$RUNS"; plan_cmd = "/usr/bin/python3 $MANAGE showmigrations --plan"; };
evidence = { secret_files = [ "$tokfile" ]; };
health = {
    checks = (
        { name = "app-through-edge";
          command = "curl -fsS -o /dev/null -H \\"X-Maintenance-Bypass: \$(cat $tokfile)\\" http://127.0.0.1:$http/";
          timeout_ms = 5000; },
        { name = "app-tls";
          command = "curl -fsSk -o /dev/null -H \\"X-Maintenance-Bypass: \$(cat $tokfile)\\" https://127.0.0.1:$https/";
          timeout_ms = 5000; },
        { name = "no-pending-migrations";
          command = "/usr/bin/python3 $MANAGE migrate --check --plan > /dev/null";
          timeout_ms = 30000; }
    );
};
EOF
$env{MIGCTL_CONFIG} = $conf;

sub mc {
    my ($e, @args) = @_;
    my $r = $t->migctl({ env => { %env, %$e }, cwd => $DJ }, @args);
    unlike($r->{err}, qr/Sanitizer|runtime error/, "migctl $args[0]: no sanitizer report");
    return $r;
}

sub both {
    my (%h) = @_;
    return ($t->http($http, '/', headers => \%h)->{status},
            $t->http($https, '/', tls => 1, headers => \%h)->{status});
}

# --- release 1: migrated by run, open ---------------------------------------

my $r = mc({}, 'run', '--', '/usr/bin/python3', $MANAGE, 'migrate', 'release', '0001',
           '--noinput');
is($r->{rc}, 0, 'release 1: run migrate, exit 0') or diag($r->{err});
$t->psql('pg', "INSERT INTO release_note (title) VALUES ('a'), ('b')", db => 'app');
is_deeply([ both() ], [ 200, 200 ], 'release 1: HTTP and TLS answer 200');
like($t->http($http, '/')->{body}, qr/^app ok 2$/m, 'the app reads its table');

# --- release 2: the migration fails -------------------------------------------

my $t0 = time;
$r = mc({}, 'run', '--maintenance-on-failure', '--diagnose', '--lock-timeout', '5s', '--',
        '/usr/bin/python3', $MANAGE, 'migrate', '--noinput');
is($r->{rc}, 5, 'release 2: run exits 5');
like($r->{err}, qr/maintenance on for scope default \(epoch 1\): migctl run failed: exit 1 applying release\.0002_note_body/,
     'the flag went on, the reason names the migration');
ok($t->wait_for(sub { join(',', both()) eq '503,503' }, 5),
   sprintf('both ports answer 503 to the public (%.1f s after the run began)', time - $t0));
is_deeply([ both('X-Maintenance-Bypass' => $TOKEN) ], [ 200, 200 ],
          'the bypass token reaches the app on both ports');
my $audit = $t->redis('r', 'XRANGE', 'migctl:audit', '-', '+');
my @on = grep { my %f = @{ $_->[1] }; $f{action} eq 'on' } @$audit;
is(scalar @on, 1, 'the change is audited');

# diagnose as printed, with the plan and traceback the run kept
my ($dcmd) = $r->{out} =~ /^  (migctl .*diagnose .*)$/m;
ok($dcmd, 'run printed the diagnose command');
like($dcmd // '', qr/--previous-plan \S+\/plan\.txt/, 'with the plan kept before the run');
my @w = split ' ', ($dcmd // 'migctl');
shift @w;
$r = mc({}, '--json', @w);
is($r->{rc}, 0, 'diagnose: exit 0') or diag($r->{err});
my $dg = eval { $json->decode($r->{out}) } // {};
is($dg->{state}{verdict}, 'not_applied', 'diagnose: state not_applied');
is($dg->{class}{class}, 'code_fix', 'diagnose: class code_fix');
ok($dg->{path}, "diagnose: path $dg->{path}");

# the health gate holds while pending: off is refused, traffic stays drained
$r = mc({}, 'maintenance', 'off');
is($r->{rc}, 4, 'maintenance off before the fix: refused, exit 4');
is_deeply([ both() ], [ 503, 503 ], 'still drained');

# --- the fix shipped --------------------------------------------------------------

my %fix = (RELEASE_MIGRATIONS => 'release.migrations_fixed');
$r = mc(\%fix, 'run', '--lock-timeout', '5s', '--', '/usr/bin/python3', $MANAGE,
        'migrate', '--noinput');
is($r->{rc}, 0, 'the fix: run exits 0') or diag($r->{err});
like($r->{out}, qr/Applying release\.0002_note_body\.\.\. OK/, 'the fixed migration applied');
$r = mc(\%fix, 'health');
is($r->{rc}, 0, 'health passes') or diag($r->{out}, $r->{err});
$r = mc(\%fix, 'maintenance', 'off', '--wait=10');
is($r->{rc}, 0, 'maintenance off --wait: exit 0') or diag($r->{err});
is_deeply([ both() ], [ 200, 200 ], 'both ports answer 200 again');

# --- the evidence of it all -------------------------------------------------------

$r = mc(\%fix, 'evidence', '--out', $t->dir . '/incident.tar.gz');
is($r->{rc}, 0, 'evidence: exit 0') or diag($r->{err});
my $list = $t->run({}, 'tar', '-xzOf', $t->dir . '/incident.tar.gz', '--wildcards', '*/summary.md');
like($list->{out}, qr/audit default\/off ok epoch 2/, 'evidence: the timeline has the reopen');
my $all = $t->run({}, 'sh', '-c', 'tar -xzOf "$0"', $t->dir . '/incident.tar.gz')->{out};
unlike($all, qr/\Q$TOKEN\E/, 'evidence: no bypass token in the bundle');

$t->check_logs('n');
$t->check_pg_log('pg');

done_testing();
