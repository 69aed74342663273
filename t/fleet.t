#!/usr/bin/perl
# fleet.t: migctl maintenance against real nginx edges with the module.
# One edge with HTTP + TLS: on -> 503 on both within 100 ms, off -> 200.
# Three edges, one Redis: on --wait returns when all serve the new epoch;
# one edge SIGSTOPped -> --wait=3 exits 1 naming it, status marks it.
# Redis flushed -> status says Redis lost its data; on re-asserts.

use strict;
use warnings;

use lib 't/lib';
use MigTest;
use Test::More;
use JSON::PP;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time);

my $t = MigTest->new;
my $rport = $t->start_redis('r');
my ($crt, $key) = $t->self_signed_cert('edge');

# under valgrind migctl takes seconds to start: the stopped edge must still
# count as live (heartbeat younger than edge_live_ms) when it looks
my $live_ms = $ENV{MIGCTL_WRAP} ? 30000 : 5000;
my $conf = $t->write_file('migctl.conf', <<"EOF");
redis = { port = $rport; timeout_ms = 2000; };
edge_live_ms = $live_ms;
# off is refused without a check: every live edge serves the current state
health = { checks = ( { name = "edges"; type = "edges"; } ); };
EOF
my %env = (MIGCTL_CONFIG => $conf, MIGCTL_ACTOR => 'carol');

sub mig { $t->migctl({ env => \%env }, @_) }

sub edge_conf {
    my ($n, $tls) = @_;
    my $tls_server = $tls ? <<"EOF" : '';
    server {
        listen 127.0.0.1:%%PORT_${n}s%% ssl;
        server_name localhost;
        ssl_certificate $crt;
        ssl_certificate_key $key;
        location / { return 200 "app $n tls\\n"; }
    }
EOF
    return <<"EOF";
load_module %%MODULE%%;
worker_processes 2;
events { worker_connections 128; }
http {
    access_log off;
    maintenance_redis 127.0.0.1:%%PORT_r%%;
    maintenance_node_id $n;
    maintenance_poll 200ms;
    maintenance on;
    add_header X-Msec \$msec always;       # when nginx answered, ms

    server {
        listen 127.0.0.1:%%PORT_${n}%%;
        server_name localhost;
        location / { return 200 "app $n\\n"; }
        location = /lb { maintenance_health; }
    }
$tls_server}
EOF
}

# --- item 1: one edge, HTTP and TLS -------------------------------------

$t->nginx_conf('n1', edge_conf('n1', 1));
$t->start_nginx('n1');
my ($p1, $p1s) = ($t->port('n1'), $t->port('n1s'));

ok($t->wait_for(sub { $t->redis('r', 'ZCARD', 'migctl:edges') }, 5),
   'n1 heartbeats in migctl:edges');
is($t->http($p1, '/')->{status}, 200, 'n1 HTTP open before');
is($t->http($p1s, '/', tls => 1)->{status}, 200, 'n1 TLS open before');

# Two keep-alive connections (HTTP, TLS) opened before the change poll
# while migctl runs in the background; the latency is from the moment
# Redis committed the change (the ms part of the audit entry's id, same
# clock) to the end of the first 503 response on each.
$SIG{PIPE} = 'IGNORE';             # a poller's connection may be closed
my %ka = (http => { port => $p1, tls => 0 }, tls => { port => $p1s, tls => 1 });
is(ka_get($ka{$_}), 200, "keep-alive $_ poller ready") for qw(http tls);

my $mpid = fork // die "fork: $!";
if ($mpid == 0) {
    my $r = mig(qw(maintenance on --reason), 'migrate failed',
                qw(--release abc));
    POSIX::_exit($r->{rc});
}
# poll until both answer 503, or 2 s after migctl exited (bounded: 60 s)
my (%seen, %last200, %samples, $mstatus, $mdone);
my $end = time + 60;
while (keys %seen < 2 && time < $end && (!$mdone || time < $mdone + 2)) {
    if (!$mdone && waitpid($mpid, POSIX::WNOHANG()) == $mpid) {
        ($mstatus, $mdone) = ($?, time);
    }
    for my $k (qw(http tls)) {
        next if $seen{$k};
        my ($st, $msec) = ka_get($ka{$k});
        $seen{$k} = $msec if $st == 503;
        $last200{$k} = $msec if $st == 200;
        $samples{$k}++;
    }
}
unless ($mdone) {
    waitpid($mpid, 0);
    $mstatus = $?;
}
is($mstatus >> 8, 0, 'on: exit 0');
my $id = $t->redis('r', 'XREVRANGE', 'migctl:audit', '+', '-', 'COUNT', 1)
    ->[0][0];
