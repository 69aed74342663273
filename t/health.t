#!/usr/bin/perl
# health.t: migctl health with native checks, and the reopen that cannot
# lie, against real parts: nginx with the module (HTTP and TLS) in front
# of a Django 3.2 app under gunicorn, PostgreSQL, Redis.  Every check type
# passes and fails for a real reason; a hanging check is cut at its
# timeout and the checks run concurrently; bad configuration is exit 2
# with file and line; maintenance off refuses while the app answers 500
# and with no check at all; --wait with a --scope typo exits 1 naming the
# gated scopes; hooks run, are audited, and a failing off hook is not
# exit 0; status tells Retry-After and "since" truthfully, also after a
# break-glass HSET.

use strict;
use warnings;

use lib 't/lib';
use MigTest;
use Test::More;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(time sleep);

my $t = MigTest->new;
my $dir = $t->dir;
my $root = $t->root;

my $rport = $t->start_redis('r');
$t->start_pg('pg', args => [ '-c archive_mode=on',
                             '-c archive_command=/bin/true' ]);
my %pg = $t->pg_env('pg');
my ($crt, $key) = $t->self_signed_cert('edge');

my $token = 'bypass-' . join('', map { int rand 10 } 1 .. 24);
my $token_file = $t->write_file('bypass.token', "$token\n");

# --- the app: Django under gunicorn ------------------------------------

my $status_file = "$dir/app.status";
my $app_port = $t->port('app');
my $r = $t->django({ env => { %pg, MIGTEST_APPS => 'shop' } }, 'django',
                   'migrate', '--noinput');
is($r->{rc}, 0, 'shop migrated') or diag($r->{err});

my $gpid = fork // die "fork: $!";
if ($gpid == 0) {
    $ENV{$_} = $pg{$_} for keys %pg;
    $ENV{DJANGO_SETTINGS_MODULE} = 'healthweb.settings';
    $ENV{HEALTHWEB_STATUS_FILE} = $status_file;
    $ENV{HEALTHWEB_RELEASE} = 'r42';
    open STDIN, '<', '/dev/null';
    open STDOUT, '>', "$dir/gunicorn.log";
    open STDERR, '>&', \*STDOUT;
    { exec '/usr/bin/python3', '-m', 'gunicorn', '--chdir', "$root/t/django",
         '-b', "127.0.0.1:$app_port", '-w', '1', '-k', 'gthread',
         '--threads', '8', '--timeout', '120', 'healthweb.wsgi:application' }
    POSIX::_exit(127);
}
END { if ($gpid) { kill 'TERM', $gpid; waitpid($gpid, 0); } }
ok($t->wait_port($app_port, 30), 'gunicorn listens')
    or diag($t->read_file("$dir/gunicorn.log"));

# --- the edge: HTTP and TLS, gating scope "default" --------------------

