# redis_lost.t: Redis restarted empty (no persistence) or flushed while in
# maintenance: every edge stays in maintenance, says so once in error.log
# and in maintenance_status; an explicit "mode off" afterwards reopens.
use strict;
use warnings;
use Test::More;
use Time::HiRes ();
use lib 't/lib';
use MigTest;

my $t = MigTest->new;
my $POLL = 0.2;
my @nodes = qw(e1 e2);

sub conf {
    my ($name) = @_;
    $t->nginx_conf($name, <<"CONF");
load_module %%MODULE%%;
worker_processes 2;
events { worker_connections 64; }
http {
    access_log off;
    maintenance_redis 127.0.0.1:%%PORT_r%%;
    maintenance_poll 200ms;
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
sub scope {
    my ($n) = @_;
    my ($s) = status($n) =~ /"default":(\{[^}]*)/;
    return $s // '';
}
sub redis_up { status($_[0]) =~ /"redis":\{[^}]*"up":true/ ? 1 : 0 }
sub lost_lines {
    scalar(grep { /migctl:state:default is gone from redis/ }
           split /\n/, $t->error_log($_[0]));
}
sub all { my $c = shift; !grep { !$c->($_) } @nodes }

$t->start_redis('r');
for (@nodes) { conf($_); $t->start_nginx($_) }

ok($t->wait_for(sub { all(\&redis_up) }, 5), 'both edges synced');
$t->set_state('r', 'default', 'on', 5, reason => 'migration 0042 failed');
ok($t->wait_for(sub { all(sub { code($_[0]) == 503 }) }, 3),
   'both edges in maintenance');

# --- restart without persistence: the data is gone ---------------------

$t->stop_redis('r');
$t->start_redis('r');
is($t->redis('r', 'EXISTS', 'migctl:state:default'), 0,
   'Redis came back empty');

ok($t->wait_for(sub { all(sub { scope($_[0]) =~ /"lost":true/ }) }, 3),
   'status: both edges report the state lost');
for my $n (@nodes) {
    is(code($n), 503, "$n: still in maintenance");
    like(scope($n), qr/"mode":"on","epoch":5,"source":"redis"/,
         "$n: status keeps mode on, epoch 5, source redis");
    ok(redis_up($n), "$n: with the link up");
}

# an observation window of several polls: the loss is logged once only
Time::HiRes::sleep(5 * $POLL);
for my $n (@nodes) {
    is(lost_lines($n), 1, "$n: the loss is logged once");
    is(code($n), 503, "$n: still in maintenance after several polls");
}

# a node that never saw a state reads the missing key as off (DESIGN)
conf('e3');
$t->start_nginx('e3');
ok($t->wait_for(sub { redis_up('e3') }, 3), 'a new edge syncs');
is(code('e3'), 200, 'a new edge that never saw a state serves off');
like(scope('e3'), qr/"lost":false/, 'and is not "lost"');
$t->stop_nginx('e3');
$t->check_logs('e3');

# --- a rebuilt Redis starts its epochs again at 1 -----------------------

$t->set_state('r', 'default', 'on', 1);
ok($t->wait_for(sub { all(sub { scope($_[0]) =~ /"lost":false/
                                && scope($_[0]) =~ /"epoch":1,/ }) }, 3),
   'a new state (epoch 1, lower than before) is taken: change, not order');
like($t->error_log('e1'), qr/migctl:state:default is back/,
     'the return is logged');

# --- FLUSHALL while connected ------------------------------------------

$t->redis('r', 'FLUSHALL');
ok($t->wait_for(sub { all(sub { scope($_[0]) =~ /"lost":true/ }) }, 3),
   'flushed: lost again');
for my $n (@nodes) {
    is(code($n), 503, "$n: still in maintenance after FLUSHALL");
    is(lost_lines($n), 2, "$n: logged once more (a new transition)");
}

# --- only an explicit mode off reopens ----------------------------------

$t->set_state('r', 'default', 'off', 2, reason => 'fixed forward');
ok($t->wait_for(sub { all(sub { code($_[0]) == 200 }) }, 3),
   'explicit mode off reopens every edge');
for my $n (@nodes) {
    like(scope($n),
         qr/"mode":"off","epoch":2,"source":"redis","seen":true,"lost":false/,
         "$n: status off, epoch 2, not lost");
}

for (@nodes) { $t->stop_nginx($_) }
$t->check_logs($_) for @nodes;

done_testing;
