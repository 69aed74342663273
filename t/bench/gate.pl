# gate.pl: what the gate costs on the request path.  One nginx, three
# locations measured side by side in one run with wrk on loopback:
#   ungated   maintenance off (the module present, not deciding)
#   open      maintenance on, flag off: the decision, then the content
#   closed    maintenance on, flag on: the 503 page from memory
# Ratios against "ungated" are what to compare across machines.
use strict;
use warnings;
use lib 't/lib';
use MigTest;

my $secs = $ENV{BENCH_SECONDS} || 3;
my $t = MigTest->new;
$t->start_redis('r');
$t->nginx_conf('n', <<'CONF');
load_module %%MODULE%%;
worker_processes 1;
events { worker_connections 1024; }
http {
    access_log off;
    maintenance_redis 127.0.0.1:%%PORT_r%%;
    maintenance_poll 1s;
    server {
        listen 127.0.0.1:%%PORT_ungated%%;
        location / { return 200 "app\n"; }
    }
    server {
        listen 127.0.0.1:%%PORT_open%%;
        maintenance on;
        maintenance_scope open;
        location / { return 200 "app\n"; }
    }
    server {
        listen 127.0.0.1:%%PORT_closed%%;
        maintenance on;
        maintenance_scope closed;
        location / { return 200 "app\n"; }
    }
}
CONF
$t->redis('r', 'HSET', 'migctl:state:open', 'mode', 'off', 'epoch', '1');
$t->redis('r', 'HSET', 'migctl:state:closed', 'mode', 'on', 'epoch', '1');
$t->start_nginx('n');
$t->wait_for(sub { $t->http($t->port('closed'), '/')->{status} == 503 }, 5)
    or die "closed scope never reached maintenance\n";
$t->http($t->port('open'), '/')->{status} == 200 or die "open scope gated\n";

my %rps;
for my $name (qw(ungated open closed)) {
    my $out = `wrk -t 1 -c 32 -d ${secs}s http://127.0.0.1:@{[$t->port($name)]}/ 2>&1`;
    my ($rps) = $out =~ /Requests\/sec:\s+([\d.]+)/;
    die "wrk failed for $name: $out" unless $rps;
    my ($non2xx) = $out =~ /Non-2xx or 3xx responses:\s+(\d+)/;
    $rps{$name} = $rps;
    printf "%-8s %10.0f req/s%s\n", $name, $rps,
        $non2xx ? "  ($non2xx non-2xx: the maintenance answer)" : '';
}
printf "ratio open/ungated   %.3f\n", $rps{open} / $rps{ungated};
printf "ratio closed/ungated %.3f\n", $rps{closed} / $rps{ungated};
$t->stop_nginx('n');
