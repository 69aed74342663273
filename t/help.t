#!/usr/bin/perl
# help.t: "migctl help [COMMAND]" and "migctl COMMAND --help" print one
# layout for every command of main.c's table; every option of a command's
# migctl_opt_t table is in its usage, the bash completion and the man page.

use strict;
use warnings;

use lib 't/lib';
use MigTest;
use Test::More;

my $t = MigTest->new;
my $root = MigTest->root;

sub slurp { open(my $fh, '<', $_[0]) or die "$_[0]: $!"; local $/; <$fh> }

# --- the tables, from the C source ------------------------------------------

my $main = slurp("$root/ctl/main.c");
my @cmds = $main =~ /^\s+\{ "([a-z]+)", cmd_[a-z]+,/mg;
ok(@cmds >= 10, scalar(@cmds) . ' commands in the table');

my %src;                            # command => its source file's text
for my $f (glob("$root/ctl/*.c")) {
    my $text = slurp($f);
    $src{$1} = $text while $text =~ /^cmd_([a-z]+)\(int argc/mg;
}

my (%opts, %own);                   # command => [ options of its tables ]
my %db_opt = ('--lock-timeout' => 1, '--statement-timeout' => 1);
for my $c (@cmds) {
    ok(defined $src{$c}, "$c: entry point found") or next;
    my %o = map { $_ => 1 } $src{$c} =~ /\{ "(--[a-z-]+)",\s*MIGCTL_OPT_/g;
    $own{$c} = { %o };
    if ($src{$c} =~ /MIGCTL_OPT_DB_TIMEOUTS\(/) {
        $o{$_} = 1 for keys %db_opt;
    }
    $opts{$c} = [ sort keys %o ];
}
ok(@{ $opts{run} || [] } >= 8, 'run: ' . @{ $opts{run} || [] } . ' options');
ok(@{ $opts{maintenance} || [] } >= 5, 'maintenance: its on/off tables');

my $completion = "$root/ctl/completion.bash";

# what bash offers after "migctl WORDS... CUR"
sub complete {
    my @words = ('migctl', @_);
    my $script = 'source "$1"; shift; COMP_WORDS=("$@");'
        . ' COMP_CWORD=$(($# - 1)); COMPREPLY=(); _migctl;'
        . ' printf "%s\n" "${COMPREPLY[@]}"';
    my $r = $t->run({ timeout => 10 }, 'bash', '--norc', '-c', $script,
                    'bash', $completion, @words);
    return split /\n/, $r->{out};
}
my $man = slurp("$root/docs/migctl.1.scd");

sub mig { $t->migctl({ env => { MIGCTL_CONFIG => undef } }, @_) }

sub wide_lines { grep { length($_) > 80 } split /\n/, $_[0] }

# --- the global usage -------------------------------------------------------

my $g = mig('--help');
my $h = mig('help');
is($h->{rc}, 0, 'help: exit 0');
is($h->{err}, '', 'help: nothing on stderr');
is($h->{out}, $g->{out}, 'help == --help');
is(mig('help', '--help')->{out}, $g->{out}, 'help --help == --help');
my $layout = qr/\Ausage: migctl .*\n\n.*^commands:\n.*^global options.*:\n/ms
           . qr/.*^database: .*^Redis: .*^exit codes: 0 .*/ms
           . qr/^example:\n(  migctl .*\n|      \S.*\n)+\z/m;
like($h->{out}, qr/$layout/, 'help: the layout');
for my $c (@cmds, 'help') {
    like($h->{out}, qr/^  \Q$c\E +\S/m, "help lists $c");
}
for my $o (qw(-c --config --json --scope --lock-timeout --statement-timeout
              --version --help)) {
    like($h->{out}, qr/^  (-[a-z], )?\Q$o\E\b/m, "help lists global $o");
}
like($h->{out}, qr/^exit codes:.* 1 .* 2 .* 3 .* 4 .* 5 /ms,
     'help: every exit code');
is(join("\n", wide_lines($h->{out})), '', 'help: 80 columns');

# --- every command ----------------------------------------------------------

for my $c (@cmds) {
    subtest "help $c" => sub {
        my $a = mig($c, '--help');
        my $b = mig('help', $c);
        is($a->{rc}, 0, "$c --help: exit 0");
        is($b->{rc}, 0, "help $c: exit 0");
        is($a->{err} . $b->{err}, '', 'nothing on stderr');
        is($b->{out}, $a->{out}, "help $c == $c --help");
        is(mig($c, '-h')->{out}, $a->{out}, "$c -h too");

        my $u = $a->{out};
        like($u, qr/\Ausage: migctl (\[[^\]]+\] )*\Q$c\E\b/, 'usage line');
        like($u, qr/\A[^\n]+\n(?:[ ]{5,}[^\n]+\n)*\n\S/,
             'usage line(s), a blank line, the paragraph');
        like($u, qr/^global options .* see migctl help/m,
             'points to the global options');
        my $end = qr/^exit codes: 0 [^\n]*(\n  [^\n]*)*\nexample:\n/m
                . qr/(  \S.*\n|      \S.*\n)+\z/;
        like($u, qr/$end/, 'exit codes, then the example, at the end');
        my ($codes) = $u =~ /^(exit codes: .*?)\nexample:/ms;
        ($codes //= '') =~ s/\n  / /g;
        like($codes, qr/ 2 usage or configuration/, 'exit 2 is there');
        is(join("\n", wide_lines($u)), '', '80 columns');

        my @o = @{ $opts{$c} };
        if (@o) {
            like($u, qr/\n\noptions:\n(  \S.*\n|  {10,}.*\n)+\n/,
                 'options: section');
            my ($sect) = $u =~ /^options:\n(.*?)\n\n/ms;
            $sect //= '';
            for my $o (@o) {
                like($sect, qr/^  \Q$o\E(?![\w-])/m, "$o listed in options:");
            }
        } else {
            unlike($u, qr/^options:/m, 'no options: section');
        }
        like($u, qr/^database: DATABASE_URL/m, 'database: line')
            if $src{$c} =~ /migctl_db_connect\(|MIGCTL_OPT_DB_TIMEOUTS/;

        my %w = map { $_ => 1 } complete($c, '-');
        for my $o (@o, '--json', '--help') {
            ok($w{$o}, "bash completes $c $o");
        }

        # the command's entries in the man page ("*maintenance on* ...")
        my $entry = join "\n", $man =~ /^(\*\Q$c\E[* ].*?)(?=\n\n)/msg;
        ok($entry ne '', "man page has $c");
        for my $o (@o) {
            my $where = $db_opt{$o} && !$own{$c}{$o} ? $man : $entry;
            like($where, qr/\*\Q$o\E\*/, "man page documents $c $o");
        }
    };
}

# the completion, run by bash as a shell would
my %top = map { $_ => 1 } complete('');
ok($top{$_}, "bash completes command $_") for @cmds, 'help';
ok($top{$_}, "bash completes global $_")
    for qw(-c --config --json --scope --lock-timeout --statement-timeout
           --version --help);
my %hc = map { $_ => 1 } complete('help', '');
ok($hc{$_}, "bash completes help $_") for @cmds;
is(join(' ', complete('--lock-timeout', '2s', 'lo')), 'locks',
   'a global option with its value is skipped');
like($man, qr/^\*help\* \[_COMMAND_\]/m, 'man page documents help');

# --- the shared text exists once ----------------------------------------------

for my $s ('DATABASE_URL or PGHOST', 'exit codes:', 'example:\n',
           'redis { ... } of the configuration') {
    my @in = grep { index(slurp($_), $s) >= 0 }
             grep { slurp($_) =~ /^usage\(FILE \*f\)/m || /out\.c$/ }
             glob("$root/ctl/*.c");
    is(join(' ', map { s{.*/}{}r } @in), 'out.c', "'$s' only in out.c");
}

# --- bad input --------------------------------------------------------------

for my $args (['help', 'nosuch'], ['help', 'run', 'extra']) {
    my $r = mig(@$args);
    is($r->{rc}, 2, "@$args: exit 2");
    is($r->{out}, '', "@$args: nothing on stdout");
    like($r->{err}, qr/\Amigctl: (help: )?[^\n]*see migctl help\n\z/,
         "@$args: one line") or diag($r->{err});
}
like(mig('help', 'nosuch')->{err}, qr/unknown command 'nosuch'/,
     'help nosuch: says which');

# help needs no configuration: a broken one does not hide it
my $bad = $t->write_file('bad.conf', "redis = {\n");
for my $args (['help', 'maintenance'], ['maintenance', '--help'],
              ['help']) {
    my $r = $t->migctl({ env => { MIGCTL_CONFIG => $bad } }, @$args);
    is($r->{rc}, 0, "@$args with a broken configuration: exit 0");
    like($r->{out}, qr/\Ausage: migctl/, '... usage on stdout');
}

# a subcommand's --help is the command's usage
is(mig(qw(maintenance on --help))->{out}, mig(qw(help maintenance))->{out},
   'maintenance on --help == help maintenance');

done_testing;
