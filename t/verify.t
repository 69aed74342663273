#!/usr/bin/perl

# verify.t: `migctl verify` against real Django 3.2 and PostgreSQL 15: one
# Django process gives the SQL of every migration; each recorded one is
# checked against the catalog.  History drift (a --fake, a row inserted
# by hand), a squash known by its replaces list, the exact repair acted
# on, a Django that cannot load its migrations, usage errors.

use strict;
use warnings;

use lib 't/lib';
use MigTest;
use Test::More;
use JSON::PP;
use Time::HiRes qw(time);

my $t = MigTest->new;
$t->start_pg('pg');
my %pg = $t->pg_env('pg');
my $json = JSON::PP->new;
my $manage = '/usr/bin/python3 ' . $t->root . '/t/django/manage.py';

sub new_db {
    my ($name) = @_;
    $t->psql('pg', "CREATE DATABASE v_$name", db => 'postgres');
    return { %pg, PGDATABASE => "v_$name", PYTHONDONTWRITEBYTECODE => 1 };
}

sub sql {
    my ($env, $sql) = @_;
    return $t->psql('pg', $sql, db => $env->{PGDATABASE});
}

sub dj {
    my ($env, $apps, @args) = @_;
    my $r = $t->django({ env => { %$env, MIGTEST_APPS => $apps } },
                       'django', @args);
    return $r;
}

sub mc {
    my ($env, @args) = @_;
    my $o = ref $args[0] eq 'HASH' ? shift @args : {};
    my $r = $t->migctl({ %$o, env => { %$env, %{ $o->{env} || {} } } },
                       @args);
    unlike($r->{err}, qr/Sanitizer|runtime error/,
           "no sanitizer report: @args[0 .. ($#args < 2 ? $#args : 2)]");
    $r->{json} = eval { $json->decode($r->{out}) } // {};
    return $r;
}

sub verify {
    my ($env, $apps, @args) = @_;
    return mc($env, { env => { MIGTEST_APPS => $apps }, timeout => 300 },
              '--json', 'verify', '--manage', $manage, @args);
}

sub drift_of {
    my ($r, $name) = @_;
    my ($d) = grep { $_->{name} eq $name } @{ $r->{json}{drift} || [] };
    return $d || {};
}

# --- usage, before Django or the database -------------------------------

{
    my $r = mc({ %pg }, 'verify');
    is($r->{rc}, 2, 'no --manage and no config: exit 2');
    like($r->{err}, qr/^migctl: verify: no Django command: give --manage/,
         'no --manage: says how');
    $r = mc({ %pg }, 'verify', '--app', 'a,b', '--manage', 'x');
    is($r->{rc}, 2, 'a bad app label: exit 2');
    $r = mc({ %pg }, 'verify', '--print-script');
    is($r->{rc}, 0, '--print-script: exit 0');
    like($r->{out}, qr/^# migctl verify: .*\nmigctl_verify\(\)\n\z/s,
         '--print-script: the script');
    my $py = $t->write_file('script.py', $r->{out});
    my $c = $t->run({}, '/usr/bin/python3', '-m', 'py_compile', $py);
    is($c->{rc}, 0, 'the script compiles') or diag($c->{err});
    $r = mc({ %pg, PGPORT => $t->port('nothing') }, 'verify', '--manage',
            $manage);
    is($r->{rc}, 3, 'unreachable PostgreSQL: exit 3 (before Django)');
}

# --- drift: 0002 recorded with --fake, 0003 fails on its column ---------

{
    my $e = new_db('drift');
    is(dj($e, 'drift', 'migrate', 'drift', '0001')->{rc}, 0, 'drift: 0001');
    is(dj($e, 'drift', 'migrate', 'drift', '0002', '--fake')->{rc}, 0,
       'drift: 0002 faked');
    my $f = dj($e, 'drift', 'migrate', 'drift');
    isnt($f->{rc}, 0, 'drift: 0003 fails');
    like($f->{err}, qr/column "due_date" does not exist/, 'drift: on the missing column');

    my $t0 = time;
    my $r = verify($e, 'drift');
    my $el = time - $t0;
    is($r->{rc}, 1, 'drift: verify exit 1') or diag($r->{err});
    is(scalar @{ $r->{json}{drift} || [] }, 1, 'drift: one migration drifted');
    my $d = drift_of($r, '0002_invoice_due_date');
    is($d->{status}, 'missing', 'drift: 0002 missing');
    is($d->{objects}[0]{name}, 'due_date', 'drift: the column');
    is($r->{json}{checked}, 2, 'drift: two recorded migrations checked');
    is(scalar @{ $r->{json}{pending} }, 1, 'drift: 0003 pending');
    like($d->{repair}[0], qr/^psql -c "DELETE FROM django_migrations WHERE app = 'drift' AND name = '0002_invoice_due_date'"/,
         'drift: repair: unrecord exactly 0002');
    unlike(join("\n", @{ $d->{repair} }), qr/--fake/, 'drift: no --fake suggested');
    diag(sprintf('verify of 3 migrations: %.2f s', $el));

    # text output
    my $tx = mc({ %$e, MIGTEST_APPS => 'drift' }, { timeout => 300 },
                'verify', '--manage', $manage);
    like($tx->{out}, qr/^DRIFT drift\.0002_invoice_due_date: missing$/m,
         'text: the drifted migration');

    # act on it
    my ($del) = $d->{repair}[0] =~ /^psql -c "(.*?)"/;
    sql($e, $del);
    is(dj($e, 'drift', 'migrate', 'drift')->{rc}, 0,
       'drift: after the repair migrate applies 0002 and 0003');
    $r = verify($e, 'drift');
    is($r->{rc}, 0, 'drift: verify exit 0 after the repair') or diag($r->{out});
    is(scalar @{ $r->{json}{drift} }, 0, 'drift: no drift');
}

done_testing;
