#!/usr/bin/perl

# scenarios.t: real Django migrations failing against a real PostgreSQL,
# one database per scenario.  For each: what the database really holds
# (checked with psql), then `migctl inspect`, `classify` and `diagnose`
# on the real traceback and sqlmigrate output, and where the advice is to
# act, acting on it and checking the result.

use strict;
use warnings;

use lib 't/lib';
use MigTest;
use Test::More;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(time);

my $t = MigTest->new;
$t->start_pg('pg');
my %pg = $t->pg_env('pg');
my $json = JSON::PP->new;

my @holders;                        # background psql sessions (pids)
END {
    for my $pid (@holders) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
    }
}

# --- helpers ------------------------------------------------------------

sub new_db {
    my ($name) = @_;
    $t->psql('pg', "CREATE DATABASE s_$name", db => 'postgres');
    return { %pg, PGDATABASE => "s_$name" };
}

sub sql {
    my ($env, $sql, %o) = @_;
    return $t->psql('pg', $sql, db => $env->{PGDATABASE}, %o);
}

sub dj {
    my ($env, @args) = @_;
    return $t->django({ env => { %$env, PYTHONDONTWRITEBYTECODE => 1 } },
                      'django', @args);
}

# migctl, and no sanitizer report whatever it answers
sub mc {
    my ($env, @args) = @_;
    my $r = $t->migctl({ env => $env }, @args);
    unlike($r->{err}, qr/Sanitizer|runtime error|LeakSanitizer/,
           "migctl @args[0 .. ($#args < 1 ? $#args : 1)]: no sanitizer report");
    return $r;
}

sub js {
    my ($r) = @_;
    my $v = eval { $json->decode($r->{out}) };
    return $v // {};
}

# the failing run: its stderr saved as the traceback file
sub fail_step {
    my ($env, $name, @args) = @_;
    my $r = dj($env, @args);
    isnt($r->{rc}, 0, "$name: manage.py @args fails");
    return $t->write_file("$name.tb", $r->{err});
}

# sqlmigrate output, this release's plan, and the previous release's plan
# (this one without the app's migrations from `from` on)
sub files {
    my ($env, $name, $app, $mig) = @_;
    my $r = dj($env, 'sqlmigrate', $app, $mig);
    is($r->{rc}, 0, "$name: sqlmigrate") or diag($r->{err});
    my $sqlf = $t->write_file("$name.sql", $r->{out});
    $r = dj($env, 'showmigrations', '--plan');
    is($r->{rc}, 0, "$name: showmigrations --plan") or diag($r->{err});
    my $plan = $t->write_file("$name.plan", $r->{out});
    my $prev = join '', grep { !/\b\Q$app\E\.\Q$mig\E\b/ }
                        split /^/, $r->{out};
    my $prevf = $t->write_file("$name.prev", $prev);
    return ($sqlf, $plan, $prevf);
}

sub inspect {
    my ($env, $sqlf, $app, $mig) = @_;
    return mc($env, '--json', 'inspect', '--sql', $sqlf, '--app', $app,
              '--migration', $mig);
}

sub classify {
    my ($tb) = @_;
    return js(mc({}, '--json', 'classify', $tb));
}

sub diagnose {
    my ($env, $sqlf, $app, $mig, %o) = @_;
    my @a = ('--json', 'diagnose', '--app', $app, '--migration', $mig,
             '--sql', $sqlf);
    push @a, '--traceback', $o{tb} if $o{tb};
    push @a, '--plan', $o{plan} if $o{plan};
    push @a, '--previous-plan', $o{prev} if $o{prev};
    my $r = mc($env, @a);
    is($r->{rc}, 0, "diagnose $app.$mig: exit 0") or diag($r->{err});
    return js($r);
}

sub has_line {
    my ($list, $re, $name) = @_;
    ok((grep { /$re/ } @{ $list || [] }), $name)
        or diag(explain($list));
}

sub recorded {
    my ($env, $app, $mig) = @_;
    return sql($env, "SELECT count(*) FROM django_migrations "
                     . "WHERE app = '$app' AND name = '$mig'");
}

