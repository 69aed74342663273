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

sub wrk {            # (req/s, p99 ms, non-2xx, requests)
    my ($url, $secs) = @_;
    my $o = `taskset -c 1 wrk -t 1 -c 32 -d ${secs}s --latency $url 2>&1`;
    my ($rps) = $o =~ /Requests\/sec:\s+([\d.]+)/;
    die "wrk $url: $o" unless defined $rps;
    my ($v, $u) = $o =~ /^\s+99%\s+([\d.]+)(us|ms|s)/m;
    my $p99 = !defined $v ? 0 : $u eq 'us' ? $v / 1000 : $u eq 's' ? $v * 1000
            : $v;
    my ($bad) = $o =~ /Non-2xx or 3xx responses:\s+(\d+)/;
    my ($n) = $o =~ /^\s*(\d+) requests in/m;
    return ($rps, $p99, $bad // 0, $n // 0);
}

# CPU time (utime + stime, clock ticks) the processes have used so far
sub cpu_ticks {
    my $sum = 0;
    for my $pid (@_) {
        open my $fh, '<', "/proc/$pid/stat" or next;
        my $l = <$fh> // '';
        close $fh;
        $l =~ s/^.*\) //s;                   # fields from the 3rd (state)
        my @f = split ' ', $l;
        $sum += $f[11] + $f[12];
    }
    return $sum;
}
my $HZ = POSIX::sysconf(POSIX::_SC_CLK_TCK()) || 100;
sub median { my @s = sort { $a <=> $b } @_; return $s[$#s / 2] if @s % 2;
             return ($s[@s / 2 - 1] + $s[@s / 2]) / 2; }

# Two figures per case and round.  req/s is what wrk saw; on a shared
# machine it follows the CPU share nginx happened to get in those seconds
# (adjacent 2 s runs of one config differ by up to 2x when other work
# runs).  The CPU time the serving nginx worker spent per request
# (/proc utime + stime over the run) does not: it is the cost the gate
# adds, and 1 / that cost is the req/s of one dedicated core.  The Lua
# peer's Redis works for it too: its CPU per request is shown apart, not
# added (in production Redis runs on another host).  Ratios are taken
# per round against the vanilla run of the same round (the order of the
# cases alternates between rounds, against drift), then the median; the
# range shows the noise.
my %nginx_of = (vanilla => 'vanilla', errpage => 'vanilla',
                gate_off => 'ours', gate_on => 'ours',
                lua_off => 'lua', lua_on => 'lua');
my %workers = map { $_ => [ $t->worker_pids($_) ] }
              grep { $have_lua || $_ ne 'lua' } values %nginx_of;

sub wrk_cpu {        # wrk(), then the nginx worker's CPU us per request
    my ($c, $p, $secs) = @_;
    my @w = @{ $workers{ $nginx_of{$c} } };
    my $c0 = cpu_ticks(@w);
    my ($rps, $p99, $bad, $n) = wrk(url($c, $p), $secs);
    return ($rps, $p99, (cpu_ticks(@w) - $c0) / $HZ * 1e6 / ($n || 1));
}

if ($ONLY{throughput}) {
out("## Throughput: $ROUNDS interleaved rounds of ${SECS}s, wrk 1 thread 32"
    . " connections on CPU 1, nginx 1 worker on CPU 0\n\n");
out("CPU us/req: CPU time of the nginx worker per request (/proc utime +"
    . " stime), and of Redis for the Lua peer; ratios: per round against"
    . " vanilla, median (min-max)\n\n");
my %res;
for my $round (1 .. $ROUNDS) {
    for my $p ('http', 'tls') {
        my @order = $round % 2 ? @cases : reverse @cases;
        for my $c (@order) {
            my @w = @{ $workers{ $nginx_of{$c} } };
            my ($c0, $r0) = (cpu_ticks(@w), cpu_ticks($t->redis_pid('r')));
            my ($rps, $p99, $bad, $n) = wrk(url($c, $p), $SECS);
            my ($c1, $r1) = (cpu_ticks(@w), cpu_ticks($t->redis_pid('r')));
            $n ||= 1;
            push @{ $res{$p}{$c}{rps} }, $rps;
            push @{ $res{$p}{$c}{p99} }, $p99;
            push @{ $res{$p}{$c}{cpu} }, ($c1 - $c0) / $HZ * 1e6 / $n;
            push @{ $res{$p}{$c}{redis} }, ($r1 - $r0) / $HZ * 1e6 / $n;
        }
    }
}
sub ratios {         # per round case / vanilla: "median (min-max)", median
    my ($x, $y, $inv) = @_;
    my @r = map { $inv ? $y->[$_] / $x->[$_] : $x->[$_] / $y->[$_] }
            0 .. $#$x;
    my @s = sort { $a <=> $b } @r;
    return (sprintf('%.2f (%.2f-%.2f)', median(@r), $s[0], $s[-1]),
            median(@r));
}
for my $p ('http', 'tls') {
    out("\n" . uc($p) . "\n\n| case | req/s | ratio | p99 ms | nginx CPU"
        . " us/req | req/s per core ratio | Redis CPU us/req |\n");
    out("|---|---|---|---|---|---|---|\n");
    my $v = $res{$p}{vanilla};
    for my $c (@cases) {
        my $r = $res{$p}{$c};
        my ($rr) = ratios($r->{rps}, $v->{rps}, 0);
        my ($cr) = ratios($r->{cpu}, $v->{cpu}, 1);
        out(sprintf("| %s | %.0f | %s | %.2f | %.2f | %s | %.2f |\n", $c,
                    median(@{ $r->{rps} }), $rr, median(@{ $r->{p99} }),
                    median(@{ $r->{cpu} }), $cr, median(@{ $r->{redis} })));
    }
    if ($have_lua) {
        my $g = $res{$p}{gate_on};
        my $e = $res{$p}{errpage};
        my $l = $res{$p}{lua_on};
        my ($lr) = ratios($g->{rps}, $l->{rps}, 0);
        my ($lc) = ratios($g->{cpu}, $l->{cpu}, 1);
        my ($er) = ratios($g->{rps}, $e->{rps}, 0);
        my ($ec) = ratios($g->{cpu}, $e->{cpu}, 1);
        out("\ngate_on vs lua_on: req/s $lr, per core $lc; gate_on vs"
            . " errpage: req/s $er, per core $ec\n");
    }
}

}

# --- Redis stopped and frozen under load ---------------------------------
if ($ONLY{faults}) {
out("\n## Redis stopped / frozen for 3 s in the middle of 9 s of load (HTTP)\n\n");
out("| case | fault | req/s | p99 ms | nginx CPU us/req | baseline req/s |"
    . " baseline p99 ms | baseline CPU us/req |\n");
out("|---|---|---|---|---|---|---|---|\n");
for my $c ('gate_off', $have_lua ? 'lua_off' : ()) {
    my ($brps, $bp99, $bcpu) = wrk_cpu($c, 'http', 9);
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
        my ($rps, $p99, $cpu) = wrk_cpu($c, 'http', 9);
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
        out(sprintf("| %s | %s | %.0f | %.2f | %.2f | %.0f | %.2f | %.2f |\n",
                    $c, $fault, $rps, $p99, $cpu, $brps, $bp99, $bcpu));
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
    . " workers each) answers the new mode; $FLIPS flips, migctl's own run"
    . " included; then its parts\n\n");
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
# BENCH_MIGCTL: the binary (default build/migctl); BENCH_MIGCTL_BASE: a
# second one (an older build) flipped in turn with it, two flips each
my $migctl = $ENV{BENCH_MIGCTL} || "$root/build/migctl";
my @bins = ([ '' => $migctl ]);
push @bins, [ ' (base)' => $ENV{BENCH_MIGCTL_BASE} ]
    if $ENV{BENCH_MIGCTL_BASE};

# migctl is waited for by a blocking waitpid (MigTest::run polls every
# 5 ms: up to 5 ms of its own in each figure); an edge is asked with one
# HTTP/1.0 request on a new connection (any worker may take it: they read
# one zone)
sub spawn_ms {       # runs a command to its end: elapsed ms
    my @cmd = @_;
    my $t0 = time;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', "$dir/flip.err";
        exec @cmd or POSIX::_exit(127);
    }
    waitpid($pid, 0);
    die "@cmd: exit " . ($? >> 8) . ": " . ($t->read_file("$dir/flip.err")
        // '') if $?;
    return (time - $t0) * 1000;
}
sub edge_status {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $_[0], Proto => 'tcp',
                                  Timeout => 2) or return 0;
    print $s "GET / HTTP/1.0\r\nHost: x\r\n\r\n";
    my $l = <$s> // '';
    close $s;
    return $l =~ m{^HTTP/1\.\d (\d+)} ? $1 : 0;
}
sub converge {       # until every edge answers $want; ms since $t0
    my ($t0, $want, $i) = @_;
    my %done;
    while (keys %done < @edges) {
        for my $e (grep { !$done{$_} } @edges) {
            $done{$e} = 1 if edge_status($t->port($e)) == $want;
        }
        die "flip $i did not converge\n" if time - $t0 > 10;
    }
    return (time - $t0) * 1000;
}
my %lat = map { my $b = $_->[0];
                map { ("$_$b" => []) } qw(on off run prop startup) } @bins;
$lat{direct} = [];
my $deadline = time + 180 * @bins;
for my $i (1 .. $FLIPS * @bins) {
    last if time > $deadline;
    my ($b, $bin) = @{ $bins[int(($i - 1) / 2) % @bins] };
    my $mode = $i % 2 ? 'on' : 'off';
    my $want = $mode eq 'on' ? 503 : 200;
    my $t0 = time;
    my $run = spawn_ms($bin, '-c', $mconf, '--scope', 'flip',
                       'maintenance', $mode,
                       $mode eq 'off' ? ('--force', '--reason', 'bench') : ());
    my $all = converge($t0, $want, $i);
    push @{ $lat{"$mode$b"} }, $all;
    push @{ $lat{"run$b"} }, $run;
    push @{ $lat{"prop$b"} }, $all - $run;
}
# the edges' part alone: the change written and published by a script
# from here, no process started
for my $i (1 .. $FLIPS) {
    last if time > $deadline;
    my $mode = $i % 2 ? 'on' : 'off';
    my $t0 = time;
    $t->redis('r', 'EVAL', "redis.call('HSET', KEYS[1], 'mode', ARGV[1]);"
              . " local e = redis.call('HINCRBY', KEYS[1], 'epoch', 1);"
              . " redis.call('PUBLISH', ARGV[2], 'flip ' .. e); return e",
              1, 'migctl:state:flip', $mode, 'migctl:events');
    push @{ $lat{direct} }, converge($t0, $mode eq 'on' ? 503 : 200, $i);
}
for (1 .. 50) {
    for (@bins) {
        push @{ $lat{"startup$_->[0]"} }, spawn_ms($_->[1], '--version');
    }
}
sub pct { my ($p, @v) = @_; my @s = sort { $a <=> $b } @v;
          return $s[floor($p / 100 * $#s + 0.5)]; }
out("| flip | n | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|\n");
my %what = (on => 'maintenance on -> every edge 503',
            off => 'maintenance off -> every edge 200',
            run => 'of which migctl\'s run (start to exit)',
            prop => 'of which exit -> every edge',
            direct => 'Redis EVAL (HSET + PUBLISH) -> every edge, no migctl',
            startup => 'migctl --version (process start-up alone)');
for my $m (qw(on off run prop direct startup)) {
    for my $b ($m eq 'direct' ? '' : map { $_->[0] } @bins) {
        my @v = @{ $lat{"$m$b"} };
        next unless @v;
        out(sprintf("| %s%s | %d | %.1f | %.1f | %.1f |\n", $what{$m}, $b,
                    scalar @v, pct(50, @v), pct(99, @v), pct(100, @v)));
    }
}
out("\nbase: $ENV{BENCH_MIGCTL_BASE}\n") if $ENV{BENCH_MIGCTL_BASE};

}

mkdir "$root/build/bench";
$t->write_file("$root/build/bench/results.md",
    "# make bench, " . scalar(gmtime) . " UTC\n\n" . join('', @report));
print "\nwritten to build/bench/results.md\n";
