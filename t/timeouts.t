#!/usr/bin/perl

# timeouts.t: no read command of migctl waits on a lock or a silent server
# longer than its timeouts, and a read blocked by a lock names the blocker.
# Against a real PostgreSQL 15: a table of the SQL file and
# django_migrations held in ACCESS EXCLUSIVE, a lock queue behind a waiting
# ALTER TABLE; a TCP server that accepts and never answers; a proxy to the
# real server that goes silent after a query; migctl killed while
# its backend waits in a lock queue.

use strict;
use warnings;

use lib 't/lib';
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use MigTest;
use POSIX qw(:sys_wait_h);
use Test::More;
use Time::HiRes qw(time sleep);

my ($LOCK, $STMT, $CONN) = (1, 3, 2);      # seconds, in migctl.conf
my $slow = $ENV{MIGCTL_WRAP};                # valgrind: no time bounds

my $t = MigTest->new;
my $fx = $t->root . '/t/fixtures/db';
$t->start_pg('pg');
my %env = $t->pg_env('pg');
my @fakes;

END {
    local $?;                        # waitpid must not set the test's status
    for my $pid (@fakes) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
    }
}

$t->psql('pg', $t->read_file("$fx/django_migrations.sql"));
$t->psql('pg', join "\n", grep { !/^--/ && !/^(BEGIN|COMMIT);$/ && /\S/ }
                          split /\n/, $t->read_file("$fx/shop_0001.sql"));
$t->psql('pg', "INSERT INTO django_migrations (app, name, applied)"
               . " VALUES ('shop', '0001_initial', now())");

my $conf = $t->write_file('migctl.conf', <<"CONF");
database = {
    lock_timeout = "${LOCK}s";
    statement_timeout = "${STMT}s";
    connect_timeout = "${CONN}s";
};
CONF

# a default to compare: inspect reads it with pg_get_expr(), which locks
$t->psql('pg', "ALTER TABLE shop_customer ALTER COLUMN name SET DEFAULT 'x'");
my $sql = $t->write_file('shop_0002_default.sql', <<'SQL');
BEGIN;
--
-- Alter field name on customer
--
ALTER TABLE "shop_customer" ALTER COLUMN "name" SET DEFAULT 'anon';
COMMIT;
SQL

my %cmd = (
    migrations => ['migrations'],
    locks      => ['locks'],
    inspect    => ['inspect', '--sql', $sql, '--app', 'shop',
                   '--migration', '0002_name_default'],
    diagnose   => ['diagnose', '--app', 'shop', '--migration',
                   '0002_name_default', '--sql', $sql],
);
my @all = qw(migrations locks inspect diagnose);

# runs a command under a hard bound (today's hang would otherwise hang the
# test); {secs} is its wall time
sub timed {
    my ($name, %o) = @_;
    my $t0 = time;
    my $r = $t->migctl({ env => { %env, MIGCTL_CONFIG => $conf,
                                  %{ $o{env} || {} } },
                         timeout => $o{timeout} // 20 },
                       @{ $o{pre} || [] }, '--json', @{ $cmd{$name} });
    $r->{secs} = time - $t0;
    $r->{json} = eval { decode_json($r->{out}) };
    unlike($r->{err}, qr/AddressSanitizer|runtime error|LeakSanitizer/,
           "$name: no sanitizer report");
    return $r;
}

sub within {
    my ($r, $bound, $what) = @_;
    SKIP: {
        skip 'no time bound under valgrind', 1 if $slow;
        cmp_ok($r->{secs}, '<=', $bound,
               sprintf('%s: returns within %.1f s (took %.2f s)', $what,
                       $bound, $r->{secs}));
    }
}

# exit 3, one line on stderr naming pid, mode and relation of the blocker,
# the blockers in the JSON error object too; more pid => relation pairs:
# any one of them
sub blocked {
    my ($r, $what, $mode, %rel) = @_;
    my $alt = join '|', map { "pid $_ " . '\([^)]*\b' . quotemeta($mode)
                                  . ' on ' . quotemeta($rel{$_}) . '\b' }
                        keys %rel;
    is($r->{rc}, 3, "$what: exit 3") or diag($r->{err});
    like($r->{err}, qr/blocked by (?:$alt)[^)]*\)/,
         "$what: the blocker is named (pid, $mode, relation)");
    is(scalar(() = $r->{err} =~ /\n/g), 1, "$what: one line");
    my @b = grep { $rel{$_->{pid}} && $_->{mode} eq $mode
                   && $_->{relation} eq $rel{$_->{pid}} }
            @{ ($r->{json} || {})->{blockers} || [] };
    ok(@b, "$what: JSON error lists the blocker");
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

