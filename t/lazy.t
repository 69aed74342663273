#!/usr/bin/perl
# lazy.t: libpq and libcurl are loaded when a command first calls them
# (ctl/lazy.c), not at start-up: what the dynamic loader reports
# (LD_DEBUG=files) for commands that need neither (maintenance on, off
# --force, status, classify) and for those that need one (locks, health
# with sql or http checks, both at once in threads); neither library in the
# binary's NEEDED nor its wrappers exported; a broken or incomplete
# library is one line naming it and its package, exit 2, and changes
# nothing.  Against real Redis, nginx with the module, PostgreSQL.

use strict;
use warnings;

use lib 't/lib';
use MigTest;
use Test::More;
use JSON::PP ();

my $t = MigTest->new;
my $dir = $t->dir;
my $root = $t->root;
my $bin = $ENV{MIGCTL} || "$root/build/migctl";

my $rport = $t->start_redis('r');
$t->start_pg('pg');
my %pg = $t->pg_env('pg');

$t->nginx_conf('n', <<"EOF");
load_module %%MODULE%%;
worker_processes 1;
events { worker_connections 64; }
http {
    access_log off;
    maintenance_redis 127.0.0.1:%%PORT_r%%;
    maintenance_prefix lz;
    maintenance_node_id lazy1;
    maintenance_poll 200ms;
    maintenance on;
    server {
        listen 127.0.0.1:%%PORT_n%%;
        location / { return 200 "app\\n"; }
        location = /healthz {
            maintenance off;
            add_header X-App lazy;
            return 200 "healthy\\n";
        }
    }
}
EOF
$t->start_nginx('n');
my $np = $t->port('n');

my $redis = "redis = { host = \"127.0.0.1\"; port = $rport; };\n"
          . "prefix = \"lz\";\n";
my $http = "{ name = \"h%d\"; type = \"http\";"
         . " url = \"http://127.0.0.1:$np/healthz\";"
         . " expect_body = \"healthy\"; expect_header = \"X-App: lazy\"; }";
my $sql = "{ name = \"s%d\"; type = \"sql\";"
        . " query = \"SELECT count(*) FROM pg_class WHERE relname = 'pg_class'\";"
        . " expect = \"1\"; }";
my %conf = (
    plain => $t->write_file('plain.conf', $redis),
    http  => $t->write_file('http.conf', $redis . "health = { checks = ("
                            . sprintf($http, 1) . "); };\n"),
    sql   => $t->write_file('sql.conf', $redis . "health = { checks = ("
                            . sprintf($sql, 1) . "); };\n"),
    both  => $t->write_file('both.conf', $redis . "health = { checks = ("
                            . join(', ', (map { sprintf($http, $_) } 1 .. 3),
                                         (map { sprintf($sql, $_) } 1 .. 3))
                            . "); };\n"),
);
my $tb = $t->write_file('tb.txt', <<'EOF');
Traceback (most recent call last):
django.db.utils.OperationalError: canceling statement due to lock timeout
EOF

# migctl under the loader's eye: which of libpq / libcurl it loaded
sub loaded {
    my ($conf, @args) = @_;
    my $r = $t->migctl({ env => { %pg, LD_DEBUG => 'files',
                                  MIGCTL_ACTOR => 'lazy' } },
                       '-c', $conf{$conf}, @args);
    my @files = $r->{err} =~ /^\s*\d+:\s+file=(\S+)/mg;
    $r->{pq} = grep { $_ eq 'libpq.so.5' } @files;
    $r->{curl} = grep { $_ eq 'libcurl.so.4' } @files;
    $r->{files} = scalar @files;
    # the loader's lines aside, nothing on stderr but migctl's own
    $r->{err} = join '', grep { !/^\s*\d+:/ } split /^/, $r->{err};
    unlike($r->{err}, qr/AddressSanitizer|LeakSanitizer|runtime error/,
           "@args: no sanitizer report");
    return $r;
}

# --- commands that need neither library --------------------------------

