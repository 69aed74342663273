# malformed.t: malformed values in Redis (mode=banana, epoch=abc, a 1 MB
# reason, a wrong key type, control bytes) leave the served state unchanged
# and log one error each; a good record afterwards applies again.
use strict;
use warnings;
use Test::More;
use Time::HiRes ();
use lib 't/lib';
use MigTest;

my $t = MigTest->new;
my $POLL = 0.2;
my $KEY = 'migctl:state:default';

$t->start_redis('r');

$t->nginx_conf('n', <<'CONF');
load_module %%MODULE%%;
worker_processes 2;
events { worker_connections 64; }
http {
    access_log off;
    maintenance_redis 127.0.0.1:%%PORT_r%%;
    maintenance_poll 200ms;
    maintenance on;

    server {
        listen 127.0.0.1:%%PORT_http%%;
        location / { return 200 "app\n"; }
    }

    server {
        listen 127.0.0.1:%%PORT_st%%;
        maintenance off;
        location /status { maintenance_status; }
    }
}
CONF

sub code { $t->http($t->port('http'), '/')->{status} }
sub status { $t->http($t->port('st'), '/status')->{body} // '' }
sub scope { my ($s) = status() =~ /"default":(\{[^}]*)/; $s // '' }
sub errors {
    grep { /\[error\].*malformed state in \Q$KEY\E/ }
        split /\n/, $t->error_log('n');
}
sub redis_up { status() =~ /"redis":\{[^}]*"up":true/ ? 1 : 0 }

# --- malformed before any good state: the default, one error -------------

$t->redis('r', 'HSET', $KEY, mode => 'banana', epoch => 1);
$t->start_nginx('n');
ok($t->wait_for(sub { redis_up() }, 5), 'synced');
ok($t->wait_for(sub { scalar(errors()) == 1 }, 2), 'one error logged');
is(code(), 200, 'never a good state: the default (open)');

# --- each kind of damage, from a good "on" state ------------------------

my $epoch = 1;
my $n = 1;

sub damage {
    my ($what, $do, $re) = @_;
    $epoch++;
    # the whole hash replaced at once: no field of the last damage stays
    $t->redis('r', 'EVAL', "redis.call('DEL', KEYS[1]); "
              . "redis.call('HSET', KEYS[1], 'mode', 'on', 'epoch', ARGV[1],"
              . " 'reason', 'good'); "
              . "redis.call('PUBLISH', 'migctl:events', 'default ' .. ARGV[1])",
              1, $KEY, $epoch);
    ok($t->wait_for(sub { scope() =~ /"mode":"on","epoch":$epoch,/ }, 2),
       "$what: good state epoch $epoch served first");

    $do->();
    $t->redis('r', 'PUBLISH', 'migctl:events', "default " . ($epoch + 1));
    $n++;
    ok($t->wait_for(sub { scalar(errors()) == $n }, 2),
       "$what: an error is logged");

    # an observation window of several polls: still one error, same state
    Time::HiRes::sleep(4 * $POLL);
    my @e = errors();
    is(scalar @e, $n, "$what: logged once, not every poll");
    like($e[-1], $re, "$what: the error says what is wrong");
    cmp_ok(length($e[-1]), '<', 1024, "$what: the log line is bounded");
    is(code(), 503, "$what: still in maintenance");
    like(scope(), qr/"mode":"on","epoch":$epoch,/,
         "$what: served state unchanged (epoch $epoch)");
    like($e[-1], qr/keeping the last good one \(mode on, epoch $epoch\)/,
         "$what: the error names the state kept");
}

damage('mode=banana',
       sub { $t->redis('r', 'HSET', $KEY, mode => 'banana',
                       epoch => $epoch + 1) },
       qr/mode "banana" is not "on" or "off"/);

damage('epoch=abc',
       sub { $t->redis('r', 'HSET', $KEY, mode => 'off', epoch => 'abc') },
       qr/epoch "abc" is not an unsigned integer/);

damage('1 MB reason',
       sub { $t->redis('r', 'HSET', $KEY, mode => 'off', epoch => $epoch + 1,
                       reason => 'x' x (1024 * 1024)) },
       qr/reason is 1048576 bytes, more than 512/);

damage('retry_after out of range',
       sub { $t->redis('r', 'HSET', $KEY, mode => 'off', epoch => $epoch + 1,
                       retry_after => 999999999, reason => 'ok') },
       qr/retry_after "999999999" is not 0\.\.86400 seconds/);

damage('control bytes',
       sub { $t->redis('r', 'HSET', $KEY, mode => "x\n[error] forged",
                       epoch => $epoch + 1) },
       qr/mode "x\?\[error\] forged"/);
ok(!grep({ /^\[error\] forged/ } split /\n/, $t->error_log('n')),
   'a newline from Redis cannot start a log line');

damage('wrong key type',
       sub { $t->redis('r', 'EVAL', "redis.call('DEL', KEYS[1]); "
                       . "redis.call('SET', KEYS[1], 'off')", 1, $KEY) },
       qr/WRONGTYPE/);

like(status(), qr/"malformed":$n\b/, "status counts $n malformed records");

# --- good again ------------------------------------------------------------

$epoch++;
$t->redis('r', 'EVAL', "redis.call('DEL', KEYS[1]); "
          . "redis.call('HSET', KEYS[1], 'mode', 'off', 'epoch', ARGV[1])",
          1, $KEY, $epoch);
$t->redis('r', 'PUBLISH', 'migctl:events', "default $epoch");
ok($t->wait_for(sub { code() == 200 }, 2), 'a good record applies again');
like($t->error_log('n'), qr/the state in \Q$KEY\E is valid again/,
     'and the recovery is logged');

$t->stop_nginx('n');
$t->check_logs('n');

done_testing;
