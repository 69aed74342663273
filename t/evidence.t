#!/usr/bin/perl

# evidence.t: migctl evidence after a real failed release: a PostgreSQL
# role with a real password (scram), a Redis ACL user with a password, a
# bypass token file; the failing command prints all three.  The bundle
# (directory and .tar.gz) has summary.md first with what failed, state,
# class, path and the timeline, and neither the bundle nor the run
# directory holds any of the secrets.

use strict;
use warnings;

use lib 't/lib';
use MigTest;
use Test::More;
use JSON::PP;
use File::Find;
use Time::HiRes qw(time sleep);

my $t = MigTest->new;
my $pgport = $t->start_pg('pg');
my $json = JSON::PP->new;
my $ROOT = $t->root;
my $MANAGE = "$ROOT/t/django/manage.py";
my $RUNS = $t->dir . '/runs';

sub rnd { join '', map { ('a' .. 'z', 0 .. 9)[rand 36] } 1 .. 20 }
my $DBPW = 'DbPw' . rnd();
my $RPW = 'RedisPw' . rnd();
my $TOKEN = 'BypassTok' . rnd();

# --- a password for the database role, checked by the server (scram) ------

# pg_monitor: what an operator's role needs to see other sessions in locks
$t->psql('pg', "CREATE ROLE appuser LOGIN PASSWORD '$DBPW'; GRANT pg_monitor TO appuser; "
               . "CREATE DATABASE ev OWNER appuser", db => 'postgres');
my $hba = $t->dir . '/pg/pg_hba.conf';
my $old = $t->read_file($hba);
$t->write_file($hba, "host all appuser 127.0.0.1/32 scram-sha-256\n$old");
$t->psql('pg', 'SELECT pg_reload_conf()', db => 'postgres');
my %pgbase = $t->pg_env('pg', user => 'appuser', db => 'ev');
ok($t->wait_for(sub {
    $t->run({ env => { %pgbase, PGPASSWORD => 'wrong' } }, 'psql', '-XAtc', 'SELECT 1')->{rc} != 0
}, 10), 'a wrong database password is refused');
is($t->run({ env => { %pgbase, PGPASSWORD => $DBPW } }, 'psql', '-XAtc', 'SELECT 1')->{out},
   "1\n", 'the right one is accepted');

# --- Redis with an ACL user and password; the bypass token file ----------

$t->start_redis('r', args => [ '--user', 'alice', 'on', ">$RPW", '~*', '&*', '+@all' ]);
my $rport = $t->port('r');
my $pwfile = $t->write_file('redis.pw', "$RPW\n");
my $tokfile = $t->write_file('bypass.token', "$TOKEN\n");
chmod 0600, $pwfile, $tokfile;

my $conf = $t->write_file('migctl.conf', <<"EOF");
redis = { host = "127.0.0.1"; port = $rport; user = "alice";
          password_file = "$pwfile"; };
prefix = "ev";
runs = { dir = "$RUNS"; };
evidence = { secret_files = [ "$tokfile" ]; };
EOF

my %env = (%pgbase, PGPASSWORD => $DBPW,
           DATABASE_URL => "postgres://appuser:$DBPW\@127.0.0.1:$pgport/ev",
           MIGCTL_CONFIG => $conf, MIGCTL_ACTOR => 'oncall',
           MIGTEST_APPS => 'badsql', PYTHONDONTWRITEBYTECODE => 1,
           DJANGO_SECRET_KEY => 'django-' . rnd());

sub mc {
    my (@args) = @_;
    my $r = $t->migctl({ env => \%env, cwd => $t->dir }, @args);
    unlike($r->{err}, qr/Sanitizer|runtime error/, "migctl $args[0]: no sanitizer report");
    return $r;
}

