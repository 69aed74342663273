#!/usr/bin/perl

# output.t: output an operator can trust, against a real PostgreSQL: exit
# codes as documented (a refused login or a missing database is a
# configuration error, 2; a server that cannot be reached, 3; a catalog
# read that fails is never "a problem found", 1), one line without a
# doubled prefix or a secret, the JSON error object and envelope, both
# option forms.

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

# a role that logs in with a password (the harness trusts everyone else)
my $hba = "$t->{pg}{pg}{dir}/pg_hba.conf";
my $old = $t->read_file($hba);
$t->write_file($hba, "host all pwuser 127.0.0.1/32 scram-sha-256\n$old");
$t->psql('pg', <<'SQL');
SET password_encryption = 'scram-sha-256';
CREATE ROLE pwuser LOGIN PASSWORD 'right-pw';
CREATE ROLE reader LOGIN;
SELECT pg_reload_conf();
SQL
$t->psql('pg', $t->read_file("$fx/django_migrations.sql"));
$t->psql('pg', "INSERT INTO django_migrations (app, name, applied)"
               . " VALUES ('shop', '0001_initial', now())");

sub run {
    my ($env, @args) = @_;
    my $r = $t->migctl({ env => { %env, %$env } }, @args);
    $r->{json} = eval { decode_json($r->{out}) };
    return $r;
}