sub waiting {
    my ($pid) = @_;
    return $t->wait_for(sub {
        $t->psql('pg', "SELECT wait_event_type FROM pg_stat_activity"
                       . " WHERE pid = $pid") eq 'Lock';
    }, 10);
}

sub hold {
    my ($app, $sql) = @_;
    my $s = $t->pg_session('pg', app => $app);
    $s->send("BEGIN; $sql; SELECT 'held';");
    ok($t->wait_for(sub { $s->output =~ /held/ }, 10), "$app: lock taken");
    return ($s, backend($app));
}

# --- (a) a table the SQL file touches held in ACCESS EXCLUSIVE ----------

my ($h, $hpid) = hold('holder_a',
                      'LOCK TABLE shop_customer IN ACCESS EXCLUSIVE MODE');

for my $name (@all) {
    my $r = timed($name);
    within($r, $LOCK + 1, "(a) $name");
    if ($name eq 'migrations' || $name eq 'locks') {
        is($r->{rc}, 0, "(a) $name: does not read shop_customer: exit 0")
            or diag($r->{err});
        next;
    }
    # inspect's catalog reads take no lock on the user table (no
    # pg_get_expr(adbin, relid)): a held table does not stop them
    ok($r->{rc} == 0 || $r->{rc} == 1,
       "(a) $name: answers without waiting for the lock (exit $r->{rc})")
        or diag($r->{err});
    unlike($r->{err}, qr/blocked by|lock_timeout/,
           "(a) $name: not blocked");
}
$h->close;

# --- (b) django_migrations held in ACCESS EXCLUSIVE ---------------------

($h, $hpid) = hold('holder_b',
                   'LOCK TABLE django_migrations IN ACCESS EXCLUSIVE MODE');

for my $name (@all) {
    my $r = timed($name);
    within($r, $LOCK + 1, "(b) $name");
    if ($name eq 'locks') {
        is($r->{rc}, 0, '(b) locks: reads no user table: exit 0')
            or diag($r->{err});
        next;
    }
    blocked($r, "(b) $name", 'AccessExclusiveLock',
            $hpid => 'public.django_migrations');
}

# text output: the same line
my $r = $t->migctl({ env => { %env, MIGCTL_CONFIG => $conf }, timeout => 20 },
                   'migrations');
like($r->{err}, qr/^migctl: migrations: reading django_migrations: blocked by pid $hpid \(user postgres, application holder_b, idle in transaction, \d+ s, AccessExclusiveLock on public\.django_migrations\): SELECT 'held';: .*lock_timeout 1 s/,
     '(b) text: user, application, state, age, mode, relation and query');
$h->close;

# --- (c) a lock queue behind a waiting ALTER TABLE ----------------------

# an idle transaction that read both tables; an ALTER TABLE queued on each
($h, $hpid) = hold('reader_c', 'SELECT 1 FROM shop_customer, django_migrations'
                               . ' LIMIT 1');
my @alter;
for my $tbl (qw(shop_customer django_migrations)) {
    my $s = $t->pg_session('pg', app => "alter_$tbl");
    $s->send("ALTER TABLE $tbl ADD COLUMN q int;");
    my $pid = backend("alter_$tbl");
    ok(waiting($pid), "(c) ALTER TABLE $tbl waits behind the reader");
    push @alter, [$s, $pid];
}

for my $name (@all) {
    $r = timed($name);
    within($r, $LOCK + 1, "(c) $name");
    if ($name eq 'locks') {
        is($r->{rc}, 1, '(c) locks: blocked sessions: exit 1')
            or diag($r->{err});
        is_deeply([sort map { $_->{pid} } @{ $r->{json}{blocked} || [] }],
                  [sort map { $_->[1] + 0 } @alter],
                  '(c) locks: both ALTERs listed as blocked');
        next;
    }
    # inspect and diagnose read django_migrations first: either queue
    my %rel = ($alter[1][1] => 'public.django_migrations');
    $rel{$alter[0][1]} = 'public.shop_customer' if $name ne 'migrations';
    blocked($r, "(c) $name", 'AccessExclusiveLock', %rel);
}
$_->[0]->close for @alter;
$h->close;

