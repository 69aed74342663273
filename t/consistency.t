# consistency.t: server blocks sharing a server_name but differing in
# gating get a warning naming both listens; maintenance_strict makes it
# an error.
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use MigTest;

my $t = MigTest->new;
my ($crt, $key) = $t->self_signed_cert('c');

sub conf {
    my ($name, $strict, $tls_gate, $extra) = @_;
    $extra //= '';
    $t->nginx_conf($name, <<"CONF");
load_module %%MODULE%%;
events { worker_connections 64; }
http {
    access_log off;
    maintenance_strict $strict;

    server {
        listen 127.0.0.1:%%PORT_plain%%;
        server_name shop.example www.shop.example;
        maintenance on;
        location / { return 200 "app\\n"; }
    }

    server {
        listen 127.0.0.1:%%PORT_tls%% ssl;
        server_name shop.example;
        ssl_certificate $crt;
        ssl_certificate_key $key;
        $tls_gate
        location / { return 200 "app\\n"; }
    }

    server {
        listen 127.0.0.1:%%PORT_other%%;
        server_name other.example;
        location / { return 200 "other\\n"; }
    }
    $extra
}
CONF
}

my ($plain, $tls) = ($t->port('plain'), $t->port('tls'));

# :80 gated, :443 not
conf('warn', 'off', 'maintenance off;');
my ($rc, $out) = $t->nginx_test('warn');
is($rc, 0, 'inconsistent gating: nginx -t still succeeds');
like($out, qr/\[warn\].*maintenance: server_name "shop\.example" is gated/,
     'a warning names the server_name');
like($out, qr/listen 127\.0\.0\.1:$plain\b/, 'it names the gated listen');
like($out, qr/listen 127\.0\.0\.1:$tls ssl\b/, 'and the ungated one');
like($out, qr/nginx\.conf:\d+/, 'with file and line');
unlike($out, qr/other\.example/, 'a server with another name is left alone');
is(() = $out =~ /maintenance: server_name/g, 1, 'one warning for the pair');

# the warning is in error.log on a real start too
$t->start_nginx('warn');
like($t->error_log('warn'), qr/\[warn\].*server_name "shop\.example"/,
     'the warning is logged at start');
$t->stop_nginx('warn');
$t->check_logs('warn');

# both gated: silent
conf('ok', 'on', 'maintenance on;');
($rc, $out) = $t->nginx_test('ok');
is($rc, 0, 'consistent gating passes with strict on');
unlike($out, qr/maintenance: server_name/, 'without a warning');

# gated at http level on both but a different scope on one
conf('scope', 'off', 'maintenance on; maintenance_scope api;');
($rc, $out) = $t->nginx_test('scope');
is($rc, 0, 'different scopes: nginx -t succeeds');
like($out, qr/server_name "shop\.example" is gated by scope "default" at listen 127\.0\.0\.1:$plain.*but by scope "api" at listen 127\.0\.0\.1:$tls ssl/,
     'a scope mismatch names both scopes and both listens');

# strict: an error
conf('strict', 'on', 'maintenance off;');
($rc, $out) = $t->nginx_test('strict');
isnt($rc, 0, 'maintenance_strict on: nginx -t fails');
like($out, qr/\[emerg\].*server_name "shop\.example" is gated/,
     'the message is an error');
like($out, qr/listen 127\.0\.0\.1:$plain\b.*listen 127\.0\.0\.1:$tls ssl/,
     'naming both listens');
ok(!eval { $t->start_nginx('strict'); 1 }, 'and nginx does not start');

# the effective gating of each location is compared, and names match as
# nginx matches them: exact, wildcard (*.x, .x, x.*) and regex
sub twin {
    my ($name, $twin, $plain_extra) = @_;
    $plain_extra //= '';
    $t->nginx_conf($name, <<"CONF");
load_module %%MODULE%%;
events { worker_connections 64; }
http {
    access_log off;
    maintenance_strict on;
    maintenance on;

    server {
        listen 127.0.0.1:%%PORT_plain%%;
        server_name shop.example www.shop.example;
        location / { return 200 "app\\n"; }
        location = /healthz { maintenance_health; }
        $plain_extra
    }

    server {
        listen 127.0.0.1:%%PORT_tls%% ssl;
        ssl_certificate $crt;
        ssl_certificate_key $key;
        $twin
    }
}
CONF
    return $t->nginx_test($name);
}

for my $case (
    [ 'tls location / off',
      'server_name shop.example; location / { maintenance off; }',
      qr/server_name "shop\.example" is gated \(scope "default"\) at listen 127\.0\.0\.1:$plain .*but not gated at listen 127\.0\.0\.1:$tls ssl .*location "\/"/ ],
    [ 'tls location /admin/ off',
      'server_name www.shop.example; location / { } '
      . 'location /admin/ { maintenance off; }',
      qr/server_name "www\.shop\.example" is gated .*location "\/admin\/"/ ],
    [ 'tls nested location off',
      'server_name shop.example; '
      . 'location /api/ { location /api/v2/ { maintenance off; } }',
      qr/location "\/api\/v2\/"/ ],
    [ 'tls location of another scope',
      'server_name shop.example; location / { maintenance_scope api; }',
      qr/server_name "shop\.example" is gated by scope "default" .*but by scope "api" .*location "\/"/ ],
    [ 'wildcard *.shop.example ungated',
      'server_name *.shop.example; maintenance off;',
      qr/server_name "www\.shop\.example" \(as "\*\.shop\.example"\) is gated .*but not gated/ ],
    [ 'wildcard .shop.example ungated',
      'server_name .shop.example; maintenance off;',
      qr/server_name "shop\.example" \(as "\.shop\.example"\) is gated/ ],
    [ 'wildcard www.shop.* ungated',
      'server_name www.shop.*; maintenance off;',
      qr/server_name "www\.shop\.example" \(as "www\.shop\.\*"\) is gated/ ],
    [ 'regex name ungated',
      'server_name ~^(www\.)?shop\.example$; maintenance off;',
      qr/server_name "shop\.example" \(as "\Q~^(www\.)?shop\.example\E\$"\) is gated/ ],
    [ 'regex location of the same pattern ungated',
      'server_name shop.example; location / { } '
      . 'location ~ \.php$ { maintenance off; }',
      qr/location "\Q~ \.php\E\$"/, 'location ~ \.php$ { }' ],
)
{
    my ($label, $twin, $re, $extra) = @$case;
    my ($rc, $out) = twin('twin', $twin, $extra);
    isnt($rc, 0, "strict: $label: nginx -t fails");
    like($out, qr/\[emerg\].*$re/, "strict: $label: the error says where")
        or diag($out);
}

