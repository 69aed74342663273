# pages.t: the built-in HTML and JSON pages, Accept: application/json,
# custom pages read from files at load, maintenance_status_code.
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use MigTest;

my $t = MigTest->new;

$t->start_redis('r');

my $html = $t->write_file('pages/down.html',
                          "<html><body>custom down page</body></html>\n");
my $json = $t->write_file('pages/down.json',
                          qq({"custom":"json page"}\n));
chmod 0644, $html, $json;

$t->nginx_conf('n', <<"CONF");
load_module %%MODULE%%;
events { worker_connections 64; }
http {
    access_log off;
    maintenance_redis 127.0.0.1:%%PORT_r%%;
    maintenance_poll 200ms;
    maintenance on;

    server {
        listen 127.0.0.1:%%PORT_builtin%%;
        location / { return 200 "app\\n"; }
    }

    server {
        listen 127.0.0.1:%%PORT_custom%%;
        maintenance_page $html;
        maintenance_page_json $json;
        maintenance_status_code 502;
        maintenance_retry_after 600;

        location / { return 200 "app\\n"; }
        location /teapot {
            maintenance_status_code 429;
            return 200 "app\\n";
        }
    }
}
CONF

my ($rc, $out) = $t->nginx_test('n');
is($rc, 0, 'nginx -t accepts custom pages') or diag($out);

$t->start_nginx('n');
my $b = $t->port('builtin');
my $c = $t->port('custom');

$t->set_state('r', 'default', 'on', 1);
ok($t->wait_for(sub { $t->http($b, '/')->{status} == 503 }, 5),
   'flag on');

my $r = $t->http($b, '/');
like($r->{headers}{'content-type'}, qr{^text/html}, 'built-in: HTML');
like($r->{body}, qr{<h1>Down for maintenance</h1>}, 'built-in HTML page');

$r = $t->http($b, '/', headers => { Accept => 'application/json' });
is($r->{status}, 503, 'JSON: still 503');
is($r->{headers}{'content-type'}, 'application/json', 'JSON content type');
like($r->{body}, qr/^\{"error":"maintenance"/, 'built-in JSON page');
is($r->{headers}{'retry-after'}, '120', 'JSON: Retry-After too');

$r = $t->http($b, '/', headers => {
    Accept => 'text/html,application/xhtml+xml,application/json;q=0.9' });
like($r->{headers}{'content-type'}, qr{^text/html},
     'a browser naming HTML first gets HTML');

$r = $t->http($b, '/', headers => {
    Accept => 'application/json, text/html;q=0.5' });
is($r->{headers}{'content-type'}, 'application/json',
   'JSON named before HTML gets JSON');

$r = $t->http($b, '/', headers => { Accept => '*/*' });
like($r->{headers}{'content-type'}, qr{^text/html}, '*/* gets HTML');

$r = $t->http($c, '/');
is($r->{status}, 502, 'maintenance_status_code 502');
is($r->{body}, "<html><body>custom down page</body></html>\n",
   'custom HTML page, byte for byte');
is($r->{headers}{'retry-after'}, '600', 'maintenance_retry_after 600');
is($r->{headers}{'cache-control'}, 'no-store', 'custom: no-store');

$r = $t->http($c, '/', headers => { Accept => 'application/json' });
is($r->{status}, 502, 'custom JSON: 502');
is($r->{body}, qq({"custom":"json page"}\n), 'custom JSON page');

$r = $t->http($c, '/teapot/x');
is($r->{status}, 429, 'the innermost status code wins');
is($r->{body}, "<html><body>custom down page</body></html>\n",
   'with the inherited page');

# the page is read once, at load: changing the file changes nothing
$t->write_file('pages/down.html', "changed\n");
is($t->http($c, '/')->{body}, "<html><body>custom down page</body></html>\n",
   'the page is served from memory');

$t->stop_nginx('n');
$t->check_logs('n');

# configuration errors
for my $case (
    [ 'maintenance_status_code 200;', qr/must be between 400 and 599/ ],
    [ 'maintenance_status_code 600;', qr/must be between 400 and 599/ ],
    [ "maintenance_page $html.missing;", qr/down\.html\.missing/ ],
    [ 'maintenance_retry_after 100000;', qr/must be between/ ],
    [ 'maintenance_scope "bad scope";', qr/invalid scope/ ],
    [ 'maintenance maybe;', qr/invalid value "maybe"/ ],
)
{
    my ($line, $re) = @$case;
    $t->nginx_conf('bad', <<"CONF");
load_module %%MODULE%%;
events { worker_connections 64; }
http {
    server {
        listen 127.0.0.1:%%PORT_bad%%;
        $line
    }
}
CONF
    my ($rc, $out) = $t->nginx_test('bad');
    isnt($rc, 0, "nginx -t refuses: $line");
    like($out, $re, "and says why: $line");
}

done_testing;