sub column_type {
    my ($env, $table, $col) = @_;
    return sql($env, "SELECT format_type(atttypid, atttypmod) "
                     . "FROM pg_attribute WHERE attrelid = '$table'::regclass "
                     . "AND attname = '$col' AND NOT attisdropped");
}

# --- 1. duplicate rows under a new unique constraint ----------------------

{
    my $n = 'dupes';
    my $e = new_db($n);
    is(dj($e, 'migrate', 'dupes', '0001')->{rc}, 0, "$n: 0001 applies");
    sql($e, "INSERT INTO dupes_customer (email) VALUES ('a\@example.com'), "
            . "('b\@example.com'), ('a\@example.com')");
    my $tb = fail_step($e, $n, 'migrate', 'dupes');
    my ($sqlf, $plan, $prev) = files($e, $n, 'dupes', '0002_email_unique');

    # the truth: atomic, rolled back, nothing recorded
    is(sql($e, "SELECT count(*) FROM pg_constraint "
               . "WHERE conrelid = 'dupes_customer'::regclass AND contype = 'u'"),
       0, "$n: no unique constraint in the catalog");
    is(recorded($e, 'dupes', '0002_email_unique'), 0, "$n: not recorded");

    my $i = inspect($e, $sqlf, 'dupes', '0002_email_unique');
    is(js($i)->{verdict}, 'not_applied', "$n: inspect says not_applied");
    is($i->{rc}, 1, "$n: inspect exit 1");

    my $c = classify($tb);
    is($c->{class}, 'high_risk', "$n: classify high_risk");
    is($c->{sqlstate}, '23505', "$n: SQLSTATE 23505");

    my $d = diagnose($e, $sqlf, 'dupes', '0002_email_unique', tb => $tb,
                     plan => $plan);
    is($d->{path}, 'fix_forward', "$n: without the previous plan: fix_forward");
    has_line($d->{risks}, qr/no --previous-plan/, "$n: says rollback is unknown");
    has_line($d->{risks}, qr/duplicates .* must be resolved/, "$n: names the data problem");
    has_line($d->{risks}, qr/Key \(email\)=\(a\@example\.com\)/, "$n: the duplicated key");
    my ($dq) = grep { /every duplicated key/ } @{ $d->{next} };
    like($dq, qr/^psql -c 'SELECT "email", count\(\*\) FROM "dupes_customer" GROUP BY "email" /,
         "$n: next: the query for every duplicate");
    my ($q) = ($dq // '') =~ /^psql -c '(.*)'/;
    is(sql($e, $q), 'a@example.com|2', "$n: that query finds the duplicates");
    ok($d->{state}{database_unchanged}, "$n: database unchanged");

    $d = diagnose($e, $sqlf, 'dupes', '0002_email_unique', tb => $tb,
                  plan => $plan, prev => $prev);
    is($d->{path}, 'rollback_code', "$n: previous release compatible: rollback_code");
    ok($d->{rollback_safe}, "$n: rollback_safe");
    has_line($d->{next}, qr/deploy the previous release/, "$n: next: deploy previous");
    has_line($d->{next}, qr/^migctl maintenance off --wait/, "$n: next: reopen through health");
}

# --- 2. lock timeout while another session holds the table ----------------

{
    my $n = 'locky';
    my $e = new_db($n);
    is(dj($e, 'migrate', 'locky', '0001')->{rc}, 0, "$n: 0001 applies");
    sql($e, "INSERT INTO locky_item (name) VALUES ('x'), ('y')");

    # a reader in a long transaction: bounded by pg_sleep and killed below
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $ENV{$_} = $e->{$_} for keys %$e;
        $ENV{PGAPPNAME} = 'scenario-holder';
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', '/dev/null';
        exec('psql', '-X', '-q', '-c',
             'BEGIN; SELECT count(*) FROM locky_item; SELECT pg_sleep(60); COMMIT;')
            or POSIX::_exit(127);
    }
    push @holders, $pid;
    my $held = "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a "
             . "USING (pid) WHERE a.application_name = 'scenario-holder' "
             . "AND l.relation = 'locky_item'::regclass AND l.granted";
    ok($t->wait_for(sub { sql($e, $held) > 0 }, 15), "$n: holder has the table");
    my $bpid = sql($e, "SELECT pid FROM pg_stat_activity "
                       . "WHERE application_name = 'scenario-holder'");

    my $tb = fail_step({ %$e, PGOPTIONS => '-c lock_timeout=300ms' }, $n,
                       'migrate', 'locky');
    my ($sqlf, $plan, $prev) = files($e, $n, 'locky', '0002_item_flag');

    is(column_type($e, 'locky_item', 'flag'), '', "$n: no flag column");
    is(recorded($e, 'locky', '0002_item_flag'), 0, "$n: not recorded");

    is(js(inspect($e, $sqlf, 'locky', '0002_item_flag'))->{verdict},
       'not_applied', "$n: inspect says not_applied");

    my $c = classify($tb);
    is($c->{class}, 'transient', "$n: classify transient");
    is($c->{sqlstate}, '55P03', "$n: SQLSTATE 55P03");

    my $d = diagnose($e, $sqlf, 'locky', '0002_item_flag', tb => $tb);
    is($d->{path}, 'retry', "$n: diagnose retry");
    has_line($d->{risks}, qr/session $bpid .* still holds AccessShareLock on locky_item/,
             "$n: names the session still holding the table");
    has_line($d->{next}, qr/pg_terminate_backend\($bpid\)/, "$n: next: how to end it");
    has_line($d->{next}, qr/^migctl run -- python manage\.py migrate locky 0002_item_flag --noinput$/,
             "$n: next: the exact retry");

    # end the holder, retry as advised: it applies
    sql($e, "SELECT pg_terminate_backend($bpid)");
    waitpid($pid, 0);
    @holders = grep { $_ != $pid } @holders;
    is(dj({ %$e, PGOPTIONS => '-c lock_timeout=5s' }, 'migrate', 'locky')->{rc},
       0, "$n: the retry applies");
    my $i = inspect($e, $sqlf, 'locky', '0002_item_flag');
    is(js($i)->{verdict}, 'applied', "$n: inspect says applied after the retry");
    is($i->{rc}, 0, "$n: inspect exit 0");
}