for my $c ([ plain => qw(maintenance on --reason lazy) ],
           [ plain => qw(maintenance status) ],
           [ plain => qw(maintenance off --force --reason lazy) ],
           [ plain => 'classify', $tb ],
           [ sql => qw(maintenance status) ])
{
    my ($conf, @args) = @$c;
    my $r = loaded($conf, @args);
    is($r->{rc}, 0, "@args ($conf): exit 0")
        or diag($r->{err});
    cmp_ok($r->{files}, '>', 3, "@args: the loader's report was read");
    ok(!$r->{pq}, "@args ($conf): libpq.so.5 not loaded");
    ok(!$r->{curl}, "@args ($conf): libcurl.so.4 not loaded");
}
is($t->redis('r', 'HGET', 'lz:state:default', 'mode'), 'off',
   'the flag went on and off again');

# an http check in the file: its url is parsed only when the checks run
{
    my $r = loaded('http', qw(maintenance status));
    is($r->{rc}, 0, 'maintenance status (http check configured): exit 0')
        or diag($r->{err});
    ok(!$r->{pq}, '... libpq.so.5 not loaded');
    ok(!$r->{curl}, '... libcurl.so.4 not loaded');
}

# --- commands that need one, or both -----------------------------------

{
    my $r = loaded('plain', 'locks');
    is($r->{rc}, 0, 'locks: exit 0') or diag($r->{err});
    ok($r->{pq}, 'locks: libpq.so.5 loaded');
    ok(!$r->{curl}, 'locks: libcurl.so.4 not loaded');

    $r = loaded('sql', 'health');
    is($r->{rc}, 0, 'health, an sql check: exit 0') or diag($r->{out});
    like($r->{out}, qr/^1 check, 0 failed/m, '... it passed');
    ok($r->{pq}, '... libpq.so.5 loaded');
    ok(!$r->{curl}, '... libcurl.so.4 not loaded');

    $r = loaded('http', 'health');
    is($r->{rc}, 0, 'health, an http check: exit 0') or diag($r->{out});
    ok($r->{curl}, '... libcurl.so.4 loaded');
    ok(!$r->{pq}, '... libpq.so.5 not loaded');

    # six checks at once in threads: both libraries loaded on first call,
    # callbacks (body, header) and getinfo through the forwarders
    $r = loaded('both', '--json', 'health');
    is($r->{rc}, 0, 'health, 3 http + 3 sql checks at once: exit 0')
        or diag($r->{out});
    my @ok = $r->{out} =~ /"ok":\s*true/g;
    is(scalar @ok, 7, '... every check passed, and the whole');
    ok($r->{pq} && $r->{curl}, '... both libraries loaded');
}

# --- what the binary links and exports ---------------------------------

my %seen;
for my $b (grep { -x && !$seen{$_}++ } $bin, "$root/build/migctl") {
    my $r = $t->run({}, 'readelf', '-d', '-W', $b);
    is($r->{rc}, 0, "readelf -d $b");
    my @needed = $r->{out} =~ /\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g;
    cmp_ok(scalar @needed, '>', 2, "... its libraries: @needed");
    ok(!grep({ /^lib(pq|curl)\b/ } @needed), '... neither libpq nor libcurl');
    $r = $t->run({}, 'nm', '-D', $b);
    is($r->{rc}, 0, "nm -D $b");
    my @ours = $r->{out} =~ /^\S*\s+\w\s+((?:PQ|curl_)\w+)/mg;
    is("@ours", '', '... no PQ* or curl_* symbol, defined or wanted');
}

# --- a broken or an incomplete library ----------------------------------

mkdir "$dir/broken";
$t->write_file("$dir/broken/libpq.so.5", '');
$t->write_file("$dir/broken/libcurl.so.4", '');
$t->write_file("$dir/stub.c", "int lazy_stub;\n");
mkdir "$dir/stub";
my $cc = $t->run({}, 'cc', '-shared', '-fPIC', '-o', "$dir/stub/libpq.so.5",
                 "$dir/stub.c");
is($cc->{rc}, 0, 'a libpq.so.5 without libpq\'s functions built')
    or diag($cc->{err});

sub broken {
    my ($lib, $conf, @args) = @_;
    my $r = $t->migctl({ env => { %pg, LD_LIBRARY_PATH => "$dir/$lib",
                                      MIGCTL_ACTOR => 'lazy' } },
                           '-c', $conf{$conf}, @args);
    # make test-valgrind: the threads a check was running in are "possibly
    # lost" at that exit (an error or a definite leak is exit 99)
    $r->{err} =~ s/^==\d+==.*\n//mg;
    return $r;
}

