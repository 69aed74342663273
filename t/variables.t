# variables.t: $maintenance and $maintenance_epoch say what the gate
# decided for this request, not what the zone holds when the access log
# line is written.  A request let through while the scope was off, whose
# upstream answers after the scope went on, is logged "off" with the old
# epoch; a request gated while on is logged "on".
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time);
use lib 't/lib';
use MigTest;

my $t = MigTest->new;
my $dir = $t->dir;

$t->start_redis('r');
$t->set_state('r', 'default', 'off', 4);

# the application: holds each response until the test releases it
my $app_port = $t->port('app');
my $app = fork // die "fork: $!";
if ($app == 0) {
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                  LocalPort => $app_port, Listen => 16,
                                  ReuseAddr => 1, Proto => 'tcp')
        or POSIX::_exit(1);
    while (my $c = $l->accept) {
        my $req = '';
        while (defined(my $line = <$c>)) {
            $req .= $line;
            last if $line eq "\r\n";
        }
        my ($uri) = $req =~ m{^GET (\S+)};
        { open my $h, ">", "$dir/held" or POSIX::_exit(1); close $h; }
        my $end = time + 20;
        select(undef, undef, undef, 0.01)
            while !-e "$dir/release" && time < $end;
        print $c "HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\napp\n";
        close $c;
    }
    POSIX::_exit(0);
}
END { local $?; if ($app) { kill "KILL", $app; waitpid($app, 0); } }
$t->wait_port($app_port, 10) or die "the app did not start";

$t->nginx_conf('n', <<'CONF');
load_module %%MODULE%%;
worker_processes 2;
events { worker_connections 64; }
http {
    log_format v '$request_uri mode=$maintenance epoch=$maintenance_epoch '
                 '$status';
    access_log %%DIR%%/access.log v;

    maintenance_redis 127.0.0.1:%%PORT_r%%;
    maintenance_poll 200ms;

    server {
        listen 127.0.0.1:%%PORT_http%%;
        maintenance on;
        add_header X-Mode $maintenance always;
        location / {
            proxy_pass http://127.0.0.1:%%PORT_app%%;
        }
        location = /probe {
            return 200 "probe\n";
        }
        location = /ungated {
            maintenance off;
            return 200 "ungated\n";
        }
    }
}
CONF
$t->start_nginx('n');
my $port = $t->port('http');

ok($t->wait_for(sub { $t->http($port, '/probe')->{status} == 200 }, 10),
   'the scope is off');

# a request let through while off, answered after the scope went on
my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                              Proto => 'tcp', Timeout => 5)
    or die "connect: $!";
print $s "GET /held HTTP/1.0\r\nHost: x\r\n\r\n";
ok($t->wait_for(sub { -e "$dir/held" }, 10), 'the app holds the request');

$t->set_state('r', 'default', 'on', 5);
ok($t->wait_for(sub { $t->http($port, '/probe')->{status} == 503 }, 10),
   'the scope is on now');

$t->write_file('release', '');
my $resp = '';
{
    local $SIG{ALRM} = sub { die "timeout\n" };
    alarm 10;
    $resp .= $_ while <$s>;
    alarm 0;
}
like($resp, qr{^HTTP/1\.\d 200}, 'the held request got the app\'s 200');
like($resp, qr{^X-Mode: off\r$}mi, 'its header says off, as decided');

my $lines = sub {
    my $log = $t->read_file($t->dir . '/n/access.log') // '';
    return [ split /\n/, $log ];
};
ok($t->wait_for(sub { grep { m{^/held } } @{ $lines->() } }, 5),
   'the held request is logged');
my ($held) = grep { m{^/held } } @{ $lines->() };
is($held, '/held mode=off epoch=4 200',
   'logged as decided: off, the epoch it was let through at');

my ($gated) = grep { m{^/probe mode=on} } @{ $lines->() };
is($gated, '/probe mode=on epoch=5 503', 'a gated request is logged on');

# a location the gate does not decide still reads the zone
$t->http($port, '/ungated');
ok($t->wait_for(sub { grep { m{^/ungated } } @{ $lines->() } }, 5),
   'the ungated request is logged');
my ($ung) = grep { m{^/ungated } } @{ $lines->() };
is($ung, '/ungated mode=on epoch=5 200',
   'an ungated location reports the scope as it is');

$t->stop_nginx('n');
$t->check_logs('n');

done_testing;
