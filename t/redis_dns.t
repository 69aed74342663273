# redis_dns.t: "maintenance_redis NAME:PORT" with nginx's "resolver": the
# name is resolved again on each reconnect of worker 0's links, without
# blocking the event loop.  The harness's DNS server on loopback
# (Net::DNS::Nameserver) answers the A records the test sets; two
# redis-servers listen on 127.0.0.2 and 127.0.0.3, same port.  The edge follows the name from
# one to the other without a reload; a silent or dead resolver is a link
# failure (logged once, the failure policy rules) while requests are still
# answered at once.  Two A records, the first dead: tried in turn.  A
# reload and a graceful exit (valgrind) while a resolution is in flight.
# Without "resolver" the name is resolved at load, with a notice.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use IO::Socket::INET;
use POSIX ();
use lib 't/lib';
use MigTest;

eval { require Net::DNS::Nameserver; require Net::DNS::Resolver; 1 }
    or plan(skip_all => 'Net::DNS (libnet-dns-perl) is not installed');

my $t = MigTest->new;
my $POLL = 0.5;           # maintenance_poll
my $VALID = 1;            # resolver valid=
my $TIMEOUT = 2;          # maintenance_redis timeout= (bounds a resolution)
my $RPORT = $t->port('redis_dns');     # both redis-servers listen on it

# --- two redis-servers on one port, 127.0.0.2 and 127.0.0.3 --------------

sub start_redis_at {
    my ($name, $ip) = @_;
    my $dir = $t->dir . "/$name";
    mkdir $dir;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$dir/redis.out";
        open STDERR, '>&', \*STDOUT;
        exec 'redis-server', '--port', $RPORT, '--bind', $ip, '--dir', $dir,
             '--appendonly', 'no', '--save', '', '--daemonize', 'no',
             '--logfile', "$dir/redis.log", '--protected-mode', 'no'
            or POSIX::_exit(127);
    }
    # the harness stops it at exit, by PID, also on failure
    $t->{redis}{$name} = { pid => $pid, port => $RPORT, dir => $dir,
                           ip => $ip };
    $t->wait_for(sub {
        die "redis-server $name exited\n" unless MigTest::pid_alive($pid);
        (eval { rcmd($ip, 'PING') } // '') eq 'PONG';
    }, 10) or die "redis $name did not start on $ip:$RPORT: "
                  . ($t->read_file("$dir/redis.log") // '');
}

sub rcmd {
    my ($ip, @cmd) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => $ip, PeerPort => $RPORT,
                                  Proto => 'tcp', Timeout => 5)
        or die "redis $ip: connect: $!\n";
    MigTest::_io_timeout($s, 5);
    my $req = '*' . scalar(@cmd) . "\r\n";
    $req .= '$' . length($_) . "\r\n$_\r\n" for @cmd;
    print $s $req;
    my $r = MigTest::_resp_read($s);
    close $s;
    die "redis $ip: $$r\n" if ref $r eq 'MigTest::RedisError';
    return $r;
}

sub set_state {
    my ($ip, $mode, $epoch) = @_;
    rcmd($ip, 'HSET', 'migctl:state:default', mode => $mode,
         epoch => $epoch);
    rcmd($ip, 'PUBLISH', 'migctl:events', "default $epoch");
}

# drops every connection the edge has to this Redis: the links reconnect
sub kick {
    my ($ip) = @_;
    rcmd($ip, 'CLIENT', 'KILL', 'TYPE', $_) for qw(normal pubsub);
}

# --- the DNS server (the harness's): redis.test ---------------------------

sub dns_queries { $t->dns_queries('redis.test') }
sub dns_backlog { $t->dns_backlog }

# --- the edge -------------------------------------------------------------

sub conf {
    my ($name, $redis, $resolver) = @_;
    $t->nginx_conf($name, <<"CONF");
load_module %%MODULE%%;
worker_processes 2;
events { worker_connections 64; }
http {
    access_log off;
    $resolver
    maintenance_redis $redis timeout=${TIMEOUT}s;
    maintenance_poll @{[ $POLL * 1000 ]}ms;
    maintenance_node_id $name;
    maintenance on;

    server {
        listen 127.0.0.1:%%PORT_${name}_http%%;
        location / { return 200 "app\\n"; }
    }

    server {
        listen 127.0.0.1:%%PORT_${name}_st%%;
        maintenance off;
        location /status { maintenance_status; }
    }
}
CONF
}

