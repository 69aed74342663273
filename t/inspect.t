#!/usr/bin/perl

# inspect.t: `migctl inspect` against a real PostgreSQL catalog.  The
# fixtures are `manage.py sqlmigrate` output of Django 3.2 (and hand-made
# RunSQL ones); the database is brought into each state by running their
# statements with psql: not applied, half applied (a non-atomic run that
# stopped), applied but not recorded, recorded with --fake, INVALID index
# left by CREATE UNIQUE INDEX CONCURRENTLY, RunPython / RunSQL DML that
# cannot be verified, schema-qualified names and search_path, and errors.

use strict;
use warnings;

use lib 't/lib';
use JSON::PP;
use MigTest;
use Test::More;
use Time::HiRes qw(time);

my $t = MigTest->new;
my $fx = $t->root . '/t/fixtures/db';
$t->start_pg('pg');
my %env = $t->pg_env('pg');

sub inspect {
    my (@args) = @_;
    my $o = ref $args[0] eq 'HASH' ? shift @args : {};
    my $r = $t->migctl({ %$o, env => { %env, %{ $o->{env} || {} } } },
                       '--json', 'inspect', @args);
    $r->{json} = eval { decode_json($r->{out}) };
    unlike($r->{err}, qr/AddressSanitizer|runtime error|LeakSanitizer/,
           "no sanitizer report (@args)");
    return $r;
}

sub shop {
    my ($n, $name) = @_;
    return ('--sql', "$fx/shop_$n.sql", '--app', 'shop', '--migration',
            $name);
}

# the SQL statements of a fixture, one per line as sqlmigrate prints them
sub statements {
    my ($file) = @_;
    return grep { !/^--/ && !/^(BEGIN|COMMIT);$/ && /\S/ }
           split /\n/, $t->read_file("$fx/$file");
}

sub record {
    my ($app, $name) = @_;
    $t->psql('pg', "INSERT INTO django_migrations (app, name, applied)"
                   . " VALUES ('$app', '$name', now())");
}

sub obj {
    my ($r, $action, $name) = @_;
    my @o = grep { $_->{action} eq $action && $_->{name} eq $name }
            @{ $r->{json}{objects} || [] };
    return $o[0] || {};
}

sub statuses {
    my ($r) = @_;
    my %s;
    $s{ $_->{status} }++ for @{ $r->{json}{objects} || [] };
    return \%s;
}

# --- errors that need no database ---------------------------------------

# nothing in it parses: not sqlmigrate output (one bad statement among
# good ones is no longer a usage error: see "one statement that does not
# parse" below)
my $r = inspect('--sql', "$fx/not_sql.sql");
is($r->{rc}, 2, 'no statement parses: exit 2');
like($r->{err}, qr/^migctl: inspect: \S*not_sql\.sql: syntax error at or near "this" at line 1, column 1 \(position 1\): give the output of manage\.py sqlmigrate APP MIGRATION\n\z/,
     'no statement parses: libpg_query message with line, column and position');

my $empty = $t->write_file('empty.sql', '');
$r = inspect('--sql', $empty);
is($r->{rc}, 2, 'empty file: exit 2');
like($r->{err}, qr/empty\.sql: no SQL statement in it/, 'empty file: says so');

my $comments = $t->write_file('comments.sql', "--\n-- Nothing\n--\n");
$r = inspect('--sql', $comments);
is($r->{rc}, 2, 'comments only: exit 2');

$r = inspect();
is($r->{rc}, 2, 'no --sql: exit 2');
like($r->{err}, qr/--sql FILE is required/, 'no --sql: says so');

$r = inspect('--sql', "$fx/shop_0001.sql", '--app', 'shop');
is($r->{rc}, 2, '--app without --migration: exit 2');

$r = inspect({ env => { PGPORT => $t->port('nothing') } },
             '--sql', "$fx/not_sql.sql");
is($r->{rc}, 2, 'garbage SQL and no server: still exit 2 (input first)');

$r = inspect({ env => { PGPORT => $t->port('nothing') } },
             '--sql', "$fx/shop_0001.sql");
is($r->{rc}, 3, 'unreachable server: exit 3');
like($r->{err}, qr/^migctl: inspect: cannot connect to PostgreSQL: .*: check DATABASE_URL/,
     'unreachable server: one clear line');