for my $case (
    [ 'gated alike, location by location',
      'server_name shop.example; location / { } location /admin/ { }' ],
    [ 'a wildcard twin gated alike', 'server_name *.shop.example;' ],
    [ 'a wildcard that matches no name of the other',
      'server_name *.other.example; maintenance off;' ],
    [ 'a health location only in the twin',
      'server_name shop.example; location / { } '
      . 'location = /lb { maintenance_health; } '
      . 'location = /st { maintenance_status; }' ],
    [ 'the same URI open in both (ACME over HTTP)',
      'server_name shop.example; location / { } '
      . 'location /.well-known/acme-challenge/ { maintenance off; }',
      'location /.well-known/acme-challenge/ { maintenance off; }' ],
)
{
    my ($label, $twin, $extra) = @$case;
    my ($rc, $out) = twin('twin', $twin, $extra);
    is($rc, 0, "strict: $label: nginx -t passes") or diag($out);
    unlike($out, qr/maintenance: server_name/, "strict: $label: silent");
}

# http-level directives: parsing errors name the bad token, secrets are
# never printed
my $pw = $t->write_file('secret/redis.pass', "s3cret-Redis-pass\n");
my $empty = $t->write_file('secret/empty.pass', "\n");
for my $case (
    [ 'maintenance_redis 127.0.0.1:6379 db=x;', qr/invalid parameter "db=x"/ ],
    [ 'maintenance_redis 127.0.0.1:6379 bogus=1;',
      qr/invalid parameter "bogus=1"/ ],
    [ 'maintenance_redis 127.0.0.1:6379 timeout=0;',
      qr/invalid parameter "timeout=0"/ ],
    [ 'maintenance_redis unix:relative.sock;', qr/absolute path/ ],
    [ 'maintenance_redis 127.0.0.1:99999;', qr/invalid port/ ],
    [ "maintenance_redis 127.0.0.1:6379 password_file=$pw.missing;",
      qr/redis\.pass\.missing/ ],
    [ "maintenance_redis 127.0.0.1:6379 password_file=$empty;", qr/is empty/ ],
    [ 'maintenance_redis 127.0.0.1:1; maintenance_redis 127.0.0.1:2;',
      qr/is duplicate/ ],
    [ 'maintenance_prefix "a:b";', qr/invalid name "a:b"/ ],
    [ 'maintenance_node_id "";', qr/invalid name/ ],
    [ 'maintenance_poll 0;',
      qr/"maintenance_poll" must be at least 50ms, not "0"/ ],
    [ 'maintenance_redis_failure sometimes;', qr/invalid value "sometimes"/ ],
    [ 'server { listen 127.0.0.1:%%PORT_x%%; maintenance_redis 127.0.0.1:1; }',
      qr/"maintenance_redis" directive is not allowed here/ ],
    [ 'server { listen 127.0.0.1:%%PORT_x%%; maintenance_health; }',
      qr/"maintenance_health" directive is not allowed here/ ],
)
{
    my ($line, $re) = @$case;
    $t->nginx_conf('bad', <<"CONF");
load_module %%MODULE%%;
events { worker_connections 64; }
http {
    $line
}
CONF
    my ($rc, $out) = $t->nginx_test('bad');
    isnt($rc, 0, "nginx -t refuses: $line");
    like($out, $re, "and says why: $line");
}

$t->nginx_conf('good', <<"CONF");
load_module %%MODULE%%;
events { worker_connections 64; }
http {
    maintenance_redis localhost:%%PORT_r%% db=2 user=edge password_file=$pw
                      timeout=250ms;
    maintenance_prefix mig.test;
    maintenance_node_id edge-1.example;
    maintenance_poll 500ms;
    maintenance_redis_failure closed;
    maintenance_state_file state/maintenance.state;
    maintenance_override_file %%DIR%%/force;
}
CONF
# the state file's directory must exist, writable by the workers (nobody)
mkdir $t->nginx_dir('good') . '/state';
chmod 0777, $t->nginx_dir('good') . '/state';
($rc, $out) = $t->nginx_test('good');
is($rc, 0, 'every http-level directive parses') or diag($out);
unlike($out, qr/s3cret/, 'the Redis password is not printed');

$t->nginx_conf('unixsock', <<"CONF");
load_module %%MODULE%%;
events { worker_connections 64; }
http { maintenance_redis unix:/run/redis/redis.sock; }
CONF
($rc, $out) = $t->nginx_test('unixsock');
is($rc, 0, 'a unix socket address parses') or diag($out);

done_testing;
