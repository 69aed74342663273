# scope_names.t: a scope name that would collide with the fixed fields of
# the edge hash (seen_ms, version, pid) is refused by both sides.
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use MigTest;

my $t = MigTest->new;

for my $name (qw(pid seen_ms version)) {
    $t->nginx_conf("n$name", <<"CONF");
load_module %%MODULE%%;
events { worker_connections 64; }
http {
    server {
        listen 127.0.0.1:%%PORT_$name%%;
        maintenance on;
        maintenance_scope $name;
        location / { return 200; }
    }
}
CONF
    my ($rc, $out) = $t->nginx_test("n$name");
    isnt($rc, 0, "nginx -t refuses maintenance_scope $name");
    like($out, qr/invalid scope "$name".*reserved/, '... and says why');

    my $r = $t->migctl('--scope', $name, 'maintenance', 'status');
    is($r->{rc}, 2, "migctl --scope $name is a usage error");
    like($r->{err}, qr/^migctl: .*"$name" is reserved/, '... in one line');
}

$t->nginx_conf('ok', <<'CONF');
load_module %%MODULE%%;
events { worker_connections 64; }
http {
    server {
        listen 127.0.0.1:%%PORT_ok%%;
        maintenance on;
        maintenance_scope pids;
        location / { return 200; }
    }
}
CONF
my ($rc) = $t->nginx_test('ok');
is($rc, 0, 'a scope that only starts like a reserved name is fine');

done_testing;
