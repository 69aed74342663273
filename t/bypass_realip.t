# bypass_realip.t: the CIDR bypass decides on the client address the rest
# of the location sees (realip at server level before the gate, realip at
# location level confirmed after it), and the bypass header and cookie
# never reach the application, bypassed or open.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use lib 't/lib';
use MigTest;

my $t = MigTest->new;

$t->start_redis('r');

my $token = 'Rip-bypass-' . join('', map { ('a'..'z')[rand 26] } 1 .. 24);
my $tfile = $t->write_file('secret/bypass.token', "$token\n");

# the application: echoes what it was sent, and logs it
my $app = <<'APP';
        location / {
            return 200 "xmb=[$http_x_maintenance_bypass] cookie=[$http_cookie] xff=[$http_x_forwarded_for]\n";
        }
APP

$t->nginx_conf('n', <<"CONF");
load_module %%MODULE%%;
worker_processes 2;
events { worker_connections 128; }
http {
    log_format bp '\$server_port \$request_uri addr=\$remote_addr '
                  'bypass=[\$maintenance_bypass] \$status';
    log_format app 'app \$request_uri xmb=[\$http_x_maintenance_bypass] '
                   'cookie=[\$http_cookie]';
    access_log %%DIR%%/access.log bp;

    maintenance_redis 127.0.0.1:%%PORT_r%%;
    maintenance_poll 200ms;
    maintenance on;

    # realip in the location: runs after the gate's rewrite phase
    server {
        listen 127.0.0.1:%%PORT_loc%%;
        maintenance_bypass_cidr 127.0.0.0/8;
        location / {
            set_real_ip_from 127.0.0.1;
            real_ip_header X-Forwarded-For;
            proxy_pass http://127.0.0.1:%%PORT_app%%;
        }
        location /office/ {
            set_real_ip_from 127.0.0.1;
            real_ip_header X-Forwarded-For;
            maintenance_bypass_cidr 198.51.100.0/24;
            proxy_pass http://127.0.0.1:%%PORT_app%%;
        }
        location /static/ {
            set_real_ip_from 127.0.0.1;
            real_ip_header X-Forwarded-For;
            return 200 "static\\n";
        }
    }

    # realip in the server: runs before the gate
    server {
        listen 127.0.0.1:%%PORT_srv%%;
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Forwarded-For;
        maintenance_bypass_cidr 127.0.0.0/8;
        location / {
            proxy_pass http://127.0.0.1:%%PORT_app%%;
        }
        location /office/ {
            maintenance_bypass_cidr 198.51.100.0/24;
            proxy_pass http://127.0.0.1:%%PORT_app%%;
        }
    }

    # the token: stripped before the request goes upstream
    server {
        listen 127.0.0.1:%%PORT_tok%%;
        maintenance_bypass_token $tfile;
        location / {
            proxy_pass http://127.0.0.1:%%PORT_app%%;
        }
        location /down/ {
            proxy_pass http://127.0.0.1:%%PORT_closed%%;
            error_page 502 = /fallback;
        }
        location = /fallback {
            return 200 "fallback bypass=[\$maintenance_bypass]\n";
        }
    }

    server {
        listen 127.0.0.1:%%PORT_app%%;
        maintenance off;
        access_log %%DIR%%/app.log app;
$app    }
}
CONF

my ($rc, $out) = $t->nginx_test('n');
is($rc, 0, 'nginx -t accepts realip with a CIDR bypass') or diag($out);

$t->start_nginx('n');
my ($lp, $sp, $kp) = ($t->port('loc'), $t->port('srv'), $t->port('tok'));

$t->set_state('r', 'default', 'on', 7);
ok($t->wait_for(sub { $t->http($kp, '/')->{status} == 503 }, 5), 'flag on');

my %far = ('X-Forwarded-For' => '203.0.113.9');
my %near = ('X-Forwarded-For' => '127.0.0.9');
my %office = ('X-Forwarded-For' => '198.51.100.7');

# --- realip in the location ----------------------------------------------

my $r = $t->http($lp, '/far', headers => \%far);
is($r->{status}, 503,
   'location realip: a forwarded client outside the CIDR is gated');
unlike($r->{body}, qr/xmb=/, 'and the app never answered');

$r = $t->http($lp, '/near', headers => \%near);
is($r->{status}, 200, 'location realip: a forwarded client inside passes');
like($r->{body}, qr/xff=\[127\.0\.0\.9\]/, 'to the app');

$r = $t->http($lp, '/local');
is($r->{status}, 200, 'location realip: a local client, no header: passes');

$r = $t->http($lp, '/office/x', headers => \%office);
is($r->{status}, 503,
   'location realip: a forwarded client the CIDR names is gated all the '
   . 'same (the gate saw the proxy; put realip in the server)');

$r = $t->http($lp, '/static/x', headers => \%far);
is($r->{status}, 200,
   'location realip: a "return" in the rewrite phase answers on the '
   . 'address that phase sees (the proxy)');

# --- realip in the server --------------------------------------------------

