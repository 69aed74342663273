#!/usr/bin/perl
# cli.t: migctl's global options, help, exit codes and one-line errors;
# the configuration (file and line in errors, $MIGCTL_CONFIG); the Redis
# link (password file / env, ACL user, unix socket, db); Redis unreachable
# -> exit 3 within the timeout.  Nothing is written on any error.

use strict;
use warnings;

use lib 't/lib';
use MigTest;
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(time);

my $t = MigTest->new;
my $rport = $t->start_redis('r');

my $conf = $t->write_file('migctl.conf', <<"EOF");
# the test Redis
redis = {
    host = "127.0.0.1";
    port = $rport;
    timeout_ms = 1000;
};
EOF

my %env = (MIGCTL_CONFIG => $conf, MIGCTL_ACTOR => 'bob');

sub mig { $t->migctl({ env => \%env }, @_) }

sub one_error {                    # exit code, one line, the pattern
    my ($r, $rc, $re, $name) = @_;
    subtest $name => sub {
        is($r->{rc}, $rc, "exit $rc");
        my @lines = split /\n/, $r->{err};
        is(scalar @lines, 1, 'one line on stderr') or diag($r->{err});
        like($r->{err}, qr/^migctl: (?:[a-z]+: )?.*$re/, 'says what failed')
            or diag($r->{err});
        unlike($r->{err}, qr/^migctl: migctl:/, 'no doubled prefix');
        is($r->{out}, '', 'nothing on stdout');
    };
}

sub nothing_written {
    my ($name) = @_;
    is($t->redis('r', 'DBSIZE'), 0, "$name: nothing written to Redis");
}

# --- help, version ------------------------------------------------------

my $r = mig('--help');
is($r->{rc}, 0, '--help: exit 0');
like($r->{out}, qr/^usage: migctl .*maintenance/s, '--help on stdout');
is($r->{err}, '', '--help: stderr empty');

$r = mig('--version');
is($r->{rc}, 0, '--version: exit 0');
like($r->{out}, qr/^migctl \d+\.\d+\.\d+\n\z/, '--version');

for my $args ([qw(maintenance --help)], [qw(maintenance on --help)],
              [qw(maintenance off --help)], [qw(maintenance status --help)])
{
    $r = mig(@$args);
    is($r->{rc}, 0, "@$args: exit 0");
    like($r->{out}, qr/usage: .*maintenance.*--retry-after/s,
         "@$args: usage on stdout");
}

$r = mig();
is($r->{rc}, 2, 'no command: exit 2');
like($r->{err}, qr/^usage:/, 'no command: usage on stderr');

# --- bad input: exit 2, one line, nothing written -------------------------

one_error(mig('frobnicate'), 2, qr/unknown command 'frobnicate'.*--help/,
          'unknown command');
one_error(mig('--frob', 'maintenance', 'status'), 2,
          qr/unknown option '--frob'/, 'unknown global option');
one_error(mig(qw(maintenance on --frob)), 2,
          qr/maintenance on: unknown option '--frob'/, 'unknown option of on');
one_error(mig(qw(maintenance flip)), 2, qr/unknown subcommand 'flip'/,
          'unknown subcommand');
one_error(mig(qw(maintenance on --retry-after abc)), 2,
          qr/--retry-after wants seconds from 0 to 86400, not 'abc'/,
          '--retry-after abc');
one_error(mig(qw(maintenance on --retry-after 86401)), 2,
          qr/--retry-after/, '--retry-after out of range');
one_error(mig(qw(maintenance on --retry-after)), 2, qr/--retry-after needs seconds/,
          '--retry-after without a value');
one_error(mig(qw(maintenance on --wait=abc)), 2, qr/--wait wants seconds .* not 'abc'/,
          '--wait=abc');
one_error(mig('--scope', 'bad scope!', qw(maintenance on)), 2,
          qr/--scope: invalid character in name "bad scope!"/,
          'scope with invalid characters');
one_error(mig('--scope', 'x' x 65, qw(maintenance on)), 2,
          qr/--scope: name longer than 64/, 'scope too long');
