#!/usr/bin/perl

# squash_decisions.t: the real squash lists where migctl decides on them,
# against real Django 3.2, PostgreSQL 15 and redis-server.  diagnose
# --manage / --previous-manage (rollback_code only when the previous
# release's Django knows every record), health's migrations check with
# manage = "CMD" (maintenance off on a fully migrated --squashed-name
# squash), and evidence recording which answer it had.  Fixtures: sqnamed
# (a squash named 0001_compact), squashy (0001_squashed_0003_box replaces
# only 0001 and 0002).

use strict;
use warnings;

use lib 't/lib';
use MigTest;
use Test::More;
use JSON::PP;
use Time::HiRes qw(time);

my $t = MigTest->new;
$t->start_pg('pg');
my $rport = $t->start_redis('r');
my %pg = $t->pg_env('pg');
my $json = JSON::PP->new;
my $py = '/usr/bin/python3 ' . $t->root . '/t/django/manage.py';
my %mods = (
    cur  => 'sqnamed=sqnamed.migrations,squashy=squashy.migrations',
    prev => 'sqnamed=sqnamed.migrations_prev,squashy=squashy.migrations_prev',
);

sub manage {
    my ($rel, $apps) = @_;
    return "DJANGO_SETTINGS_MODULE=sqproj.settings MIGTEST_APPS=$apps"
           . " MIGTEST_MIGRATIONS=$mods{$rel} $py";
}

sub new_db {
    my ($name) = @_;
    $t->psql('pg', "CREATE DATABASE sd_$name", db => 'postgres');
    return { %pg, PGDATABASE => "sd_$name", PYTHONDONTWRITEBYTECODE => 1 };
}

sub dj {
    my ($env, $rel, $apps, @args) = @_;
    return $t->django({ env => { %$env, MIGTEST_APPS => $apps,
                                 MIGTEST_MIGRATIONS => $mods{$rel},
                                 DJANGO_SETTINGS_MODULE => 'sqproj.settings' } },
                      'django', @args);
}

sub plan_of {
    my ($env, $rel, $apps) = @_;
    my $r = dj($env, $rel, $apps, 'showmigrations', '--plan');
    is($r->{rc}, 0, "showmigrations --plan ($rel $apps)") or diag($r->{err});
    return $t->write_file("plan_${rel}_$env->{PGDATABASE}.txt", $r->{out});
}

sub mc {
    my ($env, @args) = @_;
    my $o = ref $args[0] eq 'HASH' ? shift @args : {};
    my $r = $t->migctl({ timeout => 300, %$o, env => $env }, @args);
    unlike($r->{err}, qr/Sanitizer|runtime error|LeakSanitizer/,
           "no sanitizer report: @args[0 .. ($#args < 3 ? $#args : 3)]");
    $r->{json} = eval { $json->decode($r->{out}) } // {};
    return $r;
}

sub names {
    return [map { "$_->{app}.$_->{name}" } @{ $_[0] || [] }];
}

sub has_line {
    my ($list, $re, $name) = @_;
    ok((grep { /$re/ } @{ $list || [] }), $name) or diag(explain($list));
}

sub no_line {
    my ($list, $re, $name) = @_;
    ok(!(grep { /$re/ } @{ $list || [] }), $name) or diag(explain($list));
}

# --- diagnose: squashy's previous release does not know 0003_box_color ---