is($t->http($sp, '/far', headers => \%far)->{status}, 503,
   'server realip: a forwarded client outside the CIDR is gated');
is($t->http($sp, '/near', headers => \%near)->{status}, 200,
   'server realip: a forwarded client inside passes');
$r = $t->http($sp, '/office/y', headers => \%office);
is($r->{status}, 200,
   'server realip: a forwarded client the CIDR names passes');

# --- the token never reaches the app -----------------------------------

sub raw {
    my ($port, @lines) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 5)
        or return '';
    print $s join("\r\n", @lines, 'Connection: close', '', '');
    my $resp = '';
    my $end = time + 5;
    while (time < $end) {
        my $n = sysread($s, my $buf, 65536);
        last unless $n;
        $resp .= $buf;
    }
    close $s;
    return $resp;
}

sub token_cases {
    my ($when) = @_;

    my $r = $t->http($kp, "/$when/h",
                     headers => { 'X-Maintenance-Bypass' => $token });
    is($r->{status}, 200, "$when: the token in the header passes");
    like($r->{body}, qr/xmb=\[\] /, "$when: the app gets no bypass header");

    $r = $t->http($kp, "/$when/c", headers =>
                  { Cookie => "a=1; maintenance_bypass=$token; b=2" });
    is($r->{status}, 200, "$when: the token in a cookie passes");
    like($r->{body}, qr/cookie=\[a=1; b=2\]/,
         "$when: the app gets the other cookies, not the bypass cookie");

    $r = $t->http($kp, "/$when/only",
                  headers => { Cookie => "maintenance_bypass=$token" });
    is($r->{status}, 200, "$when: the bypass cookie alone passes");
    like($r->{body}, qr/cookie=\[\] /, "$when: the app gets no Cookie");

    my $resp = raw($kp, "GET /$when/two HTTP/1.1", 'Host: localhost',
                   'Cookie: a=1', "X-Maintenance-Bypass: $token",
                   "Cookie: maintenance_bypass=$token;c=3",
                   "x-maintenance-bypass: $token");
    like($resp, qr{^HTTP/1\.1 200}, "$when: two cookies, two headers: 200");
    like($resp, qr/xmb=\[\] cookie=\[a=1; c=3\]/,
         "$when: the app gets neither header, only the other cookies");
}

token_cases('bypass');

# an internal redirect (error_page) reaches a gated location again: the
# token, stripped by the first, still counts there
$r = $t->http($kp, '/down/x', headers => { 'X-Maintenance-Bypass' => $token });
is($r->{status}, 200, 'after an error_page redirect the header token counts');
is($r->{body}, "fallback bypass=[token]\n", 'in the gated fallback location');
$r = $t->http($kp, '/down/y',
              headers => { Cookie => "maintenance_bypass=$token" });
is($r->{body}, "fallback bypass=[token]\n", 'so does the cookie token');
is($t->http($kp, '/down/z')->{status}, 503, 'no token: gated there');

# a wrong token is gated, and is not passed on either
$r = $t->http($kp, '/bypass/wrong', headers => { 'X-Maintenance-Bypass' => 'x' });
is($r->{status}, 503, 'a wrong token is gated');

$t->set_state('r', 'default', 'off', 8);
ok($t->wait_for(sub { $t->http($kp, '/')->{status} == 200 }, 5), 'flag off');

token_cases('open');

$r = $t->http($kp, '/open/wrong',
              headers => { 'X-Maintenance-Bypass' => 'not-the-token',
                           Cookie => 'maintenance_bypass=nope; z=9' });
like($r->{body}, qr/xmb=\[\] cookie=\[z=9\]/,
     'open: a wrong token is not passed on either');

$r = $t->http($kp, '/open/plain', headers => { Cookie => 'a=1; b=2' });
like($r->{body}, qr/xmb=\[\] cookie=\[a=1; b=2\]/,
     'open: other cookies go through untouched');

$t->stop_nginx('n');

my $applog = $t->read_file($t->dir . '/n/app.log') // '';
like($applog, qr{^app /open/c }m, 'the app logged the requests');
unlike($applog, qr/\Q$token\E/, 'the token is not in the app\'s log');
unlike($applog, qr/maintenance_bypass/, 'nor the cookie\'s name');

my $log = $t->read_file($t->dir . '/n/access.log') // '';
like($log, qr{^$lp /far addr=203\.0\.113\.9 bypass=\[\] 503$}m,
     'access log: location realip, gated, on the forwarded address');
like($log, qr{^$lp /near addr=127\.0\.0\.9 bypass=\[cidr\] 200$}m,
     'access log: location realip, bypass=cidr on the forwarded address');
like($log, qr{^$sp /far addr=203\.0\.113\.9 bypass=\[\] 503$}m,
     'access log: server realip, gated');
like($log, qr{^$sp /office/y addr=198\.51\.100\.7 bypass=\[cidr\] 200$}m,
     'access log: server realip, bypass=cidr');

unlike($t->error_log('n'), qr/\Q$token\E/, 'the token is not in error.log');
$t->check_logs('n');

done_testing;