sub grep_secrets {
    my ($dir, $name) = @_;
    my (@hits, $n);
    find({ no_chdir => 1, wanted => sub {
        return unless -f $_;
        $n++;
        my $c = $t->read_file($_) // '';
        for my $s ($DBPW, $RPW, $TOKEN) {
            push @hits, "$_: $s" if index($c, $s) >= 0;
        }
    } }, $dir);
    ok($n > 0, "$name: $n files searched");
    ok(!@hits, "$name: no database password, Redis password or bypass token")
        or diag(join "\n", @hits[0 .. ($#hits < 9 ? $#hits : 9)]);
}

# --- the failed release ------------------------------------------------------

is($t->django({ env => \%env }, 'django', 'migrate', 'badsql', '0001')->{rc}, 0,
   'badsql: 0001 applies with the password');

# the command itself prints every secret it can see
my $r = mc('run', '--maintenance-on-failure', '--lock-timeout', '500ms',
           '--plan-cmd', "/usr/bin/python3 $MANAGE showmigrations --plan", '--',
           'sh', '-c', 'echo "db: $DATABASE_URL"; echo "token: $(cat ' . $tokfile
           . ')"; echo "redis: $(cat ' . $pwfile . ')"; '
           . "exec /usr/bin/python3 $MANAGE migrate --noinput");
is($r->{rc}, 5, 'run: the migration fails, exit 5');
like($r->{out}, qr/\Q$TOKEN\E/, 'the command really printed the token (live output is untouched)');
is({ @{ $t->redis('r', 'HGETALL', 'ev:state:default') } }->{mode}, 'on', 'the flag is on');
my ($rundir) = glob("$RUNS/*");
like($t->read_file("$rundir/output.log"), qr/^\S+ out db: postgres:\/\/appuser:\[redacted\]\@127\.0\.0\.1:/m,
     'output.log: the URL password redacted');
like($t->read_file("$rundir/output.log"), qr/^\S+ out token: \[redacted\]$/m,
     'output.log: the token redacted');

my $sqlf = $t->write_file('0002.sql',
    $t->django({ env => \%env }, 'django', 'sqlmigrate', 'badsql', '0002')->{out});

# --- the bundle, as a directory ----------------------------------------------

# a session that leaks a password in its query text, blocked behind a lock
my $a = $t->pg_session('pg', user => 'postgres', db => 'ev', app => 'holder');
$a->send("BEGIN; LOCK TABLE badsql_note IN ACCESS EXCLUSIVE MODE; SELECT 'locked';");
ok($t->wait_for(sub { $a->output =~ /locked/ }, 10), 'a transaction holds the table');
my $b = $t->pg_session('pg', user => 'postgres', db => 'ev', app => 'leaky');
$b->send("SELECT count(*) FROM badsql_note WHERE 'password=$DBPW' <> '';");

ok($t->wait_for(sub {
    $t->psql('pg', "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'leaky' "
                   . "AND wait_event_type = 'Lock'", db => 'ev') == 1 }, 10),
   'the leaky session waits on the lock');
$r = mc('evidence', '--out', $t->dir . '/bundle', '--sql', $sqlf);
is($r->{rc}, 0, 'evidence: exit 0') or diag($r->{err});
my ($bundle) = $r->{out} =~ /^evidence: (\S+)$/m;
is($bundle, $t->dir . '/bundle', 'evidence: the bundle path');
is((stat($bundle))[2] & 07777, 0700, 'bundle 0700');

my $sum = $t->read_file("$bundle/summary.md") // '';
like($sum, qr/^# Incident evidence, \d{4}-/, 'summary.md: title');
like($sum, qr/^- failing migration: badsql\.0002_note_body$/m, 'summary: what failed');
like($sum, qr/^- state: \*\*not_applied\*\*$/m, 'summary: state');
like($sum, qr/^- class: \*\*code_fix\*\* \(SQLSTATE 42601\)$/m, 'summary: class from the run output');
like($sum, qr/^- path: \*\*\w+\*\*$/m, 'summary: path');
like($sum, qr/^- scope default: mode \*\*on\*\*, epoch 1, .* by oncall: migctl run failed: exit 1 applying badsql\.0002_note_body/m,
     'summary: maintenance state');
like($sum, qr/^- blocked sessions: 1, /m, 'summary: the blocked session');
like($sum, qr/^- lock_timeout 0, statement_timeout 0, max_connections 60 /m, 'summary: settings');
like($sum, qr/^- \S+Z run \S+ started: sh -c .*\n(?:.*\n)*- \S+Z audit default\/on ok epoch 1 by oncall: migctl run failed/m,
     'summary: timeline, the run before the flag');
like($t->read_file("$bundle/schema.txt") // '', qr/^## badsql_note\ncolumn\s+id integer NOT NULL/m,
     'schema.txt: the table of the SQL file from the catalog');
my $locks = eval { $json->decode($t->read_file("$bundle/locks.json")) } // {};
like($locks->{blocked}[0]{query} // '', qr/password=\[redacted\]/, 'locks.json: the query text redacted');
my $srv = eval { $json->decode($t->read_file("$bundle/server.json")) } // {};
like($srv->{version} // '', qr/^PostgreSQL 15/, 'server.json: the version');
is($srv->{settings}{max_connections}{value}, 60, 'server.json: max_connections');
ok(-f "$bundle/runs/" . (split m{/}, $rundir)[-1] . '/output.log', 'the run log is in the bundle');
ok(-f "$bundle/inputs/migration.sql", 'the inputs are in the bundle');
like($t->read_file("$bundle/version.txt") // '', qr/^migctl \d+\.\d+\.\d+$/m, 'version.txt');
my $mj = eval { $json->decode($t->read_file("$bundle/maintenance.json")) } // {};
ok((grep { $_->{action} eq 'run' && $_->{result} eq 'failed' } @{ $mj->{audit} || [] }),
   'maintenance.json: the audit tail with the run');

grep_secrets($bundle, 'bundle');
grep_secrets($RUNS, 'run directory');

# --- the bundle, as a .tar.gz --------------------------------------------

$r = mc('evidence', '--out', $t->dir . '/ev.tar.gz', '--sql', $sqlf);
is($r->{rc}, 0, 'evidence .tar.gz: exit 0') or diag($r->{err});
my $list = $t->run({}, 'tar', '-tzf', $t->dir . '/ev.tar.gz')->{out};
like($list, qr{\Amigctl-evidence-\d+T\d+Z/summary\.md\n}, 'tar: summary.md first');
is(scalar(() = $list =~ /summary\.md$/mg), 1, 'tar: summary.md once');
ok(!glob($t->dir . '/migctl-evidence-*'), 'tar: the directory is removed');
mkdir $t->dir . '/x';
is($t->run({}, 'tar', '-xzf', $t->dir . '/ev.tar.gz', '-C', $t->dir . '/x')->{rc}, 0, 'tar: extracts');
grep_secrets($t->dir . '/x', 'tar.gz bundle');

# --- bad input changes nothing ---------------------------------------------

$r = mc('evidence', '--out', $t->dir . '/b2', '--sql', $t->dir . '/missing.sql');
is($r->{rc}, 2, 'missing --sql file: exit 2');
ok(!-e $t->dir . '/b2', 'missing --sql file: no bundle');
$r = mc('evidence', '--out', $t->dir . '/ev.tar.gz');
is($r->{rc}, 2, 'existing tarball: exit 2');

# --- Redis and the database down: the rest is still kept, exit 1 ---------

my $down = $t->write_file('down.conf', <<"EOF");
redis = { host = "127.0.0.1"; port = ${\ $t->port('closed')}; timeout_ms = 300; };
runs = { dir = "$RUNS"; };
EOF
$r = $t->migctl({ env => { %env, MIGCTL_CONFIG => $down, PGPORT => $t->port('closed'),
                           DATABASE_URL => "postgres://appuser:$DBPW\@127.0.0.1:"
                                           . $t->port('closed') . "/ev" },
                  cwd => $t->dir }, 'evidence', '--out', $t->dir . '/b3');
is($r->{rc}, 1, 'Redis and database down: exit 1');
like($r->{err}, qr/2 part\(s\) could not be collected/, 'down: says how many parts');
my $s3 = $t->read_file($t->dir . '/b3/summary.md') // '';
like($s3, qr/^- maintenance \(Redis\): Redis 127\.0\.0\.1:\d+ unreachable/m,
     'down: the summary names Redis');
like($s3, qr/^- database: cannot connect to PostgreSQL/m, 'down: and the database');
like($s3, qr/^- failing migration: badsql\.0002_note_body$/m, 'down: the runs are still there');
grep_secrets($t->dir . '/b3', 'bundle with the database down');

$a->close;
$b->close;

done_testing();