{
    my $e = new_db('dg_squashy');
    is(dj($e, 'prev', 'squashy', 'migrate', 'squashy')->{rc}, 0,
       'squashy: the previous release migrated');
    is(dj($e, 'cur', 'squashy', 'migrate', 'squashy')->{rc}, 0,
       'squashy: this release migrated (0003_box_color)');
    my $cur = plan_of($e, 'cur', 'squashy');
    my $prev = plan_of($e, 'prev', 'squashy');
    # the next migration of the release failed and left nothing
    my $sql = $t->write_file('box_size.sql', <<'EOF');
BEGIN;
--
-- Add field size to box
--
ALTER TABLE "squashy_box" ADD COLUMN "size" integer NULL;
COMMIT;
EOF
    my @base = ('--json', 'diagnose', '--app', 'squashy', '--migration',
                '0004_box_size', '--sql', $sql);

    # the guess from names: 0003_box_color "in" 0001_squashed_0003_box
    my $r = mc($e, @base, '--plan', $cur, '--previous-plan', $prev);
    is($r->{rc}, 0, 'squashy: names: exit 0') or diag($r->{err});
    is($r->{json}{path}, 'rollback_code',
       'squashy: names: rollback_code (the wrong answer of the guess)');
    is($r->{json}{migrations}{previous_squash_source}, 'names',
       'squashy: names: previous_squash_source names');

    # Django's replaces lists: the previous release does not know it
    my $t0 = time;
    $r = mc($e, @base, '--plan', $cur, '--previous-plan', $prev,
            '--manage', manage('cur', 'squashy'),
            '--previous-manage', manage('prev', 'squashy'));
    my $el = time - $t0;
    is($r->{rc}, 0, 'squashy: django: exit 0') or diag($r->{err});
    isnt($r->{json}{path}, 'rollback_code',
         'squashy: django: rollback_code not recommended');
    is($r->{json}{path}, 'fix_forward', 'squashy: django: fix_forward');
    ok(defined $r->{json}{rollback_safe} && !$r->{json}{rollback_safe},
       'squashy: django: rollback_safe false');
    is_deeply(names($r->{json}{migrations}{unknown_to_previous}),
              ['squashy.0003_box_color'],
              'squashy: django: 0003_box_color unknown to the previous release');
    has_line($r->{json}{risks}, qr/do not roll back code: .*squashy\.0003_box_color/,
             'squashy: django: the risk names it');
    is($r->{json}{migrations}{previous_squash_source}, 'django',
       'squashy: django: previous_squash_source django');
    is($r->{json}{migrations}{squash_source}, 'django',
       'squashy: django: squash_source django');
    diag(sprintf('diagnose --manage --previous-manage: %.2f s', $el));

    # no plan files: the releases' migrations from their Django
    $r = mc($e, @base, '--manage', manage('cur', 'squashy'),
            '--previous-manage', manage('prev', 'squashy'));
    is($r->{rc}, 0, 'squashy: django, no plans: exit 0') or diag($r->{err});
    is($r->{json}{path}, 'fix_forward', 'squashy: django, no plans: fix_forward');
    ok($r->{json}{migrations}{plan} && $r->{json}{migrations}{previous_plan},
       'squashy: django, no plans: both releases known');

    # the text says where the answer came from
    $r = mc($e, 'diagnose', '--app', 'squashy', '--migration',
            '0004_box_size', '--sql', $sql, '--plan', $cur,
            '--previous-plan', $prev);
    like($r->{out}, qr/^rollback   safe \(the previous release's squashes guessed from names: give --previous-manage\)$/m,
         'squashy: text: the guess said so');
    $r = mc($e, 'diagnose', '--app', 'squashy', '--migration',
            '0004_box_size', '--sql', $sql, '--previous-manage',
            manage('prev', 'squashy'));
    like($r->{out}, qr/^rollback   unsafe \(the previous release's squashes from Django\)$/m,
         'squashy: text: Django\'s answer said so');

    # the previous release's Django fails: no decision on a guess
    $r = mc($e, @base, '--previous-plan', $prev, '--previous-manage',
            manage('prev', 'nosuchapp'));
    is($r->{rc}, 5, 'squashy: --previous-manage fails: exit 5');
    like($r->{json}{error}, qr/manage\.py shell' failed/,
         'squashy: --previous-manage fails: says which command');
    $r = mc($e, 'diagnose', '--app', 'squashy', '--migration', '0004_box_size',
            '--sql', $sql, '--previous-manage');
    is($r->{rc}, 2, 'squashy: --previous-manage without a command: exit 2');
}

# --- diagnose: a --squashed-name squash is no "unknown" record ----------

{
    my $e = new_db('dg_named');
    is(dj($e, 'prev', 'sqnamed', 'migrate', 'sqnamed')->{rc}, 0,
       'named: the previous release migrated');
    my $cur = plan_of($e, 'cur', 'sqnamed');
    my $sql = $t->write_file('item_note.sql', <<'EOF');
BEGIN;
--
-- Add field note to item
--
ALTER TABLE "sqnamed_item" ADD COLUMN "note" text NULL;
COMMIT;
EOF
    my @base = ('--json', 'diagnose', '--app', 'sqnamed', '--migration',
                '0004_item_note', '--sql', $sql);

    my $r = mc($e, @base, '--plan', $cur);
    is($r->{rc}, 0, 'named: names: exit 0') or diag($r->{err});
    has_line($r->{json}{risks}, qr/records 3 migration\(s\) this release does not know/,
             'named: names: the false "unknown" risk of the guess');

    $r = mc($e, @base, '--plan', $cur, '--manage', manage('cur', 'sqnamed'));
    is($r->{rc}, 0, 'named: django: exit 0') or diag($r->{err});
    no_line($r->{json}{risks}, qr/this release does not know/,
            'named: django: no false "unknown" risk');
    is_deeply(names($r->{json}{migrations}{unknown_to_release}), [],
              'named: django: nothing unknown to this release');
    is($r->{json}{state}{verdict}, 'not_applied', 'named: django: not applied');

    # this release's Django cannot load: the diagnosis goes on, guessing
    $r = mc($e, @base, '--plan', $cur, '--manage', manage('cur', 'nosuchapp'));
    is($r->{rc}, 0, 'named: this release\'s Django fails: still a diagnosis')
        or diag($r->{err});
    is($r->{json}{migrations}{squash_source}, 'names',
       'named: this release\'s Django fails: squash_source names');
    like($r->{err}, qr/^migctl: diagnose: .*manage\.py shell' failed/m,
         'named: this release\'s Django fails: its line on stderr');
}

# --- health / maintenance off: a fully migrated --squashed-name squash ---

{
    my $e = new_db('health');
    is(dj($e, 'prev', 'sqnamed', 'migrate', 'sqnamed')->{rc}, 0,
       'health: the previous release migrated');
    is(dj($e, 'cur', 'sqnamed', 'migrate', 'sqnamed')->{rc}, 0,
       'health: this release migrated');
    my $cur = plan_of($e, 'cur', 'sqnamed');
    my $m = manage('cur', 'sqnamed');
    (my $mq = $m) =~ s/"/\\"/g;

    my %conf;
    for ([guess => qq{plan = "$cur";}],
         [django => qq{plan = "$cur"; manage = "$mq";}],
         [noplan => qq{manage = "$mq";}],
         [hang => qq{plan = "$cur"; manage = "sleep 47.25; true #";}
                  . ' timeout_ms = 1500;'],
         [dflt => qq{plan = "$cur";}, qq{django = { manage = "$mq"; };}],
         [env => qq{plan = "$cur"; manage = "echo PW=\${PGPASSWORD:-none}}
                 . qq{ >&2; exit 3; true";}])
    {
        my ($n, $ck, $extra) = @$_;
        $conf{$n} = $t->write_file("sd_$n.conf", <<"EOF");
redis = { host = "127.0.0.1"; port = $rport; timeout_ms = 2000; };
prefix = "sd";
${\ ($extra // '') }
health = { checks = ( { name = "migs"; type = "migrations"; $ck } ); };
EOF
    }
    my $env = sub { return { %$e, MIGCTL_CONFIG => $conf{$_[0]},
                             MIGCTL_ACTOR => 'ops' } };

    my $r = mc($env->('guess'), 'maintenance', 'on', '--reason', 'deploy');
    is($r->{rc}, 0, 'health: maintenance on') or diag($r->{err});

    # the guess: the replaced rows look unknown, off is refused
    $r = mc($env->('guess'), '--json', 'health');
    is($r->{rc}, 1, 'health: names: exit 1');
    like($r->{json}{checks}[0]{detail},
         qr/3 recorded migrations unknown to the plan .*squashes guessed from names: set manage = "CMD"/,
         'health: names: the detail says how to get the real answer');
    $r = mc($env->('guess'), 'maintenance', 'off');
    is($r->{rc}, 4, 'health: names: maintenance off refused (exit 4)');

    # Django's lists
    my $t0 = time;
    $r = mc($env->('django'), '--json', 'health');
    my $el = time - $t0;
    is($r->{rc}, 0, 'health: manage: exit 0') or diag($r->{out} . $r->{err});
    like($r->{json}{checks}[0]{detail},
         qr/^no pending migration \(\d+ applied; squashes from Django\)$/,
         'health: manage: the detail');
    diag(sprintf('health with a manage check: %.2f s', $el));

    $r = mc($env->('noplan'), '--json', 'health');
    is($r->{rc}, 0, 'health: manage without a plan: exit 0')
        or diag($r->{out} . $r->{err});

    $r = mc($env->('dflt'), '--json', 'health');
    is($r->{rc}, 0, 'health: django.manage of migctl.conf: exit 0')
        or diag($r->{out} . $r->{err});

    # a hanging Django: killed at the check's timeout, its group reaped
    $t0 = time;
    $r = mc($env->('hang'), '--json', 'health');
    $el = time - $t0;
    is($r->{rc}, 1, 'health: a hanging Django: exit 1');
    like($r->{json}{checks}[0]{detail}, qr/did not finish in \d+ ms \(killed\)/,
         'health: a hanging Django: killed');
    ok($el < 1.5 + 1 + 2, sprintf('health: a hanging Django: bounded '
                                  . '(%.2f s, timeout 1.5 s)', $el));
    my @left = grep {
        my $c = $t->read_file("$_/cmdline") // '';
        $c =~ /sleep\0?47\.25/;
    } glob('/proc/[0-9]*');
    is(scalar @left, 0, 'health: a hanging Django: no process left');

    # Django gets the checks' environment: no PGPASSWORD
    $r = mc({ %{ $env->('env') }, PGPASSWORD => 's3cret-sq' }, '--json',
            'health');
    is($r->{rc}, 1, 'health: a failing Django: exit 1');
    like($r->{json}{checks}[0]{detail}, qr/^manage: .*failed \(exit 3\): PW=none/,
         'health: a failing Django: its line, and no PGPASSWORD in its '
         . 'environment');
    unlike($r->{out} . $r->{err}, qr/s3cret-sq/, 'health: the password nowhere');

    $r = mc($env->('django'), 'maintenance', 'off');
    is($r->{rc}, 0, 'health: manage: maintenance off passes')
        or diag($r->{err});

    # bad input: one line, exit 2
    my $bad = $t->write_file('sd_bad.conf', <<"EOF");
health = { checks = ( { name = "m"; type = "migrations"; manage = "x";
                        command = "true"; } ); };
EOF
    $r = mc({ %$e, MIGCTL_CONFIG => $bad }, 'health');
    is($r->{rc}, 2, 'health: manage and command: exit 2');
    like($r->{err}, qr/^migctl: .*sd_bad\.conf:1: .*a plan file and\/or manage, or a command/m,
         'health: manage and command: says so');
    $bad = $t->write_file('sd_bad2.conf', <<"EOF");
health = { checks = ( { name = "m"; type = "http"; url = "http://x/";
                        manage = "x"; } ); };
EOF
    $r = mc({ %$e, MIGCTL_CONFIG => $bad }, 'health');
    is($r->{rc}, 2, 'health: manage in an http check: exit 2');
}

# --- evidence: which answer the bundle had ------------------------------

{
    my $e = new_db('ev');
    is(dj($e, 'prev', 'squashy', 'migrate', 'squashy')->{rc}, 0,
       'evidence: the previous release migrated');
    is(dj($e, 'cur', 'squashy', 'migrate', 'squashy')->{rc}, 0,
       'evidence: this release migrated');
    my $cur = plan_of($e, 'cur', 'squashy');
    my $prev = plan_of($e, 'prev', 'squashy');
    my $sql = $t->write_file('ev_box_size.sql', <<'EOF');
BEGIN;
ALTER TABLE "squashy_box" ADD COLUMN "size" integer NULL;
COMMIT;
EOF
    my $cfg = $t->write_file('sd_ev.conf', <<"EOF");
redis = { host = "127.0.0.1"; port = $rport; timeout_ms = 2000; };
prefix = "sd";
EOF
    my %ev = (%$e, MIGCTL_CONFIG => $cfg);

    for my $v (['names'], ['django', '--manage', manage('cur', 'squashy'),
                           '--previous-manage', manage('prev', 'squashy')])
    {
        my ($src, @opt) = @$v;
        my $out = $t->dir . "/ev_$src";
        my $r = mc(\%ev, 'evidence', '--out', $out, '--plan', $cur,
                   '--previous-plan', $prev, '--app', 'squashy',
                   '--migration', '0004_box_size', '--sql', $sql, @opt);
        is($r->{rc}, 0, "evidence $src: exit 0") or diag($r->{err});
        my $m = eval { $json->decode($t->read_file("$out/migrations.json")) }
                // {};
        is($m->{squash_source}, $src, "evidence $src: migrations.json squash_source");
        is($m->{previous_squash_source}, $src,
           "evidence $src: migrations.json previous_squash_source");
        my $s = $t->read_file("$out/summary.md") // '';
        like($s, qr/^- squashes: this release: $src, previous release: $src/m,
             "evidence $src: summary.md says which answer it had");
        my $d = eval { $json->decode($t->read_file("$out/diagnose.json")) }
                // {};
        is($d->{path}, $src eq 'names' ? 'rollback_code' : 'fix_forward',
           "evidence $src: the bundle's diagnosis");
        if ($src eq 'django') {
            unlike($s, qr/secret/, 'evidence: nothing secret');
        }
    }
}

$t->check_pg_log('pg');

done_testing;
