# sentinel_dns.t: "maintenance_redis_sentinel NAME host:port" with a
# sentinel given by name and nginx's "resolver": worker 0 resolves the
# name again each time it connects to that sentinel (discovery and the
# +switch-master subscription), on the event loop.  The harness's DNS
# server answers s1.test; the sentinels are the harness's group on
# 127.0.0.1, s1.test names the first one's address (same port).
#  1. s1.test -> 127.0.0.5 and .6 (nothing listens there): no master,
#     status lists s1.test at both addresses (each asked in a round) and
#     why; the A record moves to 127.0.0.1:
#     the edge finds the master, subscribes there, no reload;
#  2. the DNS server silent: requests answered at once, the resolver
#     timeout counts as s1.test failing (logged once), the next sentinel
#     (learned from s1.test) is asked, the state is kept;
#  3. a reload, then (valgrind) a graceful exit while a resolution is in
#     flight: cancelled, no callback after;
#  4. without "resolver": resolved once at load, with a notice; an unknown
#     name is refused at its line;
#  5. a DNS-based move of the whole sentinel set: groups a (sentinels on
#     127.0.0.2) and b (127.0.0.3, same ports), s.test names a's; a is
#     killed, s.test moves to b: the edge follows, no reload.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use POSIX ();
use JSON::PP;
use lib 't/lib';
use MigTest;

plan skip_all => 'redis-sentinel not installed'
    unless -x '/usr/bin/redis-sentinel';
eval { require Net::DNS::Nameserver; require Net::DNS::Resolver; 1 }
    or plan(skip_all => 'Net::DNS (libnet-dns-perl) is not installed');

my $t = MigTest->new;
my $NAME = 'mymaster';
my $VALID = 1;            # resolver valid=
my $TIMEOUT = 2;          # maintenance_redis timeout= (a sentinel: 1 s)
my $POLL = 0.2;

my $g = $t->start_sentinels('g', master => $NAME);
my $SPORT = $t->port('g-s1');
my $S1 = "s1.test:$SPORT";

$t->dns_set('s1.test', '127.0.0.5', '127.0.0.6');
$t->start_dns;

sub conf {
    my ($n, $list, $resolver) = @_;
    $t->nginx_conf($n, <<"CONF");
load_module %%MODULE%%;
worker_processes 2;
events { worker_connections 64; }
http {
    access_log off;
    $resolver
    maintenance_redis_sentinel $NAME $list timeout=${TIMEOUT}s;
    maintenance_poll @{[ $POLL * 1000 ]}ms;
    maintenance_node_id $n;
    maintenance on;

    server {
        listen 127.0.0.1:%%PORT_${n}_http%%;
        location / { return 200 "app\\n"; }
    }

    server {
        listen 127.0.0.1:%%PORT_${n}_st%%;
        maintenance off;
        location /status { maintenance_status; }
    }
}
CONF
}

