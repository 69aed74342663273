# config_errors.t: configuration errors name the directive, the file and
# the line at fault; maintenance_poll is bounded; an enum directive lists
# its values; "maintenance_bypass_token off" turns an inherited token off;
# a body over client_max_body_size gets 413 before the gate answers.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use lib 't/lib';
use MigTest;

my $t = MigTest->new;

my $token = 'Cfg-errors-token-' . join('', map { ('a'..'z')[rand 26] } 1 .. 20);
my $tfile = $t->write_file('secret/bypass.token', "$token\n");

# each case: the http block's lines; the error must be on line $line of
# nginx.conf (load_module is line 1, "http {" line 3)
sub refuse {
    my ($name, $body, $re, $line, $label) = @_;
    $t->nginx_conf($name, "load_module %%MODULE%%;\n"
                        . "events { worker_connections 64; }\n"
                        . "http {\n$body"
                        . "    server { listen 127.0.0.1:%%PORT_x%%; }\n"
                        . "    server { listen 127.0.0.1:%%PORT_y%%; }\n"
                        . "}\n");
    my ($rc, $out) = $t->nginx_test($name);
    isnt($rc, 0, "$label: nginx -t fails");
    like($out, $re, "$label: the message says what is wrong") or diag($out);
    like($out, qr{\Q$name\E/nginx\.conf:$line\b},
         "$label: at the directive's own line ($line)") or diag($out);
    unlike($out, qr/"(?:location|server|listen)" directive/,
           "$label: no other directive is blamed");
    return $out;
}

refuse('poll0', "    maintenance_poll 0;\n",
       qr/"maintenance_poll" must be at least 50ms, not "0"/, 4,
       'maintenance_poll 0');
refuse('poll49', "    maintenance_redis 127.0.0.1:1;\n"
                 . "    maintenance_poll 49ms;\n",
       qr/"maintenance_poll" must be at least 50ms, not "49ms"/, 5,
       'maintenance_poll 49ms');
refuse('pollbad', "    maintenance_poll soon;\n",
       qr/"maintenance_poll" directive invalid value/, 4,
       'maintenance_poll soon');

my $out = refuse('enum', "    maintenance_redis_failure lsat;\n",
                 qr/invalid value "lsat" in "maintenance_redis_failure" directive, it must be "last", "open" or "closed"/,
                 4, 'maintenance_redis_failure lsat');

# the reference: what nginx says for a bad flag
refuse('flag', "    maintenance onn;\n",
       qr/invalid value "onn" in "maintenance" directive, it must be "on" or "off"/,
       4, 'maintenance onn');

# bounds that pass
for my $v ('50ms', '1s', '1m') {
    $t->nginx_conf("pollok", "load_module %%MODULE%%;\n"
                           . "events { worker_connections 64; }\n"
                           . "http { maintenance_poll $v; "
                           . "maintenance_redis_failure closed; }\n");
    my ($rc, $o) = $t->nginx_test('pollok');
    is($rc, 0, "maintenance_poll $v passes") or diag($o);
}

# "off" is not a file name: it turns an inherited token off
refuse('tokdup', "    maintenance_bypass_token off;\n"
                 . "    maintenance_bypass_token $tfile;\n",
       qr/"maintenance_bypass_token" directive is duplicate/, 5,
       'maintenance_bypass_token off, then a file');

# --- at run time: the override file closes the scope, no Redis needed -----

my $force = $t->write_file('force', "");

$t->nginx_conf('run', <<"CONF");
load_module %%MODULE%%;
worker_processes 1;
events { worker_connections 64; }
http {
    access_log off;
    maintenance_override_file $force;
    maintenance on;
    maintenance_bypass_token $tfile;
    client_max_body_size 1k;

    server {
        listen 127.0.0.1:%%PORT_run%%;
        location / { return 200 "app\\n"; }
        location /notoken {
            maintenance_bypass_token off;
            location /notoken/again {
                proxy_pass http://127.0.0.1:%%PORT_run2%%;
            }
            return 200 "app\\n";
        }
    }

    server {
        listen 127.0.0.1:%%PORT_run2%%;
        maintenance_bypass_token off;
        location / { return 200 "app\\n"; }
        location /own {
            maintenance_bypass_token $tfile;
            return 200 "app\\n";
        }
    }
}
CONF

