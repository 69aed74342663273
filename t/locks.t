#!/usr/bin/perl

# locks.t: `migctl locks` against a real PostgreSQL: a session blocked
# behind an idle transaction, the runner advisory lock held and waited
# for, an INVALID index from a failed CREATE UNIQUE INDEX CONCURRENTLY,
# and the errors (unreachable server, bad option).

use strict;
use warnings;

use lib 't/lib';
use JSON::PP;
use MigTest;
use Test::More;

my $KEY = 120299473564780;          # MIGCTL_RUNNER_LOCK_KEY in ctl/db.h

my $t = MigTest->new;
$t->start_pg('pg');
my %env = $t->pg_env('pg');

sub locks {
    my (@args) = @_;
    my $r = $t->migctl({ env => \%env }, '--json', 'locks', @args);
    $r->{json} = eval { decode_json($r->{out}) };
    return $r;
}

sub clean {
    my ($r, $name) = @_;
    unlike($r->{err}, qr/AddressSanitizer|runtime error|LeakSanitizer/,
           "$name: no sanitizer report");
}

sub backend {
    my ($app) = @_;
    my $pid;
    $t->wait_for(sub {
        $pid = $t->psql('pg', "SELECT pid FROM pg_stat_activity"
                              . " WHERE application_name = '$app'");
        $pid =~ /^\d+$/;
    }, 10);
    return $pid;
}

$t->psql('pg', <<'SQL');
CREATE TABLE shop_item (id int PRIMARY KEY, sku text);
INSERT INTO shop_item SELECT g, 'sku' || (g % 10) FROM generate_series(1, 100) g;
SQL

# a quiet database: nothing to report, exit 0

my $r = locks();
is($r->{rc}, 0, 'quiet database: exit 0') or diag($r->{err});
is_deeply([map { scalar @{ $r->{json}{$_} } }
           qw(blocked blocking long_running idle_in_transaction
              invalid_indexes)],
          [0, 0, 0, 0, 0], 'quiet database: nothing listed');
ok(!$r->{json}{runner_lock}{held}, 'runner lock free');
is($r->{json}{runner_lock}{key}, $KEY, 'runner lock key reported');
clean($r, 'quiet');

# an idle transaction holding ACCESS EXCLUSIVE, a reader blocked behind it

my $holder = $t->pg_session('pg', app => 'holder');
$holder->send("BEGIN; LOCK TABLE shop_item IN ACCESS EXCLUSIVE MODE;"
              . " SELECT 'locked';");
ok($t->wait_for(sub { $holder->output =~ /locked/ }, 10), 'holder has lock');
my $hpid = backend('holder');

my $waiter = $t->pg_session('pg', app => 'waiter');
$waiter->send("SELECT count(*) FROM shop_item;");
my $wpid = backend('waiter');
ok($t->wait_for(sub {
    $t->psql('pg', "SELECT wait_event_type FROM pg_stat_activity"
                   . " WHERE pid = $wpid") eq 'Lock';
}, 10), 'waiter is waiting on the lock');

$r = locks('--long', '0');
is($r->{rc}, 1, 'blocked session: exit 1');
my ($b) = grep { $_->{pid} == $wpid } @{ $r->{json}{blocked} };
ok($b, 'waiter listed as blocked');
is_deeply($b && $b->{blocked_by}, [$hpid + 0], 'blocked by the holder');
is($b && $b->{application}, 'waiter', 'application name shown');
ok(grep({ $_->{pid} == $hpid } @{ $r->{json}{blocking} }),
   'holder listed as blocking');
ok(grep({ $_->{pid} == $hpid } @{ $r->{json}{idle_in_transaction} }),
   'holder listed as idle in transaction (--long 0)');
ok(grep({ $_->{pid} == $wpid } @{ $r->{json}{long_running} }),
   'waiter listed as long-running (--long 0)');
ok(!grep({ $_->{application} eq 'migctl' }
         map { @{ $r->{json}{$_} } } qw(blocked blocking long_running
                                       idle_in_transaction)),
   'migctl does not list its own session');
clean($r, 'blocked');

# the default threshold (60 s) hides young sessions, not the blocked one
$r = locks();
is($r->{rc}, 1, 'default threshold: still exit 1 (a session is blocked)');
is(scalar @{ $r->{json}{idle_in_transaction} }, 0,
   'default threshold: a young idle transaction is not listed');
