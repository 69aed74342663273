# peers.pl: the gate side by side with what users would pick instead, in
# one run on loopback: nginx pinned to CPU 0, wrk to CPU 1, rounds
# interleaved, medians, ratios against vanilla nginx of the same protocol.
#   vanilla    nginx without our module: return 200 (the limit)
#   gate_off   our gate deciding "open" (flag off), then return 200
#   gate_on    our gate closed: the 503 page from shared memory
#   errpage    the common config: if (-f flag) { return 503; } with
#              error_page 503 serving a file (try_files), flag present
#   lua_off    OpenResty style: rewrite_by_lua GETs the flag from Redis on
#   lua_on     every request (Debian's libnginx-mod-http-lua and
#              lua-nginx-redis, keepalive pool), flag off / on
# Then: Redis stopped and frozen (SIGSTOP) 3 s under load, ours vs Lua;
# flip latency over 3 edges; instructions per request (callgrind).
# Results: stdout and build/bench/results.md.
use strict;
use warnings;
use lib 't/lib';
use MigTest;
use Time::HiRes qw(time sleep);
use POSIX qw(floor);

my $ROUNDS = $ENV{BENCH_ROUNDS} || 5;
my $SECS   = $ENV{BENCH_SECONDS} || 2;
my $FLIPS  = $ENV{BENCH_FLIPS} || 200;
my %ONLY   = map { $_ => 1 } split /,/, ($ENV{BENCH_ONLY} || 'throughput,faults,callgrind,flips');
my $t = MigTest->new;
my $root = $t->root;
my $dir = $t->dir;
my @report;

sub out { my $l = join('', @_); print $l; push @report, $l; }

my $have_lua = -e '/usr/lib/nginx/modules/ngx_http_lua_module.so'
    && -e '/usr/share/lua/5.1/nginx/redis.lua';
my ($crt, $key) = $t->self_signed_cert('tls');

$t->start_redis('r');
my $rp = $t->port('r');
$t->redis('r', 'HSET', 'migctl:state:open', 'mode', 'off', 'epoch', '1');
$t->redis('r', 'HSET', 'migctl:state:closed', 'mode', 'on', 'epoch', '1');
$t->redis('r', 'SET', 'maint:off', 'off');
$t->redis('r', 'SET', 'maint:on', 'on');
$t->write_file("$dir/maintenance.html", "<h1>Down for maintenance</h1>\n");
$t->write_file("$dir/maintenance.on", "");

my $common = <<"CONF";
worker_processes 1;
worker_cpu_affinity 01;
events { worker_connections 1024; }
CONF

sub pair {           # an HTTP and a TLS server with the same body
    my ($name, $body) = @_;
    return <<"CONF";
    server {
        listen 127.0.0.1:%%PORT_${name}_http%%;
        listen 127.0.0.1:%%PORT_${name}_tls%% ssl;
        ssl_certificate $crt;
        ssl_certificate_key $key;
$body
    }
CONF
}

$t->nginx_conf('vanilla', $common . "http {\n    access_log off;\n"
    . pair('vanilla', '        location / { return 200 "app\n"; }')
    . pair('errpage', <<"BODY") . "}\n");
        error_page 503 \@maintenance;
        location / {
            if (-f $dir/maintenance.on) { return 503; }
            return 200 "app\\n";
        }
        location \@maintenance { root $dir; try_files /maintenance.html =503; }
BODY