# --- (d) a server that accepts and never answers ------------------------

# mode "mute": accept, read, never write; mode "proxy": forward to the
# real server, then swallow everything from the (pass+1)-th query on (the
# server answered the start-up and then went silent)
sub fake {
    my ($mode, $pass) = @_;
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Listen => 64, Proto => 'tcp',
                                  ReuseAddr => 1) or die "listen: $!";
    my $port = $l->sockport;
    my $pid = fork // die "fork: $!";
    if ($pid) {
        close $l;
        push @fakes, $pid;
        return $port;
    }
    $SIG{$_} = 'DEFAULT' for qw(INT TERM);
    my $sel = IO::Select->new($l);
    my (%peer, %c);                   # fileno -> socket; client state
    my $end = time + 300;
    while (time < $end) {
        for my $fh ($sel->can_read(1)) {
            if ($fh == $l) {
                my $cl = $l->accept or next;
                $sel->add($cl);
                next if $mode eq 'mute';
                my $up = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                               PeerPort => $env{PGPORT},
                                               Proto => 'tcp') or next;
                $sel->add($up);
                $peer{fileno $cl} = $up;
                $peer{fileno $up} = $cl;
                $c{fileno $cl} = { buf => '', startup => 1, queries => 0 };
                next;
            }
            my $n = sysread($fh, my $data, 65536);
            if (!$n) {
                $sel->remove($fh);
                my $p = delete $peer{fileno $fh};
                if ($p) { $sel->remove($p); delete $peer{fileno $p}; close $p; }
                close $fh;
                next;
            }
            next if $mode eq 'mute';
            my $st = $c{fileno $fh};
            if ($st) {                          # client -> server
                next if $st->{silent};
                $st->{buf} .= $data;
                my $out = '';
                while (1) {
                    if ($st->{startup}) {
                        last if length $st->{buf} < 8;
                        my ($len, $code) = unpack 'NN', $st->{buf};
                        last if length $st->{buf} < $len;
                        $out .= substr($st->{buf}, 0, $len, '');
                        # SSLRequest/GSSENCRequest: the startup follows
                        $st->{startup} = 0
                            unless $code == 80877103 || $code == 80877104;
                        next;
                    }
                    last if length $st->{buf} < 5;
                    my ($type, $len) = unpack 'aN', $st->{buf};
                    last if length $st->{buf} < $len + 1;
                    if (($type eq 'Q' || $type eq 'P')
                        && ++$st->{queries} > $pass)
                    {
                        $st->{silent} = 1;
                        last;
                    }
                    $out .= substr($st->{buf}, 0, $len + 1, '');
                }
                syswrite($peer{fileno $fh}, $out) if length $out;
            } else {                            # server -> client
                my $cst = $c{fileno $peer{fileno $fh}};
                syswrite($peer{fileno $fh}, $data)
                    unless $cst && $cst->{silent};
            }
        }
    }
    POSIX::_exit(0);
}

my $mute = fake('mute');
for my $name (@all) {
    $r = timed($name, env => { PGPORT => $mute, PGCONNECT_TIMEOUT => undef });
    within($r, $CONN + 1, "(d) mute server: $name");
    is($r->{rc}, 3, "(d) mute server: $name: exit 3") or diag($r->{err});
    like($r->{err}, qr/^migctl: $name: cannot connect to PostgreSQL: no answer from 127\.0\.0\.1:$mute within $CONN(\.0)? s \(connect_timeout\)/,
         "(d) mute server: $name: names the host and the timeout");
}

# pass 0: the first query (django_migrations check, or locks' own) is
# swallowed; pass 1: the command's own next query
for my $pass (0, 1) {
    my $proxy = fake('proxy', $pass);
    for my $name (@all) {
        $r = timed($name, env => { PGPORT => $proxy }, timeout => 10);
        my $what = "(d) silent after $pass answered: $name";
        within($r, $STMT + 1, $what);
        is($r->{rc}, 3, "$what: exit 3") or diag($r->{err});
        like($r->{err}, qr/^migctl: $name: .*no answer from 127\.0\.0\.1:$proxy within [\d.]+ s/,
             "$what: names the host");
    }
}