is(scalar @{ $r->{json}{blocked} }, 1, 'default threshold: blocked listed');

# text output: a readable table
$r = $t->migctl({ env => \%env }, 'locks', '--long', '0');
like($r->{out}, qr/^blocked sessions \(1\):/m, 'text: blocked heading');
like($r->{out}, qr/^\s+$wpid\s+postgres\s+waiter\s.*\b$hpid\b/m,
     'text: row of the blocked session names its blocker');
like($r->{out}, qr/^runner lock: free/m, 'text: runner lock free');

# a session whose last query carries a password: shown redacted
my $pw = $t->pg_session('pg', app => 'pw');
$pw->send("CREATE ROLE app; BEGIN; ALTER ROLE app PASSWORD 'hun''ter2';"
          . " SELECT 'ready';");
ok($t->wait_for(sub { $pw->output =~ /ready/ }, 10), 'password session');
$pw->send("SELECT 'host=db password=s3cr3t user=app' AS dsn;");
my $ppid = backend('pw');
ok($t->wait_for(sub {
    $t->psql('pg', "SELECT state FROM pg_stat_activity WHERE pid = $ppid")
        =~ /^idle in transaction/
    && $pw->output =~ /s3cr3t/;
}, 10), 'password session idle in transaction');
$r = locks('--long', '0');
my ($pws) = grep { $_->{pid} == $ppid } @{ $r->{json}{idle_in_transaction} };
is($pws && $pws->{query},
   q{SELECT 'host=db password=[redacted] user=app' AS dsn;},
   'conninfo password redacted');
unlike($r->{out}, qr/s3cr3t|hun.?.?ter2/, 'no password in the output');
$pw->send("SELECT 1 FROM pg_sleep(0); ALTER ROLE app PASSWORD 'hun''ter2';");
ok($t->wait_for(sub {
    $t->psql('pg', "SELECT query FROM pg_stat_activity WHERE pid = $ppid")
        =~ /^ALTER ROLE/;
}, 10), 'last query sets a password');
$r = locks('--long', '0');
($pws) = grep { $_->{pid} == $ppid } @{ $r->{json}{idle_in_transaction} };
is($pws && $pws->{query}, q{ALTER ROLE app PASSWORD '[redacted]';},
   'ALTER ROLE password redacted');
unlike($r->{out}, qr/hun.?.?ter2/, 'no password in the output');
$pw->close;

$holder->close;
$waiter->close;
ok($t->wait_for(sub {
    $t->psql('pg', "SELECT count(*) FROM pg_stat_activity"
                   . " WHERE application_name IN ('holder', 'waiter', 'pw')") == 0;
}, 10), 'sessions gone');

# the runner lock: held by one session, waited for by another

my $runner = $t->pg_session('pg', app => 'runner');
$runner->send("SELECT pg_advisory_lock($KEY); SELECT 'got it';");
ok($t->wait_for(sub { $runner->output =~ /got it/ }, 10), 'runner has lock');
my $rpid = backend('runner');

my $second = $t->pg_session('pg', app => 'second');
$second->send("SELECT pg_advisory_lock($KEY);");
my $spid = backend('second');
ok($t->wait_for(sub {
    $t->psql('pg', "SELECT count(*) FROM pg_locks WHERE locktype ="
                   . " 'advisory' AND NOT granted AND pid = $spid") == 1;
}, 10), 'second runner waits');

$r = locks();
ok($r->{json}{runner_lock}{held}, 'runner lock held');
is($r->{json}{runner_lock}{holder}{pid}, $rpid, 'holder pid');
is($r->{json}{runner_lock}{holder}{application}, 'runner', 'holder app');
is($r->{json}{runner_lock}{holder}{client}, '127.0.0.1', 'holder client');
is_deeply($r->{json}{runner_lock}{waiting}, [$spid + 0], 'waiter pid');
clean($r, 'runner lock');

