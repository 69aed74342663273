#!/usr/bin/perl

# classify.t: `migctl classify` on real Django / psycopg2 tracebacks and
# PostgreSQL logs (t/fixtures/classify: django_* and psycopg2_* and pglog_*
# were produced by the real failures, hand_* are written from Django's and
# PostgreSQL's message formats), unknown text, empty and missing input.

use strict;
use warnings;

use lib 't/lib';
use MigTest;
use Test::More;
use JSON::PP;

my $t = MigTest->new;
my $fx = MigTest->root . '/t/fixtures/classify';

# fixture => [class, sqlstate or undef, exception or undef]
my %want = (
    django_dupes        => ['high_risk', '23505', 'django.db.utils.IntegrityError'],
    django_concidx      => ['high_risk', '23505', 'django.db.utils.IntegrityError'],
    django_locky        => ['transient', '55P03', 'django.db.utils.OperationalError'],
    django_halfway      => ['code_fix',  undef,   'KeyError'],
    django_halfway_rerun => ['high_risk', '42701', 'django.db.utils.ProgrammingError'],
    django_badsql       => ['code_fix',  '42601', 'django.db.utils.ProgrammingError'],
    django_laterstep    => ['code_fix',  undef,   'ModuleNotFoundError'],
    django_faked        => ['code_fix',  '42703', 'django.db.utils.ProgrammingError'],
    django_rewrite      => ['high_risk', '57014', 'django.db.utils.OperationalError'],
    django_noddl        => ['high_risk', '42501', 'django.db.utils.ProgrammingError'],
    django_unreachable  => ['transient', '08001', 'django.db.utils.OperationalError'],
    django_addindexconcurrently_atomic => ['code_fix', undef,
                                           'django.db.utils.NotSupportedError'],
    psycopg2_admin_shutdown => ['transient', '08006', 'psycopg2.OperationalError'],
    psycopg2_check      => ['high_risk', '23514', 'psycopg2.errors.CheckViolation'],
    psycopg2_concurrently_in_tx => ['code_fix', '25001',
                                    'psycopg2.errors.ActiveSqlTransaction'],
    psycopg2_deadlock   => ['transient', '40P01', 'psycopg2.errors.DeadlockDetected'],
    psycopg2_duplicate_table => ['high_risk', '42P07', 'psycopg2.errors.DuplicateTable'],
    psycopg2_foreign_key => ['high_risk', '23503', 'psycopg2.errors.ForeignKeyViolation'],
    psycopg2_invalid_text => ['high_risk', '22P02',
                              'psycopg2.errors.InvalidTextRepresentation'],
    psycopg2_not_null   => ['high_risk', '23502', 'psycopg2.errors.NotNullViolation'],
    psycopg2_serialization => ['transient', '40001',
                               'psycopg2.errors.SerializationFailure'],
    psycopg2_undefined_function => ['code_fix', '42883',
                                    'psycopg2.errors.UndefinedFunction'],
    psycopg2_undefined_table => ['code_fix', '42P01', 'psycopg2.errors.UndefinedTable'],
    pglog_admin_shutdown => ['transient', '57P01', undef],
    pglog_lock_timeout  => ['transient', '55P03', undef],
    hand_conflicting    => ['code_fix',  undef,   'CommandError'],
    hand_node_not_found => ['code_fix',  undef,
                            'django.db.migrations.exceptions.NodeNotFoundError'],
    hand_inconsistent_history => ['high_risk', undef,
                 'django.db.migrations.exceptions.InconsistentMigrationHistory'],
    hand_disk_full      => ['high_risk', '53100', undef],
    hand_too_many       => ['transient', '53300', 'django.db.utils.OperationalError'],
    hand_verbose_log    => ['transient', '40P01', undef],
    hand_explicit_sqlstate => ['high_risk', '42501', undef],
    hand_killed         => ['transient', undef,   undef],
    hand_user_cancel    => ['transient', '57014', 'django.db.utils.OperationalError'],
    unknown_deploy_log  => ['unknown',   undef,   undef],
    unknown_noise       => ['unknown',   undef,   undef],
);

