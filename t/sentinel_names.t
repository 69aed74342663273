# sentinel_names.t: a sentinel that names the master by host name (Redis
# Sentinel's "resolve-hostnames yes" / "announce-hostnames yes"), here a
# fake sentinel (t/fake_redis.pl) in front of a real redis-server.
#  1. migctl resolves the name (it may block): localhost works; a name
#     that does not resolve is one line naming the sentinel, the name and
#     the settings, exit 3, and the JSON error object with --json;
#  2. the edge without "resolver": one line naming the sentinel, the name
#     and what to do (error log, status "tried"), the state kept;
#  3. the edge with "resolver" (the harness's DNS server): the name is
#     resolved on the event loop, the master found, confirmed with ROLE;
#     the master moves to another name: the edge follows;
#  4. a real redis-sentinel with resolve-hostnames and announce-hostnames
#     yes: the edge and migctl find the master by name, and follow a
#     failover (+switch-master naming a host);
#  5. nginx under valgrind: a master found by name, a graceful exit while
#     the next name is being resolved.
use strict;
use warnings;
use Test::More;
use JSON::PP;
use POSIX ();
use lib 't/lib';
use MigTest;

eval { require Net::DNS::Nameserver; require Net::DNS::Resolver; 1 }
    or plan(skip_all => 'Net::DNS (libnet-dns-perl) is not installed');

my $t = MigTest->new;
my $NAME = 'mymaster';

my $rport = $t->start_redis('r');
$t->redis('r', 'HSET', 'migctl:state:default', 'mode', 'on', 'epoch', '1');
my $fs = $t->start_fake_sentinel('fs', $NAME, 'localhost', $rport);
my $via = "127.0.0.1:$fs";

# --- 1. migctl -------------------------------------------------------------

my $mconf = $t->write_file('migctl.conf', <<"EOF");
redis = { sentinel = { master = "$NAME"; nodes = ( "$via" ); };
          timeout_ms = 1000; };
EOF
my %menv = (MIGCTL_CONFIG => $mconf, MIGCTL_ACTOR => 'names');
sub mig { $t->migctl({ env => \%menv, timeout => 30 }, @_) }

my $r = mig('--json', 'maintenance', 'status');
is($r->{rc}, 0, '1: migctl, the master named "localhost": status works')
    or diag($r->{err});
my $j = eval { decode_json($r->{out}) } // {};
like(JSON::PP->new->canonical->encode($j), qr/localhost:$rport/,
     '1: ... read from localhost:PORT') or diag($r->{out});

$t->redis('fs', 'FAKE', 'SENTINEL', $NAME, 'nohost.invalid', $rport);
$r = mig('maintenance', 'status');
is($r->{rc}, 3, '1: a name that does not resolve: exit 3');
like($r->{err}, qr/\Amigctl: maintenance: [^\n]*\Q$via\E[^\n]*nohost\.invalid[^\n]*resolve-hostnames[^\n]*\n\z/,
     '1: ... one line: the sentinel, the name, the setting')
    or diag($r->{err});
