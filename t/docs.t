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

# the environment migctl reads (MIGCTL_*) is in the man page
my %envs = map { $_ => 1 }
    join('', map { slurp($_) } glob("$root/ctl/*.c")) =~ /getenv\("(MIGCTL_[A-Z_]+)"\)/g;
ok(keys %envs >= 3, scalar(keys %envs) . ' MIGCTL_* variables read');
for my $e (sort keys %envs) {
    like($man1, qr/\*\$?\Q$e\E\*/, "environment $e is documented");
}

# the examples agree: the bypass token nginx reads is the one the http
# health check sends and the one evidence redacts (else a bundle carries
# the live token)
my $ngx_ex = slurp("$root/conf-examples/nginx.conf");
my $ctl_ex = slurp("$root/conf-examples/migctl.conf");
my ($token) = $ngx_ex =~ /^\s*maintenance_bypass_token\s+(\S+);/m;
ok(defined $token, 'nginx.conf example: maintenance_bypass_token');
my @tfiles = $ctl_ex =~ /^\s*bypass_token_file\s*=\s*"([^"]+)"/mg;
ok(@tfiles >= 1, 'migctl.conf example: bypass_token_file');
is($_, $token, "migctl.conf bypass_token_file $_ is nginx's token")
    for @tfiles;
my ($secrets) = $ctl_ex =~ /^\s*secret_files\s*=\s*\[([^\]]*)\]/m;
like($secrets // '', qr/"\Q$token\E"/,
     'migctl.conf evidence.secret_files names nginx\'s token');

# from source the example loads the module itself; the Debian package's
# copy (debian/rules) includes modules-enabled instead (t/deb.t)
like($ngx_ex, qr{^load_module /usr/local/lib/nginx/modules/\S+;}m,
     'nginx.conf example: load_module where make install puts it');
like($ngx_ex, qr{^#\s+include /etc/nginx/modules-enabled/\*\.conf;}m,
     'nginx.conf example: says what Debian loads instead');

# the systemd example is a valid unit (systemd-analyze verify), run with
# the repository's release-step.sh where it says to copy it
SKIP: {
    my $sa = `command -v systemd-analyze 2>/dev/null`;
    skip 'no systemd-analyze', 2 unless $sa;
    my $unit = slurp("$root/conf-examples/migctl-release\@.service");
    like($unit, qr{^ExecStart=/usr/local/sbin/migctl-release-step$}m,
         'systemd example runs release-step.sh where its header puts it');
    $unit =~ s{^ExecStart=\S+}{ExecStart=$root/conf-examples/release-step.sh}m;
    $unit =~ s{^(User|Group)=deploy$}{$1=root}mg;
    my $t = MigTest->new;
    my $f = $t->write_file('migctl-release@abc123.service', $unit);
    my $r = $t->run({ timeout => 30 }, 'systemd-analyze', 'verify', $f);
    is($r->{rc} . $r->{err}, '0', 'systemd-analyze verify the example');
}

done_testing;