$r = inspect('--sql', "$fx/shop_0001.sql");
is($r->{rc}, 2, 'not a Django database: exit 2');
like($r->{err}, qr/^migctl: inspect: not a Django database: no django_migrations table/,
     'not a Django database: says so');

# --- 0001: applied and recorded -----------------------------------------

$t->psql('pg', $t->read_file("$fx/django_migrations.sql"));
$t->psql('pg', $t->read_file("$fx/shop_0001.sql"));
record('shop', '0001_initial');

$r = inspect(shop('0001', '0001_initial'));
is($r->{rc}, 0, '0001 applied: exit 0') or diag($r->{out}, $r->{err});
is($r->{json}{verdict}, 'applied', '0001: applied');
ok($r->{json}{verified} == JSON::PP::true, '0001: verified');
ok($r->{json}{recorded} == JSON::PP::true, '0001: recorded');
ok($r->{json}{atomic} == JSON::PP::true, '0001: atomic (BEGIN/COMMIT)');
is_deeply(statuses($r), { done => 4 }, '0001: table and 3 columns done');
is(obj($r, 'create_table', 'shop_customer')->{operation},
   'Create model Customer', 'the "-- operation" comment is kept');
is(obj($r, 'create_table', 'shop_customer')->{line}, 5, 'line number');

# --- 0002: not applied --------------------------------------------------

$r = inspect(shop('0002', '0002_auto_20261125_1022'));
is($r->{rc}, 1, '0002 not applied: exit 1');
is($r->{json}{verdict}, 'not_applied', '0002: not_applied');
ok($r->{json}{recorded} == JSON::PP::false, '0002: not recorded');
is_deeply(statuses($r), { not_done => 15 }, '0002: 15 objects, none done');
my $ty = obj($r, 'alter_column_type', 'name');
is($ty->{expected}, 'type character varying(200)', 'type expected');
is($ty->{found}, 'type character varying(100)', 'type found');
is(obj($r, 'drop_column', 'legacy')->{found}, 'present (integer)',
   'drop column: still present');
is(obj($r, 'add_constraint',
       'shop_order_customer_id_f638df20_fk_shop_customer_id')->{expected},
   'foreign key', 'FK constraint expected by name');
is(obj($r, 'create_index', 'shop_customer_name_e6c6b028')->{table},
   'shop_customer', 'index table');

# --- 0002 half run: a non-atomic run that stopped after 4 statements ----

# the same statements without BEGIN/COMMIT: a non-atomic migration can
# stop halfway; an atomic one cannot (PostgreSQL rolls it back whole)
my @s2 = statements('shop_0002.sql');
is(scalar @s2, 12, '0002 has 12 statements');
my $s2na = $t->write_file('shop_0002_nonatomic.sql',
    join '', grep { !/^(BEGIN|COMMIT);$/ }
             split /^/, $t->read_file("$fx/shop_0002.sql"));
$t->psql('pg', join "\n", @s2[0 .. 3]);

$r = inspect('--sql', $s2na, '--app', 'shop', '--migration',
             '0002_auto_20261125_1022');
is($r->{rc}, 1, '0002 half: exit 1');
is($r->{json}{verdict}, 'partially_applied', '0002 half: partially_applied');
is_deeply(statuses($r), { done => 4, not_done => 11 },
          '0002 half: 4 done, 11 not');
is(obj($r, 'drop_default', 'email')->{status}, 'done',
   'ADD COLUMN DEFAULT then DROP DEFAULT: no default, done');
ok(obj($r, 'drop_default', 'email')->{may_hold_before},
   '... but "no default" may hold before the migration ran');
is(obj($r, 'alter_column_type', 'name')->{status}, 'not_done',
   'next statement not done');

# the atomic file (sqlmigrate's BEGIN/COMMIT), same database: never partial
$r = inspect(shop('0002', '0002_auto_20261125_1022'));
is($r->{json}{verdict}, 'not_applied',
   '0002 atomic, objects found, not recorded: not_applied, never partial');
like($r->{json}{note}, qr/rolled it back whole; the objects found in place were there before it/,
     '... the note says the objects predate it');

# --- 0002 every statement ran, not recorded -----------------------------