sub code { $t->http($t->port("$_[0]_http"), '/')->{status} }
sub status { $t->http($t->port("$_[0]_st"), '/status')->{body} // '' }
sub redis_up { status($_[0]) =~ /"redis":\{[^}]*"up":true/ ? 1 : 0 }
sub counter { status($_[0]) =~ /"$_[1]":(\d+)/ ? $1 : -1 }
sub log_since {
    my ($name, $off, $re) = @_;
    my $log = substr($t->error_log($name), $off);
    return scalar(grep { /$re/ } split /\n/, $log);
}

$t->dns_set('redis.test', '127.0.0.2');
$t->start_dns;
start_redis_at('a', '127.0.0.2');
start_redis_at('b', '127.0.0.3');

conf('dns', "redis.test:$RPORT",
     "resolver 127.0.0.1:%%PORT_dns%% valid=${VALID}s;");

# "redis.test" exists only in our DNS server: resolved at load (getaddrinfo
# through the system's resolver), it would fail "host not found"
my ($rc, $out) = $t->nginx_test('dns');
is($rc, 0, 'nginx -t: a name only the configured resolver knows is '
   . 'accepted') or diag($out);

$t->start_nginx('dns');
my @w0 = $t->worker_pids('dns');
ok($t->wait_for(sub { redis_up('dns') }, 5),
   'the links resolve redis.test and come up on 127.0.0.2');
cmp_ok(dns_queries(), '>=', 1, 'worker 0 asked the DNS server');
set_state('127.0.0.2', 'on', 1);
ok($t->wait_for(sub { code('dns') == 503 }, $POLL + 1),
   'the edge follows the state on the first Redis');
like($t->error_log('dns'),
     qr/\[notice\].*maintenance: redis name redis\.test resolves to 127\.0\.0\.2:$RPORT/,
     'notice: what the name resolves to');
unlike($t->error_log('dns'), qr/will not follow DNS changes/,
       'no "without resolver" notice when a resolver is configured');

# --- the name moves: DNS-based failover, no reload -------------------------

set_state('127.0.0.3', 'on', 5);
$t->dns_set('redis.test', '127.0.0.3');
my $q0 = dns_queries();
$t->kill_redis('a', 'KILL');
my $t0 = time;
my $moved = $t->wait_for(sub {
    redis_up('dns') && status('dns') =~ /"epoch":5\b/ }, 5);
my $dt = time - $t0;
ok($moved, 'first Redis killed, the A record changed: the edge reconnects '
   . 'to the second and reads its state');
diag(sprintf('failover by DNS: %.2f s from SIGKILL to synced on the second '
             . 'Redis (valid=%ds, poll %.1fs)', $dt, $VALID, $POLL));
cmp_ok($dt, '<=', $VALID + 2 * $POLL + 2,
       'within valid + two polls + 2 s');
cmp_ok(dns_queries(), '>', $q0, 'the name was resolved again');
set_state('127.0.0.3', 'off', 6);
ok($t->wait_for(sub { code('dns') == 200 }, $POLL + 1),
   'a change written on the second Redis reaches the edge');
like($t->error_log('dns'),
     qr/\[notice\].*redis name redis\.test now resolves to 127\.0\.0\.3:$RPORT, was 127\.0\.0\.2:$RPORT/,
     'notice: the address changed');
is_deeply([$t->worker_pids('dns')], \@w0,
          'no reload, no respawn: the same workers');
ok($t->wait_for(sub { rcmd('127.0.0.3', 'CLIENT', 'LIST') =~ tr/\n// >= 3 },
               5), 'the second Redis sees the edge\'s two links');

# --- a silent resolver: the event loop is not blocked ---------------------

set_state('127.0.0.3', 'on', 7);
ok($t->wait_for(sub { code('dns') == 503 }, $POLL + 1), 'in maintenance');
kill 'STOP', $t->dns_pid;
sleep($VALID + 1.2);                  # the cached answer expires (the
                                      # resolver counts whole seconds)
my $off = length($t->error_log('dns'));
kick('127.0.0.3');
ok($t->wait_for(sub { dns_backlog() > 0 }, 5),
   'the links reconnect and ask the silent resolver (queries queue unread)');
my ($slow, $bad) = (0, 0);
for (1 .. 10) {
    my $s = time;
    my $r = $t->http($t->port('dns_http'), '/');
    my $d = time - $s;
    $slow = $d if $d > $slow;
    $bad++ if $r->{status} != 503;
}
diag(sprintf('requests while the resolver is silent: slowest %.1f ms',
             $slow * 1000));
cmp_ok($slow, '<', 0.2, 'each request answered at once (< 200 ms) while a '
       . 'resolution is in flight');
is($bad, 0, 'and in maintenance, the last state');
ok($t->wait_for(sub {
    log_since('dns', $off, qr/could not be resolved/) }, $TIMEOUT + 2),
   'the resolver timeout is a link failure, logged');
like(substr($t->error_log('dns'), $off),
     qr/\[error\].*maintenance: redis \w+ link to redis\.test:$RPORT.*redis\.test could not be resolved \(110: Operation timed out\)/,
     'the log names the name and the resolver error');
is(redis_up('dns'), 0, 'status: Redis down while the name does not resolve');
is(code('dns'), 503, 'the failure policy (last) keeps the state');
kill 'CONT', $t->dns_pid;
ok($t->wait_for(sub { redis_up('dns') }, $TIMEOUT + $POLL + 3),
   'the resolver answers again: the links come back');

# --- the DNS server down: logged once per link, the policy rules ----------

$t->stop_dns;
sleep($VALID + 1.2);
$off = length($t->error_log('dns'));
my $r0 = counter('dns', 'reconnects');
kick('127.0.0.3');
ok($t->wait_for(sub { !redis_up('dns') }, 3), 'the links are down');
# an observation window: several attempts fail in it
sleep(3 * $TIMEOUT);
my $r1 = counter('dns', 'reconnects');
cmp_ok($r1 - $r0, '>=', 4, 'the links went on retrying ('
       . ($r1 - $r0) . ' reconnects)');
my $n = log_since('dns', $off, qr/could not be resolved/);
ok($n >= 1 && $n <= 2, "the resolver failure is logged once per link ($n)");
is(code('dns'), 503, 'the state is kept under the failure policy');
set_state('127.0.0.3', 'off', 8);
is(code('dns'), 503, 'a change the edge cannot reach is not served');

$t->start_dns;
ok($t->wait_for(sub { code('dns') == 200 }, 5 + $POLL + 2),
   'the DNS server is back: the edge reconnects and follows the change');

# two A records, the first one dead: the links try the addresses in turn
$t->dns_set('redis.test', '127.0.0.2', '127.0.0.3');
sleep($VALID + 1.2);
$off = length($t->error_log('dns'));
kick('127.0.0.3');
ok($t->wait_for(sub {
    log_since('dns', $off, qr/now resolves to 127\.0\.0\.2:$RPORT/) }, 5),
   'two addresses: the links try 127.0.0.2 (dead)');
ok($t->wait_for(sub {
    redis_up('dns')
    && rcmd('127.0.0.3', 'CLIENT', 'LIST') =~ tr/\n// >= 3 },
                $VALID + 2 * $POLL + 3),
   'and then 127.0.0.3: both links up there');
like(substr($t->error_log('dns'), $off),
     qr/now resolves to 127\.0\.0\.2:$RPORT.*\n(?:.*\n)*.*now resolves to 127\.0\.0\.3:$RPORT, was 127\.0\.0\.2:$RPORT \(one of 2 addresses, tried in turn\)/,
     'each move is logged at notice');
$t->dns_set('redis.test', '127.0.0.3');

# a reload while worker 0 waits on the silent resolver: the old worker 0
# lets go of its resolution (cancelled, no callback after) and exits
kill 'STOP', $t->dns_pid;
sleep($VALID + 1.2);
my $b0 = dns_backlog();
kick('127.0.0.3');
ok($t->wait_for(sub { dns_backlog() > $b0 }, 5), 'a resolution in flight');
my %old = map { $_ => 1 } $t->worker_pids('dns');
$t->reload_nginx('dns');
ok(!grep({ $old{$_} } $t->worker_pids('dns')),
   'reload: the old workers exited while their resolution was pending');
kill 'CONT', $t->dns_pid;
ok($t->wait_for(sub { redis_up('dns') && code('dns') == 200 },
                $TIMEOUT + $POLL + 3),
   'reload: the new worker 0 resolves the name and syncs');

$t->stop_nginx('dns');
$t->check_logs('dns');

# --- under valgrind: answers, timeouts, a resolution cancelled at exit -----

SKIP: {
    skip 'valgrind not installed', 9
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
    resolver 127.0.0.1:%%PORT_dns%% valid=${VALID}s;
    maintenance_redis redis.test:$RPORT timeout=${TIMEOUT}s;
    maintenance_poll @{[ $POLL * 1000 ]}ms;
    maintenance on;

    server {
        listen 127.0.0.1:%%PORT_vg_http%%;
        location / { return 200 "app\\n"; }
    }

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

    ok($t->wait_port($t->port('vg_st'), 60), 'valgrind: nginx listens');
    ok($t->wait_for($vg_up, 20), 'valgrind: resolved and synced');

    kill 'STOP', $t->dns_pid;
    sleep($VALID + 1.2);
    kick('127.0.0.3');
    ok($t->wait_for(sub {
        $t->error_log('vg') =~ /could not be resolved/ }, $TIMEOUT + 10),
       'valgrind: a resolver timeout');
    kill 'CONT', $t->dns_pid;
    ok($t->wait_for($vg_up, 20), 'valgrind: the answer comes, synced again');

    # exit with a resolution in flight: cancelled, no callback after free
    kill 'STOP', $t->dns_pid;
    sleep($VALID + 1.2);
    my $b0 = dns_backlog();
    kick('127.0.0.3');
    $t->wait_for(sub { dns_backlog() > $b0 }, 10);
    my ($w, $st) = $t->quit_nginx_valgrind($pid, 30);
    kill 'CONT', $t->dns_pid;
    is($w, $pid, 'valgrind: graceful exit with a resolution in flight');
    is($st >> 8, 0, 'valgrind: exit code 0');
    my $vg = $t->read_file($vglog) // '';
    is($vg, '', 'valgrind reports nothing') or diag($vg);
    unlike($t->error_log('vg'), qr/could not cancel|open socket .* left/,
           'valgrind: nothing left behind');
    $t->check_logs('vg');
}

# --- a name without "resolver": resolved once, at load, as before ---------

$t->start_redis('c');
conf('plain', 'localhost:%%PORT_c%%', '');
($rc, $out) = $t->nginx_test('plain');
is($rc, 0, 'nginx -t: a name without resolver');
like($t->error_log('plain'),
     qr/\[notice\].*maintenance: "localhost" is resolved once, at load/,
     'nginx -t says so');
$t->start_nginx('plain');
ok($t->wait_for(sub { redis_up('plain') }, 5), 'the link comes up');
$t->set_state('c', 'default', 'on', 1);
ok($t->wait_for(sub { code('plain') == 503 }, $POLL + 1),
   'the edge follows the state');
like($t->error_log('plain'),
     qr/\[notice\].*"localhost" is resolved once, at load.*will not follow DNS changes without "resolver"/,
     'the notice at start');
$t->stop_nginx('plain');
$t->check_logs('plain');

# a name that does not resolve at load, without resolver: refused, at its line
conf('bad', 'nothere.invalid:6379', '');
($rc, $out) = $t->nginx_test('bad');
isnt($rc, 0, 'nginx -t: an unknown name without resolver fails');
like($out, qr{\[emerg\].*maintenance: host not found in "nothere\.invalid:6379" in \S+/bad/nginx\.conf:7\b},
     'the message names the address and the directive\'s line') or diag($out);

done_testing;