# exit code, one line, no doubled prefix, no secret; with --json the
# error object on stdout: command, version, ok false, exit, error
sub fails {
    my ($name, $rc, $re, $env, @args) = @_;
    subtest $name => sub {
        for my $json (0, 1) {
            my $r = run($env, $json ? ('--json') : (), @args);
            is($r->{rc}, $rc, "exit $rc" . ($json ? ' (--json)' : ''))
                or diag($r->{err});
            is(scalar(() = $r->{err} =~ /\n/g), 1, 'one line on stderr');
            like($r->{err}, $re, 'says what failed and what to do');
            unlike($r->{err}, qr/migctl: migctl:/, 'no doubled prefix');
            unlike($r->{err} . $r->{out}, qr/right-pw|wrong-pw/,
                   'no password printed');
            unlike($r->{err}, qr/AddressSanitizer|runtime error/,
                   'no sanitizer report');
            next unless $json;
            my $j = $r->{json} || {};
            is($j->{command}, $args[0] =~ /^-/ ? 'migctl' : $args[0],
               'JSON error: command');
            ok(defined $j->{version} && JSON::PP::is_bool($j->{ok})
               && !$j->{ok}, 'JSON error: version, ok false');
            ok($j->{exit} =~ /^\d+$/ && $j->{exit} == $rc,
               'JSON error: exit as an integer');
            like($j->{error} // '', qr/\S/, 'JSON error: the error');
        }
    };
}

for my $cmd (qw(migrations locks)) {
    fails("$cmd: wrong password: configuration, exit 2", 2,
          qr/^migctl: $cmd: cannot connect to PostgreSQL: .*password authentication failed for user "pwuser".*: fix the user, password or database name/,
          { PGUSER => 'pwuser', PGPASSWORD => 'wrong-pw' }, $cmd);
    fails("$cmd: no password: configuration, exit 2", 2,
          qr/^migctl: $cmd: cannot connect to PostgreSQL: .*no password supplied/,
          { PGUSER => 'pwuser', PGPASSWORD => undef,
            PGPASSFILE => '/nonexistent' }, $cmd);
    fails("$cmd: a missing database: configuration, exit 2", 2,
          qr/^migctl: $cmd: cannot connect to PostgreSQL: .*database "nosuchdb" does not exist/,
          { PGDATABASE => 'nosuchdb' }, $cmd);
    fails("$cmd: an unknown role: configuration, exit 2", 2,
          qr/^migctl: $cmd: cannot connect to PostgreSQL: .*role "nosuchrole" does not exist/,
          { PGUSER => 'nosuchrole' }, $cmd);
    fails("$cmd: connection refused: unreachable, exit 3", 3,
          qr/^migctl: $cmd: cannot connect to PostgreSQL: .*Connection refused.*: check DATABASE_URL/,
          { PGPORT => $t->port('nothing') }, $cmd);
    fails("$cmd: a malformed DATABASE_URL: configuration, exit 2", 2,
          qr/^migctl: $cmd: DATABASE_URL: invalid URI query parameter: "bogus": fix it/,
          { DATABASE_URL => 'postgresql://app:wrong-pw@127.0.0.1/app?bogus=1' },
          $cmd);
    fails("$cmd: a bad port in DATABASE_URL: configuration, exit 2", 2,
          qr/^migctl: $cmd: cannot connect to PostgreSQL: invalid integer value "99x" for connection option "port": fix the user/,
          { DATABASE_URL => 'postgresql://app:wrong-pw@127.0.0.1:99x/app' },
          $cmd);
}

# the right password works: no secret on argv, and none needed there
my $r = run({ PGUSER => 'pwuser', PGPASSWORD => 'right-pw' }, '--json',
            'locks');
ok($r->{rc} == 0 || $r->{rc} == 1, 'right password: connected')
    or diag($r->{err});

# a catalog read refused (no privilege on django_migrations): the read
# did not happen, nothing was found: exit 2 (the wrong user), never 1
fails('migrations: permission denied on django_migrations: exit 2', 2,
      qr/^migctl: migrations: reading django_migrations: permission denied for table django_migrations/,
      { PGUSER => 'reader' }, 'migrations');

# a statement timeout: exit 3, named
$t->psql('pg', "CREATE VIEW slow AS SELECT pg_sleep(5)::text AS s");
$t->psql('pg', 'ALTER TABLE django_migrations RENAME TO django_migrations_t;'
               . ' CREATE VIEW django_migrations AS SELECT m.* FROM'
               . ' django_migrations_t m, slow');
fails('migrations: statement timeout: exit 3', 3,
      qr/^migctl: migrations: reading django_migrations: canceling statement due to statement timeout \(statement_timeout 1 s, lock_timeout 2 s\): retry/,
      {}, 'migrations', '--statement-timeout=1s');
$r = run({}, '--statement-timeout', '1s', '--json', 'migrations');
is($r->{rc}, 3, 'global --statement-timeout before the command: exit 3');
$t->psql('pg', 'DROP VIEW django_migrations; ALTER TABLE django_migrations_t'
               . ' RENAME TO django_migrations');

# JSON envelope of results: integers as integers
$r = run({}, '--json', 'migrations');
is($r->{rc}, 0, 'migrations --json: exit 0') or diag($r->{err});
is_deeply([@{ $r->{json} }{qw(command ok exit)}],
          ['migrations', JSON::PP::true, 0], 'migrations: envelope');
like($r->{out}, qr/"exit": 0\b/, 'exit is an integer, not a string');
$r = run({}, '--json', 'locks');
is_deeply([@{ $r->{json} }{qw(command ok exit long_seconds)}],
          ['locks', JSON::PP::true, 0, 60], 'locks: envelope');
like($r->{out}, qr/"long_seconds": 60\b/, 'long_seconds is an integer');

# both option forms, everywhere in migrations
my $plan = $t->write_file('plan.txt', "[X]  shop.0001_initial\n"
                                      . "[ ]  shop.0002_next\n");
my $a = run({}, '--json', 'migrations', '--plan', $plan,
            '--previous-plan', $plan, '--lock-timeout', '1s');
my $b = run({}, '--json', 'migrations', "--plan=$plan",
            "--previous-plan=$plan", '--lock-timeout=1s');
is($a->{rc}, 1, '--opt value: pending: exit 1');
is_deeply($b->{json}, $a->{json}, '--opt=value gives the same answer');
fails('migrations: unknown option: exit 2', 2,
      qr/^migctl: migrations: unknown option '--plans': see migctl migrations --help/,
      {}, 'migrations', '--plans', $plan);
fails('migrations: --plan without a file: exit 2', 2,
      qr/^migctl: migrations: --plan needs FILE/, {}, 'migrations', '--plan');
fails('migrations: a stray operand: exit 2', 2,
      qr/^migctl: migrations: unexpected argument 'extra'/, {},
      'migrations', 'extra');
fails('bad --lock-timeout before the command: exit 2', 2,
      qr/^migctl: --lock-timeout wants a duration from 1ms/, {},
      '--lock-timeout', '0', 'locks');

# a name with terminal codes in django_migrations reaches the terminal
# escaped; the JSON keeps it (escaped by JSON itself)
$t->psql('pg', "INSERT INTO django_migrations (app, name, applied) VALUES"
               . " ('shop', E'0002_\\x1b[31mred\\x07', now())");
$r = run({}, 'migrations');
unlike($r->{out}, qr/[\x00-\x09\x0b-\x1f\x7f]/, 'text: no control character');
like($r->{out}, qr/0002_\\x1b\[31mred\\x07/, 'text: escaped as \\xNN');
$r = run({}, '--json', 'migrations');
is($r->{json}{applied}[1]{name}, "0002_\x1b[31mred\x07",
   'JSON: the name as stored');
unlike($r->{out}, qr/\x1b/, 'JSON: no raw escape either');

done_testing();
