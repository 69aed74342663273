# override.t: while maintenance_override_file exists every scope is in
# maintenance, with Redis up or down, and without maintenance_redis at all;
# removed, each scope goes back to its Redis (or last known) state.
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use MigTest;

my $t = MigTest->new;
my $ovr = $t->dir . '/switch/override';
mkdir $t->dir . '/switch';
chmod 0755, $t->dir . '/switch';

$t->start_redis('r');

$t->nginx_conf('n', <<"CONF");
load_module %%MODULE%%;
worker_processes 2;
events { worker_connections 64; }
http {
    access_log off;
    maintenance_redis 127.0.0.1:%%PORT_r%% timeout=300ms;
    maintenance_poll 200ms;
    maintenance_override_file $ovr;
    maintenance on;

    server {
        listen 127.0.0.1:%%PORT_a%%;
        location / { return 200 "a\\n"; }
    }

    server {
        listen 127.0.0.1:%%PORT_b%%;
        maintenance_scope api;
        location / { return 200 "b\\n"; }
    }

    server {
        listen 127.0.0.1:%%PORT_st%%;
        maintenance off;
        location /status { maintenance_status; }
    }
}
CONF

$t->nginx_conf('solo', <<"CONF");
load_module %%MODULE%%;
worker_processes 1;
events { worker_connections 64; }
http {
    access_log off;
    maintenance_poll 200ms;
    maintenance_override_file $ovr;
    maintenance on;

    server {
        listen 127.0.0.1:%%PORT_solo%%;
        location / { return 200 "solo\\n"; }
    }

    server {
        listen 127.0.0.1:%%PORT_solo_st%%;
        maintenance off;
        location /status { maintenance_status; }
    }
}
CONF

sub code { $t->http($t->port($_[0]), '/')->{status} }
sub codes { join ' ', map { code($_) } qw(a b solo) }
sub status { $t->http($t->port($_[0] // 'st'), '/status')->{body} // '' }
sub redis_up { status() =~ /"redis":\{[^}]*"up":true/ ? 1 : 0 }

$t->start_nginx('n');
$t->start_nginx('solo');

$t->set_state('r', 'default', 'off', 1);
$t->set_state('r', 'api', 'off', 1);
ok($t->wait_for(sub { redis_up() }, 5), 'synced');
is(codes(), '200 200 200', 'no override: every server open');

# --- Redis up ------------------------------------------------------------

$t->write_file($ovr, '');
ok($t->wait_for(sub { codes() eq '503 503 503' }, 2),
   'override file created: every scope of every node in maintenance');
like(status(), qr/"override":true/, 'status: override true');
like(status(), qr/"default":\{"mode":"on","epoch":1,"source":"override"/,
     'status: source override');
like(status('solo_st'), qr/"source":"override"/,
     'without maintenance_redis too');
like($t->error_log('n'), qr/override file "\Q$ovr\E" present/,
     'logged');

unlink $ovr;
ok($t->wait_for(sub { codes() eq '200 200 200' }, 2),
   'override removed: back to the Redis state (off)');
like(status(), qr/"default":\{"mode":"off","epoch":1,"source":"redis"/,
     'status: source redis');

# the Redis state still rules while there is no override
$t->set_state('r', 'api', 'on', 2);
ok($t->wait_for(sub { code('b') == 503 && code('a') == 200 }, 2),
   'api on in Redis: only the api scope');
$t->write_file($ovr, '');
ok($t->wait_for(sub { code('a') == 503 }, 2), 'override: default too');
unlink $ovr;
# each nginx polls the file on its own timer: wait for both, or the solo
# server may still be closed when a later test looks at it
ok($t->wait_for(sub { code('a') == 200 && code('solo') == 200 }, 2),
   'removed: default open, and on the server without Redis');
is(code('b'), 503, 'api stays in maintenance (its Redis state)');
$t->set_state('r', 'api', 'off', 3);
ok($t->wait_for(sub { code('b') == 200 }, 2), 'api off');

# --- Redis down ----------------------------------------------------------

$t->kill_redis('r', 'KILL');
ok($t->wait_for(sub { !redis_up() }, 3), 'Redis down');
is(codes(), '200 200 200', 'last known state: open');

$t->write_file($ovr, '');
ok($t->wait_for(sub { codes() eq '503 503 503' }, 2),
   'override with Redis down: every scope in maintenance');
unlink $ovr;
ok($t->wait_for(sub { codes() eq '200 200 200' }, 2),
   'removed with Redis down: back to the last known state');

# --- a stat() error is not "absent" ------------------------------------

SKIP: {
    skip 'workers run as this user: no permission error to provoke', 2
        unless $> == 0;
    $t->write_file($ovr, '');
    chmod 0700, $t->dir . '/switch';      # nobody cannot look inside
    ok($t->wait_for(sub { code('a') == 503 }, 2),
       'override behind a directory the worker cannot read: in maintenance');
    like($t->error_log('n'),
         qr/cannot stat override file .* treating it as present/,
         'and says why');
    chmod 0755, $t->dir . '/switch';
    unlink $ovr;
}

$t->stop_nginx('n');
$t->stop_nginx('solo');
$t->check_logs('n');
$t->check_logs('solo');

done_testing;
