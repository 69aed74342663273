# redis_auth.t: maintenance_redis with an ACL user and password_file, db=N,
# and a unix socket; a refused password is logged once and never printed.
use strict;
use warnings;
use Test::More;
use Time::HiRes ();
use lib 't/lib';
use MigTest;

my $t = MigTest->new;
my $POLL = 0.2;
my $sock = $t->dir . '/r/redis.sock';
my $SECRET = 'pw-' . join('', map { ('a' .. 'z')[rand 26] } 1 .. 24);

$t->write_file('pw', "$SECRET\n");
$t->write_file('badpw', "not-the-password\n");

sub acl { ('--user', 'alice', 'on', ">$SECRET", '~*', '&*', '+@all') }
$t->start_redis('r', args => [ acl(), '--unixsocket', $sock,
                               '--unixsocketperm', '777' ]);

sub conf {
    my ($name, $addr, $extra) = @_;
    $t->nginx_conf($name, <<"CONF");
load_module %%MODULE%%;
worker_processes 1;
events { worker_connections 64; }
http {
    access_log off;
    maintenance_redis $addr $extra timeout=500ms;
    maintenance_poll 200ms;
    maintenance on;

    server {
        listen 127.0.0.1:%%PORT_${name}%%;
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

sub code { $t->http($t->port($_[0]), '/')->{status} }
sub redis_up {
    ($t->http($t->port("$_[0]_st"), '/status')->{body} // '')
        =~ /"redis":\{[^}]*"up":true/ ? 1 : 0;
}

# a state in db 3 only (a script may SELECT without touching the caller)
sub state_in_db {
    my ($db, $mode, $epoch) = @_;
    $t->redis('r', 'EVAL', "redis.call('SELECT', ARGV[1]); "
              . "redis.call('HSET', KEYS[1], 'mode', ARGV[2], "
              . "'epoch', ARGV[3]); "
              . "return redis.call('PUBLISH', 'migctl:events', "
              . "'default ' .. ARGV[3])",
              1, 'migctl:state:default', $db, $mode, $epoch);
}

my $dir = $t->dir;
conf('tcp', '127.0.0.1:%%PORT_r%%', "db=3 user=alice password_file=$dir/pw");
conf('unix', "unix:$sock", "db=3 user=alice password_file=$dir/pw");
conf('bad', '127.0.0.1:%%PORT_r%%', "user=alice password_file=$dir/badpw");
$t->start_nginx($_) for qw(tcp unix bad);

ok($t->wait_for(sub { redis_up('tcp') && redis_up('unix') }, 5),
   'user + password: TCP and unix socket links up');

state_in_db(3, 'on', 1);
ok($t->wait_for(sub { code('tcp') == 503 && code('unix') == 503 }, 2),
   'db=3: a state in db 3 gates, over TCP and the unix socket');
state_in_db(0, 'off', 2);
Time::HiRes::sleep(3 * $POLL);   # an observation window of several polls
is(code('tcp'), 503, 'a state in db 0 does not touch a db=3 node');
state_in_db(3, 'off', 3);
ok($t->wait_for(sub { code('tcp') == 200 && code('unix') == 200 }, 2),
   'db 3 off: open');

# --- a wrong password -----------------------------------------------------

sub refused {
    my ($link) = @_;
    return scalar grep { /redis $link link .* AUTH refused: WRONGPASS/ }
                  split /\n/, $t->error_log('bad');
}
# each link of worker 0 is refused once first (on its own time), then the
# window shows that the retries are not logged again
$t->wait_for(sub { refused('command') && refused('subscriber') }, 5);
Time::HiRes::sleep(3 * $POLL);   # several reconnect attempts
ok(!redis_up('bad'), 'wrong password: the link is down');
is(code('bad'), 200, 'and the node serves its default');
for my $link (qw(command subscriber)) {
    is(refused($link), 1, "$link link: the refusal is logged once");
}

for my $n (qw(tcp unix bad)) {
    unlike($t->error_log($n), qr/\Q$SECRET\E|not-the-password/,
           "$n: no password in error.log");
}

$t->stop_nginx($_) for qw(tcp unix bad);
$t->check_logs($_) for qw(tcp unix bad);

done_testing;