# --- 3. non-atomic migration whose RunPython fails halfway ----------------

{
    my $n = 'halfway';
    my $e = new_db($n);
    is(dj($e, 'migrate', 'halfway', '0001')->{rc}, 0, "$n: 0001 applies");
    sql($e, "INSERT INTO halfway_order (amount, currency) VALUES "
            . "(100, 'EUR'), (200, 'USD'), (300, 'EUR'), (400, 'CHF'), (500, 'EUR')");
    my $tb = fail_step($e, $n, 'migrate', 'halfway');
    my $m = '0002_order_amount_eur';
    my ($sqlf, $plan, $prev) = files($e, $n, 'halfway', $m);

    is(column_type($e, 'halfway_order', 'amount_eur'), 'integer',
       "$n: the column is there");
    is(sql($e, "SELECT string_agg(coalesce(amount_eur::text, '-'), ',' ORDER BY id) "
               . "FROM halfway_order"), '100,180,300,-,-', "$n: rows half changed");
    is(recorded($e, 'halfway', $m), 0, "$n: not recorded");

    my $i = js(inspect($e, $sqlf, 'halfway', $m));
    is($i->{verdict}, 'partially_applied', "$n: inspect says partially_applied");
    ok(@{ $i->{unverified} || [] } >= 1, "$n: the RunPython is listed unverified");

    my $c = classify($tb);
    is($c->{class}, 'code_fix', "$n: classify code_fix");
    is($c->{exception}, 'KeyError', "$n: the exception is KeyError");
    is($c->{sqlstate}, undef, "$n: no SQLSTATE");

    my $d = diagnose($e, $sqlf, 'halfway', $m, tb => $tb, plan => $plan,
                     prev => $prev);
    is($d->{path}, 'fix_forward', "$n: diagnose fix_forward, never retry");
    ok(!$d->{state}{database_unchanged}, "$n: not unchanged");
    has_line($d->{risks}, qr/do not retry as is: column amount_eur of halfway_order/,
             "$n: warns the column is already there");
    has_line($d->{risks}, qr/rows may be half changed/, "$n: warns about the rows");
    has_line($d->{reasons}, qr{raised in the migration at File ".*/0002_order_amount_eur\.py", line \d+, in backfill},
             "$n: where in the migration");

    # a blind retry would have failed on the column: it does
    my $r = dj($e, 'migrate', 'halfway');
    isnt($r->{rc}, 0, "$n: the blind retry fails");
    my $rtb = $t->write_file("$n.retry.tb", $r->{err});
    $c = classify($rtb);
    is($c->{sqlstate}, '42701', "$n: on the duplicate column");
    is($c->{class}, 'high_risk', "$n: which is high_risk");
}