one_error(mig(qw(maintenance on --reason), "two\nlines"), 2,
          qr/--reason: control character 0x0a at byte 3/, 'reason with newline');
one_error(mig(qw(maintenance on --reason), "caf\xff"), 2,
          qr/--reason: invalid UTF-8 at byte 3/,
          'reason that is not UTF-8 (the edges would refuse it)');
one_error(mig(qw(maintenance on --reason), 'r' x 513), 2,
          qr/--reason is longer than 512 bytes/, 'reason too long');
one_error(mig(qw(maintenance off --force)), 2,
          qr/--force needs --reason/, 'off --force without --reason');
one_error(mig(qw(maintenance on --force)), 2,
          qr/maintenance on: unknown option '--force'/, 'on --force');
one_error($t->migctl({ env => { %env, MIGCTL_ACTOR => "a\tb" } },
                     qw(maintenance on)), 2,
          qr/\$MIGCTL_ACTOR: control character 0x09/, 'bad actor');
nothing_written('bad input');

# --- configuration errors: file and line named ----------------------------

my $bad = $t->write_file('bad.conf', <<'EOF');
redis = {
    host = "127.0.0.1";
    port = 6379;
    timeout_ms = = 100;
};
EOF
one_error(mig('-c', $bad, qw(maintenance on)), 2,
          qr/\Q$bad\E:4: syntax error: fix the configuration/,
          'config syntax error names file and line');

my $typed = $t->write_file('typed.conf', <<'EOF');
redis = {
    host = "127.0.0.1";

    port = "six";
};
EOF
one_error(mig('-c', $typed, qw(maintenance on)), 2,
          qr/\Q$typed\E:4: port must be an integer/, 'wrong type: line');

my $unknown = $t->write_file('unknown.conf', <<'EOF');
redis = { host = "127.0.0.1"; prot = 6379; };
EOF
one_error(mig('-c', $unknown, qw(maintenance on)), 2,
          qr/\Q$unknown\E:1: unknown setting "prot" in redis/,
          'unknown setting in redis');

my $range = $t->write_file('range.conf', "redis = { port = 70000; };\n");
one_error(mig('-c', $range, qw(maintenance on)), 2,
          qr/:1: port = 70000 is out of range 1\.\.65535/, 'port range');

my $pfx = $t->write_file('prefix.conf', "prefix = \"a b\";\n");
one_error(mig('-c', $pfx, qw(maintenance on)), 2,
          qr/:1: prefix "a b" must be/, 'bad prefix');

my $hc = $t->write_file('health.conf', <<'EOF');
health = { checks = ( { name = "x"; } ); };
EOF
one_error(mig('-c', $hc, qw(maintenance off)), 2,
          qr/:1: health.checks\[0\] needs a name and a command/,
          'health check without command');

# the database section: durations in quotes, file and line in errors
my $dbc = $t->write_file('db.conf', <<'EOF');
database = {
    lock_timeout = "2s";
    statement_timeout = 30;
};
EOF
one_error(mig('-c', $dbc, 'locks'), 2,
          qr/\Q$dbc\E:3: statement_timeout must be a duration in double quotes/,
          'database: a number for a duration: file and line');
$dbc = $t->write_file('db2.conf', <<'EOF');
database = {

    lock_timeout = "soon";
};
EOF
one_error(mig('-c', $dbc, 'migrations'), 2,
          qr/\Q$dbc\E:3: lock_timeout = "soon" is not a duration from 1ms/,
          'database: a bad duration: file and line');
$dbc = $t->write_file('db3.conf', "database = { lock_timout = \"2s\"; };\n");
one_error(mig('-c', $dbc, 'locks'), 2,
          qr/:1: unknown setting "lock_timout" in database/,
          'database: an unknown setting');
$dbc = $t->write_file('db4.conf', "database = \"x\";\n");
one_error(mig('-c', $dbc, 'locks'), 2,
          qr/:1: database must be a group/, 'database: not a group');

