# reload.t: HUP while in maintenance: a client loop running during and
# after the reloads never gets the app's answer, also when the new
# configuration adds scopes (slots are kept by name across reloads).
use strict;
use warnings;
use Test::More;
use POSIX ();
use Time::HiRes qw(time);
use lib 't/lib';
use MigTest;

my $t = MigTest->new;

$t->start_redis('r');

my $conf = <<'CONF';
load_module %%MODULE%%;
worker_processes 2;
events { worker_connections 256; }
http {
    access_log off;
    maintenance_redis 127.0.0.1:%%PORT_r%%;
    maintenance_poll 200ms;
    maintenance on;
    %%EXTRA%%
    server {
        listen 127.0.0.1:%%PORT_http%%;
        location / { proxy_pass http://127.0.0.1:%%PORT_app%%; }
        location = /status { maintenance_status; }
    }

    server {
        listen 127.0.0.1:%%PORT_app%%;
        maintenance off;
        location / { return 200 "app\n"; }
    }
}
CONF

sub write_conf {
    my ($extra) = @_;
    (my $c = $conf) =~ s/%%EXTRA%%/$extra/;
    $t->nginx_conf('n', $c);
}

write_conf('');
$t->start_nginx('n');
my $p = $t->port('http');

$t->set_state('r', 'default', 'on', 11);
ok($t->wait_for(sub { $t->http($p, '/')->{status} == 503 }, 5),
   'in maintenance before the reloads');

# the client loop: a child process, bounded in time and count; it leaves
# through _exit so that the harness's END does not stop the daemons
my $res = $t->dir . '/loop.txt';
my $stop = $t->dir . '/loop.stop';
my $pid = fork // die "fork: $!";
if ($pid == 0) {
    my %n = (total => 0, app => 0, s503 => 0, other => 0);
    my $end = time + 20;
    while (time < $end && $n{total} < 20000) {
        my $r = $t->http($p, '/loop');
        $n{total}++;
        if ($r->{body} =~ /^app$/m) { $n{app}++ }
        elsif ($r->{status} == 503) { $n{s503}++ }
        else { $n{other}++ }
        last if -e $stop && $n{total} > 50;
    }
    open my $fh, '>', $res or POSIX::_exit(1);
    print $fh join(' ', map { "$_=$n{$_}" } sort keys %n), "\n";
    close $fh;
    POSIX::_exit(0);
}

# three reloads: same configuration, then new scopes ahead of the
# default one (their configuration indexes differ from the zone slots),
# then back
$t->reload_nginx('n');
write_conf(<<'EXTRA');
server {
        listen 127.0.0.1:%%PORT_api%%;
        maintenance_scope api;
        location / { return 200 "api\n"; }
        location /b { maintenance_scope batch; return 200 "batch\n"; }
    }
EXTRA
$t->reload_nginx('n');
is($t->http($t->port('api'), '/')->{status}, 200,
   'a scope added by the reload starts open');
is($t->http($t->port('api'), '/b')->{status}, 200, 'and so does another');
is($t->http($p, '/')->{status}, 503, 'default is still on after it');
write_conf('');
$t->reload_nginx('n');

# keep the loop running a moment after the last reload
my $t0 = time;
$t->wait_for(sub { time - $t0 > 1 }, 2);
open my $fh, '>', $stop or die;
close $fh;
my $waited = $t->wait_for(sub { waitpid($pid, POSIX::WNOHANG()) == $pid }, 30);
ok($waited, 'the client loop ended') or kill 'KILL', $pid;

my $line = $t->read_file($res) // '';
my %n = $line =~ /(\w+)=(\d+)/g;
diag("client loop: $line");
ok(($n{total} // 0) > 50, 'the loop made requests across the reloads');
is($n{app}, 0, 'not one request answered by the app');
is($n{other}, 0, 'no other answer (no error, no reset)');
is($n{s503}, $n{total}, 'every answer was the maintenance page');

is($t->http($p, '/')->{status}, 503, 'still in maintenance after the reloads');
like($t->http($p, '/status')->{body}, qr/"default":\{"mode":"on","epoch":11/,
     'status: the state survived the reloads');

$t->set_state('r', 'default', 'off', 12);
ok($t->wait_for(sub { $t->http($p, '/')->{body} eq "app\n" }, 5),
   'the new workers follow Redis');

$t->stop_nginx('n');
$t->check_logs('n');

done_testing;