# --- 4. concurrent unique index fails and stays INVALID -------------------

{
    my $n = 'concidx';
    my $e = new_db($n);
    is(dj($e, 'migrate', 'concidx', '0001')->{rc}, 0, "$n: 0001 applies");
    sql($e, "INSERT INTO concidx_account (username) VALUES ('ann'), ('bob'), ('ann')");
    my $tb = fail_step($e, $n, 'migrate', 'concidx');
    my $m = '0002_username_unique';
    my ($sqlf, $plan, $prev) = files($e, $n, 'concidx', $m);

    is(sql($e, "SELECT indisvalid FROM pg_index "
               . "WHERE indexrelid = 'concidx_account_username_uniq'::regclass"),
       'f', "$n: the index is there and INVALID");
    is(recorded($e, 'concidx', $m), 0, "$n: not recorded");

    my $i = js(inspect($e, $sqlf, 'concidx', $m));
    is($i->{verdict}, 'partially_applied', "$n: inspect says partially_applied");
    is($i->{counts}{invalid}, 1, "$n: one INVALID object");

    my $c = classify($tb);
    is($c->{class}, 'high_risk', "$n: classify high_risk");
    is($c->{sqlstate}, '23505', "$n: SQLSTATE 23505");

    my $d = diagnose($e, $sqlf, 'concidx', $m, tb => $tb, plan => $plan,
                     prev => $prev);
    is($d->{path}, 'restore_or_repair', "$n: diagnose restore_or_repair");
    has_line($d->{risks}, qr/drop INVALID index concidx_account_username_uniq before retrying/,
             "$n: drop the INVALID index first");
    my ($drop) = grep { /DROP INDEX CONCURRENTLY/ } @{ $d->{next} };
    like($drop, qr/^psql -c 'DROP INDEX CONCURRENTLY IF EXISTS "concidx_account_username_uniq"'$/,
         "$n: the exact command");

    # act on it: drop the index as told, resolve the duplicate, apply
    my ($stmt) = $drop =~ /^psql -c '(.*)'$/;
    sql($e, $stmt);
    sql($e, "DELETE FROM concidx_account a USING concidx_account b "
            . "WHERE a.username = b.username AND a.id > b.id");
    is(dj($e, 'migrate', 'concidx')->{rc}, 0, "$n: after the repair it applies");
    is(sql($e, "SELECT indisvalid FROM pg_index "
               . "WHERE indexrelid = 'concidx_account_username_uniq'::regclass"),
       't', "$n: the index is valid");
}

# --- 5. RunSQL syntax error ----------------------------------------------

