# log_levels.t: what an operator sees with Debian's default "error_log ...
# error": every event to act on (restored from the state file at start,
# Redis down, unreachable for 10 s, up again, state gone from Redis and
# back, override on and off, state file unwritable and written again);
# each mode change once, at notice, as the README's table says.
use strict;
use warnings;
use Test::More;
use File::Path qw(make_path remove_tree);
use lib 't/lib';
use MigTest;

my $t = MigTest->new;
my $dir = $t->nginx_dir('n');
my $sdir = "$dir/state";
make_path($sdir);
chmod 0777, $sdir;
$t->write_file("$sdir/maintenance.state", "default on 5 0 0\n");
chmod 0666, "$sdir/maintenance.state";
$t->port('r');                       # Redis comes later: down at start

$t->nginx_conf('n', <<'CONF');
load_module %%MODULE%%;
error_log %%DIR%%/default.log error;
worker_processes 1;
events { worker_connections 64; }
http {
    access_log off;
    maintenance_redis 127.0.0.1:%%PORT_r%% timeout=300ms;
    maintenance_poll 200ms;
    maintenance_state_file %%DIR%%/state/maintenance.state;
    maintenance_override_file %%DIR%%/override;
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
sub redis_up { ($t->http($t->port('st'), '/status')->{body} // '')
               =~ /"redis":\{[^}]*"up":true/ ? 1 : 0 }
sub default_log { $t->read_file("$dir/default.log") // '' }
sub seen {
    my ($re, $what) = @_;
    ok($t->wait_for(sub { default_log() =~ $re }, 5),
       "at level error: $what");
}

$t->start_nginx('n');
is(code(), 503, 'restored: in maintenance from the state file');
seen(qr/\[error\].*restored from the state file: mode on, epoch 5/,
     'restored from the state file at start');
seen(qr/\[error\].*redis command link to \S+ down/, 'Redis link down');

# while Redis stays down: the override file on and off
$t->write_file("$dir/override", '');
seen(qr/\[error\].*override file "\S+" present/, 'override file present');
unlink "$dir/override";
seen(qr/\[error\].*override file "\S+" removed/, 'override file removed');

ok($t->wait_for(sub { default_log() =~ /unreachable for \d+ s/ }, 15),
   'at level error: Redis unreachable for 10 s');

$t->start_redis('r');
$t->set_state('r', 'default', 'on', 6);
ok($t->wait_for(sub { redis_up() }, 8), 'Redis back');
seen(qr/\[error\].*redis command link to \S+ up again/, 'link up again');

$t->redis('r', 'FLUSHALL');
seen(qr/\[error\].*is gone from redis/, 'state gone from Redis');
$t->set_state('r', 'default', 'on', 7);
seen(qr/\[error\].*migctl:state:default is back/, 'state back in Redis');

# worker 0 logs "is back" first and then writes the state file (epoch 7):
# a directory removed under that write keeps the file it was creating
# (remove_tree fails "Directory not empty") and no write ever fails
ok($t->wait_for(sub {
    ($t->read_file("$sdir/maintenance.state") // '') =~ /^default on 7 /m
}, 5), 'the state file holds epoch 7');
remove_tree($sdir);
ok(!-e $sdir, 'the state file directory is gone');
$t->set_state('r', 'default', 'off', 8);
ok($t->wait_for(sub { code() == 200 }, 3), 'off: open');
seen(qr/\[error\].*cannot write state file/, 'state file unwritable');
make_path($sdir);
chmod 0777, $sdir;
$t->set_state('r', 'default', 'on', 9);
seen(qr/\[error\].*state file "\S+" written again/, 'state file written again');

# mode changes: once each, at notice (the info log has them)
my @modes = grep { /\[notice\].*scope "default" (in maintenance|open)/ }
            split /\n/, $t->error_log('n');
my %n;
$n{$_}++ for map { /epoch (\d+)/ ? $1 : () } @modes;
is($n{8}, 1, 'mode change to off (epoch 8): logged once at notice');
is($n{9}, 1, 'mode change to on (epoch 9): logged once at notice');
ok(!grep({ $_ > 1 } values %n), 'no mode change logged twice')
    or diag(explain \%n);

$t->stop_nginx('n');
$t->check_logs('n');

done_testing;