my ($rc, $o) = $t->nginx_test('run');
is($rc, 0, 'maintenance_bypass_token off parses in server and location')
    or diag($o);
unlike($o, qr/\Q$token\E/, 'nginx -t does not print the token');

$t->start_nginx('run');
my $p = $t->port('run');
my $p2 = $t->port('run2');
my %tok = ('X-Maintenance-Bypass' => $token);

is($t->http($p, '/')->{status}, 503, 'the override file closes the scope');
is($t->http($p, '/', headers => \%tok)->{status}, 200,
   'the inherited token passes');
is($t->http($p, '/notoken', headers => \%tok)->{status}, 503,
   'location "maintenance_bypass_token off": the token no longer passes');
is($t->http($p, '/notoken', headers => { Cookie => "maintenance_bypass=$token" })
     ->{status}, 503, 'nor as a cookie');
is($t->http($p, '/notoken/again', headers => \%tok)->{status}, 503,
   'a nested location inherits the "off"');
is($t->http($p2, '/', headers => \%tok)->{status}, 503,
   'server "maintenance_bypass_token off": the http-level token is off');
is($t->http($p2, '/own', headers => \%tok)->{status}, 200,
   'a location below it may set its own token again');

# 413 comes from nginx's core before the rewrite phase: document it
my $r = $t->http($p, '/', method => 'POST', body => 'x' x 4096);
is($r->{status}, 413,
   'a body over client_max_body_size: 413, before the gate answers');
$r = $t->http($p, '/', method => 'POST', body => 'x' x 100);
is($r->{status}, 503, 'a body under the limit: the maintenance page');

# a chunked body is not known before the gate: it is discarded
{
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $p,
                                  Proto => 'tcp', Timeout => 5);
    my $chunk = 'x' x 4096;
    print $s "POST / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
           . "Transfer-Encoding: chunked\r\n\r\n"
           . sprintf("%x\r\n%s\r\n0\r\n\r\n", length $chunk, $chunk);
    my $resp = '';
    my $end = time + 5;
    while (time < $end) {
        my $n = sysread($s, my $buf, 65536);
        last unless $n;
        $resp .= $buf;
    }
    like($resp, qr{^HTTP/1\.1 503}, 'a chunked body over the limit: the page');
}

$t->stop_nginx('run');
unlike($t->error_log('run'), qr/\Q$token\E/, 'the token is not in error.log');
$t->check_logs('run');

# --- the example configuration passes, strict guard and all -------------

{
    my $ex = $t->read_file(MigTest->root . '/conf-examples/nginx.conf');
    my $d = $t->nginx_dir('example');
    my ($crt, $key) = $t->self_signed_cert('ex');
    my $page = $t->write_file('ex/page.html', "page\n");
    my $json = $t->write_file('ex/page.json', "{}\n");
    my $pass = $t->write_file('ex/redis.pass', "pw\n");
    $ex =~ s{load_module \S+;}{load_module %%MODULE%%;};
    $ex =~ s{/etc/ssl/\S+/fullchain\.pem}{$crt}g;
    $ex =~ s{/etc/ssl/\S+/privkey\.pem}{$key}g;
    $ex =~ s{/etc/nginx/maintenance/index\.html}{$page}g;
    $ex =~ s{/etc/nginx/maintenance/index\.json}{$json}g;
    $ex =~ s{/etc/nginx/maintenance/bypass\.token}{$tfile}g;
    $ex =~ s{/etc/nginx/redis\.pass}{$pass}g;
    $ex =~ s{include\s+mime\.types;}{include /etc/nginx/mime.types;};
    $ex =~ s{/var/log/nginx/}{$d/}g;
    $ex =~ s{maintenance_state_file \S+;}{maintenance_state_file $d/state;};
    $ex =~ s{maintenance_override_file \S+;}
            {maintenance_override_file $d/force;};
    like($ex, qr/maintenance_strict on;/, 'the example is strict');
    $t->nginx_conf('example', $ex);
    my ($rc, $o) = $t->nginx_test('example');
    is($rc, 0, 'the example configuration passes nginx -t') or diag($o);
    unlike($o, qr/maintenance: server_name/, 'without a guard message');
}

done_testing;
