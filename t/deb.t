# deb.t: make deb builds both Debian packages (debhelper, dh_nginx, lintian
# without error); installed on this machine they enable the module through
# /etc/nginx/modules-enabled, stock nginx with every module of nginx-extras
# gates a vhost through ours driven by the installed migctl, and a purge
# removes them again.  Needs root (CI runs as root).
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use MigTest;

plan skip_all => 'installs packages: needs root' if $> != 0;

my $t = MigTest->new;
my $root = $t->root;
my @pkgs = qw(libnginx-mod-http-maintenance migctl);
my $installed = 0;

END {
    # never leave our packages on the machine, also when a test died
    system('dpkg', '--purge', @pkgs) if $installed;
}

for my $p (@pkgs) {
    my $r = $t->run({}, 'dpkg-query', '-W', '-f', '${Status}', $p);
    BAIL_OUT("$p is already installed here: purge it before this test")
        if $r->{out} =~ /ok installed/;
}

my $r = $t->run({ timeout => 900 }, 'make', '-s', '-C', $root, 'deb');
is($r->{rc}, 0, 'make deb (dpkg-buildpackage, lintian --fail-on error)')
    or diag(substr($r->{out} . $r->{err}, -3000));
my @debs = map { glob("$root/build/deb/${_}_*.deb") } @pkgs;
is(scalar @debs, 2, 'both packages built');

my $dep = $t->run({}, 'dpkg-deb', '-f', $debs[0], 'Depends');
like($dep->{out}, qr/\bnginx-abi-[\d.]+-\d+\b/,
     'the module depends on the exact nginx ABI (dh_nginx)');
# dlopen()ed, not linked: dpkg-shlibdeps cannot see them (ctl/lazy.c)
$dep = $t->run({}, 'dpkg-deb', '-f', $debs[1], 'Depends');
like($dep->{out}, qr/\blibpq5\b.*\blibcurl4\b|\blibcurl4\b.*\blibpq5\b/,
     'migctl depends on libpq5 and libcurl4, which it loads at run time');

$installed = 1;
$r = $t->run({ timeout => 300, env => { DEBIAN_FRONTEND => 'noninteractive' } },
             'apt-get', 'install', '-y', '-q', '--no-install-recommends',
             @debs);
is($r->{rc}, 0, 'apt-get install of both packages') or diag($r->{err});

my $link = '/etc/nginx/modules-enabled/50-mod-http-maintenance.conf';
ok(-l $link, "the module is enabled: $link");
is($t->read_file($link),
   "load_module modules/ngx_http_maintenance_module.so;\n",
   '... loading the module from nginx\'s module directory');
ok(-x '/usr/bin/migctl', '/usr/bin/migctl installed');
my @st = stat('/var/lib/nginx/maintenance');
is(@st ? (getpwuid($st[4]))[0] : '', 'www-data',
   'the state directory exists, owned by www-data');
my $man = $t->run({ env => { MANWIDTH => 80 } }, 'man', '-P', 'cat',
                  'migctl');
like($man->{out}, qr/migctl - contain, diagnose/, 'man migctl');

# README.md links docs/*.md: every one is shipped, where the links point
for my $md (map { s{.*/}{}r } glob("$root/docs/*.md")) {
    my $f = "/usr/share/doc/migctl/docs/$md";
    ok(-e $f || -e "$f.gz", "$f (README links docs/$md)");
}

# hardening=+all: CPPFLAGS (_FORTIFY_SOURCE) and LDFLAGS (-z now) reach
# the migctl build, not CFLAGS alone
my $dyn = $t->run({}, 'readelf', '-d', '/usr/bin/migctl');
like($dyn->{out}, qr/\bBIND_NOW\b|\bFLAGS_1\b.*\bNOW\b/,
     'migctl linked with -z now');
my $syms = $t->run({}, 'readelf', '--dyn-syms', '-W', '/usr/bin/migctl');
like($syms->{out}, qr/\b__\w+_chk\b/,
     'migctl built with _FORTIFY_SOURCE (__*_chk calls)');