$t->nginx_conf('ours', "load_module %%MODULE%%;\n" . $common . <<"CONF"
http {
    access_log off;
    maintenance_redis 127.0.0.1:$rp;
    maintenance_poll 1s;
    maintenance on;
CONF
    . pair('gate_off', "        maintenance_scope open;\n"
                     . '        location / { return 200 "app\n"; }')
    . pair('gate_on', "        maintenance_scope closed;\n"
                    . '        location / { return 200 "app\n"; }')
    . "}\n");

my $lua = sub {
    my ($k) = @_;
    return <<"BODY";
        location / {
            rewrite_by_lua_block {
                local redis = require "nginx.redis"
                local r = redis:new()
                r:set_timeouts(100, 100, 100)
                local ok = r:connect("127.0.0.1", $rp)
                if ok then
                    local v = r:get("maint:$k")
                    r:set_keepalive(10000, 64)
                    if v == "on" then return ngx.exit(503) end
                end
            }
            return 200 "app\\n";
        }
BODY
};
if ($have_lua) {
    $t->nginx_conf('lua', <<"CONF" . $common . "http {\n    access_log off;\n"
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
CONF
        . "    rewrite_by_lua_no_postpone on;  # before return, as our gate\n"
        . pair('lua_off', $lua->('off')) . pair('lua_on', $lua->('on'))
        . "}\n");
}

for my $n ('vanilla', 'ours', $have_lua ? 'lua' : ()) {
    $t->start_nginx($n);
}
sub url { my ($c, $p) = @_;
    return $p eq 'tls' ? "https://127.0.0.1:" . $t->port("${c}_tls") . "/"
                       : "http://127.0.0.1:" . $t->port("${c}_http") . "/"; }

my @cases = ('vanilla', 'gate_off', 'gate_on', 'errpage',
             $have_lua ? ('lua_off', 'lua_on') : ());
my %want = (vanilla => 200, gate_off => 200, gate_on => 503, errpage => 503,
            lua_off => 200, lua_on => 503);
for my $c (@cases) {
    my $s = $t->wait_for(sub { $t->http($t->port("${c}_http"), '/')->{status}
                               == $want{$c} }, 10);
    die "$c does not answer $want{$c}\n" unless $s;
}

sub wrk {            # (req/s, p99 ms, non-2xx)
    my ($url, $secs) = @_;
    my $o = `taskset -c 1 wrk -t 1 -c 32 -d ${secs}s --latency $url 2>&1`;
    my ($rps) = $o =~ /Requests\/sec:\s+([\d.]+)/;
    die "wrk $url: $o" unless defined $rps;
    my ($v, $u) = $o =~ /^\s+99%\s+([\d.]+)(us|ms|s)/m;
    my $p99 = !defined $v ? 0 : $u eq 'us' ? $v / 1000 : $u eq 's' ? $v * 1000
            : $v;
    my ($bad) = $o =~ /Non-2xx or 3xx responses:\s+(\d+)/;
    return ($rps, $p99, $bad // 0);
}
sub median { my @s = sort { $a <=> $b } @_; return $s[$#s / 2] if @s % 2;
             return ($s[@s / 2 - 1] + $s[@s / 2]) / 2; }

if ($ONLY{throughput}) {
out("## Throughput: $ROUNDS interleaved rounds of ${SECS}s, wrk 1 thread 32"
    . " connections on CPU 1, nginx 1 worker on CPU 0\n\n");
my %res;
for my $round (1 .. $ROUNDS) {
    for my $p ('http', 'tls') {
        for my $c (@cases) {
            my ($rps, $p99) = wrk(url($c, $p), $SECS);
            push @{ $res{$p}{$c}{rps} }, $rps;
            push @{ $res{$p}{$c}{p99} }, $p99;
        }
    }
}
out("| case | HTTP req/s | ratio | p99 ms | TLS req/s | ratio | p99 ms |\n");
out("|---|---|---|---|---|---|---|\n");
for my $c (@cases) {
    my @cols;
    for my $p ('http', 'tls') {
        my $m = median(@{ $res{$p}{$c}{rps} });
        my $base = median(@{ $res{$p}{vanilla}{rps} });
        push @cols, sprintf('%.0f', $m), sprintf('%.2f', $m / $base),
                    sprintf('%.2f', median(@{ $res{$p}{$c}{p99} }));
    }
    out("| $c | " . join(' | ', @cols) . " |\n");
}

}

# --- Redis stopped and frozen under load ---------------------------------
if ($ONLY{faults}) {
out("\n## Redis stopped / frozen for 3 s in the middle of 9 s of load (HTTP)\n\n");
out("| case | fault | req/s | p99 ms | baseline req/s | baseline p99 ms |\n");
out("|---|---|---|---|---|---|\n");
for my $c ('gate_off', $have_lua ? 'lua_off' : ()) {
    my ($brps, $bp99) = wrk(url($c, 'http'), 9);
    for my $fault ('SIGSTOP', 'stopped') {
        my $pid = fork // die;
        if ($pid == 0) {
            sleep 3;
            if ($fault eq 'SIGSTOP') { kill 'STOP', $t->redis_pid('r') }
            else { kill 'TERM', $t->redis_pid('r') }
            sleep 3;
            kill 'CONT', $t->redis_pid('r') if $fault eq 'SIGSTOP';
            POSIX::_exit(0);
        }
        my ($rps, $p99) = wrk(url($c, 'http'), 9);
        waitpid($pid, 0);
        if ($fault eq 'stopped') {
            $t->wait_gone($t->redis_pid('r'), 10);
            delete $t->{redis}{r};
            $t->start_redis('r');
            $t->redis('r', 'HSET', 'migctl:state:open', 'mode', 'off',
                      'epoch', '1');
            $t->redis('r', 'HSET', 'migctl:state:closed', 'mode', 'on',
                      'epoch', '1');
            $t->redis('r', 'SET', 'maint:off', 'off');
            $t->redis('r', 'SET', 'maint:on', 'on');
        }
        out(sprintf("| %s | %s | %.0f | %.2f | %.0f | %.2f |\n", $c, $fault,
                    $rps, $p99, $brps, $bp99));
    }
}

}

# --- instructions per request (callgrind) --------------------------------
if ($ONLY{callgrind}) {
out("\n## Instructions per request (valgrind --tool=callgrind, nginx in one"
    . " process; (Ir(1100 requests) - Ir(100)) / 1000)\n\n");
sub callgrind_ir {
    my ($name, $conf, $port, $n) = @_;
    my $d = "$dir/cg-$name-$n";
    mkdir $d;
    $conf =~ s/%%PORT%%/$port/g;
    $conf =~ s/http \{/http { keepalive_requests 1000000;/;   # one connection
    $t->write_file("$d/nginx.conf", "daemon off;\nmaster_process off;\n"
        . "error_log $d/error.log error;\npid $d/nginx.pid;\n$conf");
    my $pid = fork // die;
    if ($pid == 0) {
        open STDOUT, '>', "$d/out"; open STDERR, '>&', \*STDOUT;
        { exec 'valgrind', '--tool=callgrind',
               "--callgrind-out-file=$d/cg.out",
               'nginx', '-p', "$d/", '-c', "$d/nginx.conf"; }
        POSIX::_exit(127);
    }
    $t->wait_port($port, 120) or die "callgrind $name: no port\n";
    print STDERR "# callgrind $name: $n requests\n";
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port)
        or die "connect: $!";
    for (1 .. $n) {
        print $s "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        my $head = '';
        while ($head !~ /\r\n\r\n/) {
            sysread($s, $head, 4096, length $head) or die "read: $!";
        }
        my ($len) = $head =~ /Content-Length: (\d+)/i;
        my ($body) = $head =~ /\r\n\r\n(.*)\z/s;
        my $need = ($len // 0) - length $body;
        while ($need > 0) {
            my $r = sysread($s, my $buf, $need) or die "read: $!";
            $need -= $r;
        }
    }
    close $s;
    kill 'QUIT', $pid;
    waitpid($pid, 0);
    my $txt = $t->read_file("$d/cg.out") // '';
    my ($ir) = $txt =~ /^summary:\s+(\d+)/m;
    die "callgrind $name: no summary\n" unless $ir;
    return $ir;
}
my $module = "$root/build/ngx_http_maintenance_module.so";
my %cg = (
    vanilla  => "events { worker_connections 64; }\nhttp { access_log off;"
              . " server { listen 127.0.0.1:%%PORT%%;"
              . " location / { return 200 \"app\\n\"; } } }\n",
    gate_off => "load_module $module;\nevents { worker_connections 64; }\n"
              . "http { access_log off; maintenance_redis 127.0.0.1:$rp;"
              . " maintenance_poll 60s; maintenance on;"
              . " maintenance_scope open; server { listen 127.0.0.1:%%PORT%%;"
              . " location / { return 200 \"app\\n\"; } } }\n",
    gate_on  => "load_module $module;\nevents { worker_connections 64; }\n"
              . "http { access_log off; maintenance_redis 127.0.0.1:$rp;"
              . " maintenance_poll 60s; maintenance on;"
              . " maintenance_scope closed; server { listen 127.0.0.1:%%PORT%%;"
              . " location / { return 200 \"app\\n\"; } } }\n",
    errpage  => "events { worker_connections 64; }\nhttp { access_log off;"
              . " server { listen 127.0.0.1:%%PORT%%; error_page 503 \@m;"
              . " location / { if (-f $dir/maintenance.on) { return 503; }"
              . " return 200 \"app\\n\"; }"
              . " location \@m { root $dir; try_files /maintenance.html =503; }"
              . " } }\n",
);
out("| case | instructions per request | vs vanilla |\n|---|---|---|\n");
my %ipr;
for my $c ('vanilla', 'gate_off', 'gate_on', 'errpage') {
    my $port = $t->port("cg_$c");
    # the gated cases must have their state before the counted requests:
    # the state arrives with the link, before the port is polled
    my $a = callgrind_ir($c, $cg{$c}, $port, 100);
    my $b = callgrind_ir($c, $cg{$c}, $port, 1100);
    $ipr{$c} = ($b - $a) / 1000;
    out(sprintf("| %s | %.0f | %.2f |\n", $c, $ipr{$c},
                $ipr{$c} / $ipr{vanilla}));
}

}

# --- flip latency over 3 edges -------------------------------------------
if ($ONLY{flips}) {
out("\n## Flip latency: migctl maintenance on/off -> every edge of 3 (2"
    . " workers each) answers the new mode; $FLIPS flips, includes migctl's"
    . " own run\n\n");
my @edges = map { "e$_" } 1 .. 3;
for my $e (@edges) {
    $t->nginx_conf($e, <<"CONF");
load_module %%MODULE%%;
worker_processes 2;
events { worker_connections 256; }
http {
    access_log off;
    maintenance_redis 127.0.0.1:$rp;
    maintenance_poll 1s;
    maintenance_node_id $e;
    maintenance on;
    maintenance_scope flip;
    server {
        listen 127.0.0.1:%%PORT_$e%%;
        location / { return 200 "app\\n"; }
    }
}
CONF
    $t->start_nginx($e);
}
my $mconf = "$dir/migctl.conf";
$t->write_file($mconf, "redis = { host = \"127.0.0.1\"; port = $rp; };\n");
my $migctl = "$root/build/migctl";
my %lat = (on => [], off => []);
my $deadline = time + 120;
for my $i (1 .. $FLIPS) {
    last if time > $deadline;
    my $mode = $i % 2 ? 'on' : 'off';
    my $want = $mode eq 'on' ? 503 : 200;
    my $t0 = time;
    my $r = $t->run({}, $migctl, '-c', $mconf, '--scope', 'flip',
                    'maintenance', $mode,
                    $mode eq 'off' ? ('--force', '--reason', 'bench') : ());
    $r->{rc} == 0 or die "migctl $mode failed: $r->{err}\n";
    my %done;
    while (keys %done < @edges) {
        for my $e (grep { !$done{$_} } @edges) {
            $done{$e} = 1 if $t->http($t->port($e), '/')->{status} == $want;
        }
        die "flip $i did not converge\n" if time - $t0 > 10;
    }
    push @{ $lat{$mode} }, (time - $t0) * 1000;
}
sub pct { my ($p, @v) = @_; my @s = sort { $a <=> $b } @v;
          return $s[floor($p / 100 * $#s + 0.5)]; }
out("| flip | n | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|\n");
for my $m ('on', 'off') {
    my @v = @{ $lat{$m} };
    out(sprintf("| %s | %d | %.1f | %.1f | %.1f |\n", $m, scalar @v,
                pct(50, @v), pct(99, @v), pct(100, @v)));
}

}

mkdir "$root/build/bench";
$t->write_file("$root/build/bench/results.md",
    "# make bench, " . scalar(gmtime) . " UTC\n\n" . join('', @report));
print "\nwritten to build/bench/results.md\n";
