# sentinel_learn.t: the sentinels worker 0 learns (SENTINEL sentinels)
# follow the sentinels' answer: the configured ones are always kept, a
# learned one no longer reported by a sentinel whose master is confirmed is
# dropped at the next discovery, and a full list makes room for a new one.
#  1. Debian's redis-sentinel, three of them, the edge configured with the
#     first only: it learns the two others (status, JSON and Prometheus);
#     the third is killed and SENTINEL RESET on the others: the edge drops
#     it at its next discovery, and a discovery with every sentinel down
#     does not try it (status "tried", the error log);
#  2. a fake sentinel reporting 40 peers: the list is full (1 configured,
#     31 learned); it then reports a new one and not the oldest: the new
#     one is learned, the oldest dropped; an empty list drops nothing;
#  3. nginx under valgrind (one process): the full list, then three listed
#     (28 dropped, one new): nothing reported, a graceful exit.
use strict;
use warnings;
use Test::More;
use JSON::PP;
use POSIX ();
use lib 't/lib';
use MigTest;

plan skip_all => 'redis-sentinel not installed'
    unless -x '/usr/bin/redis-sentinel';

my $t = MigTest->new;
my $NAME = 'mymaster';

sub edge_conf {
    my ($n, $list) = @_;
    return <<"EOF";
load_module %%MODULE%%;
worker_processes 2;
events { worker_connections 128; }
http {
    access_log off;
    maintenance_redis_sentinel $NAME $list timeout=500ms;
    maintenance_poll 200ms;
    maintenance_node_id $n;
    maintenance on;

    server {
        listen 127.0.0.1:%%PORT_$n%%;
        location / { return 200 "app $n\\n"; }
    }

    server {
        listen 127.0.0.1:%%PORT_${n}_st%%;
        maintenance off;
        location /status { maintenance_status; }
    }
}
EOF
}

sub status {
    my ($n) = @_;
    my $r = $t->http($t->port("${n}_st"), '/status', timeout => 10);
    return eval { decode_json($r->{body}) } // {};
}

sub prom {
    my ($n) = @_;
    return $t->http($t->port("${n}_st"), '/status?format=prometheus')
        ->{body} // '';
}

sub learned {
    my $l = status($_[0])->{sentinel}{learned};
    return ref $l eq 'ARRAY' ? join(' ', sort @$l) : '(none)';
}

sub addr { '127.0.0.1:' . $t->port($_[0]) }

# --- 1. real sentinels: one removed ---------------------------------------

my $g = $t->start_sentinels('g', master => $NAME);
my ($s1, $s2, $s3) = map { addr($_) } @{ $g->{sentinels} };

$t->nginx_conf('e1', edge_conf('e1', $s1));
$t->start_nginx('e1');