# the global timeouts: both forms, bad values refused before anything
for my $o (['--lock-timeout', 'x'], ['--lock-timeout=x'],
           ['--statement-timeout', '-1s'], ['--statement-timeout=0'],
           ['--lock-timeout']) {
    one_error(mig(@$o, 'locks'), 2,
              qr/--(lock|statement)-timeout (wants|needs) a duration/,
              "global @$o refused");
}
$r = mig('--lock-timeout', '1s', '--statement-timeout=5s', '--help');
is($r->{rc}, 0, 'global timeouts parse (both forms)');
like($r->{out}, qr/--lock-timeout D/, 'usage documents --lock-timeout');

one_error(mig('-c', $t->dir . '/nope.conf', qw(maintenance on)), 2,
          qr/cannot read configuration .*nope\.conf/, 'missing -c file');

one_error($t->migctl({ env => { %env, MIGCTL_CONFIG => $bad } },
                     qw(maintenance on)), 2,
          qr/\Q$bad\E:4: syntax error/, '$MIGCTL_CONFIG is read');

$r = $t->migctl({ env => { %env, MIGCTL_CONFIG => $bad } },
                '-c', $conf, qw(maintenance status));
is($r->{rc}, 0, '-c wins over $MIGCTL_CONFIG') or diag($r->{err});
nothing_written('config errors');

# --- Redis unreachable: exit 3 within the timeout, nothing written ------

# time bounds: the timeout, plus what a run costs here (valgrind, load)
my $tb = time;
mig('--version');
my $base = time - $tb;

my $dead = $t->port('dead');       # nothing listens there
my $dconf = $t->write_file('dead.conf',
    "redis = { port = $dead; timeout_ms = 300; };\n");
my $t0 = time;
$r = mig('-c', $dconf, qw(maintenance on));
one_error($r, 3, qr/Redis 127\.0\.0\.1:$dead unreachable: .*Connection refused/,
          'connection refused: exit 3');
my $refused = time - $t0;
SKIP: {
    skip 'valgrind distorts time: the bound holds in the plain and ASan runs',
        1 if $ENV{MIGCTL_WRAP};
    ok($refused < 1 + 2 * $base, sprintf('refused fast (%.2f s)', $refused));
}

$r = mig('-c', $dconf, qw(maintenance status));
is($r->{rc}, 3, 'status, Redis down: exit 3');
like($r->{err}, qr/check that Redis runs and redis \{ \} in \Q$dconf\E$/,
     'the advice names the file read');

# no configuration at all: the advice says so, and how to give one
SKIP: {
    skip '/etc/migctl/migctl.conf exists here', 2
        if -e '/etc/migctl/migctl.conf';
    my %e = %env;
    delete $e{MIGCTL_CONFIG};
    $r = $t->migctl({ env => \%e }, qw(maintenance status));
    is($r->{rc}, 3, 'no configuration, no Redis on 6379: exit 3')
        or diag($r->{err});
    my $want = '/etc/migctl/migctl.conf (not found: this is the built-in'
             . ' default; -c or $MIGCTL_CONFIG name another file)';
    ok(index($r->{err}, $want) >= 0,
       'the advice says no file was read, and how to give one')
        or diag($r->{err});
}

# a Redis that accepts but does not answer: the timeout bounds the wait
my $sport = $t->start_redis('stopped');
my $sconf = $t->write_file('stopped.conf',
    "redis = { port = $sport; timeout_ms = 300; };\n");
$t->kill_redis('stopped', 'STOP');
$t0 = time;
$r = mig('-c', $sconf, qw(maintenance on --reason x));
my $took = time - $t0;
$t->kill_redis('stopped', 'CONT');
one_error($r, 3, qr/Redis 127\.0\.0\.1:$sport: .*timed out.*300 ms/,
          'stopped Redis: exit 3');
