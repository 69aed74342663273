# module_set.t: our module among every dynamic module Debian's nginx-extras
# ships (nchan bundles its own hiredis and exports ~100 redis* symbols;
# nginx loads modules with global symbols).  Loaded before and after them,
# the gate works through Redis, no [alert], no worker exits on a signal.
# And the .so itself exports no redis* symbol and needs none.
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use MigTest;

my $t = MigTest->new;
my $so = MigTest->root . '/build/ngx_http_maintenance_module.so';

# --- the symbols ----------------------------------------------------------

my $nm = $t->run({}, 'nm', '-D', $so);
is($nm->{rc}, 0, 'nm -D reads the module');
my @def = grep { /^\S+ [TDBRVW] (redis|sds|hi_)/ } split /\n/, $nm->{out};
my @undef = grep { /^\s+U (redis|sds|freeReplyObject|hi_)/ }
            split /\n/, $nm->{out};
is(scalar @def, 0, 'no redis*/sds* symbol exported') or diag(join "\n", @def);
is(scalar @undef, 0, 'no redis*/sds* symbol left for another module to '
   . 'provide') or diag(join "\n", @undef);

# --- every module of nginx-extras ------------------------------------------

# the snippets Debian installs, one load_module each; dependencies first
# (ndk before lua, stream before stream_geoip), as modules-enabled orders
my @mods;
for my $f (glob '/usr/share/nginx/modules-available/*.conf') {
    for (split /\n/, $t->read_file($f) // '') {
        push @mods, $1 if /^\s*load_module\s+(\S+?);/;
    }
}
@mods = map { m{^/} ? $_ : "/usr/share/nginx/$_" } @mods;
# our own package's snippet, on a machine where it is installed: the
# module under test is the build's, loaded once
@mods = grep { !m{/ngx_http_maintenance_module\.so$} } @mods;
sub rank {
    my ($m) = @_;
    return 0 if $m =~ /ndk_http_module/;
    return 1 if $m =~ /ngx_(stream|mail)_module\.so$/;
    return 3 if $m =~ /ngx_stream_/;
    return 2;
}
@mods = sort { rank($a) <=> rank($b) || $a cmp $b } @mods;
my ($nchan) = grep { /nchan/ } @mods;

SKIP: {
    skip 'nginx-extras is not installed (apt-get install nginx-extras)',
        1 unless $nchan && -e $nchan;

    diag(scalar(@mods) . ' modules of nginx-extras');
    $t->start_redis('r');

    for my $order (qw(first last)) {
        my $ours = "load_module $so;\n";
        my $theirs = join '', map { "load_module $_;\n" } @mods;
        my $loads = $order eq 'first' ? $ours . $theirs : $theirs . $ours;
        $t->nginx_conf($order, <<"CONF");
$loads
worker_processes 2;
events { worker_connections 64; }
http {
    access_log off;
    maintenance_redis 127.0.0.1:%%PORT_r%% timeout=500ms;
    maintenance_poll 200ms;
    maintenance_node_id $order;
    maintenance on;

    server {
        listen 127.0.0.1:%%PORT_${order}_http%%;
        location / { return 200 "app\\n"; }
    }

    server {
        listen 127.0.0.1:%%PORT_${order}_st%%;
        maintenance off;
        location /status { maintenance_status; }
    }
}
CONF
        my ($rc, $out) = $t->nginx_test($order);
        is($rc, 0, "ours $order: nginx -t accepts the configuration")
            or diag($out);
        $t->start_nginx($order);
    }

    sub code { $t->http($t->port("$_[0]_http"), '/')->{status} }
    sub redis_up {
        ($t->http($t->port("$_[0]_st"), '/status')->{body} // '')
            =~ /"redis":\{[^}]*"up":true/ ? 1 : 0;
    }

    for my $order (qw(first last)) {
        ok($t->wait_for(sub { redis_up($order) }, 5),
           "ours $order: the Redis link is up");
    }

    my $epoch = 0;
    for my $mode (qw(on off on off)) {
        $t->set_state('r', 'default', $mode, ++$epoch);
        my $want = $mode eq 'on' ? 503 : 200;
        for my $order (qw(first last)) {
            ok($t->wait_for(sub { code($order) == $want }, 3),
               "ours $order: mode $mode (epoch $epoch) serves $want");
        }
    }

    for my $order (qw(first last)) {
        my @sig = grep { /exited on signal/ } split /\n/,
                  $t->error_log($order);
        is(scalar @sig, 0, "ours $order: no worker exited on a signal")
            or diag($sig[0] . ' (' . scalar(@sig) . ' times)');
        $t->stop_nginx($order);
        $t->check_logs($order);
    }
}

done_testing;