{
    my $n = 'badsql';
    my $e = new_db($n);
    is(dj($e, 'migrate', 'badsql', '0001')->{rc}, 0, "$n: 0001 applies");
    my $tb = fail_step($e, $n, 'migrate', 'badsql');
    my $m = '0002_note_body';
    my ($sqlf, $plan, $prev) = files($e, $n, 'badsql', $m);

    is(column_type($e, 'badsql_note', 'body'), '',
       "$n: the first RunSQL's column was rolled back");
    is(recorded($e, 'badsql', $m), 0, "$n: not recorded");

    # the file holds the syntax error: that statement is listed with its
    # line and message, the rest is checked (issue 7: no longer exit 2 for
    # the whole file, which left the operator without an answer)
    my $i = inspect($e, $sqlf, 'badsql', $m);
    is($i->{rc}, 1, "$n: inspect: exit 1 (not applied), not 2");
    my $ij = js($i);
    is($ij->{verdict}, 'not_applied', "$n: inspect says not_applied");
    my ($bad) = grep { $_->{what} eq 'unparsable statement' } @{ $ij->{unverified} || [] };
    like($bad->{error}, qr/syntax error at or near "DEFAUT"/, "$n: inspect names the error");
    ok($bad->{line} > 0, "$n: and its line");
    my ($body) = grep { $_->{name} eq 'body' } @{ $ij->{objects} || [] };
    is($body->{status}, 'not_done', "$n: the first RunSQL's column is checked: absent");

    my $c = classify($tb);
    is($c->{class}, 'code_fix', "$n: classify code_fix");
    is($c->{sqlstate}, '42601', "$n: SQLSTATE 42601");

    my $d = diagnose($e, $sqlf, 'badsql', $m, tb => $tb, plan => $plan);
    is($d->{path}, 'fix_forward', "$n: diagnose fix_forward");
    is($d->{state}{verdict}, 'not_applied', "$n: atomic, so not applied");
    $d = diagnose($e, $sqlf, 'badsql', $m, tb => $tb, plan => $plan,
                  prev => $prev);
    is($d->{path}, 'rollback_code', "$n: with a compatible previous release: rollback_code");

    # without the traceback: the bad statement is listed, the rest read
    my $r = mc($e, '--json', 'diagnose', '--app', 'badsql', '--migration', $m,
               '--sql', $sqlf);
    is($r->{rc}, 0, "$n: without a traceback: an answer (exit 0)");
    is(js($r)->{state}{verdict}, 'not_applied', "$n: without a traceback: not_applied");
}

# --- 6. applied, then a later deploy step failed --------------------------

{
    my $n = 'laterstep';
    my $e = new_db($n);
    is(dj($e, 'migrate', 'laterstep')->{rc}, 0, "$n: migrate succeeds");
    my $tb = fail_step($e, $n, 'warm_cache');
    my $m = '0002_page_slug';
    my ($sqlf, $plan, $prev) = files($e, $n, 'laterstep', $m);

    like(column_type($e, 'laterstep_page', 'slug'), qr/^character varying/,
         "$n: the column is there");
    is(recorded($e, 'laterstep', $m), 1, "$n: recorded");

    my $i = inspect($e, $sqlf, 'laterstep', $m);
    is(js($i)->{verdict}, 'applied', "$n: inspect says applied");

    my $c = classify($tb);
    is($c->{class}, 'code_fix', "$n: classify code_fix");
    is($c->{exception}, 'ModuleNotFoundError', "$n: ModuleNotFoundError");

    my $d = diagnose($e, $sqlf, 'laterstep', $m, tb => $tb, plan => $plan,
                     prev => $prev);
    is($d->{path}, 'fix_forward', "$n: diagnose fix_forward");
    ok(!$d->{rollback_safe}, "$n: rollback is not safe");
    has_line($d->{risks}, qr/do not roll back code: the previous release does not know laterstep\.0002_page_slug/,
             "$n: says why rollback is unsafe");
}

# --- 7. recorded with --fake, column missing -----------------------------