my ($commit) = $id =~ /^(\d+)-/;
ok($seen{http} && $seen{tls}, 'on: 503 on HTTP and TLS');
# The property: no request that nginx answered more than 100 ms after the
# commit got the app.  Timed by nginx's own clock ($msec), so a slow poller
# (a TLS client on a busy machine) samples less often but never inflates it.
for my $k (qw(http tls)) {
    my $ms = (($last200{$k} // 0) - $commit / 1000) * 1000;
    ok($ms <= 100, sprintf("... $k: the app's last answer %.0f ms after the"
                           . " commit (at most 100)", $ms));
    diag(sprintf("on on $k: last 200 at %+.0f ms, first 503 at %+.0f ms of"
                 . " the commit (%d samples)", $ms,
                 (($seen{$k} // 0) - $commit / 1000) * 1000, $samples{$k}));
}
my ($r, $t0, $ok, $ms);
is($t->http($p1, '/lb')->{status}, 200, 'LB health stays 200');

$r = mig(qw(maintenance status));
like($r->{out}, qr/ON \(epoch 1\)/, 'status: mode, epoch');
like($r->{out}, qr/reason:\s+migrate failed/, 'status: reason');
like($r->{out}, qr/release:\s+abc/, 'status: release');
like($r->{out}, qr/actor:\s+carol/, 'status: actor');

$r = mig(qw(--json maintenance status));
my $j = eval { decode_json($r->{out}) } || {};
is_deeply([ @$j{qw(mode epoch reason release actor)} ],
          [ 'on', 1, 'migrate failed', 'abc', 'carol' ],
          'status --json: mode, epoch, reason, release, actor');
ok($j->{since} > 0, 'status --json: since');

$r = mig(qw(maintenance off));
$t0 = time;
is($r->{rc}, 0, 'off: exit 0') or diag($r->{err});
$ok = $t->wait_for(sub {
    $t->http($p1, '/', timeout => 1)->{status} == 200
        && $t->http($p1s, '/', tls => 1, timeout => 1)->{status} == 200
}, 2);
$ms = (time - $t0) * 1000;
ok($ok, sprintf('off: 200 again on HTTP and TLS (%.0f ms)', $ms));

# --- item 2: three edges, --wait ------------------------------------------

$t->nginx_conf($_, edge_conf($_, 0)), $t->start_nginx($_) for qw(n2 n3);

ok($t->wait_for(sub {
    my $r = mig(qw(--json maintenance status));
    my $j = eval { decode_json($r->{out}) } || {};
    3 == grep { $_->{live} } @{ $j->{edges} || [] };
}, 10), 'three live edges in status');

$t0 = time;
$r = mig(qw(maintenance on --reason fleet --wait=10));
my $wait_ms = (time - $t0) * 1000;
is($r->{rc}, 0, 'on --wait: exit 0 when all three serve it')
    or diag($r->{err});
like($r->{err}, qr{3/3 live edges acknowledged}, 'progress: 3/3');
diag(sprintf('on --wait with 3 edges returned in %.0f ms', $wait_ms));
my $epoch = $t->redis('r', 'HGET', 'migctl:state:default', 'epoch');
for my $n (qw(n1 n2 n3)) {
    is($t->redis('r', 'HGET', "migctl:edge:$n", 'default'), "on:$epoch",
       "$n serves on:$epoch");
    is($t->http($t->port($n), '/')->{status}, 503, "$n answers 503");
}

# one edge stopped: master and workers
my @stopped = ($t->nginx_pid('n3'), $t->worker_pids('n3'));
kill 'STOP', @stopped;

$t0 = time;
$r = mig(qw(maintenance off --wait=3));
my $took = time - $t0;
is($r->{rc}, 1, 'off --wait=3 with n3 stopped: exit 1');
like($r->{err}, qr/not serving off:\d+ after 3 s: n3 \(serving on:$epoch/,
     'names n3 and what it serves');
unlike($r->{err}, qr/after 3 s:.*\bn[12]\b/, 'names only n3');
SKIP: {
    skip 'valgrind distorts time: the bounds hold in the plain and ASan runs',
        4 if $ENV{MIGCTL_WRAP};

ok($took >= 3 && $took < 6, sprintf('gave up after %.1f s', $took));

# (n3's edge hash expires 10 s after it stopped: status is run at once)
$r = mig(qw(maintenance status));
is($r->{rc}, 1, 'status: exit 1 while n3 is behind');
like($r->{out}, qr/^\s+n3\s+on:$epoch\s+.*(BEHIND|STALE)/m, 'status marks n3');
like($r->{out}, qr/^\s+n1\s+off:\d+\s+.*ok$/m, 'n1 ok');
}

kill 'CONT', @stopped;
ok($t->wait_for(sub { mig(qw(maintenance status))->{rc} == 0 }, 10),
   'n3 resumed: status converges (exit 0)');

# --- Redis lost its data -----------------------------------------------------

$r = mig(qw(maintenance on --reason before-flush --wait=10));
is($r->{rc}, 0, 'on --wait before the flush');
$t->redis('r', 'FLUSHALL');
ok($t->wait_for(sub {
    my $r = mig(qw(maintenance status));
    $r->{rc} == 1 && $r->{out} =~ /Redis lost its data/;
}, 10), 'status: Redis lost its data (edges keep serving on)');
is($t->http($t->port('n2'), '/')->{status}, 503, 'edges stay in maintenance');
$r = mig(qw(maintenance on --reason reassert --wait=10));
is($r->{rc}, 0, 'on re-asserts it, every edge acknowledges');
is(mig(qw(maintenance status))->{rc}, 0, 'status consistent again');

$r = mig(qw(maintenance off --wait=10));
is($r->{rc}, 0, 'off --wait');
is($t->http($t->port($_), '/')->{status}, 200, "$_ open") for qw(n1 n2 n3);

$t->check_logs($_) for qw(n1 n2 n3);

done_testing();


# --- keep-alive pollers ---------------------------------------------------

sub ka_open {
    my ($c) = @_;
    my %o = (PeerAddr => '127.0.0.1', PeerPort => $c->{port}, Timeout => 5);
    if ($c->{tls}) {
        require IO::Socket::SSL;
        $c->{sock} = IO::Socket::SSL->new(%o, SSL_verify_mode => 0,
                                          SSL_hostname => 'localhost');
    } else {
        $c->{sock} = IO::Socket::INET->new(%o, Proto => 'tcp');
    }
    return $c->{sock};
}

# one request on the open connection, reconnecting once when nginx has
# closed it (keepalive_requests); the status, 0 on error
sub ka_get {
    my ($c) = @_;
    for my $try (1, 2) {
        ka_open($c) or return 0 unless $c->{sock};
        my @r = ka_request($c->{sock});
        return wantarray ? @r : $r[0] if $r[0];
        close $c->{sock};
        delete $c->{sock};
    }
    return 0;
}

sub ka_request {
    my ($s) = @_;
    print $s "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n" or return 0;
    my $buf = '';
    my $end = time + 2;
    while (time < $end) {
        my $n = sysread($s, $buf, 16384, length $buf);
        return 0 unless $n;
        my ($head, $body) = split /\r\n\r\n/, $buf, 2;
        next unless defined $body;
        my ($len) = $head =~ /^Content-Length:\s*(\d+)/mi;
        next if defined $len && length($body) < $len;
        my ($msec) = $head =~ /^X-Msec:\s*([\d.]+)/mi;
        return (($head =~ m{^HTTP/1\.1 (\d+)})[0] // 0, $msec // 0);
    }
    return 0;
}