sub code { $t->http($t->port("$_[0]_http"), '/')->{status} }
sub status {
    my $r = $t->http($t->port("$_[0]_st"), '/status');
    return eval { decode_json($r->{body}) } // {};
}
sub redis_up { (status($_[0])->{redis}{up} // 0) ? 1 : 0 }
sub log_since {
    my ($n, $off, $re) = @_;
    return scalar(grep { /$re/ } split /\n/, substr($t->error_log($n), $off));
}
# the edge's links to the master dropped: the sentinels are asked again
sub kick { $t->redis('g-m', 'CLIENT', 'KILL', 'TYPE', 'normal') }

my $RES = "resolver 127.0.0.1:%%PORT_dns%% valid=${VALID}s;";

# --- 1. a dead address, then a live sentinel's: followed without reload ---

conf('e', $S1, $RES);
my ($rc, $out) = $t->nginx_test('e');
is($rc, 0, 'nginx -t: a sentinel name only the resolver knows is accepted')
    or diag($out);

$t->set_state('g-m', 'default', 'on', 1);
$t->start_nginx('e');
my @w0 = $t->worker_pids('e');

ok($t->wait_for(sub {
    my $tried = status('e')->{sentinel}{tried} // '';
    $tried =~ /\Q$S1\E \(127\.0\.0\.5:$SPORT\): connect\(\) failed/
        && $tried =~ /\Q$S1\E \(127\.0\.0\.6:$SPORT\): connect\(\) failed/
}, 5), 'status: s1.test tried at both addresses it resolves to, and why')
    or diag(explain(status('e')->{sentinel}));
is(status('e')->{sentinel}{reachable}, JSON::PP::false,
   'status: no sentinel reachable');
like($t->error_log('e'),
     qr/\[notice\].*maintenance: sentinel name s1\.test resolves to 127\.0\.0\.[56]:$SPORT \(one of 2 addresses, each asked\)/,
     'notice: what the sentinel name resolves to');
is(code('e'), 200, 'the default (open) while no master was ever known');
# rounds go on (the answer cached, then asked again): no notice per round
ok($t->wait_for(sub { $t->dns_queries('s1.test') >= 3 }, 3 * $VALID + 6),
   'the name is resolved again for the next rounds');
is(scalar(() = $t->error_log('e') =~ /sentinel name s1\.test (?:now )?resolves/g),
   1, 'the same answer (in any order) is logged once');

my $q0 = $t->dns_queries('s1.test');
$t->dns_set('s1.test', '127.0.0.1');
my $t0 = time;
ok($t->wait_for(sub { redis_up('e') && code('e') == 503 }, $VALID + 8),
   'the A record moved to a live sentinel: the edge finds the master and '
   . 'serves its state');
my $dt = time - $t0;
diag(sprintf('dead sentinel address to master found: %.2f s (valid=%ds, '
             . 'link backoff up to 5 s)', $dt, $VALID));
cmp_ok($t->dns_queries('s1.test'), '>', $q0, 'the name was resolved again');
is(status('e')->{sentinel}{master}, '127.0.0.1:' . $t->port('g-m'),
   'status: the master named through s1.test');
is(status('e')->{sentinel}{in_use}, $S1, 'status: the sentinel in use');
like($t->error_log('e'),
     qr/\[notice\].*sentinel name s1\.test now resolves to 127\.0\.0\.1:$SPORT, was 127\.0\.0\.[56]:$SPORT\n/,
     'notice: the address changed');
ok($t->wait_for(sub {
    $t->error_log('e') =~ /sentinel subscriber to \Q$S1\E up/ }, 5),
   'the +switch-master subscription on s1.test, resolved too');
is_deeply([$t->worker_pids('e')], \@w0, 'no reload, no respawn');
$t->set_state('g-m', 'default', 'off', 2);
ok($t->wait_for(sub { code('e') == 200 }, 2), 'the edge follows the state');

# --- 2. the DNS server silent: the next sentinel, the event loop free -----

$t->set_state('g-m', 'default', 'on', 3);
ok($t->wait_for(sub { code('e') == 503 }, 2), 'in maintenance');

kill 'STOP', $t->dns_pid;
sleep($VALID + 1.2);                  # the cached answer expires (the
                                      # resolver counts whole seconds)
my $off = length($t->error_log('e'));
my $b0 = $t->dns_backlog;
kick();                               # the discovery asks s1.test first:
                                      # the one that answered last
ok($t->wait_for(sub { $t->dns_backlog > $b0 }, 5),
   'the discovery asks the silent resolver for s1.test');
my ($slow, $bad) = (0, 0);
for (1 .. 10) {
    my $s = time;
    my $r = $t->http($t->port('e_http'), '/');
    my $d = time - $s;
    $slow = $d if $d > $slow;
    $bad++ if $r->{status} != 503;
}
diag(sprintf('requests while the resolver is silent: slowest %.1f ms',
             $slow * 1000));
cmp_ok($slow, '<', 0.2, 'each request answered at once (< 200 ms) while '
       . 'the resolution is in flight');
is($bad, 0, 'and in maintenance, the last state');
ok($t->wait_for(sub {
    log_since('e', $off, qr/could not be resolved/) }, $TIMEOUT + 2),
   'the resolver timeout is s1.test failing, logged');
like(substr($t->error_log('e'), $off),
     qr/\[error\].*maintenance: sentinel \Q$S1\E: s1\.test could not be resolved \(110: Operation timed out\); asking the next sentinel/,
     'the log names the sentinel, the name and the resolver error');
ok($t->wait_for(sub { redis_up('e') }, 5),
   'the next sentinel (learned from s1.test) names the master: links up');
isnt(status('e')->{sentinel}{in_use}, $S1, 'status: another sentinel in use');

# the learned sentinels gone too: every round fails, s1.test among them
# (its address is not learned: that sentinel is asked by name only)
$t->stop_redis($_) for qw(g-s2 g-s3);
kick();
ok($t->wait_for(sub {
    my $st = status('e')->{sentinel};
    !$st->{reachable}
        && ($st->{tried} // '') =~ /\Q$S1\E: s1\.test could not be resolved \(110: Operation timed out\)/
        && $st->{tried} =~ /127\.0\.0\.1:\d+: /
}, 10), 'status: no sentinel reachable, tried lists s1.test and why')
    or diag(explain(status('e')->{sentinel}));
my $n0 = $t->dns_backlog;
# an observation window: several rounds ask the silent resolver
ok($t->wait_for(sub { $t->dns_backlog > $n0 }, 8),
   'the rounds go on asking the resolver');
($slow, $bad) = (0, 0);
for (1 .. 10) {
    my $s = time;
    my $r = $t->http($t->port('e_http'), '/');
    my $d = time - $s;
    $slow = $d if $d > $slow;
    $bad++ if $r->{status} != 503;
}
cmp_ok($slow, '<', 0.2, 'requests answered at once with every sentinel '
       . sprintf('failing (slowest %.1f ms)', $slow * 1000));
is($bad, 0, 'the state is kept under the failure policy (last)');
is(log_since('e', $off, qr/sentinel \Q$S1\E: s1\.test could not be resolved/),
   1, 's1.test\'s resolver failure is logged once (the round\'s failure '
   . 'once too)');
is(log_since('e', $off, qr/no sentinel names the master/), 1,
   'every sentinel failing is logged once');
kill 'CONT', $t->dns_pid;
ok($t->wait_for(sub { redis_up('e') }, $VALID + 8),
   'the resolver answers again: s1.test names the master, links up');
is(status('e')->{sentinel}{in_use}, $S1, 'status: s1.test in use');
like(substr($t->error_log('e'), $off),
     qr/\[notice\].*sentinel name s1\.test resolves to 127\.0\.0\.1:$SPORT/,
     'notice: the name resolves again');

# --- 3. a reload while a resolution is in flight --------------------------

kill 'STOP', $t->dns_pid;
sleep($VALID + 1.2);
$b0 = $t->dns_backlog;
kick();
ok($t->wait_for(sub { $t->dns_backlog > $b0 }, 5),
   'reload: a resolution in flight');
my %old = map { $_ => 1 } $t->worker_pids('e');
$t->reload_nginx('e');
ok(!grep({ $old{$_} } $t->worker_pids('e')),
   'reload: the old workers exited while their resolution was pending');
kill 'CONT', $t->dns_pid;
$t->set_state('g-m', 'default', 'off', 4);
ok($t->wait_for(sub { redis_up('e') && code('e') == 200 }, 8),
   'reload: the new worker 0 finds the master and syncs');

$t->stop_nginx('e');
$t->check_logs('e');

# --- under valgrind: a resolution cancelled at exit -----------------------

SKIP: {
    skip 'valgrind not installed', 6
        unless grep { -x "$_/valgrind" } split /:/, $ENV{PATH};

    my $dir = $t->nginx_dir('vg');
    $t->nginx_conf('vg', <<"CONF");
load_module %%MODULE%%;
master_process off;
daemon off;
pid %%DIR%%/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    $RES
    maintenance_redis_sentinel $NAME $S1 timeout=${TIMEOUT}s;
    maintenance_poll @{[ $POLL * 1000 ]}ms;
    maintenance on;

    server {
        listen 127.0.0.1:%%PORT_vg_st%%;
        maintenance off;
        location /status { maintenance_status; }
    }
}
CONF
    my $vglog = "$dir/valgrind.log";
    my $pid = $t->start_nginx_valgrind($dir);
    my $vg_up = sub {
        ($t->http($t->port('vg_st'), '/status', timeout => 10)->{body} // '')
            =~ /"redis":\{[^}]*"up":true/ ? 1 : 0;
    };
    ok($t->wait_for($vg_up, 30), 'valgrind: s1.test resolved, synced');

    # a resolver timeout, then a resolution pending at exit
    kill 'STOP', $t->dns_pid;
    sleep($VALID + 1.2);
    kick();
    ok($t->wait_for(sub {
        $t->error_log('vg') =~ /could not be resolved/ }, 15),
       'valgrind: a resolver timeout');
    kill 'CONT', $t->dns_pid;
    ok($t->wait_for($vg_up, 20), 'valgrind: resolved again, synced');
    kill 'STOP', $t->dns_pid;
    sleep($VALID + 1.2);
    $b0 = $t->dns_backlog;
    kick();
    $t->wait_for(sub { $t->dns_backlog > $b0 }, 10);
    my ($w, $st) = $t->quit_nginx_valgrind($pid, 30);
    kill 'CONT', $t->dns_pid;
    is($w, $pid, 'valgrind: graceful exit with a resolution in flight');
    my $vg = $t->read_file($vglog) // '';
    is($vg, '', 'valgrind reports nothing') or diag($vg);
    is($st >> 8, 0, 'valgrind: exit code 0');
    $t->check_logs('vg');
}

# --- 4. without "resolver": once, at load ---------------------------------

conf('plain', "localhost:$SPORT", '');
($rc, $out) = $t->nginx_test('plain');
is($rc, 0, 'nginx -t: a sentinel name without resolver') or diag($out);
like($t->error_log('plain'),
     qr/\[notice\].*maintenance: sentinel "localhost" is resolved once, at load, to 127\.0\.0\.1:$SPORT.*will not follow DNS changes without "resolver"/,
     'nginx -t says it is resolved once, at load');
$t->start_nginx('plain');
ok($t->wait_for(sub { redis_up('plain') && code('plain') == 200 }, 5),
   'the edge finds the master through it');
$t->stop_nginx('plain');
$t->check_logs('plain');

conf('bad', 'nothere.invalid:26379', '');
($rc, $out) = $t->nginx_test('bad');
isnt($rc, 0, 'nginx -t: an unknown sentinel name without resolver fails');
like($out, qr{\[emerg\].*maintenance: host not found in "nothere\.invalid:26379" in \S+/bad/nginx\.conf:7\b},
     'the message names the address and the directive\'s line')
    or diag($out);

# --- 5. the sentinel set moves by DNS -------------------------------------

my $ga = $t->start_sentinels('a', master => $NAME, ip => '127.0.0.2');
my $gb = $t->start_sentinels('b', master => $NAME, ip => '127.0.0.3',
                             ports => [ map { $t->port("a-s$_") } 1 .. 3 ]);
my $PA = $t->port('a-s1');
$t->dns_set('s.test', '127.0.0.2');
$t->set_state('a-m', 'default', 'on', 1);
$t->set_state('b-m', 'default', 'on', 5);
conf('f', "s.test:$PA", $RES);
$t->start_nginx('f');
my @wf = $t->worker_pids('f');
ok($t->wait_for(sub {
    my $st = status('f');
    ($st->{sentinel}{master} // '') eq '127.0.0.1:' . $t->port('a-m')
        && ($st->{scopes}{default}{epoch} // 0) == 1
        && code('f') == 503
}, 5), '5: s.test names group a: the edge is on a\'s master')
    or diag(explain(status('f')));

$t->dns_set('s.test', '127.0.0.3');
$t->kill_redis($_, 'KILL') for qw(a-s1 a-s2 a-s3 a-m a-r);
$t0 = time;
ok($t->wait_for(sub {
    my $st = status('f');
    ($st->{sentinel}{master} // '') eq '127.0.0.1:' . $t->port('b-m')
        && $st->{redis}{up}
        && ($st->{scopes}{default}{epoch} // 0) == 5
}, $VALID + 12), '5: group a gone, s.test moved to group b: the edge '
   . 'follows to b\'s master and reads its state')
    or diag(explain(status('f')));
diag(sprintf('5: sentinel set moved by DNS: %.2f s from the kill to synced '
             . 'on the new master', time - $t0));
is(code('f'), 503, '5: served from b\'s master');
like($t->error_log('f'),
     qr/\[notice\].*sentinel name s\.test now resolves to 127\.0\.0\.3:$PA, was 127\.0\.0\.2:$PA/,
     '5: notice: the name moved');
ok($t->wait_for(sub {
    $t->error_log('f')
        =~ /sentinel subscriber to (?:s\.test:$PA|127\.0\.0\.3:\d+) up again/
}, 12), '5: the subscription is on group b again (by name, or a sentinel '
   . 'learned from it)');
$t->set_state('b-m', 'default', 'off', 6);
ok($t->wait_for(sub { code('f') == 200 }, 2), '5: a change on b reaches the edge');
is_deeply([$t->worker_pids('f')], \@wf, '5: no reload, no respawn');
$t->stop_nginx('f');
$t->check_logs('f');

done_testing;