# --- killed while waiting: its backend leaves the lock queue ------------

($h, $hpid) = hold('holder_e',
                   'LOCK TABLE django_migrations IN ACCESS EXCLUSIVE MODE');
my $long = $t->write_file('long.conf',
                          "database = { lock_timeout = \"60s\"; };\n");

for my $sig (qw(TERM INT)) {
    my $out = $t->dir . "/kill.$sig.err";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $ENV{$_} = $env{$_} for keys %env;
        $ENV{MIGCTL_CONFIG} = $long;
        $ENV{PGAPPNAME} = "migctl_$sig";
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', $out;
        my $bin = $ENV{MIGCTL} || $t->root . '/build/migctl';
        exec(($ENV{MIGCTL_WRAP} ? split(' ', $ENV{MIGCTL_WRAP}) : ()),
             $bin, 'migrations') or POSIX::_exit(127);
    }
    my $bpid;
    ok($t->wait_for(sub {
        $bpid = $t->psql('pg', "SELECT pid FROM pg_stat_activity WHERE"
                         . " wait_event_type = 'Lock' AND pid <> $hpid"
                         . " AND query LIKE '%django_migrations%'");
        $bpid =~ /^\d+$/;
    }, 30), "SIG$sig: migctl's backend waits on django_migrations");
    kill $sig, $pid;
    my $gone = $t->wait_for(sub { waitpid($pid, WNOHANG) == $pid }, 10);
    ok($gone, "SIG$sig: migctl exits");
    ok($t->wait_for(sub {
        $t->psql('pg', "SELECT count(*) FROM pg_stat_activity WHERE pid ="
                       . " $bpid AND wait_event_type = 'Lock'") eq '0';
    }, 2), "SIG$sig: its backend left the lock queue within 2 s"
           . " (lock_timeout 60 s)");
    unless ($gone) { kill 'KILL', $pid; waitpid($pid, 0); }
    unlike($t->read_file($out) // '', qr/AddressSanitizer|runtime error/,
           "SIG$sig: no sanitizer report");
}
$h->close;


# --- through pgbouncer (it refuses the options start-up parameter) -------

SKIP: {
    my $pgb = (grep { -x } '/usr/sbin/pgbouncer', '/usr/bin/pgbouncer')[0];
    skip 'pgbouncer not installed', 9 unless $pgb;
    my $port = $t->port('pgbouncer');
    my $dir = $t->dir . '/pgb';
    mkdir $dir;
    my (undef, undef, $uid, $gid) = getpwnam('postgres');
    chown $uid, $gid, $dir if $> == 0;
    $t->write_file("$dir/users.txt", qq{"postgres" ""\n});
    my $ini = $t->write_file("$dir/pgb.ini", <<"INI");
[databases]
app = host=127.0.0.1 port=$env{PGPORT} dbname=app
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/users.txt
pool_mode = session
logfile = $dir/pgb.log
pidfile = $dir/pgb.pid
INI
    my @as = $> == 0 ? ('runuser', '-u', 'postgres', '--') : ();
    my $st = $t->run({}, @as, $pgb, '-d', $ini);
    ok($st->{rc} == 0 && $t->wait_port($port, 10), 'pgbouncer started')
        or diag($st->{err}, $t->read_file("$dir/pgb.log") // '');
    my ($bpid) = ($t->read_file("$dir/pgb.pid") // '') =~ /(\d+)/;
    push @fakes, $bpid if $bpid;            # stopped at the end, by pid

    $r = timed('migrations', env => { PGPORT => $port });
    is($r->{rc}, 0, 'pgbouncer: migrations connects (timeouts by SET)')
        or diag($r->{err});

    ($h, $hpid) = hold('holder_pgb', 'LOCK TABLE django_migrations IN'
                                     . ' ACCESS EXCLUSIVE MODE');
    $r = timed('migrations', env => { PGPORT => $port });
    within($r, $LOCK + 1, 'pgbouncer: django_migrations held');
    blocked($r, 'pgbouncer: django_migrations held', 'AccessExclusiveLock',
            $hpid => 'public.django_migrations');
    $h->close;
}

done_testing();