my $r = broken('broken', 'plain', 'locks');
is($r->{rc}, 2, 'locks, libpq.so.5 an empty file: exit 2');
like($r->{err}, qr{\Amigctl: cannot load libpq\.so\.5: \Q$dir\E/broken/libpq\.so\.5: [^\n]+: install the libpq5 package\n\z},
     '... one line: the library, why, the package to install');
is($r->{out}, '', '... nothing on stdout');

$r = broken('stub', 'plain', 'locks');
is($r->{rc}, 2, 'locks, a libpq.so.5 without PQ functions: exit 2');
like($r->{err}, qr{\Amigctl: cannot load libpq\.so\.5: [^\n]*undefined symbol: PQ\w+: upgrade the libpq5 package\n\z},
     '... one line naming the missing function');

# --json: the standard JSON error object on stdout, the same line on stderr
for my $c ([ 'plain', 'locks', '--json' ], [ 'plain', '--json', 'locks' ],
           [ 'sql', '--json', 'health' ])
{
    my ($conf, @args) = @$c;
    $r = broken('broken', $conf, @args);
    is($r->{rc}, 2, "@args, libpq.so.5 an empty file: exit 2");
    like($r->{err}, qr{\Amigctl: cannot load libpq\.so\.5: [^\n]+: install the libpq5 package\n\z},
         '... the same one line on stderr');
    my $j = eval { JSON::PP::decode_json($r->{out}) };
    ok($j, '... stdout is one JSON document') or diag($r->{out});
    $j //= {};
    is($j->{ok}, JSON::PP::false, '... ok: false');
    is($j->{exit}, 2, '... exit: 2');
    my ($cmd) = grep { !/^-/ } @args;
    is($j->{command}, $cmd, "... command: $cmd");
    like($j->{error} // '', qr{\Acannot load libpq\.so\.5: [^\n]+: install the libpq5 package\z},
         '... error: the message');
}

$r = broken('broken', 'http', '--json', 'health');
is($r->{rc}, 2, '--json health, libcurl.so.4 an empty file: exit 2');
my $j = eval { JSON::PP::decode_json($r->{out}) } // {};
ok(!$j->{ok} && ($j->{exit} // 0) == 2
   && ($j->{error} // '') =~ /\Acannot load libcurl\.so\.4: .*libcurl4 package\z/,
   '... the JSON error object names libcurl.so.4')
    or diag($r->{out});

$r = broken('broken', 'sql', 'health');
is($r->{rc}, 2, 'health with an sql check in a thread, libpq broken: exit 2');
like($r->{err}, qr{\Amigctl: cannot load libpq\.so\.5: [^\n]+: install the libpq5 package\n\z},
     '... the same one line');

$r = broken('broken', 'http', 'health');
is($r->{rc}, 2, 'health, libcurl.so.4 an empty file: exit 2');
like($r->{err}, qr{\Amigctl: cannot load libcurl\.so\.4: \Q$dir\E/broken/libcurl\.so\.4: [^\n]+: install the libcurl4 package\n\z},
     '... one line: the library, why, the package to install');

# a refused reopen changes nothing: the flag stays on, no audit entry
$r = broken('broken', 'plain', qw(maintenance on --reason lazy));
is($r->{rc}, 0, 'maintenance on with libpq and libcurl broken: exit 0')
    or diag($r->{err});
my $audit = scalar @{ $t->redis('r', 'XRANGE', 'lz:audit', '-', '+') };
$r = broken('broken', 'http', qw(maintenance off));
is($r->{rc}, 2, 'maintenance off (an http check), libcurl broken: exit 2');
like($r->{err}, qr{\Amigctl: cannot load libcurl\.so\.4: [^\n]+\n\z},
     '... one line');
is($t->redis('r', 'HGET', 'lz:state:default', 'mode'), 'on',
   '... the flag is still on');
is(scalar @{ $t->redis('r', 'XRANGE', 'lz:audit', '-', '+') }, $audit,
   '... and nothing audited');

$t->check_logs('n');
$t->check_pg_log('pg');

done_testing();