{
    my $n = 'faked';
    my $e = new_db($n);
    my $m = '0002_invoice_due_date';
    is(dj($e, 'migrate', 'faked', '0001')->{rc}, 0, "$n: 0001 applies");
    is(dj($e, 'migrate', 'faked', $m, '--fake')->{rc}, 0, "$n: 0002 faked");
    my $tb = fail_step($e, $n, 'overdue');
    my ($sqlf, $plan, $prev) = files($e, $n, 'faked', $m);

    is(column_type($e, 'faked_invoice', 'due_date'), '', "$n: no due_date column");
    is(recorded($e, 'faked', $m), 1, "$n: but recorded");

    my $i = js(inspect($e, $sqlf, 'faked', $m));
    is($i->{verdict}, 'recorded_but_incomplete', "$n: inspect says recorded_but_incomplete");

    my $c = classify($tb);
    is($c->{class}, 'code_fix', "$n: classify code_fix");
    is($c->{sqlstate}, '42703', "$n: SQLSTATE 42703");

    my $d = diagnose($e, $sqlf, 'faked', $m, tb => $tb, plan => $plan,
                     prev => $prev);
    is($d->{path}, 'restore_or_repair', "$n: diagnose restore_or_repair");
    has_line($d->{risks}, qr/^do not --fake: column due_date of faked_invoice is missing$/,
             "$n: do not --fake: column due_date is missing");
    # exactly the false row: migrate PREV --fake would also unrecord every
    # migration recorded after PREV (issue 7)
    my ($del) = grep { /DELETE FROM django_migrations/ } @{ $d->{next} };
    like($del, qr/^psql -c "DELETE FROM django_migrations WHERE app = 'faked' AND name = '0002_invoice_due_date'"/,
         "$n: next: remove exactly the false record");
    ok(!(grep { /--fake/ } @{ $d->{next} }), "$n: no --fake suggested");

    # act on it: unrecord, apply for real
    my ($stmt) = ($del // '') =~ /^psql -c "(.*?)"/;
    sql($e, $stmt);
    is(recorded($e, 'faked', $m), 0, "$n: the false record removed");
    is(dj($e, 'migrate', 'faked', $m)->{rc}, 0, "$n: applied for real");
    is(js(inspect($e, $sqlf, 'faked', $m))->{verdict}, 'applied',
       "$n: inspect says applied");
    is(dj($e, 'overdue')->{rc}, 0, "$n: the application works");
}

# --- 8. statement timeout on a table rewrite ------------------------------

{
    my $n = 'rewrite';
    my $e = new_db($n);
    is(dj($e, 'migrate', 'rewrite', '0001')->{rc}, 0, "$n: 0001 applies");
    sql($e, "INSERT INTO rewrite_reading (value) "
            . "SELECT g FROM generate_series(1, 600000) g", timeout => 120);
    my $tb = fail_step({ %$e, PGOPTIONS => '-c statement_timeout=150ms' }, $n,
                       'migrate', 'rewrite');
    my $m = '0002_value_bigint';
    my ($sqlf, $plan, $prev) = files($e, $n, 'rewrite', $m);

    is(column_type($e, 'rewrite_reading', 'value'), 'integer', "$n: still integer");
    is(recorded($e, 'rewrite', $m), 0, "$n: not recorded");

    is(js(inspect($e, $sqlf, 'rewrite', $m))->{verdict}, 'not_applied',
       "$n: inspect says not_applied");

    my $c = classify($tb);
    is($c->{class}, 'high_risk', "$n: classify high_risk");
    is($c->{sqlstate}, '57014', "$n: SQLSTATE 57014");
    like($c->{reason}, qr/statement_timeout/, "$n: a statement timeout");

    my $d = diagnose($e, $sqlf, 'rewrite', $m, tb => $tb, plan => $plan);
    is($d->{path}, 'fix_forward', "$n: diagnose fix_forward (no previous plan)");
    has_line($d->{risks}, qr/ACCESS EXCLUSIVE lock: give it a window/,
             "$n: explains the rewrite");
    $d = diagnose($e, $sqlf, 'rewrite', $m, tb => $tb, plan => $plan,
                  prev => $prev);
    is($d->{path}, 'rollback_code', "$n: with a compatible previous release: rollback_code");
}

# --- 9. a role without DDL rights ----------------------------------------

{
    my $n = 'noddl';
    my $e = new_db($n);
    is(dj($e, 'migrate', 'noddl', '0001')->{rc}, 0, "$n: 0001 applies (owner)");
    sql($e, "CREATE ROLE deployer LOGIN; "
            . "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO deployer; "
            . "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO deployer");
    my $tb = fail_step({ %$e, PGUSER => 'deployer' }, $n, 'migrate', 'noddl');
    my $m = '0002_thing_color';
    my ($sqlf, $plan, $prev) = files($e, $n, 'noddl', $m);

    is(column_type($e, 'noddl_thing', 'color'), '', "$n: no color column");
    is(recorded($e, 'noddl', $m), 0, "$n: not recorded");

    is(js(inspect($e, $sqlf, 'noddl', $m))->{verdict}, 'not_applied',
       "$n: inspect says not_applied");

    my $c = classify($tb);
    is($c->{class}, 'high_risk', "$n: classify high_risk");
    is($c->{sqlstate}, '42501', "$n: SQLSTATE 42501");

    my $d = diagnose($e, $sqlf, 'noddl', $m, tb => $tb, plan => $plan,
                     prev => $prev);
    is($d->{path}, 'rollback_code', "$n: diagnose rollback_code");
    has_line($d->{risks}, qr/run migrate as the role that owns the schema/,
             "$n: says which role to use");

    # diagnose itself only reads: it works as the limited role too
    $d = diagnose({ %$e, PGUSER => 'deployer' }, $sqlf, 'noddl', $m,
                  tb => $tb, plan => $plan, prev => $prev);
    is($d->{path}, 'rollback_code', "$n: same answer as the limited role");
}

# --- 10. CREATE INDEX CONCURRENTLY inside an atomic migration -------------

{
    my $n = 'concatomic';
    my $e = new_db($n);
    my $m = '0002_event_kind_idx';
    is(dj($e, 'migrate', 'concatomic', '0001')->{rc}, 0, "$n: 0001 applies");
    my $tb = fail_step($e, $n, 'migrate', 'concatomic');
    my ($sqlf, $plan, $prev) = files($e, $n, 'concatomic', $m);

    is(sql($e, "SELECT count(*) FROM pg_class WHERE relname = 'concatomic_kind_idx'"),
       0, "$n: no index");
    is(recorded($e, 'concatomic', $m), 0, "$n: not recorded");

    is(js(inspect($e, $sqlf, 'concatomic', $m))->{verdict}, 'not_applied',
       "$n: inspect says not_applied");

    my $c = classify($tb);
    is($c->{class}, 'code_fix', "$n: classify code_fix");
    is($c->{sqlstate}, '25001', "$n: SQLSTATE 25001");
    like($c->{reason}, qr/atomic = False/, "$n: says how to fix it");

    my $d = diagnose($e, $sqlf, 'concatomic', $m, tb => $tb, plan => $plan);
    is($d->{path}, 'fix_forward', "$n: diagnose fix_forward");
    has_line($d->{risks}, qr/CONCURRENTLY needs atomic = False/, "$n: and what it implies");
}

# --- 11. AlterField null -> not null with a default, lock timeout ----------
# Django 3.2 writes SET DEFAULT; UPDATE; SET NOT NULL; DROP DEFAULT.  The
# atomic migration rolled back whole, yet "no default" holds: it was
# reported partially_applied and restore_or_repair; it is not_applied and
# a retry is right.

{
    my $n = 'alterdef';
    my $e = { %{ new_db($n) }, MIGTEST_APPS => 'alterdef' };
    is(dj($e, 'migrate', 'alterdef', '0001')->{rc}, 0, "$n: 0001 applies");
    sql($e, "INSERT INTO alterdef_stock (sku, qty) VALUES ('a', NULL), ('b', 3)");

    my $h = $t->pg_session('pg', db => $e->{PGDATABASE}, app => 'alterdef-holder');
    $h->send('BEGIN; SELECT count(*) FROM alterdef_stock; SELECT pg_sleep(120);');
    ok($t->wait_for(sub {
        sql($e, "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                . "WHERE a.application_name = 'alterdef-holder' AND l.granted "
                . "AND l.relation = 'alterdef_stock'::regclass") > 0 }, 15),
       "$n: a reader holds the table");

    my $tb = fail_step({ %$e, PGOPTIONS => '-c lock_timeout=300ms' }, $n,
                       'migrate', 'alterdef');
    my $m = '0002_qty_not_null';
    my ($sqlf, $plan, $prev) = files($e, $n, 'alterdef', $m);
    like($t->read_file($sqlf), qr/SET DEFAULT 0;\nUPDATE .*\n.*SET NOT NULL;\n.*DROP DEFAULT;/,
         "$n: Django's four statements");
    is(sql($e, "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'alterdef_stock'::regclass AND attname = 'qty'"),
       'f', "$n: still nullable (rolled back)");
    is(recorded($e, 'alterdef', $m), 0, "$n: not recorded");

    my $i = js(inspect($e, $sqlf, 'alterdef', $m));
    is($i->{verdict}, 'not_applied', "$n: inspect says not_applied (was partially_applied)");
    my ($dd) = grep { $_->{action} eq 'drop_default' } @{ $i->{objects} };
    ok($dd->{may_hold_before}, "$n: 'no default' may hold before it ran");

    my $d = diagnose($e, $sqlf, 'alterdef', $m, tb => $tb);
    is($d->{path}, 'retry', "$n: diagnose retry (was restore_or_repair)");
    ok($d->{state}{database_unchanged}, "$n: database unchanged");

    # the holder's backend sleeps on after its client is gone: end it
    sql($e, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            . "WHERE application_name = 'alterdef-holder'");
    $h->close;
    my $rr = dj({ %$e, PGOPTIONS => '-c lock_timeout=5s' }, 'migrate', 'alterdef');
    is($rr->{rc}, 0, "$n: the retry applies") or diag($rr->{err});
    is(js(inspect($e, $sqlf, 'alterdef', $m))->{verdict}, 'applied',
       "$n: inspect says applied after the retry");
}

# --- 12. history drift: the failing migration is innocent ---------------

{
    my $n = 'drift';
    my $e = { %{ new_db($n) }, MIGTEST_APPS => 'drift' };
    my $manage = '/usr/bin/python3 ' . $t->root . '/t/django/manage.py';
    is(dj($e, 'migrate', 'drift', '0001')->{rc}, 0, "$n: 0001 applies");
    is(dj($e, 'migrate', 'drift', '0002', '--fake')->{rc}, 0, "$n: 0002 recorded with --fake");
    my $tb = fail_step($e, $n, 'migrate', 'drift');
    my $m = '0003_due_date_index';
    my ($sqlf, $plan, $prev) = files($e, $n, 'drift', $m);
    is(column_type($e, 'drift_invoice', 'due_date'), '', "$n: no due_date column");

    my $c = classify($tb);
    is($c->{sqlstate}, '42703', "$n: SQLSTATE 42703");

    # without a way to run Django: said, not guessed
    my $d = diagnose($e, $sqlf, 'drift', $m, tb => $tb, plan => $plan);
    has_line($d->{risks}, qr/may be history drift .* not checked/, "$n: no --manage: drift not checked, said so");

    my $t0 = time;
    my $r = mc($e, '--json', 'diagnose', '--app', 'drift', '--migration', $m,
               '--sql', $sqlf, '--traceback', $tb, '--plan', $plan,
               '--manage', $manage);
    diag(sprintf("$n: diagnose with the drift check: %.2f s", time - $t0));
    is($r->{rc}, 0, "$n: diagnose --manage: exit 0") or diag($r->{err});
    $d = js($r);
    is($d->{path}, 'restore_or_repair', "$n: restore_or_repair");
    is($d->{class}{class}, 'high_risk', "$n: high_risk");
    is($d->{history_drift}{name}, '0002_invoice_due_date', "$n: the root cause is 0002");
    has_line($d->{reasons}, qr/root cause is history drift, not drift\.0003_due_date_index: column drift_invoice\.due_date belongs to drift\.0002_invoice_due_date/,
             "$n: says the failing migration is innocent");
    my ($del) = grep { /DELETE FROM django_migrations/ } @{ $d->{next} };
    like($del, qr/^psql -c "DELETE FROM django_migrations WHERE app = 'drift' AND name = '0002_invoice_due_date'"/,
         "$n: next: unrecord exactly 0002");
    ok(!(grep { /--fake/ && !/^#/ && !/do not/ } @{ $d->{next} }), "$n: no --fake in next");

    # act on it
    my ($stmt) = $del =~ /^psql -c "(.*?)"/;
    sql($e, $stmt);
    is(dj($e, 'migrate', 'drift')->{rc}, 0, "$n: migrate applies 0002 and 0003");
    is(js(inspect($e, $sqlf, 'drift', $m))->{verdict}, 'applied', "$n: 0003 applied");
}

done_testing;