SKIP: {
    skip 'valgrind distorts time: the bound holds in the plain and ASan runs',
        1 if $ENV{MIGCTL_WRAP};
    ok($took < 0.3 + 2 * $base + 0.7,
       sprintf('within the configured timeout (%.2f s for 300 ms; a bare'
               . ' run takes %.2f s)', $took, $base));
}
ok($t->wait_for(sub { ($t->redis('stopped', 'PING') // '') eq 'PONG' }, 5),
   'stopped Redis answers again');
is($t->redis('stopped', 'DBSIZE'), 0, 'stopped Redis: nothing written');

# --- password from a file or the environment, ACL user -------------------

my $aport = $t->start_redis('auth');
$t->redis('auth', 'CONFIG', 'SET', 'requirepass', 's3cret-pw');
my $pwfile = $t->write_file('redis.pass', "s3cret-pw\n");
chmod 0600, $pwfile;
my $aconf = $t->write_file('auth.conf',
    "redis = { port = $aport; password_file = \"$pwfile\"; };\n");
$r = mig('-c', $aconf, qw(maintenance on --reason auth));
is($r->{rc}, 0, 'password_file: on works') or diag($r->{err});

my $econf = $t->write_file('authenv.conf',
    "redis = { port = $aport; password_env = \"T_REDIS_PW\"; };\n"
    . "health = { checks = ( { name = \"ok\"; command = \"true\"; } ); };\n");
$r = $t->migctl({ env => { %env, T_REDIS_PW => 's3cret-pw' } },
                '-c', $econf, qw(maintenance off));
is($r->{rc}, 0, 'password_env: off works') or diag($r->{err});

$r = $t->migctl({ env => { %env, T_REDIS_PW => 'wrong-pw' } },
                '-c', $econf, qw(maintenance on));
one_error($r, 3, qr/refused AUTH/, 'wrong password: exit 3');
unlike($r->{err}, qr/wrong-pw|s3cret/, 'the password is never printed');

one_error($t->migctl({ env => { %env, T_REDIS_PW => undef } },
                     '-c', $econf, qw(maintenance on)), 2,
          qr/password_env names \$T_REDIS_PW, which is not set/,
          'password_env unset: exit 2');

my $noconf = $t->write_file('noauth.conf', "redis = { port = $aport; };\n");
one_error(mig('-c', $noconf, qw(maintenance on)), 3, qr/NOAUTH|PING/,
          'no password for a password-protected Redis: exit 3');

my $uconf = $t->write_file('user.conf', <<"EOF");
redis = { port = $aport; user = "ops"; password_env = "T_REDIS_PW"; };
EOF
ok(eval {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $aport, Proto => 'tcp');
    print $s "AUTH s3cret-pw\r\nACL SETUSER ops on >ops-pw ~* &* +\@all\r\n";
    my $l1 = <$s>; my $l2 = <$s>;
    $l2 =~ /^\+OK/;
}, 'ACL user ops created');
$r = $t->migctl({ env => { %env, T_REDIS_PW => 'ops-pw' } },
                '-c', $uconf, qw(maintenance on --reason acl));
is($r->{rc}, 0, 'ACL user: on works') or diag($r->{err});

# --- unix socket, db index ---------------------------------------------------

my $sock = $t->dir . '/redis.sock';
$t->start_redis('unix', args => ['--unixsocket', $sock,
                                 '--unixsocketperm', '700']);
my $uxconf = $t->write_file('unix.conf',
    "redis = { unix = \"$sock\"; db = 3; };\nprefix = \"ux\";\n");
$r = mig('-c', $uxconf, qw(maintenance on --reason unix));
is($r->{rc}, 0, 'unix socket, db 3: on works') or diag($r->{err});
is($t->redis('unix', 'DBSIZE'), 0, 'db 0 untouched');
is($t->redis('unix', 'EVAL',
             "redis.call('SELECT', 3) return redis.call('HGET', KEYS[1],"
             . " 'mode')", 1, 'ux:state:default'), 'on',
   'the state is in db 3');
$r = mig('-c', $uxconf, qw(maintenance status));
like($r->{out}, qr/ON \(epoch 1\)/, 'status over the unix socket');

my $both = $t->write_file('both.conf',
    "redis = { host = \"h\"; unix = \"/x\"; };\n");
one_error(mig('-c', $both, qw(maintenance on)), 2,
          qr/:1: redis: give host\/port or unix, not both/,
          'host and unix: exit 2');

done_testing();
