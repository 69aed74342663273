# docs.t: the README and docs/ link only files inside the repository, and
# every directive of the module and every migctl command is documented in
# its man page source.
use strict;
use warnings;
use Test::More;
use File::Basename qw(dirname);
use Cwd qw(abs_path);
use lib 't/lib';
use MigTest;

my $root = abs_path(MigTest->root);

for my $doc ('README.md', glob("$root/docs/*.md")) {
    my $path = $doc =~ m{^/} ? $doc : "$root/$doc";
    open(my $fh, '<', $path) or die "$path: $!";
    my $text = do { local $/; <$fh> };
    my $n = 0;
    while ($text =~ /\]\(([^)\s]+)\)/g) {
        my $link = $1;
        next if $link =~ m{^(https?|mailto):} || $link =~ /^#/;
        $link =~ s/#.*//;
        my $target = abs_path(dirname($path) . "/$link");
        ok(defined $target && -e $target && index($target, "$root/") == 0,
           "$doc links $link inside the repository");
        $n++;
    }
    pass("$doc: $n local links") unless $n;
}

sub slurp { open(my $fh, '<', $_[0]) or die "$_[0]: $!"; local $/; <$fh> }

my $mod = join('', map { slurp($_) } glob("$root/ngx_module/*.c"));
my $man5 = slurp("$root/docs/ngx_http_maintenance_module.5.scd");
my %dirs = map { $_ => 1 } $mod =~ /ngx_string\("(maintenance[a-z_]*)"\),\s*\n?\s*NGX_/g;
ok(keys %dirs >= 10, scalar(keys %dirs) . ' directives in the module');
for my $d (sort keys %dirs) {
    like($man5, qr/^\*\Q$d\E[*; ]/m, "directive $d is documented");
}

my $main = slurp("$root/ctl/main.c");
my $man1 = slurp("$root/docs/migctl.1.scd");
my @cmds = $main =~ /^\s+\{ "([a-z]+)", cmd_/mg;
ok(@cmds >= 7, scalar(@cmds) . ' commands in migctl');
for my $c (@cmds) {
    like($man1, qr/^\*\Q$c\E[ *]/m, "command $c is documented");
}

done_testing;