# the packaged example, as an operator starts from it on stock Debian
# nginx: its files given, it passes nginx -t next to every enabled module
{
    my $ex = $t->read_file(
        '/usr/share/doc/libnginx-mod-http-maintenance/examples/nginx.conf');
    unlike($ex, qr/^load_module\b/m,
           'packaged example: no second load_module of the module');
    like($ex, qr{^include /etc/nginx/modules-enabled/\*\.conf;}m,
         'packaged example: loads modules-enabled, as stock nginx.conf');
    my $d = $t->nginx_dir('ex');
    my ($crt, $key) = $t->self_signed_cert('ex');
    my $page = $t->write_file('ex/page.html', "page\n");
    my $json = $t->write_file('ex/page.json', "{}\n");
    my $pass = $t->write_file('ex/redis.pass', "pw\n");
    my $tok = $t->write_file('ex/bypass.token',
                             "0123456789abcdef0123456789abcdef\n");
    $ex =~ s{/etc/ssl/\S+/fullchain\.pem}{$crt}g;
    $ex =~ s{/etc/ssl/\S+/privkey\.pem}{$key}g;
    $ex =~ s{/etc/nginx/maintenance/index\.html}{$page}g;
    $ex =~ s{/etc/nginx/maintenance/index\.json}{$json}g;
    $ex =~ s{/etc/nginx/maintenance/bypass\.token}{$tok}g;
    $ex =~ s{/etc/nginx/redis\.pass}{$pass}g;
    $ex =~ s{include\s+mime\.types;}{include /etc/nginx/mime.types;};
    $ex =~ s{/var/log/nginx/}{$d/}g;
    $ex =~ s{maintenance_override_file \S+;}
            {maintenance_override_file $d/force;};
    my $conf = $t->write_file('ex/nginx.conf', $ex);
    # the state file stays in the package's /var/lib/nginx/maintenance
    my $r = $t->run({}, 'nginx', '-t', '-c', $conf, '-e', "$d/error.log",
                    '-g', "pid $d/nginx.pid;");
    is($r->{rc}, 0, 'packaged example passes nginx -t on stock nginx')
        or diag($r->{err});
}

# stock nginx, every enabled module (nginx-extras' and ours), our gate
my @enabled = glob('/etc/nginx/modules-enabled/*.conf');
cmp_ok(scalar @enabled, '>', 1, scalar(@enabled) . ' modules enabled');
$t->start_redis('r');
my $rp = $t->port('r');
$t->nginx_conf('n', <<"CONF");
include /etc/nginx/modules-enabled/*.conf;
events { worker_connections 64; }
http {
    maintenance_redis 127.0.0.1:$rp;
    maintenance_poll 200ms;
    server {
        listen 127.0.0.1:%%PORT_n%%;
        maintenance on;
        location / { return 200 "app\\n"; }
    }
}
CONF
# stock nginx's prefix: "load_module modules/..." is relative to it
symlink('/usr/lib/nginx/modules', $t->nginx_dir('n') . '/modules')
    or die "symlink: $!";
$t->start_nginx('n');
my $port = $t->port('n');
my $env = { env => { MIGCTL_CONFIG => undef } };
my $conf = $t->dir . '/migctl.conf';
$t->write_file($conf, "redis = { host = \"127.0.0.1\"; port = $rp; };\n");

is($t->http($port, '/')->{status}, 200, 'open before the flag');
$r = $t->run({}, '/usr/bin/migctl', '-c', $conf, 'maintenance', 'on',
             '--reason', 'deb test', '--wait=10');
is($r->{rc}, 0, 'installed migctl sets the flag and every edge serves it')
    or diag($r->{err});
is($t->http($port, '/')->{status}, 503, 'the installed module gates');
$r = $t->run({}, '/usr/bin/migctl', '-c', $conf, 'maintenance', 'off',
             '--force', '--reason', 'deb test done');
is($r->{rc}, 0, 'off (forced: no health check in this test)')
    or diag($r->{err});
ok($t->wait_for(sub { $t->http($port, '/')->{status} == 200 }, 10),
   'open again');
$t->stop_nginx('n');
$t->check_logs('n');

$r = $t->run({ timeout => 300 }, 'dpkg', '--purge', @pkgs);
is($r->{rc}, 0, 'dpkg --purge') or diag($r->{err});
$installed = 0;
ok(!-e $link && !-l $link, 'the modules-enabled link is gone');
ok(!-e '/usr/bin/migctl', 'migctl is gone');
ok(!-e '/var/lib/nginx/maintenance', 'purge removed the state directory');
ok(!-e '/usr/lib/nginx/modules/ngx_http_maintenance_module.so',
   'the module is gone');

done_testing;