ok($t->wait_for(sub {
       my $s = status('e1');
       ($s->{sentinel}{master} // '') eq addr('g-m') && $s->{redis}{up}
   }, 10), '1: the edge on g-m through the one sentinel configured')
    or diag(explain(status('e1')));

my $both = join ' ', sort $s2, $s3;
ok($t->wait_for(sub { learned('e1') eq $both }, 10),
   '1: status lists the two others as learned')
    or diag(learned('e1'));
my $p = prom('e1');
like($p, qr/^nginx_maintenance_sentinel_learned\{name="$NAME",addr="\Q$s2\E"\} 1$/m,
     '1: Prometheus: the second one learned');
like($p, qr/^nginx_maintenance_sentinel_learned\{name="$NAME",addr="\Q$s3\E"\} 1$/m,
     '1: Prometheus: the third one learned');
like($p, qr/^nginx_maintenance_sentinels_learned\{name="$NAME"\} 2$/m,
     '1: Prometheus: two learned');

# the third one removed: the others forget it (RESET, then hello messages
# bring back only the live ones)
$t->stop_redis('g-s3');
for my $s (qw(g-s1 g-s2)) {
    $t->redis($s, 'SENTINEL', 'RESET', $NAME);
}

sub peers {
    my ($s) = @_;
    my $r = eval { $t->redis($s, 'SENTINEL', 'sentinels', $NAME) };
    return '(error)' unless ref $r eq 'ARRAY';
    return join ' ', sort map { my %h = @$_; "$h{ip}:$h{port}" } @$r;
}

ok($t->wait_for(sub { peers('g-s1') eq $s2 && peers('g-s2') eq $s1 }, 30),
   '1: after SENTINEL RESET the two live sentinels list only each other')
    or diag(peers('g-s1') . ' / ' . peers('g-s2'));

# the edge's subscription moves: a new subscription asks again (a discovery)
for my $s (qw(g-s1 g-s2)) {
    $t->redis($s, 'CLIENT', 'KILL', 'TYPE', 'pubsub');
}

ok($t->wait_for(sub { learned('e1') eq $s2 }, 15),
   '1: the removed sentinel is dropped at the next discovery')
    or diag(learned('e1'));
$p = prom('e1');
unlike($p, qr/addr="\Q$s3\E"/, '1: Prometheus: the removed one not listed');
like($p, qr/^nginx_maintenance_sentinels_learned\{name="$NAME"\} 1$/m,
     '1: Prometheus: one learned');

# every sentinel and the master down: the discovery tries the two left
$t->stop_redis($_) for qw(g-s1 g-s2 g-m);

my $tried = '';
ok($t->wait_for(sub {
       my $s = status('e1');
       $tried = $s->{sentinel}{tried} // '';
       !$s->{sentinel}{reachable} && $tried =~ /\Q$s1\E/
       && $tried =~ /\Q$s2\E/
   }, 15), '1: every sentinel down: status lists the sentinels tried')
    or diag(explain(status('e1')));
unlike($tried, qr/\Q$s3\E/, '1: ... not the removed one')
    or diag($tried);

ok($t->wait_for(sub {
       $t->error_log('e1') =~ /no sentinel names the master of "$NAME"/
   }, 10), '1: the failed discovery is logged');
my ($line) = $t->error_log('e1')
    =~ /(no sentinel names the master of "$NAME"[^\n]*)/;
unlike($line // '', qr/\Q$s3\E/, '1: ... without the removed one')
    or diag($line);

$t->check_logs('e1');
$t->stop_nginx('e1');

# --- 2. a full list and a new one ----------------------------------------

$t->start_redis('r');
$t->start_fake_sentinel('fs', $NAME, '127.0.0.1', $t->port('r'));

# nothing listens there: never asked while the fake one answers
my @peers = map { "127.0.9.$_:26379" } 1 .. 40;
$t->redis('fs', 'FAKE', 'PEERS', $NAME, @peers);

$t->nginx_conf('e2', edge_conf('e2', addr('fs')));
$t->start_nginx('e2');

ok($t->wait_for(sub {
       my $s = status('e2');
       ($s->{sentinel}{master} // '') eq addr('r') && $s->{redis}{up}
   }, 10), '2: the edge on r through the fake sentinel')
    or diag(explain(status('e2')));

my $first = join ' ', sort @peers[0 .. 30];
ok($t->wait_for(sub { learned('e2') eq $first }, 10),
   '2: 40 reported, the list is full: 31 learned, the first ones')
    or diag(learned('e2'));
like(prom('e2'), qr/^nginx_maintenance_sentinels_learned\{name="$NAME"\} 31$/m,
     '2: Prometheus: 31 learned');

# the oldest one no longer reported, a new one is
my $new = '127.0.9.99:26379';
$t->redis('fs', 'FAKE', 'PEERS', $NAME, @peers[1 .. 30], $new);

# the edge's command link to the master closed: it asks the sentinel again
$t->redis('r', 'CLIENT', 'KILL', 'TYPE', 'normal');

my $second = join ' ', sort @peers[1 .. 30], $new;
ok($t->wait_for(sub { learned('e2') eq $second }, 10),
   '2: the new one learned, the oldest (unreported) dropped')
    or diag(learned('e2'));

# an empty answer (a sentinel just reset) drops nothing
sub fake_count {
    my ($cmd) = @_;
    my %st = split ' ', $t->redis('fs', 'FAKE', 'STATS');
    return $st{$cmd} // 0;
}
my $asked = fake_count('SENTINEL');
$t->redis('fs', 'FAKE', 'PEERS', $NAME);
$t->redis('r', 'CLIENT', 'KILL', 'TYPE', 'normal');
ok($t->wait_for(sub {
       fake_count('SENTINEL') >= $asked + 2 && status('e2')->{redis}{up}
   }, 10), '2: asked again, an empty list of sentinels');
is(learned('e2'), $second, '2: ... nothing dropped');

$t->check_logs('e2');
$t->stop_nginx('e2');

# --- 3. under valgrind (nginx single process) -----------------------------

SKIP: {
skip 'valgrind not installed', 5
    unless grep { -x "$_/valgrind" } split /:/, $ENV{PATH};

my $dir = $t->nginx_dir('v');
my $fs = addr('fs');
$t->nginx_conf('v', <<"CONF");
load_module %%MODULE%%;
master_process off;
daemon off;
pid %%DIR%%/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    maintenance_redis_sentinel $NAME $fs timeout=1s;
    maintenance_poll 200ms;
    maintenance on;

    server {
        listen 127.0.0.1:%%PORT_v_st%%;
        maintenance off;
        location /status { maintenance_status; }
    }
}
CONF
my $vpid = $t->start_nginx_valgrind($dir);

# a full list (the zone keeps the learned ones: the edge before it learned
# them); then three listed, one of them new: 28 dropped, the new learned
$t->redis('fs', 'FAKE', 'PEERS', $NAME, @peers[0 .. 39]);
ok($t->wait_for(sub { learned('v') eq $first }, 60),
   '3: under valgrind: the list full')
    or diag(learned('v'));
$t->redis('fs', 'FAKE', 'PEERS', $NAME, @peers[1, 2], $new);
$t->redis('r', 'CLIENT', 'KILL', 'TYPE', 'normal');
ok($t->wait_for(sub {
       learned('v') eq join(' ', sort @peers[1, 2], $new)
   }, 30), '3: ... the unlisted ones dropped, the new one learned')
    or diag(learned('v'));

my ($w) = $t->quit_nginx_valgrind($vpid, 30);
is($w, $vpid, '3: graceful exit');
is($t->read_file("$dir/valgrind.log") // '', '', '3: valgrind reports nothing');
$t->check_logs('v');
}

done_testing();
