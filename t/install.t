# install.t: make install honours PREFIX and DESTDIR (module, migctl, man
# pages, the modules-available snippet, completion, examples), the snippet
# loads the module into stock nginx, man renders each page, and make
# uninstall removes exactly what was installed; the module also builds
# from a checkout whose path holds ".S".
use strict;
use warnings;
use Test::More;
use File::Find;
use lib 't/lib';
use MigTest;

my $t = MigTest->new;
my $root = $t->root;
my $dir = $t->dir;

sub files_under {
    my ($top) = @_;
    my @f;
    return () unless -d $top;
    find({ no_chdir => 1, wanted => sub { push @f, $_ if -f $_ || -l $_ } },
         $top);
    return sort @f;
}

# 1. PREFIX only: the snippet's load_module path is right for that prefix
my $prefix = "$dir/prefix";
my $r = $t->run({ timeout => 600 }, 'make', '-s', '-C', $root, 'install',
                "PREFIX=$prefix");
is($r->{rc}, 0, 'make install PREFIX=...') or diag($r->{err});

for my $f ('bin/migctl', 'lib/nginx/modules/ngx_http_maintenance_module.so',
           'share/nginx/modules-available/mod-http-maintenance.conf',
           'share/man/man1/migctl.1',
           'share/man/man5/ngx_http_maintenance_module.5',
           'share/bash-completion/completions/migctl',
           'share/doc/migctl/LICENSE', 'share/doc/migctl/README.md',
           'share/doc/migctl/examples/nginx.conf',
           'share/doc/migctl/examples/migctl.conf') {
    ok(-f "$prefix/$f", "installed $f");
}
ok(-x "$prefix/bin/migctl", 'migctl is executable');

my $snippet = $t->read_file(
    "$prefix/share/nginx/modules-available/mod-http-maintenance.conf");
is($snippet,
   "load_module $prefix/lib/nginx/modules/ngx_http_maintenance_module.so;\n",
   'the snippet loads the module from that prefix');

# stock nginx loads the module through the snippet, as modules-enabled does
$t->nginx_conf('snip', <<"CONF");
include $prefix/share/nginx/modules-available/mod-http-maintenance.conf;
events { worker_connections 64; }
http {
    server {
        listen 127.0.0.1:%%PORT_snip%%;
        maintenance on;
        location / { return 200; }
    }
}
CONF
my ($rc, $out) = $t->nginx_test('snip');
is($rc, 0, 'nginx -t loads the installed module through the snippet')
    or diag($out);

# man renders each page, with its sections
for my $page ('man1/migctl.1', 'man5/ngx_http_maintenance_module.5') {
    my $m = $t->run({ env => { MANWIDTH => 80 } }, 'man', '-P', 'cat', '-l',
                    "$prefix/share/man/$page");
    is($m->{rc}, 0, "man -l $page") or diag($m->{err});
    like($m->{out}, qr/^NAME\n.*^SYNOPSIS\n.*^SEE ALSO\n/ms,
         "$page has NAME, SYNOPSIS and SEE ALSO");
    unlike($m->{err}, qr/warning|error/i, "$page renders without warnings");
}

my $comp = $t->run({}, 'bash', '-c',
    ". $prefix/share/bash-completion/completions/migctl; "
    . 'COMP_WORDS=(migctl mai); COMP_CWORD=1; _migctl; '
    . 'echo "${COMPREPLY[@]}"; '
    . 'COMP_WORDS=(migctl locks --al); COMP_CWORD=2; COMPREPLY=(); _migctl; '
    . 'echo "${COMPREPLY[@]}"');
is($comp->{out}, "maintenance\n--all-databases\n",
   'completion: commands and their options');

$r = $t->run({ timeout => 600 }, 'make', '-s', '-C', $root, 'uninstall',
             "PREFIX=$prefix");
is($r->{rc}, 0, 'make uninstall PREFIX=...') or diag($r->{err});
is_deeply([files_under($prefix)], [], 'no file left under the prefix');

# 2. DESTDIR staging: the tree is empty again after uninstall
my $stage = "$dir/stage";
$r = $t->run({ timeout => 600 }, 'make', '-s', '-C', $root, 'install',
             "DESTDIR=$stage", 'PREFIX=/usr');
is($r->{rc}, 0, 'make install DESTDIR=... PREFIX=/usr') or diag($r->{err});
is($t->read_file(
       "$stage/usr/share/nginx/modules-available/mod-http-maintenance.conf"),
   "load_module /usr/lib/nginx/modules/ngx_http_maintenance_module.so;\n",
   'staged snippet names the final path, not the staging one');
my @staged = files_under($stage);
cmp_ok(scalar @staged, '>=', 11, 'files staged (' . @staged . ')');
$r = $t->run({ timeout => 600 }, 'make', '-s', '-C', $root, 'uninstall',
             "DESTDIR=$stage", 'PREFIX=/usr');
is($r->{rc}, 0, 'make uninstall DESTDIR=...') or diag($r->{err});
opendir(my $dh, $stage) or die "$stage: $!";
my @left = grep { !/^\.\.?$/ } readdir $dh;
is_deeply(\@left, [], 'the staging tree is empty');

# 3. a checkout under a path holding ".S" (mktemp's tmp.Sxyz) builds the module
my $co = "$dir/tmp.Sq1/migctl";
$r = $t->run({}, 'bash', '-c', "mkdir -p $co && cd $root && "
             . "git ls-files -z | xargs -0 cp --parents -t $co");
is($r->{rc}, 0, 'copied the checkout under tmp.Sq1') or diag($r->{err});
$r = $t->run({ timeout => 900 }, 'make', '-s', '-C', $co, 'module');
is($r->{rc}, 0, 'the module builds from a path with ".S"')
    or diag(substr($r->{out} . $r->{err}, -2000));
ok(-f "$co/build/ngx_http_maintenance_module.so", '... and the .so is there');

done_testing;