# every fixture is in the table and the other way round
my @files = map { m{/([^/]+)\.txt$} ? $1 : () } glob("$fx/*.txt");
is_deeply([sort grep { $_ ne 'empty' } @files], [sort keys %want],
          'every fixture has an expected class');

sub j {
    my ($text) = @_;
    my $h = eval { JSON::PP->new->decode($text) };
    return $h // {};
}

for my $name (sort keys %want) {
    my ($class, $code, $exc) = @{ $want{$name} };
    my $r = $t->migctl('--json', 'classify', "$fx/$name.txt");
    my $h = j($r->{out});
    is($r->{rc}, $class eq 'unknown' ? 1 : 0, "$name: exit code");
    is($h->{class}, $class, "$name: class $class");
    is($h->{sqlstate}, $code, "$name: sqlstate " . ($code // 'none'));
    is($h->{exception}, $exc, "$name: exception " . ($exc // 'none'));
    if ($class ne 'unknown') {
        ok(defined $h->{reason} && length $h->{reason} > 20, "$name: a reason");
        ok(defined $h->{evidence}, "$name: the evidence line");
    }
    is($r->{err}, '', "$name: nothing on stderr");
}

# the DETAIL line of the server comes along
{
    my $r = $t->migctl('--json', 'classify', "$fx/django_dupes.txt");
    like(j($r->{out})->{detail}, qr/Key \(email\)=\(a\@example\.com\) is duplicated/,
         'detail of a unique violation');
}

# where in the migration a Python error was raised
{
    my $r = $t->migctl('--json', 'classify', "$fx/django_halfway.txt");
    like(j($r->{out})->{frame},
         qr{^File "[^"]*/halfway/migrations/0002_order_amount_eur\.py", line 13, in backfill$},
         'frame: the migration file and line');
    $r = $t->migctl('--json', 'classify', "$fx/django_laterstep.txt");
    is(j($r->{out})->{frame}, undef, 'frame: none outside migrations');
    $r = $t->migctl('--json', 'classify', "$fx/django_noddl.txt");
    is(j($r->{out})->{frame}, undef, "frame: not Django's own migrations package");
    $r = $t->migctl({ stdin => qq{failed: "sqlstate": "40P01"\n} }, 'classify');
    like($r->{out}, qr/^sqlstate\s+40P01$/m, 'a code in JSON form');
}

# a log with an earlier error that was retried: the latest error decides
{
    my $log = "ERROR:  55P03: canceling statement due to lock timeout\n"
            . "retrying in 5s\n"
            . "psql: SQLSTATE 00000 (a success code is not a failure)\n"
            . "psycopg2.errors.UniqueViolation: could not create unique index \"x\"\n"
            . "django.db.utils.IntegrityError: could not create unique index \"x\"\n";
    my $h = j($t->migctl({ stdin => $log }, '--json', 'classify')->{out});
    is($h->{sqlstate}, '23505', 'latest error wins over an earlier retried one');
    is($h->{source}, 'exception', "psycopg's class stays the source when Django repeats it");
    $h = j($t->migctl({ stdin => "SQLSTATE 00000\n" }, '--json', 'classify')->{out});
    is($h->{class}, 'unknown', 'SQLSTATE 00000 alone: unknown');
}

# statement timeout and a cancel by an operator share 57014
{
    my $r = $t->migctl('classify', "$fx/django_rewrite.txt");
    like($r->{out}, qr/^reason\s+statement_timeout expired/m,
         'a statement timeout is explained as one');
}

# text output, from standard input
{
    my $text = $t->read_file("$fx/django_locky.txt");
    my $r = $t->migctl({ stdin => $text }, 'classify');
    is($r->{rc}, 0, 'stdin: exit 0');
    like($r->{out}, qr/^class\s+transient$/m, 'stdin: class line');
    like($r->{out}, qr/^sqlstate\s+55P03$/m, 'stdin: sqlstate line');
    like($r->{out}, qr/^condition\s+lock_not_available$/m, 'stdin: condition');
    $r = $t->migctl({ stdin => $text }, 'classify', '-');
    like($r->{out}, qr/^class\s+transient$/m, '"-" is stdin');
    $r = $t->migctl({ stdin => $text }, 'classify', '--json');
    like($r->{out}, qr/"class": "transient"/, '--json after the command');
}

# an explicit code not in the table: its class only where unambiguous
{
    my $r = $t->migctl({ stdin => "failed: SQLSTATE 23P99\n" }, 'classify');
    like($r->{out}, qr/^class\s+high_risk$/m, 'class 23 is high_risk');
    $r = $t->migctl({ stdin => "failed: SQLSTATE 72000\n" }, 'classify');
    is($r->{rc}, 1, 'an unknown code of an unknown class: exit 1');
    like($r->{out}, qr/^class\s+unknown$/m, '... unknown');
    like($r->{out}, qr/^sqlstate\s+72000$/m, '... with its code');
    $r = $t->migctl({ stdin => "ERROR:  ABCDE: nothing\n" }, 'classify');
    is($r->{rc}, 1, 'five capitals without a digit are no code');
}

# errors: empty, blank, missing, extra arguments, unknown options
{
    my $r = $t->migctl('classify', "$fx/empty.txt");
    is($r->{rc}, 2, 'empty file: exit 2');
    like($r->{err}, qr/^migctl: classify: .*empty\.txt is empty: give the traceback/,
         'empty file: one clear line');
    $r = $t->migctl({ stdin => "\n \n\t\n" }, 'classify');
    is($r->{rc}, 2, 'blank stdin: exit 2');
    like($r->{err}, qr/standard input is empty/, 'blank stdin: said so');
    $r = $t->migctl('classify', "$fx/no-such-file.txt");
    is($r->{rc}, 2, 'missing file: exit 2');
    like($r->{err}, qr/^migctl: classify: cannot open .*no-such-file\.txt: No such file/,
         'missing file: named');
    $r = $t->migctl('classify', "$fx/empty.txt", "$fx/empty.txt");
    is($r->{rc}, 2, 'two inputs: exit 2');
    $r = $t->migctl('classify', '--bogus');
    is($r->{rc}, 2, 'unknown option: exit 2');
    like($r->{err}, qr/unknown option '--bogus'/, 'unknown option: named');
    $r = $t->migctl('classify', '--help');
    is($r->{rc}, 0, '--help: exit 0');
    like($r->{out}, qr/^usage: migctl \[--json\] classify/m, '--help: usage on stdout');
}

# binary garbage with NUL bytes and invalid UTF-8 does not upset it
{
    my $bin = join '', map { chr(($_ * 37) % 256) } 0 .. 4095;
    my $r = $t->migctl({ stdin => $bin }, '--json', 'classify');
    ok($r->{rc} == 0 || $r->{rc} == 1, 'binary: exit 0 or 1');
    like($r->{out}, qr/"class": "/, 'binary: still JSON');
    is($r->{err}, '', 'binary: no sanitizer report');
    $r = $t->migctl({ stdin => "\xff\xfe ERROR:  could not create unique index \"\xc3\"\n" },
                    '--json', 'classify');
    like($r->{out}, qr/"class": "high_risk"/, 'invalid UTF-8 around a message');
}

# fuzz: fixture lines cut, shuffled and mixed with bytes, a fixed seed;
# every answer is JSON with a class and exit 0 or 1, never a crash
{
    srand(4242);
    my @lines = map { split /^/, $t->read_file($_) } glob("$fx/*.txt");
    my ($bad, $runs) = (0, 60);
    for my $i (1 .. $runs) {
        my $text = '';
        for (1 .. 1 + int(rand(12))) {
            my $l = $lines[int(rand(@lines))];
            $l = substr($l, 0, int(rand(length($l) + 1))) if rand() < 0.3;
            $l .= join '', map { chr(int(rand(256))) } 1 .. int(rand(8))
                if rand() < 0.2;
            $text .= $l;
        }
        $text .= "x" unless $text =~ /\S/;
        my $r = $t->migctl({ stdin => $text }, '--json', 'classify');
        my $h = eval { JSON::PP->new->decode($r->{out}) };
        unless (($r->{rc} == 0 || $r->{rc} == 1) && $h && $h->{class}
                && $r->{err} eq '')
        {
            $bad++;
            diag("fuzz case $i: rc $r->{rc}: $r->{err}");
            last if $bad > 3;
        }
    }
    is($bad, 0, "fuzz: $runs mixed inputs, every answer well formed");
}

done_testing;