$t->nginx_conf('n1', <<"EOF");
load_module %%MODULE%%;
worker_processes 1;
events { worker_connections 128; }
http {
    access_log off;
    maintenance_redis 127.0.0.1:%%PORT_r%%;
    maintenance_node_id n1;
    maintenance_poll 200ms;
    maintenance on;
    maintenance_bypass_token $token_file;
    proxy_read_timeout 60s;

    server {
        listen 127.0.0.1:%%PORT_n1%%;
        server_name localhost;
        location / { proxy_pass http://127.0.0.1:$app_port; }
        location = /lb { maintenance_health; }
    }
    server {
        listen 127.0.0.1:%%PORT_n1s%% ssl;
        server_name localhost;
        ssl_certificate $crt;
        ssl_certificate_key $key;
        location / { proxy_pass http://127.0.0.1:$app_port; }
    }
}
EOF
$t->start_nginx('n1');
my ($p1, $p1s) = ($t->port('n1'), $t->port('n1s'));
ok($t->wait_for(sub { $t->redis('r', 'ZCARD', 'migctl:edges') }, 10),
   'the edge heartbeats');
is($t->http($p1, '/healthz')->{status}, 200, 'app reached through the edge');

my %env = (%pg, MIGCTL_ACTOR => 'dana');

sub conf {
    my ($name, $body, $redis) = @_;
    $redis //= '';
    return $t->write_file($name, <<"EOF");
redis = { port = $rport; timeout_ms = 2000; $redis };
$body
EOF
}

sub mig {
    my ($conf, @args) = @_;
    my $o = ref $args[0] eq 'HASH' ? shift @args : {};
    my $r = $t->migctl({ env => { %env, MIGCTL_CONFIG => $conf,
                                  %{ $o->{env} || {} } } }, @args);
    $r->{json} = eval { decode_json($r->{out}) } if $r->{out} =~ /^\{/;
    unlike($r->{err}, qr/AddressSanitizer|LeakSanitizer|runtime error/,
           "migctl @args: no sanitizer report");
    unlike($r->{out} . $r->{err}, qr/\Q$token\E|s3cret/,
           "migctl @args: no secret printed");
    return $r;
}

sub checks {
    return { map { $_->{name} => $_ } @{ $_[0]{json}{checks} || [] } };
}

sub state { return { @{ $t->redis('r', 'HGETALL', 'migctl:state:default') } } }

sub audit { [ map { { id => $_->[0], @{ $_->[1] } } }
              @{ $t->redis('r', 'XRANGE', 'migctl:audit', '-', '+') } ] }

# --- bad configuration: exit 2, file and line ---------------------------

my @bad = (
    [ "\n{ name = \"x\"; type = \"htpp\"; url = \"http://a/\"; }",
      qr/:4: health.checks\[0\]: unknown check type "htpp"/ ],
    [ "{ name = \"x\";\n type = \"http\"; }",
      qr/:3: health.checks\[0\]: an http check needs a url/ ],
    [ "{ name = \"x\"; type = \"http\";\n url = \"ftp://a/\"; }",
      qr/:4: health.checks\[0\]: bad url "ftp:\/\/a\/"/ ],
    [ "{ name = \"x\"; type = \"http\";\n url = \"http://\"; }",
      qr/:4: health.checks\[0\]: bad url/ ],
    [ "{ name = \"x\"; type = \"sql\"; query = \"SELECT 1\"; }",
      qr/:3: health.checks\[0\]: a sql check needs a query and the value/ ],
    [ "{ name = \"x\"; type = \"edges\"; url = \"http://a/\"; }",
      qr/:3: unknown setting "url" in a check/ ],
);
for my $i (0 .. $#bad) {
    my $c = conf("bad$i.conf", "health = { checks = (\n$bad[$i][0] ); };");
    $r = mig($c, 'health');
    is($r->{rc}, 2, "bad config $i: exit 2");
    like($r->{err}, qr/^migctl: health: \Q$c\E$bad[$i][1].*fix the configuration$/m,
         "bad config $i: names file and line");
}
$r = mig(conf('badhook.conf', "hooks = { on = (\n{ name = \"x\"; } ); };"),
         'health');
is($r->{rc}, 2, 'a hook without a command: exit 2');
like($r->{err}, qr/badhook.conf:3: hooks.on\[0\] needs a name and a command/,
     '... names file and line');

# --- every check type, passing and failing for a real reason ------------

$t->redis('r', 'DEL', 'migctl:state:default');
$r = mig(conf('on.conf', ''), qw(maintenance on --reason checks --wait=10));
is($r->{rc}, 0, 'maintenance on --wait: the edge acknowledges')
    or diag($r->{err});

# a bad url stops "off" before anything is read or written
{
    my $c = conf('badurl.conf', "health = { checks = (\n$bad[2][0] ); };");
    my $before = $t->redis('r', 'HGET', 'migctl:state:default', 'epoch');
    $r = mig($c, qw(maintenance off --reason x));
    is($r->{rc}, 2, 'off with a bad url: exit 2');
    like($r->{err}, qr/^migctl: maintenance: \Q$c\E$bad[2][1].*fix the configuration$/m,
         'off with a bad url: names file and line');
    is($t->redis('r', 'HGET', 'migctl:state:default', 'epoch'), $before,
       'off with a bad url: the flag is unchanged');
}
is($t->http($p1, '/healthz')->{status}, 503, 'public: 503');
is($t->http($p1, '/healthz', headers => { 'X-Maintenance-Bypass' => $token })
   ->{status}, 200, 'bypass: the app');

my $plan_ok = $t->write_file('plan_ok.txt',
    "[X]  shop.0001_initial\n[X]  shop.0002_product_price_cents\n");
my $plan_pending = $t->write_file('plan_pending.txt',
    "[X]  shop.0001_initial\n[X]  shop.0002_product_price_cents\n"
    . "[ ]  shop.0003_product_sku\n");
my $manage = "/usr/bin/python3 $root/t/django/manage.py";

my $all = conf('all.conf', <<"EOF");
health = {
    timeout_ms = 20000;
    checks = (
        { name = "http_bypass"; type = "http";
          url = "http://127.0.0.1:$p1/healthz";
          bypass_token_file = "$token_file"; expect_body = "ok"; },
        { name = "http_public"; type = "http";
          url = "http://127.0.0.1:$p1/healthz"; },
        { name = "http_resolve"; type = "http";
          url = "http://app.example.test:$p1/healthz";
          resolve = "app.example.test:$p1:127.0.0.1";
          bypass_token_file = "$token_file"; },
        { name = "version_ok"; type = "http";
          url = "http://127.0.0.1:$app_port/version";
          expect_header = "X-Release: r42"; expect_body = "release r42"; },
        { name = "version_bad"; type = "http";
          url = "http://127.0.0.1:$app_port/version";
          expect_header = "X-Release: r43"; },
        { name = "tls_untrusted"; type = "http";
          url = "https://localhost:$p1s/healthz";
          bypass_token_file = "$token_file"; },
        { name = "tls_ca"; type = "http";
          url = "https://localhost:$p1s/healthz"; ca_file = "$crt";
          bypass_token_file = "$token_file"; },
        { name = "edges_ok"; type = "edges"; },
        { name = "edges_typo"; type = "edges"; scope = "defualt"; },
        { name = "plan_ok"; type = "migrations"; plan = "$plan_ok"; },
        { name = "plan_pending"; type = "migrations";
          plan = "$plan_pending"; },
        { name = "check_ok"; type = "migrations";
          command = "MIGTEST_APPS=shop $manage migrate --check"; },
        { name = "check_pending"; type = "migrations";
          command = "MIGTEST_APPS=shop,dupes $manage migrate --check"; },
        { name = "indexes"; type = "invalid_indexes"; },
        { name = "blocked"; type = "blocked_sessions"; max_wait_s = 1; },
        { name = "archive"; type = "backup"; max_age_min = 10; },
        { name = "backup_cmd"; type = "backup";
          command = "test -s $token_file && echo backup verified"; },
        { name = "sql_ok"; type = "sql";
          query = "SELECT count(*) FROM django_migrations WHERE app = 'shop'";
          expect = "2"; },
        { name = "sql_bad"; type = "sql";
          query = "SELECT count(*) FROM shop_product"; expect = "1"; },
        { name = "sql_ctl"; type = "sql";
          query = "SELECT E'a\\\\033[2Jb'"; expect = "ab"; }
    );
};
EOF

my %secrets = (PGPASSWORD => 's3cret',
               DATABASE_URL => "postgresql://postgres:s3cret\@127.0.0.1:"
                               . "$pg{PGPORT}/app");

$r = mig($all, { env => \%secrets }, qw(--json health));
is($r->{rc}, 1, 'health with failing checks: exit 1') or diag($r->{err});
my $c = checks($r);
my %want = (http_bypass => 1, http_public => 0, http_resolve => 1,
            version_ok => 1,
            version_bad => 0, tls_untrusted => 0, tls_ca => 1,
            edges_ok => 1, edges_typo => 0, plan_ok => 1, plan_pending => 0,
            check_ok => 1, check_pending => 0, indexes => 1, blocked => 1,
            archive => 0, backup_cmd => 1, sql_ok => 1, sql_bad => 0,
            sql_ctl => 0);
for my $n (sort keys %want) {
    is($c->{$n}{ok} ? 1 : 0, $want{$n}, "$n: " . ($want{$n} ? 'passes'
                                                             : 'fails'))
        or diag(encode_json($c->{$n} || {}));
}
like($c->{http_bypass}{detail}, qr/^HTTP 200: ok: 2 migrations$/,
     'http: status and the last line of the body');
like($c->{http_public}{detail}, qr/^HTTP 503, want 200/,
     'http without the bypass: the maintenance 503');
like($c->{version_bad}{detail}, qr/X-Release is "r42", want "r43"/,
     'http: the header value found and wanted');
like($c->{tls_untrusted}{detail}, qr/GET failed: .*(certificate|SSL)/i,
     'https: a certificate nobody trusts fails by default');
like($c->{edges_ok}{detail}, qr/1 live edge serves on:\d+ of scope default/,
     'edges: the live edge serves the current epoch');
like($c->{edges_typo}{detail},
     qr/no live edge gates scope defualt \(live edges gate: default\)/,
     'edges: a scope nobody gates, and the gated one named');
like($c->{plan_pending}{detail}, qr/1 pending migration: shop.0003_product_sku/,
     'migrations: the pending one named');
like($c->{check_pending}{detail}, qr/^exit 1/,
     'migrations: migrate --check exits 1 with dupes pending');
like($c->{archive}{detail}, qr/no WAL archived/,
     'backup: nothing archived yet');
like($c->{sql_bad}{detail}, qr/returned "0", want "1"/, 'sql: got and want');

is($r->{json}{checks}[0]{name}, 'http_bypass', 'json: checks in config order');
ok(defined $r->{json}{total_ms}, 'json: total_ms');
unlike($r->{out} . $r->{err}, qr/\Q$token\E|s3cret/,
       'neither the bypass token nor a password is printed');

# the same, as text: a table
$r = mig($all, { env => \%secrets }, 'health');
like($r->{out}, qr/^ok\s+http_bypass\s+\d+ ms  HTTP 200: ok: 2 migrations$/m,
     'text: ok, name, time, last line');
like($r->{out}, qr/^FAIL sql_bad\s+\d+ ms  returned "0", want "1"$/m,
     'text: FAIL line');
like($r->{out}, qr/^20 checks, 9 failed, \d+ ms$/m, 'text: the summary');
like($r->{out}, qr/^FAIL sql_ctl\s+\d+ ms  returned "a\\x1b\[2Jb", want "ab"$/m,
     'text: a control character from the database is escaped');
unlike($r->{out}, qr/\x1b/, 'text: no escape byte reaches the terminal');

# children do not inherit migctl's secrets (a command check needs no Redis:
# the Redis password variable is only named here)
my $sec = conf('secrets.conf', <<'EOF', 'password_env = "MIGTEST_REDIS_PW";');
health = { checks = (
    { name = "secrets";
      command = "env | grep -c s3cret; test -z \"$PGPASSWORD$REDISCLI_AUTH$MIGTEST_REDIS_PW$DATABASE_URL\""; },
    { name = "plain"; command = "test \"$DATABASE_URL\" = postgresql://127.0.0.1/app"; }
); };
EOF
$r = mig($sec, { env => { %secrets, REDISCLI_AUTH => 's3cret',
                          MIGTEST_REDIS_PW => 's3cret' } }, qw(--json health));
$c = checks($r);
ok($c->{secrets}{ok}, 'command: no secret in the child environment'
   . ' (PGPASSWORD, REDISCLI_AUTH, the Redis password variable, a'
   . ' DATABASE_URL with a password)') or diag($c->{secrets}{detail});
is($c->{secrets}{detail}, '0', '... not one variable holds it');
$r = mig($sec, { env => { DATABASE_URL => 'postgresql://127.0.0.1/app' } },
         qw(--json health));
ok(checks($r)->{plain}{ok}, 'a DATABASE_URL without a password is kept');

# real reasons, the other way round
$r = mig(conf('fixed.conf', <<"EOF"), qw(--json health));
health = { checks = (
    { name = "archive"; type = "backup"; max_age_min = 10; },
    { name = "indexes"; type = "invalid_indexes"; },
    { name = "blocked"; type = "blocked_sessions"; max_wait_s = 1; }
); };
EOF
is($r->{rc}, 1, 'archive not yet: exit 1');
$t->psql('pg', "CREATE TABLE walgen AS SELECT g FROM generate_series(1, 1000) g;"
               . " SELECT pg_switch_wal();");
ok($t->wait_for(sub {
    $t->psql('pg', 'SELECT last_archived_time IS NOT NULL FROM pg_stat_archiver')
        eq 't' }, 20), 'a WAL segment is archived');
$t->psql('pg', <<'SQL');
CREATE TABLE dup (k int);
INSERT INTO dup VALUES (1), (1);
SQL
eval { $t->psql('pg', 'CREATE UNIQUE INDEX CONCURRENTLY dup_k ON dup (k)') };
my $holder = $t->pg_session('pg', app => 'holder');
$holder->send("BEGIN; LOCK TABLE dup IN ACCESS EXCLUSIVE MODE; SELECT 'held';");
ok($t->wait_for(sub { $holder->output =~ /held/ }, 10), 'a lock is held');
my $waiter = $t->pg_session('pg', app => 'waiter');
$waiter->send('SELECT count(*) FROM dup;');
ok($t->wait_for(sub {
    $t->psql('pg', "SELECT count(*) FROM pg_locks WHERE NOT granted"
                   . " AND waitstart < now() - interval '1.2 s'") > 0 }, 10),
   'a session waits on it for more than 1 s');
$r = mig(conf('fixed.conf', <<"EOF"), qw(--json health));
health = { checks = (
    { name = "archive"; type = "backup"; max_age_min = 10; },
    { name = "indexes"; type = "invalid_indexes"; },
    { name = "blocked"; type = "blocked_sessions"; max_wait_s = 1; }
); };
EOF
$c = checks($r);
ok($c->{archive}{ok}, 'backup: WAL archived within 10 min passes')
    or diag($c->{archive}{detail});
like($c->{archive}{detail}, qr/^last WAL \w+ archived \d+ s ago$/,
     'backup: the WAL and its age');
ok(!$c->{indexes}{ok}, 'invalid_indexes: fails with an INVALID index');
like($c->{indexes}{detail}, qr/1 INVALID index: public.dup_k ON dup/,
     'invalid_indexes: names it');
ok(!$c->{blocked}{ok}, 'blocked_sessions: fails with a waiting session');
like($c->{blocked}{detail}, qr/pid \d+ \(waiter\) waiting \d+ s for \{\d+\}/,
     'blocked_sessions: who waits, how long, for whom');
$holder->close;
$waiter->close;
$t->psql('pg', 'DROP INDEX dup_k');

# an index being built CONCURRENTLY is INVALID until done: named so
my $old = $t->pg_session('pg', app => 'oldtx');
$old->send("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM dup;"
           . " SELECT 'open';");
ok($t->wait_for(sub { $old->output =~ /open/ }, 10), 'an old snapshot held');
my $cic = $t->pg_session('pg', app => 'cic');
$cic->send('CREATE INDEX CONCURRENTLY walgen_g ON walgen (g);');
ok($t->wait_for(sub {
    $t->psql('pg', "SELECT count(*) FROM pg_stat_progress_create_index") > 0
}, 10), 'CREATE INDEX CONCURRENTLY waits for it');
$r = mig(conf('idx.conf', <<"EOF"), qw(--json health));
health = { checks = ( { name = "indexes"; type = "invalid_indexes"; } ); };
EOF
like(checks($r)->{indexes}{detail},
     qr/1 INVALID index: public.walgen_g ON walgen \(being built now\)/,
     'invalid_indexes: an index being built fails, named as being built');
$old->close;
ok($t->wait_for(sub {
    $t->psql('pg', "SELECT count(*) FROM pg_index WHERE NOT indisvalid") == 0
}, 20), 'the build ends');
$cic->close;

# --- item 8: a hanging check is cut at its timeout -----------------------

my $hang = conf('hang.conf', <<"EOF");
health = { checks = (
    { name = "hang1"; type = "http"; url = "http://127.0.0.1:$app_port/hang";
      timeout_ms = 1000; },
    { name = "hang2"; type = "http"; url = "http://127.0.0.1:$app_port/hang";
      timeout_ms = 1500; },
    { name = "sleepy"; command = "sleep 30"; timeout_ms = 2000; },
    { name = "slowsql"; type = "sql"; query = "SELECT pg_sleep(30)::text";
      expect = "x"; timeout_ms = 1200; },
    { name = "fast"; type = "http"; url = "http://127.0.0.1:$app_port/version"; }
); };
EOF
my $t0 = time;
$r = mig($hang, qw(--json health));
my $wall = time - $t0;
is($r->{rc}, 1, 'hanging checks: exit 1');
$c = checks($r);
like($c->{hang1}{detail}, qr/^timed out after 1000 ms/, 'hang1 cut at 1000 ms');
like($c->{hang2}{detail}, qr/^timed out after 1500 ms/, 'hang2 cut at 1500 ms');
like($c->{sleepy}{detail}, qr/^timed out after 2000 ms/,
     'command cut at 2000 ms');
like($c->{slowsql}{detail}, qr/^timed out after 1200 ms \(query cancelled\)/,
     'sql cut at 1200 ms, the query cancelled');
ok($c->{fast}{ok}, 'the fast check passes meanwhile');
ok($c->{hang1}{time_ms} >= 900 && $c->{hang1}{time_ms} < 1900,
   "hang1 took $c->{hang1}{time_ms} ms");
my $sum = 1000 + 1500 + 2000 + 1200;
ok($r->{json}{total_ms} < $sum, "total $r->{json}{total_ms} ms < the sum of"
   . " the timeouts ($sum ms)");
ok($r->{json}{total_ms} < 2000 + 1000, 'total within the slowest timeout'
   . ' (2000 ms) + 1 s');
ok($wall * 1000 < $sum, sprintf('migctl returned in %.0f ms', $wall * 1000));
diag(sprintf('item 8: timeouts 1000/1500/2000/1200 ms: checks took %s ms;'
             . ' total %d ms, migctl wall %.0f ms (sum %d ms)',
             join('/', map { $c->{$_}{time_ms} } qw(hang1 hang2 sleepy slowsql)),
             $r->{json}{total_ms}, $wall * 1000, $sum));
is($t->psql('pg', "SELECT count(*) FROM pg_stat_activity"
                  . " WHERE query LIKE 'SELECT pg_sleep(30)%'"), 0,
   'the cancelled query is not left running');

# --- item 2: maintenance off while the app answers 500 -------------------

my $gate = conf('gate.conf', <<"EOF");
health = { checks = (
    { name = "app"; type = "http"; url = "http://127.0.0.1:$p1/healthz";
      bypass_token_file = "$token_file"; timeout_ms = 5000; },
    { name = "edges"; type = "edges"; }
); };
EOF
$t->write_file($status_file, "500\n");
is($t->http($p1, '/healthz', headers => { 'X-Maintenance-Bypass' => $token })
   ->{status}, 500, 'the app answers 500 (through the bypass)');
my $e0 = state()->{epoch};
my $n0 = scalar @{ audit() };
$r = mig($gate, qw(maintenance off --wait=5));
is($r->{rc}, 4, 'off while the app answers 500: exit 4');
like($r->{err}, qr/health check app failed: HTTP 500, want 200: broken/,
     'names the failed check and what the app said');
like($r->{err}, qr/off refused: health checks failed, the flag is unchanged/,
     'refused, flag unchanged');
is(state()->{mode}, 'on', 'flag still on');
is(state()->{epoch}, $e0, 'epoch unchanged');
is($t->http($p1, '/healthz')->{status}, 503, 'HTTP still drained');
is($t->http($p1s, '/healthz', tls => 1)->{status}, 503, 'TLS still drained');
is(audit()->[-1]{result}, 'refused', 'audited as refused');

# with no check configured: refused too
my $none = conf('none.conf', '');
$r = mig($none, qw(maintenance off));
is($r->{rc}, 4, 'off with no check configured: exit 4');
like($r->{err}, qr/no health check is configured \(health.checks in \Q$none\E\)/,
     'says no check is configured, and where');
like($r->{err}, qr/off refused: no health check configured.*--force --reason R/,
     'says what to do');
is(state()->{mode}, 'on', 'flag still on');
is($t->http($p1, '/healthz')->{status}, 503, 'still drained');
$r = mig($none, qw(--json maintenance off));
is($r->{rc}, 4, '--json: exit 4');
is($r->{json}{result}, 'refused', '--json: result refused');
is(scalar(@{ audit() }), $n0 + 3, 'three refusals audited');

# fixed: off passes, both ports open
unlink $status_file;
$r = mig($gate, qw(maintenance off --wait=10));
is($r->{rc}, 0, 'app fixed: off --wait passes') or diag($r->{err});
like($r->{out}, qr/^health: 2 checks passed \(\d+ ms\)$/m,
     'says the checks passed');
is($t->http($p1, '/healthz')->{status}, 200, 'HTTP open');
is($t->http($p1s, '/healthz', tls => 1)->{status}, 200, 'TLS open');

# --- item 6: a --scope typo with --wait ---------------------------------

# refused before anything is written (t/scope_guard.t); --any-scope, for a
# scope introduced before its edges, reaches --wait's own check below
$r = mig($none, qw(--scope defualt maintenance on --reason typo --wait=5));
is($r->{rc}, 4, 'on --wait with a scope nobody gates: refused, exit 4');
like($r->{err}, qr/no live edge serves scope 'defualt' \(the 1 live edge serves: default\)/,
     '... naming the scope the live edge serves');

$t0 = time;
$r = mig($none, qw(--scope defualt maintenance on --reason typo --wait=5
                   --any-scope));
my $took = time - $t0;
is($r->{rc}, 1, 'on --wait with a scope nobody gates: exit 1');
like($r->{err}, qr/--wait: no live edge gates scope defualt \(live edges gate: default\): check --scope/,
     'the hint names the scope the live edge gates');
ok($took < 4, sprintf('... at once, not after the 5 s (%.1f s)', $took));
diag(sprintf('item 6: on --wait=5 with a scope typo exited 1 after %.0f ms',
             $took * 1000));
$r = mig($none, qw(--scope defualt maintenance off --force --reason typo
                   --wait 5 --any-scope));
is($r->{rc}, 1, 'off --force --wait 5 (space-separated) with the typo: exit 1');
like($r->{err}, qr/no live edge gates scope defualt/, '... named again');
$r = mig(conf('prefix.conf', 'prefix = "migctI";'),
         qw(maintenance on --reason typo --wait=5));
is($r->{rc}, 1, 'a prefix typo: exit 1');
like($r->{err}, qr/no live edge reports to migctI:edges/,
     '... says no edge reports under that prefix');

# --- edges: an edge behind the current epoch ------------------------------

my $edges = conf('edges.conf', <<"EOF");
health = { checks = ( { name = "edges"; type = "edges"; } ); };
EOF
$r = mig($edges, qw(--json health));
is($r->{rc}, 0, 'edges: the edge serves the current state') or diag($r->{err});
my @stopped = ($t->nginx_pid('n1'), $t->worker_pids('n1'));
kill 'STOP', @stopped;
my $ep = state()->{epoch} + 1;
$t->set_state('r', 'default', 'on', $ep);
$r = mig($edges, qw(--json health));
kill 'CONT', @stopped;
is($r->{rc}, 1, 'edges: a stopped edge misses a change: exit 1');
like(checks($r)->{edges}{detail},
     qr/^1 of 1 live edges not serving on:$ep: n1 \(serving \w+:\d+\)/,
     'edges: names the edge behind and what it serves');
ok($t->wait_for(sub { mig($edges, 'health')->{rc} == 0 }, 10),
   'edges: resumed, it catches up and the check passes');

# --- hooks ---------------------------------------------------------------

my $hooks = conf('hooks.conf', <<"EOF");
health = { checks = ( { name = "edges"; type = "edges"; } ); };
hooks = {
    on = ( { name = "pause"; command = "echo paused > $dir/paused; echo workers paused"; },
           { name = "freeze"; command = "echo frozen > $dir/frozen"; } );
    off = ( { name = "resume"; command = "echo cannot resume; exit 3"; },
            { name = "unfreeze"; command = "rm -f $dir/frozen"; } );
};
EOF
$n0 = scalar @{ audit() };
$r = mig($hooks, qw(maintenance on --reason hooks --wait=10));
is($r->{rc}, 0, 'on with hooks: exit 0') or diag($r->{err});
like($r->{err}, qr/hook on.pause ok \(\d+ ms\): workers paused/,
     'the hook and its output printed');
ok(-e "$dir/paused" && -e "$dir/frozen", 'both on hooks ran');
my @h = grep { $_->{action} =~ /^hook/ } @{ audit() }[$n0 .. $#{ audit() }];
is_deeply([ map { "$_->{action} $_->{result}" } @h ],
          [ 'hook_on ok', 'hook_on ok' ], 'on hooks audited');
like($h[0]{reason}, qr/^hook on.pause: workers paused$/,
     'audit names the hook');

$n0 = scalar @{ audit() };
$r = mig($hooks, qw(--json maintenance off --wait=10));
is($r->{rc}, 5, 'a failing off hook: exit 5');
like($r->{err}, qr/hook off.resume FAILED \(\d+ ms\): exit 3: cannot resume/,
     'the failed hook named with its output');
like($r->{err}, qr/the flag is off, but a hook failed/, 'says what happened');
is(state()->{mode}, 'off', 'health passed: the flag is off');
ok(!-e "$dir/frozen", 'the other off hook still ran');
is_deeply([ map { $_->{ok} ? 1 : 0 } @{ $r->{json}{hooks_off} || [] } ],
          [0, 1], 'json: each hook result');
@h = grep { $_->{action} =~ /^hook/ } @{ audit() }[$n0 .. $#{ audit() }];
is_deeply([ map { "$_->{action} $_->{result}" } @h ],
          [ 'hook_off failed', 'hook_off ok' ], 'off hooks audited');

# --- status: Retry-After and since ---------------------------------------

$r = mig($none, qw(maintenance on --reason ra --retry-after 90 --wait=10));
is($r->{rc}, 0, 'on --retry-after 90');
is($t->http($p1, '/')->{headers}{'retry-after'}, 90, 'the edge sends 90');
$r = mig($none, qw(maintenance status));
like($r->{out}, qr/retry_after: 90 s \(the edges send this\)/, 'status: 90');
$r = mig($none, qw(--json maintenance status));
is($r->{json}{retry_after_sent}, 90, 'json: retry_after_sent 90');
my $since_on = $r->{json}{since};
is($r->{json}{since_source}, 'audit', 'json: since from the audited change');

sleep 1.1;                         # a clock to move, not a synchronisation
$r = mig($none, qw(maintenance on --reason reassert --wait=10));
is($r->{rc}, 0, 'on again (re-asserted)');
is($t->http($p1, '/')->{headers}{'retry-after'}, 120,
   'no --retry-after: the edge sends its maintenance_retry_after');
$r = mig($none, qw(maintenance status));
like($r->{out}, qr/retry_after: not set: the edges send their maintenance_retry_after/,
     'status says the edge default is sent');
$r = mig($none, qw(--json maintenance status));
is($r->{json}{retry_after_sent}, undef, 'json: retry_after_sent null');
my $reassert_since = state()->{since};
ok($r->{json}{since} <= $since_on && $r->{json}{since} < $reassert_since,
   "since: from the change that set the mode on ($r->{json}{since}), not"
   . " the re-assert ($reassert_since)");

# break-glass: redis-cli HSET mode, no audit, no new since
$r = mig($none, qw(maintenance off --force --reason reopen --wait=10));
is($r->{rc}, 0, 'off (forced)');
my $off_since = state()->{since};
sleep 1.1;
$t->redis('r', 'HSET', 'migctl:state:default', 'mode', 'on');
ok($t->wait_for(sub { $t->http($p1, '/')->{status} == 503 }, 5),
   'break-glass HSET: the edge drains');
$r = mig($none, qw(--json maintenance status));
is($r->{json}{mode}, 'on', 'status: on');
is($r->{json}{since}, undef, 'since: not the off change\'s time');
is($r->{json}{since_source}, 'unknown', 'since_source: unknown');
ok($r->{json}{changed_after} >= $off_since, 'changed after the last audited'
   . ' change');
$r = mig($none, qw(maintenance status));
like($r->{out}, qr/ON \(epoch \d+\) since unknown: set outside migctl \(not audited\) after \d{4}-/,
     'text: since unknown');
my $now = int(time);
$t->redis('r', 'HSET', 'migctl:state:default', 'since', $now);
$r = mig($none, qw(--json maintenance status));
is($r->{json}{since}, $now, 'a hand-written since newer than the audit is'
   . ' used');

$t->check_logs('n1');
$t->check_pg_log('pg');
# the checks' own sessions ("migctl health"): only the cancelled query
my @pgerr = grep { /^migctl health (ERROR|FATAL)/ && !/canceling statement/ }
            split /\n/, $t->read_file("$dir/pg/postgres.log") // '';
ok(!@pgerr, 'postgres log: no error from a health check query but the'
   . ' cancelled one') or diag(join "\n", @pgerr);

done_testing();