$r = $t->migctl({ env => \%env }, 'locks');
like($r->{out}, qr/^runner lock: HELD by pid $rpid \(user postgres, application runner, client 127\.0\.0\.1/m,
     'text: who holds the runner lock');

# read-only: the lock was never taken by migctl itself
is($t->psql('pg', "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a"
                  . " USING (pid) WHERE l.locktype = 'advisory'"
                  . " AND a.application_name = 'migctl'"), 0,
   'migctl holds no advisory lock');
is($t->psql('pg', "SELECT pid FROM pg_locks WHERE locktype = 'advisory'"
                  . " AND granted"), $rpid, 'the holder is unchanged');

$runner->close;
$second->close;

# an INVALID index left by a failed CREATE UNIQUE INDEX CONCURRENTLY

my $ci = $t->run({ env => \%env }, 'psql', '-X', '-c',
                 'CREATE UNIQUE INDEX CONCURRENTLY shop_item_sku_uniq'
                 . ' ON shop_item (sku)');
isnt($ci->{rc}, 0, 'concurrent unique index fails on duplicates');
like($ci->{err}, qr/could not create unique index/, '... as expected');

$r = locks();
is($r->{rc}, 1, 'INVALID index: exit 1');
is_deeply($r->{json}{invalid_indexes},
          [{ schema => 'public', table => 'shop_item',
             index => 'shop_item_sku_uniq', being_built => JSON::PP::false }],
          'INVALID index listed with schema and table');
$r = $t->migctl({ env => \%env }, 'locks');
like($r->{out}, qr/^INVALID indexes \(1\):\n  public\.shop_item_sku_uniq on shop_item$/m,
     'text: INVALID index');

# an index in another schema, not on the search_path, is found too
$t->psql('pg', <<'SQL');
DROP INDEX shop_item_sku_uniq;
CREATE SCHEMA other;
CREATE TABLE other.t (v int);
INSERT INTO other.t VALUES (1), (1);
SQL
$ci = $t->run({ env => \%env }, 'psql', '-X', '-c',
              'CREATE UNIQUE INDEX CONCURRENTLY t_v ON other.t (v)');
$r = locks();
is_deeply([map { "$_->{schema}.$_->{index}" } @{ $r->{json}{invalid_indexes} }],
          ['other.t_v'], 'INVALID index in another schema');

$t->psql('pg', 'DROP INDEX other.t_v');
$r = locks();
is($r->{rc}, 0, 'repaired: exit 0') or diag($r->{out}, $r->{err});


# --- what a session does: its lock, its whole statement, its database ----

$t->psql('pg', 'CREATE TABLE shop_order (id int)');
my $h2 = $t->pg_session('pg', app => 'holder2');
# a long statement on several lines, with a dollar-quoted password in it
my $long = "CREATE ROLE app2 /* start\n\t" . join(",\n", map { "column_$_" } 1 .. 40)
         . " */ LOGIN\n\tPASSWORD \$pw\$hun'ter2\$pw\$ VALID UNTIL 'infinity'";
$h2->send("BEGIN; LOCK TABLE shop_order IN SHARE ROW EXCLUSIVE MODE;"
          . " $long;");
ok($t->wait_for(sub {
    $t->psql('pg', "SELECT state || ':' || query FROM pg_stat_activity"
                   . " WHERE application_name = 'holder2'")
        =~ /^idle in transaction:CREATE ROLE/;
}, 10), 'holder2: its last query creates a role with a password');
my $h2pid = backend('holder2');
my $w2 = $t->pg_session('pg', app => 'waiter2');
$w2->send("INSERT INTO shop_order VALUES (1);");
my $w2pid = backend('waiter2');
ok($t->wait_for(sub {
    $t->psql('pg', "SELECT wait_event_type FROM pg_stat_activity"
                   . " WHERE pid = $w2pid") eq 'Lock';
}, 10), 'waiter2 waits');

# an idle transaction in another database
my $other = $t->pg_session('pg', app => 'otherdb', db => 'postgres');
$other->send("BEGIN; SELECT 'other' FROM pg_class LIMIT 1;");
ok($t->wait_for(sub { $other->output =~ /other/ }, 10), 'other database');
my $opid = backend('otherdb');

$r = locks('--long', '0');
is($r->{rc}, 1, 'blocked again: exit 1');
($b) = grep { $_->{pid} == $w2pid } @{ $r->{json}{blocked} };
is_deeply($b && $b->{lock}, { mode => 'RowExclusiveLock',
                               relation => 'public.shop_order',
                               granted => JSON::PP::false },
          'the blocked session: the lock it waits for');
my ($hs) = grep { $_->{pid} == $h2pid } @{ $r->{json}{blocking} };
is_deeply($hs && $hs->{lock}, { mode => 'ShareRowExclusiveLock',
                                relation => 'public.shop_order',
                                granted => JSON::PP::true },
          'the blocker: its strongest table lock');
(my $flat = $long) =~ s/\s+/ /g;
$flat =~ s/\$pw\$.*?\$pw\$/'[redacted]'/;
is($hs && $hs->{query}, "$flat;",
   'the whole statement (over 60 bytes), on one line, password redacted');
ok(length($hs->{query} // '') > 200, 'more than 200 bytes shown');
unlike($r->{out}, qr/hun'ter2/, 'no dollar-quoted password in the output');
ok(JSON::PP::is_bool($b->{lock}{granted}) && $b->{seconds} =~ /^\d+$/
   && $hs->{transaction_seconds} =~ /^\d+$/,
   'seconds are integers');
is($b && $b->{database}, 'app', 'database named');
ok(!grep({ $_->{pid} == $opid } @{ $r->{json}{idle_in_transaction} }),
   'default: the session of another database is not listed');

$r = locks('--long=0', '--all-databases');
ok(grep({ $_->{pid} == $opid && $_->{database} eq 'postgres' }
        @{ $r->{json}{idle_in_transaction} }),
   '--all-databases: the other database session, with its database');
ok($r->{json}{all_databases}, '--all-databases in the JSON');

$r = $t->migctl({ env => \%env }, 'locks', '--long', '0', '--all-databases');
like($r->{out}, qr/^\s+PID\s+DATABASE\s+USER/m,
     'text --all-databases: a DATABASE column');
like($r->{out}, qr/^\s+$w2pid\s+app\s+postgres\s+waiter2\s.*waits RowExclusiveLock on public\.shop_order\s+INSERT INTO shop_order VALUES \(1\);$/m,
     'text: the lock waited for and the statement');
like($r->{out}, qr/^\s+$h2pid\s.*ShareRowExclusiveLock on public\.shop_order\s+CREATE ROLE app2 \/\* start column_1, column_2, .* column_40 \*\/ LOGIN PASSWORD '\[redacted\]' VALID UNTIL 'infinity';$/m,
     'text: the blocker, its lock and its whole statement on one line');
$r = $t->migctl({ env => \%env }, 'locks', '--long', '0');
unlike($r->{out}, qr/DATABASE/, 'text default: no DATABASE column');

# control characters in a query reach the terminal escaped
$other->send("SELECT 'bell\a esc\e[31m red';");
ok($t->wait_for(sub { $other->output =~ /red/ }, 10), 'escape query ran');
$r = $t->migctl({ env => \%env }, 'locks', '--long', '0', '--all-databases');
unlike($r->{out}, qr/[\x00-\x08\x0b-\x1f\x7f]/, 'no control character out');
like($r->{out}, qr/bell\\x07 esc\\x1b\[31m red/, 'escaped as \\xNN');

$_->close for $h2, $w2, $other;

# --- failures of the read itself: never exit 1 ---------------------------

$r = $t->migctl({ env => \%env }, 'locks', '--lock-timeout', 'soon');
is($r->{rc}, 2, 'bad --lock-timeout: exit 2');
like($r->{err}, qr/^migctl: locks: --lock-timeout wants a duration/,
     'bad --lock-timeout: says so');
$r = $t->migctl({ env => \%env }, 'locks', '--statement-timeout=1s',
                '--lock-timeout=500ms', '--long=0');
ok($r->{rc} == 0 || $r->{rc} == 1, '--opt=value forms accepted')
    or diag($r->{err});

# errors

$r = $t->migctl({ env => \%env }, 'locks', '--long', 'soon');
is($r->{rc}, 2, 'bad --long: exit 2');
like($r->{err}, qr/^migctl: locks: --long wants seconds/, 'bad --long: says so');

$r = $t->migctl({ env => { %env, PGPORT => $t->port('nothing') } }, 'locks');
is($r->{rc}, 3, 'unreachable server: exit 3');
like($r->{err}, qr/^migctl: locks: cannot connect to PostgreSQL: .*port \d+ failed/,
     'unreachable server: one clear line');
is(scalar(() = $r->{err} =~ /\n/g), 1, 'unreachable server: one line');

$r = $t->migctl({ env => { %env, PGPORT => $t->port('nothing'),
                           DATABASE_URL => 'postgresql://app:s3cr3t-pw@127.0.0.1:'
                                           . $t->port('nothing') . '/app' } },
                'locks');
is($r->{rc}, 3, 'DATABASE_URL unreachable: exit 3');
unlike($r->{err}, qr/s3cr3t/, 'the password is never printed');

$t->check_pg_log('pg');   # migctl's queries never failed

done_testing;
