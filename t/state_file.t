# state_file.t: maintenance_state_file is rewritten atomically on change and
# read at start: with Redis down, a restarted nginx comes back in the last
# known mode (source state_file).
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use MigTest;

my $t = MigTest->new;
my $POLL = 0.2;

$t->start_redis('r');

$t->nginx_conf('n', <<'CONF');
load_module %%MODULE%%;
worker_processes 2;
events { worker_connections 64; }
http {
    access_log off;
    maintenance_redis 127.0.0.1:%%PORT_r%% timeout=300ms;
    maintenance_poll 200ms;
    maintenance_state_file %%DIR%%/state/maintenance.state;
    maintenance on;

    server {
        listen 127.0.0.1:%%PORT_a%%;
        location / { return 200 "a\n"; }
    }

    server {
        listen 127.0.0.1:%%PORT_b%%;
        maintenance_scope api;
        location / { return 200 "b\n"; }
    }

    server {
        listen 127.0.0.1:%%PORT_st%%;
        maintenance off;
        location /status { maintenance_status; }
    }
}
CONF

my $sdir = $t->dir . '/n/state';
mkdir $sdir;
chmod 0777, $sdir;                    # worker 0 (nobody) writes in it
my $sf = "$sdir/maintenance.state";

sub code { $t->http($t->port($_[0]), '/')->{status} }
sub status { $t->http($t->port('st'), '/status')->{body} // '' }
sub scope {
    my ($name) = @_;
    my ($s) = status() =~ /"\Q$name\E":(\{[^}]*)/;
    return $s // '';
}
sub redis_up { status() =~ /"redis":\{[^}]*"up":true/ ? 1 : 0 }
sub file { $t->read_file($sf) // '' }

# --- first start: no file, Redis up ------------------------------------

$t->start_nginx('n');
ok($t->wait_for(sub { redis_up() }, 5), 'synced');
is(code('a'), 200, 'no state anywhere: open');
ok(!-e $sf, 'no state known: no state file yet');

$t->set_state('r', 'default', 'on', 7, retry_after => 300, since => 1700000000);
$t->set_state('r', 'api', 'off', 3);
ok($t->wait_for(sub { file() =~ /^default on 7 300 1700000000$/m
                      && file() =~ /^api off 3 0 0$/m }, 2),
   'the state file records each scope: mode, epoch, retry_after, since');
is(code('a'), 503, 'default in maintenance');

my @tmp = grep { !/maintenance\.state$/ } glob "$sdir/*";
is(scalar @tmp, 0, 'no temporary file left beside it (written, renamed)');

# --- restart with Redis down -------------------------------------------

$t->stop_nginx('n');
$t->stop_redis('r');
$t->start_nginx('n');

is(code('a'), 503, 'restart with Redis down: back in maintenance');
is(code('b'), 200, 'the other scope back open');
like(scope('default'), qr/"mode":"on","epoch":7,"source":"state_file"/,
     'status: source state_file, epoch 7');
is($t->http($t->port('a'), '/')->{headers}{'retry-after'}, '300',
   'Retry-After from the saved state');
like($t->error_log('n'),
     qr/scope "default" restored from the state file: mode on, epoch 7/,
     'logged at start');

# --- Redis back, empty: the state is "lost", the saved state is kept ----

$t->start_redis('r');
ok($t->wait_for(sub { redis_up() }, 3), 'Redis back');
ok($t->wait_for(sub { scope('default') =~ /"lost":true/ }, 2),
   'an empty Redis after a saved state: lost');
is(code('a'), 503, 'still in maintenance');

$t->set_state('r', 'default', 'off', 1);
ok($t->wait_for(sub { code('a') == 200 }, 2), 'explicit off reopens');
ok($t->wait_for(sub { file() =~ /^default off 1 0 0$/m }, 2),
   'the state file follows');

# --- a restart in the open state stays open ------------------------------

$t->stop_nginx('n');
$t->kill_redis('r', 'KILL');
$t->start_nginx('n');
is(code('a'), 200, 'restart with Redis down after off: open');
like(scope('default'), qr/"source":"state_file"/, 'source state_file');

# --- a damaged file does not stop nginx ----------------------------------

$t->stop_nginx('n');
$t->write_file($sf, "# comment\ndefault banana 1 0 0\napi on 9 0 0\n"
                    . "default on 99999999999999999999999 0 0\n");
chmod 0666, $sf;
$t->start_nginx('n');
is(code('a'), 200, 'damaged line: the scope starts at the default');
is(code('b'), 503, 'a good line still applies');
like($t->error_log('n'), qr/\[warn\].*line "default banana 1 0 0" skipped/,
     'the damaged line is named in a warning');

$t->stop_nginx('n');
$t->check_logs('n');

done_testing;
