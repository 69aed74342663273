# scopes.t: two scopes on two servers toggle independently; a location
# can name its own scope; $maintenance follows the request's scope.
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use MigTest;

my $t = MigTest->new;

$t->start_redis('r');

$t->nginx_conf('n', <<'CONF');
load_module %%MODULE%%;
worker_processes 2;
events { worker_connections 128; }
http {
    access_log off;
    maintenance_redis 127.0.0.1:%%PORT_r%%;
    maintenance_poll 200ms;
    maintenance on;
    add_header X-Scope-Mode $maintenance always;
    add_header X-Scope-Epoch $maintenance_epoch always;

    server {
        listen 127.0.0.1:%%PORT_shop%%;
        maintenance_scope shop;
        location / { return 200 "shop\n"; }
        location /reports {
            maintenance_scope reports;
            return 200 "reports\n";
        }
    }

    server {
        listen 127.0.0.1:%%PORT_api%%;
        maintenance_scope api;
        location / { return 200 "api\n"; }
    }

    server {
        listen 127.0.0.1:%%PORT_def%%;
        location / { return 200 "default\n"; }
    }
}
CONF

$t->start_nginx('n');
my %port = map { $_ => $t->port($_) } qw(shop api def);

sub codes {
    return join ' ', map { $t->http($_->[0], $_->[1])->{status} }
        [$port{shop}, '/'], [$port{shop}, '/reports'], [$port{api}, '/'],
        [$port{def}, '/'];
}

is(codes(), '200 200 200 200', 'everything open at start');

$t->set_state('r', 'shop', 'on', 1);
ok($t->wait_for(sub { codes() eq '503 200 200 200' }, 5),
   'shop on: only the shop server is gated') or diag(codes());

$t->set_state('r', 'api', 'on', 1);
ok($t->wait_for(sub { codes() eq '503 200 503 200' }, 5),
   'api on: shop and api gated') or diag(codes());

my $r = $t->http($port{api}, '/');
is($r->{headers}{'x-scope-mode'}, 'on', '$maintenance for the api scope');
is($r->{headers}{'x-scope-epoch'}, '1', '$maintenance_epoch');
$r = $t->http($port{def}, '/');
is($r->{headers}{'x-scope-mode'}, 'off', '$maintenance for default');

$t->set_state('r', 'reports', 'on', 9);
ok($t->wait_for(sub { codes() eq '503 503 503 200' }, 5),
   'reports on: the location with its own scope is gated')
    or diag(codes());
is($t->http($port{shop}, '/reports')->{headers}{'x-scope-epoch'}, '9',
   'the location reads its own scope');

$t->set_state('r', 'shop', 'off', 2);
ok($t->wait_for(sub { codes() eq '200 503 503 200' }, 5),
   'shop off: shop open, reports and api stay gated') or diag(codes());

$t->set_state('r', 'default', 'on', 5);
ok($t->wait_for(sub { codes() eq '200 503 503 503' }, 5),
   'default on: only the default server changes') or diag(codes());

$t->set_state('r', $_, 'off', 20) for qw(api reports default);
ok($t->wait_for(sub { codes() eq '200 200 200 200' }, 5),
   'all off: everything open') or diag(codes());

$t->stop_nginx('n');
$t->check_logs('n');

done_testing;