$t->psql('pg', join "\n", @s2[4 .. $#s2]);
$r = inspect(shop('0002', '0002_auto_20261125_1022'));
is($r->{json}{verdict}, 'present_but_unrecorded',
   '0002 complete but not recorded: present_but_unrecorded (DESIGN.md)');
like($r->{json}{note}, qr/not recorded/, '... and the note says why');
is_deeply(statuses($r), { done => 15 }, '0002: all 15 done');
$r = inspect('--sql', $s2na, '--app', 'shop', '--migration',
             '0002_auto_20261125_1022');
is($r->{json}{verdict}, 'present_but_unrecorded',
   '0002 non-atomic complete, not recorded: present_but_unrecorded');
like($r->{json}{note}, qr/died between its DDL and the record/,
     '... a crash between the DDL and the record');

record('shop', '0002_auto_20261125_1022');
$r = inspect(shop('0002', '0002_auto_20261125_1022'));
is($r->{rc}, 0, '0002 recorded: exit 0');
is($r->{json}{verdict}, 'applied', '0002 recorded: applied');

# --- 0003: recorded with --fake, nothing done ---------------------------

record('shop', '0003_data');
$r = inspect(shop('0003', '0003_data'));
is($r->{rc}, 1, '0003 faked: exit 1');
is($r->{json}{verdict}, 'recorded_but_incomplete',
   '0003 faked: recorded_but_incomplete');
is(obj($r, 'rename_column', 'points')->{found}, 'absent',
   'the renamed column is missing');
is_deeply([map { $_->{what} } @{ $r->{json}{unverified} }],
          ['RunPython', 'UPDATE'], 'RunPython and RunSQL UPDATE unverified');
is($r->{json}{unverified}[0]{operation}, 'Raw Python operation',
   'RunPython noted from its comment');
is($r->{json}{unverified}[1]{operation}, 'Raw SQL operation',
   'RunSQL noted from its comment');

# --- 0003 applied: RunPython cannot be checked, never plain "applied" ---

$t->psql('pg', join "\n", statements('shop_0003.sql'));
$r = inspect(shop('0003', '0003_data'));
is($r->{json}{verdict}, 'applied_unverified',
   '0003 applied with RunPython: applied_unverified');
ok($r->{json}{verified} == JSON::PP::false, '0003: verified false');
is($r->{rc}, 1, '0003: exit 1 (cannot claim applied)');
is_deeply(statuses($r), { done => 3 }, '0003: rename, not null, default');
is($r->{json}{counts}{unverified}, 2, '0003: 2 unverified');

# 0002 is checked against today's schema, where 0003 renamed its column
$r = inspect(shop('0002', '0002_auto_20261125_1022'));
is($r->{json}{verdict}, 'recorded_but_incomplete',
   '0002 after 0003: score was renamed, 0002 looks incomplete');
is($r->{json}{later_recorded}, 1, '... and one later migration is recorded');
like($r->{json}{note}, qr/later migrations of this app are recorded/,
     '... which the note points out');

$r = $t->migctl({ env => \%env }, 'inspect', shop('0003', '0003_data'));
like($r->{out}, qr/^verdict: applied_unverified$/m, 'text: verdict');
like($r->{out}, qr/^unverified \(the catalog cannot confirm these\):\n  line 4: RunPython: Raw Python operation$/m,
     'text: unverified list');
like($r->{out}, qr/^STMT\s+LINE\s+ACTION\s+STATUS\s+OBJECT\s+EXPECTED\s+FOUND$/m,
     'text: table header');
like($r->{out}, qr/^3\s+13\s+rename_column\s+done\s+shop_customer\.points\s+present\s+present \(integer, not null\)$/m,
     'text: a row');

# --- 0006: CREATE UNIQUE INDEX CONCURRENTLY fails, INVALID index stays --

$t->psql('pg', "INSERT INTO shop_customer (name, email, points) VALUES"
               . " ('ann', 'a1\@x', 0), ('ann', 'a2\@x', 0)");
my $ci = $t->run({ env => \%env }, 'psql', '-X', '-f',
                 "$fx/shop_0006_unique_concurrently.sql");
like($ci->{err}, qr/could not create unique index/, 'concurrent index fails');

$r = inspect(shop('0006_unique_concurrently', '0006_name_unique'));
is($r->{rc}, 1, 'INVALID index: exit 1');
is($r->{json}{verdict}, 'partially_applied',
   'INVALID index: partially_applied (the database changed)');
is(obj($r, 'create_index', 'shop_customer_name_uniq')->{status}, 'invalid',
   'INVALID index: status invalid');
is(obj($r, 'create_index', 'shop_customer_name_uniq')->{found},
   'INVALID unique index on shop_customer', 'INVALID index: found');
ok($r->{json}{atomic} == JSON::PP::false, 'non-atomic migration');

record('shop', '0006_name_unique');
$r = inspect(shop('0006_unique_concurrently', '0006_name_unique'));
is($r->{json}{verdict}, 'recorded_but_incomplete',
   'INVALID index recorded: recorded_but_incomplete');
$t->psql('pg', 'DROP INDEX shop_customer_name_uniq');

# --- 0005: rename table, drop constraint/index/table, defaults ----------

$t->psql('pg', 'CREATE TABLE shop_legacy (id int)');
$r = inspect(shop('0005', '0005_more'));
is($r->{json}{verdict}, 'not_applied', '0005 not applied') or diag($r->{out});
is(obj($r, 'rename_table', 'shop_purchase')->{status}, 'not_done',
   'rename table: new name absent');
is(obj($r, 'drop_not_null', 'total')->{table}, 'shop_purchase',
   'later statements name the renamed table');

$t->psql('pg', $t->read_file("$fx/shop_0005.sql"));
record('shop', '0005_more');
$r = inspect(shop('0005', '0005_more'));
is($r->{rc}, 0, '0005 applied: exit 0') or diag($r->{out});
is($r->{json}{verdict}, 'applied', '0005 applied');
is_deeply([sort map { "$_->{action}:$_->{name}:$_->{status}" }
           @{ $r->{json}{objects} }],
          [sort 'rename_table:shop_purchase:done',
                'drop_constraint:order_total_positive:done',
                'set_default:total:done',
                'drop_not_null:total:done',
                'drop_index:shop_customer_name_e6c6b028_like:done',
                'drop_table:shop_legacy:done',
                'add_constraint:shop_customer_name_email_uniq:done',
                'rename_column:loyalty:done'],
          '0005: every kind of object checked');

# --- RunSQL: what it can read is checked, DML and DO are not ------------

$r = inspect('--sql', "$fx/runsql.sql");
is($r->{json}{verdict}, 'not_applied', 'RunSQL not applied');
ok(!defined $r->{json}{recorded}, 'recorded null without --app');
$t->psql('pg', $t->read_file("$fx/runsql.sql"));
$r = inspect('--sql', "$fx/runsql.sql");
is($r->{json}{verdict}, 'applied_unverified',
   'RunSQL applied, no --app: applied_unverified');
is_deeply(statuses($r), { done => 6 }, 'RunSQL: 6 objects done');
is(obj($r, 'add_constraint', 'audit_log_what_nonempty')->{found},
   'check constraint (not validated)', 'NOT VALID check constraint');
is_deeply([map { $_->{what} } @{ $r->{json}{unverified} }],
          ['INSERT', 'DO'], 'INSERT and DO unverified');

# --- contrib.postgres and RunSQL objects: extension, sequence, view,
#     trigger (a function body stays unverified) -------------------------

$r = inspect('--sql', "$fx/contrib.sql", '--app', 'shop',
             '--migration', '0007_contrib');
is($r->{json}{verdict}, 'not_applied', 'contrib: not applied')
    or diag($r->{out});
is_deeply([map { "$_->{kind}:$_->{name}:$_->{status}" }
           @{ $r->{json}{objects} }],
          ['extension:pg_trgm:not_done', 'sequence:invoice_no_seq:not_done',
           'view:shop_big_customers:not_done',
           'trigger:shop_customer_touch:not_done'],
          'contrib: extension, sequence, view, trigger checked');
is_deeply([map { $_->{what} } @{ $r->{json}{unverified} }],
          ['CREATE FUNCTION'], 'contrib: the function is unverified');

$t->psql('pg', $t->read_file("$fx/contrib.sql"));
record('shop', '0007_contrib');
$r = inspect('--sql', "$fx/contrib.sql", '--app', 'shop',
             '--migration', '0007_contrib');
is($r->{json}{verdict}, 'applied_unverified',
   'contrib applied: applied_unverified (function body)');
is_deeply(statuses($r), { done => 4 }, 'contrib: 4 objects done');
like(obj($r, 'create_extension', 'pg_trgm')->{found},
     qr/^present \(version [\d.]+\)$/, 'extension version shown');

# --- schemas: qualified names and the search_path -----------------------

$t->psql('pg', <<'SQL');
CREATE SCHEMA tenant;
CREATE TABLE tenant.billing_invoice (id int, owner varchar(32));
SQL

$r = inspect('--sql', "$fx/tenant.sql");
is(obj($r, 'alter_column_type', 'owner')->{found}, 'table absent',
   'unqualified name not on the search_path: table absent');

my %sp = (PGOPTIONS => '-c search_path=tenant,public');
$r = inspect({ env => \%sp }, '--sql', "$fx/tenant.sql");
is($r->{json}{verdict}, 'not_applied', 'tenant: not applied');
is(obj($r, 'alter_column_type', 'owner')->{found},
   'type character varying(32)', 'search_path finds tenant.billing_invoice');

$t->run({ env => { %env, %sp } }, 'psql', '-X', '-q', '-f',
        "$fx/tenant.sql");
record('billing', '0002_account');
$r = inspect({ env => \%sp }, '--sql', "$fx/tenant.sql", '--app', 'billing',
             '--migration', '0002_account');
is($r->{json}{verdict}, 'applied', 'tenant: applied') or diag($r->{out});
is(obj($r, 'create_table', 'billing_account')->{schema}, 'tenant',
   'schema-qualified table');

# --- every common Django field type (sqlmigrate of Django 3.2): applied -

$r = inspect('--sql', "$fx/kinds_0001.sql", '--app', 'kinds',
             '--migration', '0001_initial');
is($r->{json}{verdict}, 'not_applied', 'field types: not applied');
$t->psql('pg', $t->read_file("$fx/kinds_0001.sql"));
record('kinds', '0001_initial');
$r = inspect('--sql', "$fx/kinds_0001.sql", '--app', 'kinds',
             '--migration', '0001_initial');
is($r->{rc}, 0, 'field types: exit 0');
is($r->{json}{verdict}, 'applied', 'field types: applied')
    or diag(explain([grep { $_->{status} ne 'done' }
                     @{ $r->{json}{objects} || [] }]));
is(obj($r, 'create_table', 'arr')->{type}, 'integer[]', 'array type');
is(obj($r, 'create_table', 'dec')->{type}, 'numeric(8,3)', 'numeric type');
is(obj($r, 'create_table', 'at')->{type}, 'timestamp with time zone',
   'timestamptz type');

# --- a same-named column of another type is not the column it adds ------

$t->psql('pg', 'CREATE TABLE shop_typed (a text, b varchar(10))');
my $typed = $t->write_file('typed.sql', <<'SQL');
ALTER TABLE "shop_typed" ADD COLUMN "a" varchar(20) NULL;
ALTER TABLE "shop_typed" ADD COLUMN "b" varchar(10) NULL;
SQL
$r = inspect('--sql', $typed);
is(obj($r, 'add_column', 'a')->{status}, 'not_done',
   'column of another type: not done');
is(obj($r, 'add_column', 'a')->{found}, 'present (text), another type',
   'column of another type: found says so');
is(obj($r, 'add_column', 'a')->{expected}, 'present', 'expected present');
is(obj($r, 'add_column', 'a')->{type}, 'character varying(20)',
   'column type expected');
is(obj($r, 'add_column', 'b')->{status}, 'done', 'same type: done');

# --- one statement that does not parse: listed, the rest checked -------

$r = inspect('--sql', "$fx/garbage.sql", '--app', 'shop', '--migration',
             '0099_garbage');
is($r->{rc}, 1, 'one bad statement: exit 1, not 2');
is($r->{json}{verdict}, 'not_applied', 'one bad statement: the rest checked');
is(obj($r, 'add_column', 'x')->{status}, 'not_done',
   'one bad statement: the statement before it is checked');
my ($bad) = grep { $_->{what} eq 'unparsable statement' }
            @{ $r->{json}{unverified} || [] };
is($bad->{line}, 6, 'one bad statement: its line');
is($bad->{error}, 'syntax error at or near "COMMIT" at line 7, column 1 (position 149)',
   'one bad statement: libpg_query message with line, column and position');
$r = $t->migctl({ env => \%env }, 'inspect', '--sql', "$fx/garbage.sql");
like($r->{out}, qr/^  line 6: unparsable statement: Add field x to y: syntax error at or near "COMMIT" at line 7, column 1 \(position 149\)$/m,
     'one bad statement: text output names it');

# --- Django 3.2 AlterField null -> not null with a default --------------
# SET DEFAULT; UPDATE; SET NOT NULL; DROP DEFAULT: before it ran, the
# column is nullable with no default, so "drop default" holds already

$t->psql('pg', 'CREATE TABLE shop_stock (id serial PRIMARY KEY, qty integer NULL)');
my $alter = $t->write_file('alterdef.sql', <<'SQL');
BEGIN;
--
-- Alter field qty on stock
--
ALTER TABLE "shop_stock" ALTER COLUMN "qty" SET DEFAULT 0;
UPDATE "shop_stock" SET "qty" = 0 WHERE "qty" IS NULL;
ALTER TABLE "shop_stock" ALTER COLUMN "qty" SET NOT NULL;
ALTER TABLE "shop_stock" ALTER COLUMN "qty" DROP DEFAULT;
COMMIT;
SQL
$r = inspect('--sql', $alter, '--app', 'shop', '--migration', '0008_qty');
is($r->{json}{verdict}, 'not_applied',
   'AlterField with default, not run: not_applied (was partially_applied)');
is(obj($r, 'drop_default', 'qty')->{status}, 'done', '"no default" holds');
ok(obj($r, 'drop_default', 'qty')->{may_hold_before},
   '... and may hold before: no proof of progress');
is($r->{json}{counts}{progress}, 0, 'no progress counted');
like($r->{json}{note}, qr/no proof that any of it ran/, 'note says why');

# a non-atomic copy: still not partial on "no default" alone
my $alterna = $t->write_file('alterdef_na.sql',
    join '', grep { !/^(BEGIN|COMMIT);$/ } split /^/, $t->read_file($alter));
$r = inspect('--sql', $alterna, '--app', 'shop', '--migration', '0008_qty');
is($r->{json}{verdict}, 'not_applied',
   'non-atomic: "no default" alone is not progress either');

$t->psql('pg', join "\n", grep { /^(ALTER|UPDATE)/ }
                          split /\n/, $t->read_file($alter));
record('shop', '0008_qty');
$r = inspect('--sql', $alter, '--app', 'shop', '--migration', '0008_qty');
is($r->{json}{verdict}, 'applied',
   'AlterField applied and recorded: applied (the backfill is Django\'s own)');
is($r->{rc}, 0, 'AlterField applied: exit 0');

# --- a default is compared by value, not only presence -----------------

$t->psql('pg', q{CREATE TABLE shop_tag (id int, label varchar(10) DEFAULT 'old', n int DEFAULT 7)});
my $setdef = $t->write_file('setdef.sql', <<'SQL');
ALTER TABLE "shop_tag" ALTER COLUMN "label" SET DEFAULT 'new';
ALTER TABLE "shop_tag" ALTER COLUMN "n" SET DEFAULT -1;
SQL
$r = inspect('--sql', $setdef);
is(obj($r, 'set_default', 'label')->{status}, 'not_done',
   'another default value: not done');
is(obj($r, 'set_default', 'label')->{expected}, 'default new',
   'expected: the value');
is(obj($r, 'set_default', 'label')->{found},
   q{default 'old'::character varying}, 'found: the value');
is($r->{json}{verdict}, 'not_applied', 'other default values: not_applied');
$t->psql('pg', $t->read_file($setdef));
$r = inspect('--sql', $setdef);
is(obj($r, 'set_default', 'label')->{status}, 'done', 'same value: done');
is(obj($r, 'set_default', 'n')->{status}, 'done',
   'same negative value (stored as \'-1\'::integer): done');

# --- a table held in ACCESS EXCLUSIVE: inspect needs no lock on it ------

my $holder = $t->pg_session('pg', app => 'inspect-holder');
$holder->send('BEGIN; LOCK TABLE shop_tag, shop_stock, shop_customer IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120);');
ok($t->wait_for(sub {
    $t->psql('pg', "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                 . "WHERE a.application_name = 'inspect-holder' AND l.granted "
                 . "AND l.mode = 'AccessExclusiveLock' AND l.relation = 'shop_tag'::regclass") > 0
}, 15), 'a session holds shop_tag in ACCESS EXCLUSIVE');
my $t1 = time;
$r = inspect({ timeout => 60 }, '--sql', $setdef);
my $el = time - $t1;
ok($el < 5, sprintf('inspect under ACCESS EXCLUSIVE returns (%.2f s)', $el));
is($r->{rc}, 1, 'under ACCESS EXCLUSIVE: an answer, exit 1 (no --app)');
is(obj($r, 'set_default', 'label')->{status}, 'done',
   'under ACCESS EXCLUSIVE: the default value still compared');
$t1 = time;
$r = inspect({ timeout => 60 }, '--sql', $alter, '--app', 'shop',
             '--migration', '0008_qty');
$el = time - $t1;
ok($el < 5, sprintf('inspect of a recorded migration under ACCESS EXCLUSIVE (%.2f s)', $el));
is($r->{json}{verdict}, 'applied', 'under ACCESS EXCLUSIVE: the right verdict');
$t->psql('pg', "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
               . "WHERE application_name = 'inspect-holder'");
$holder->close;

# --- behind a queued ALTER TABLE (a reader holds the table, the ALTER
#     waits for it): a query that asks for a lock on the table queues
#     behind the ALTER; inspect asks for none ---------------------------

my $reader = $t->pg_session('pg', app => 'inspect-reader');
$reader->send('BEGIN; SELECT count(*) FROM shop_tag; SELECT pg_sleep(120);');
ok($t->wait_for(sub {
    $t->psql('pg', "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                 . "WHERE a.application_name = 'inspect-reader' AND l.granted "
                 . "AND l.relation = 'shop_tag'::regclass") > 0 }, 15),
   'a reader holds shop_tag');
my $alterer = $t->pg_session('pg', app => 'inspect-alter');
$alterer->send('ALTER TABLE shop_tag ADD COLUMN z int;');
ok($t->wait_for(sub {
    $t->psql('pg', "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                 . "WHERE a.application_name = 'inspect-alter' AND NOT l.granted") > 0 }, 15),
   'an ALTER TABLE waits behind it');
$t1 = time;
$r = inspect({ timeout => 60 }, '--sql', $setdef);
$el = time - $t1;
ok($el < 5, sprintf('inspect behind a queued ALTER returns (%.2f s)', $el));
is(obj($r, 'set_default', 'label')->{status}, 'done',
   'behind a queued ALTER: the right answer');
$t->psql('pg', "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
               . "WHERE application_name IN ('inspect-reader', 'inspect-alter')");
$reader->close;
$alterer->close;

# --- batched catalog queries: a big file costs the same few queries -----

$t->psql('pg', "ALTER SYSTEM SET log_statement = 'all'");
$t->psql('pg', 'SELECT pg_reload_conf()');

my $big = "BEGIN;\n";
for my $i (1 .. 300) {
    $big .= "--\n-- Add field f$i to customer\n--\n"
          . "ALTER TABLE \"shop_customer\" ADD COLUMN \"f$i\" integer NULL;\n";
}
for my $i (1 .. 100) {
    $big .= "CREATE INDEX \"shop_customer_f${i}_idx\" ON \"shop_customer\" (\"f$i\");\n"
          . "ALTER TABLE \"shop_customer\" ADD CONSTRAINT \"f${i}_pos\" CHECK (\"f$i\" > 0);\n";
}
$big .= "CREATE TABLE \"shop_big\" (\"id\" bigserial NOT NULL PRIMARY KEY);\n";
$big .= "COMMIT;\n";
my $bigf = $t->write_file('big.sql', $big);

my $logf = "$t->{pg}{pg}{dir}/postgres.log";
my $before = () = ($t->read_file($logf) // '') =~ /^migctl LOG:/mg;
my $t0 = time;
$r = inspect('--sql', $bigf, '--app', 'shop', '--migration', '0099_big');
my $elapsed = time - $t0;
is($r->{json}{verdict}, 'not_applied', 'big file: not_applied');
is(scalar @{ $r->{json}{objects} }, 502, 'big file: 502 objects');
my $after;
$t->wait_for(sub {
    $after = () = ($t->read_file($logf) // '') =~ /^migctl LOG:/mg;
    $after - $before >= 6;
}, 5);
is($after - $before, 6,
   'big file: 6 statements (django check, 4 kinds, django_migrations)');
diag(sprintf('inspect of 502 objects: %.0f ms, %d queries',
             $elapsed * 1000, $after - $before));

$t->check_pg_log('pg');   # migctl's queries never failed

done_testing;