$r = mig('--json', 'maintenance', 'status');
$j = eval { decode_json($r->{out}) } // {};
ok(!$j->{ok} && ($j->{exit} // 0) == 3
   && ($j->{error} // '') =~ /nohost\.invalid/,
   '1: ... --json: the JSON error object') or diag($r->{out});

# --- 2. the edge without resolver ----------------------------------------

$t->redis('fs', 'FAKE', 'SENTINEL', $NAME, 'm.test', $rport);

sub edge_conf {
    my ($n, $resolver) = @_;
    return <<"EOF";
load_module %%MODULE%%;
worker_processes 1;
events { worker_connections 64; }
http {
    access_log off;
    $resolver
    maintenance_redis_sentinel $NAME $via timeout=500ms;
    maintenance_poll 200ms;
    maintenance_node_id $n;
    maintenance on;

    server {
        listen 127.0.0.1:%%PORT_$n%%;
        location / { return 200 "app\\n"; }
        location /status { maintenance off; maintenance_status; }
    }
}
EOF
}

sub status {
    my ($n) = @_;
    my $r = $t->http($t->port($n), '/status');
    return eval { decode_json($r->{body}) } // {};
}

$t->nginx_conf('e1', edge_conf('e1', ''));
$t->start_nginx('e1');

my $tried = '';
ok($t->wait_for(sub {
       $tried = status('e1')->{sentinel}{tried} // '';
       $tried =~ /m\.test/
   }, 10), '2: the edge without resolver: status says why')
    or diag(explain(status('e1')));
like($tried, qr/\Q$via\E: master "m\.test" is a host name[^,]*resolver[^,]*resolve-hostnames/,
     '2: ... the sentinel, the name, "resolver" and the setting')
    or diag($tried);
like($t->error_log('e1'),
     qr/no sentinel names the master of "$NAME" \(\Q$via\E: master "m\.test" is a host name/,
     '2: ... logged in one line');
is($t->http($t->port('e1'), '/')->{status}, 200,
   '2: ... the edge serves its state (never seen: open)');
$t->check_logs('e1');
$t->stop_nginx('e1');

# --- 3. the edge with resolver ---------------------------------------------

$t->dns_set('m.test', '127.0.0.1');
my $dns = $t->start_dns;

$t->nginx_conf('e2', edge_conf('e2',
    "resolver 127.0.0.1:$dns valid=1s ipv6=off; resolver_timeout 1s;"));
$t->start_nginx('e2');

ok($t->wait_for(sub {
       my $s = status('e2');
       ($s->{sentinel}{master} // '') eq "127.0.0.1:$rport" && $s->{redis}{up}
   }, 10), '3: with resolver: the name resolved, the master in use')
    or diag(explain(status('e2')));
is($t->http($t->port('e2'), '/')->{status}, 503,
   '3: ... its state read: maintenance on');
like($t->error_log('e2'), qr/master "m\.test" resolves to 127\.0\.0\.1:$rport/,
     '3: ... the name and its address logged');

# the master moves to another name: the old one gone, the edge asks again
my $r2port = $t->start_redis('r2');
$t->redis('r2', 'HSET', 'migctl:state:default', 'mode', 'off', 'epoch',
          '2');
$t->dns_set('m2.test', '127.0.0.1');
$t->redis('fs', 'FAKE', 'SENTINEL', $NAME, 'm2.test', $r2port);
$t->stop_redis('r');

ok($t->wait_for(sub {
       my $s = status('e2');
       ($s->{sentinel}{master} // '') eq "127.0.0.1:$r2port"
       && $s->{redis}{up}
   }, 15), '3: the master moved to another name: the edge follows')
    or diag(explain(status('e2')));
ok($t->wait_for(sub {
       ($t->http($t->port('e2'), '/')->{status} // 0) == 200
   }, 5), '3: ... and serves its state: maintenance off');

$t->check_logs('e2');
$t->stop_nginx('e2');

# --- 4. a real sentinel with resolve-hostnames and announce-hostnames -----

SKIP: {
skip 'redis-sentinel not installed', 8 unless -x '/usr/bin/redis-sentinel';

# "localhost" is the only name the sentinel (the system's resolver) and
# nginx (the harness's DNS server) both resolve; ::1 bound too, in case
my @bind = (args => [ '--bind', '127.0.0.1 -::1' ]);
my $mp = $t->start_redis('hm', @bind);
my $rp = $t->start_redis('hr', args => [ '--bind', '127.0.0.1 -::1',
                                         '--replicaof', '127.0.0.1', $mp,
                                         '--replica-announce-ip',
                                         'localhost' ]);
my $sdir = $t->dir . '/hs';
my $sp = $t->port('hs');
$t->write_file("$sdir/sentinel.conf", <<"EOF2");
port $sp
bind 127.0.0.1
protected-mode no
daemonize no
dir $sdir
logfile $sdir/redis.log
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel monitor $NAME localhost $mp 1
sentinel down-after-milliseconds $NAME 3000
sentinel failover-timeout $NAME 3000
EOF2
$t->start_redis('hs', sentinel => "$sdir/sentinel.conf");
ok($t->wait_for(sub {
       my $r = eval { $t->redis('hs', 'SENTINEL', 'master', $NAME) };
       return 0 unless ref $r eq 'ARRAY';
       my %h = @$r;
       ($h{'num-slaves'} // 0) >= 1
       && (eval { $t->redis('hr', 'INFO', 'replication') } // '')
          =~ /master_link_status:up/;
   }, 30), '4: a sentinel announcing host names, a master and a replica');
my $ga = $t->redis('hs', 'SENTINEL', 'get-master-addr-by-name', $NAME);
is("@$ga", "localhost $mp", '4: the sentinel names the master "localhost"');

$t->dns_set('localhost', '127.0.0.1');
$t->nginx_conf('e3', edge_conf('e3',
    "resolver 127.0.0.1:$dns valid=1s ipv6=off; resolver_timeout 1s;")
    =~ s/\Q$via\E/127.0.0.1:$sp/r);
$t->start_nginx('e3');

sub on_port {
    my ($p) = @_;
    my $s = status('e3');
    ($s->{sentinel}{master} // '') eq "127.0.0.1:$p" && $s->{redis}{up};
}

ok($t->wait_for(sub { on_port($mp) }, 10),
   '4: the edge on the master through its name')
    or diag(explain(status('e3')));

$t->redis('hs', 'SENTINEL', 'FAILOVER', $NAME);
ok($t->wait_for(sub {
       my $r = eval { $t->redis('hs', 'SENTINEL', 'get-master-addr-by-name',
                                $NAME) };
       ref $r eq 'ARRAY' && $r->[1] == $rp
   }, 30), '4: SENTINEL FAILOVER: the replica promoted');
ok($t->wait_for(sub { on_port($rp) }, 10),
   '4: the edge follows, the new master by name')
    or diag(explain(status('e3')));
like($t->error_log('e3'),
     qr/\+switch-master to host name "localhost"; asking the sentinels/,
     '4: ... through +switch-master');

my $hconf = $t->write_file('hnames.conf', <<"EOF2");
redis = { sentinel = { master = "$NAME"; nodes = ( "127.0.0.1:$sp" ); };
          timeout_ms = 1000; };
EOF2
my $hr = $t->migctl({ env => { MIGCTL_CONFIG => $hconf }, timeout => 30 },
                    '--json', 'maintenance', 'status');
is($hr->{rc}, 0, '4: migctl through the same sentinel') or diag($hr->{err});
like($hr->{out}, qr/localhost:$rp/, '4: ... reads the new master by name')
    or diag($hr->{out});

$t->check_logs('e3');
}

# --- 5. under valgrind: a name resolved, then a graceful exit while one is
#     in flight (the DNS server stopped) ----------------------------------

SKIP: {
skip 'valgrind not installed', 5
    unless grep { -x "$_/valgrind" } split /:/, $ENV{PATH};

$t->redis('fs', 'FAKE', 'SENTINEL', $NAME, 'm2.test', $r2port);
my $vdir = $t->nginx_dir('v');
$t->nginx_conf('v', <<"CONF");
load_module %%MODULE%%;
master_process off;
daemon off;
pid %%DIR%%/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    resolver 127.0.0.1:$dns valid=1s ipv6=off;
    resolver_timeout 5s;
    maintenance_redis_sentinel $NAME $via timeout=10s;
    maintenance_poll 200ms;
    maintenance on;

    server {
        listen 127.0.0.1:%%PORT_v%%;
        location /status { maintenance off; maintenance_status; }
    }
}
CONF
my $vpid = $t->start_nginx_valgrind($vdir);

sub vstatus {
    my $b = $t->http($t->port('v'), '/status', timeout => 10)->{body};
    return eval { decode_json($b) } // {};
}

ok($t->wait_for(sub {
       (vstatus()->{sentinel}{master} // '') eq "127.0.0.1:$r2port"
   }, 60), '5: under valgrind: the master found by name');

# the next name cannot be answered: the discovery waits on the resolver
$t->dns_set('m5.test', '127.0.0.1');
$t->redis('fs', 'FAKE', 'SENTINEL', $NAME, 'm5.test', $r2port);
kill 'STOP', $t->dns_pid;
$t->redis('r2', 'CLIENT', 'KILL', 'TYPE', 'normal');
ok($t->wait_for(sub { $t->dns_backlog > 0 }, 20),
   '5: ... a resolution of the master\'s name in flight');

my ($w) = $t->quit_nginx_valgrind($vpid, 30);
is($w, $vpid, '5: graceful exit meanwhile');
kill 'CONT', $t->dns_pid;
is($t->read_file("$vdir/valgrind.log") // '', '',
   '5: valgrind reports nothing');
$t->check_logs('v');
}

done_testing();
