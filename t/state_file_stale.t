# state_file_stale.t: only the worker 0 that owns the zone writes the state
# file, as soon as the served state changes, and a new owner rewrites a file
# that differs from the zone: an old worker 0 draining a download across a
# reload, or a worker 0 killed inside the poll window, must not leave a
# stale file that a cold start with Redis frozen would serve.  nginx -t
# refuses a state file directory the workers cannot write; write errors
# show in status.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use JSON::PP qw(decode_json);
use Time::HiRes qw(time);
use lib 't/lib';
use MigTest;

my $t = MigTest->new;

$t->start_redis('r');

# a poll of 2 s: a write left to the next tick is caught in its window
my $conf = <<'CONF';
load_module %%MODULE%%;
worker_processes %%WORKERS%%;
events { worker_connections 64; }
http {
    access_log off;
    maintenance_redis 127.0.0.1:%%PORT_r%% timeout=300ms;
    maintenance_poll 2s;
    maintenance_node_id %%NAME%%;
    maintenance_state_file %%DIR%%/state/maintenance.state;
    maintenance on;

    server {
        listen 127.0.0.1:%%PORT_%%NAME%%_a%%;
        location / { return 200 "app\n"; }
    }

    server {
        listen 127.0.0.1:%%PORT_%%NAME%%_st%%;
        maintenance off;
        location /status { maintenance_status; }
        location /big { root %%DIR%%; limit_rate 32k; }
    }
}
CONF

sub setup {
    my ($name, $workers) = @_;
    (my $c = $conf) =~ s/%%WORKERS%%/$workers/;
    $c =~ s/%%NAME%%/$name/g;
    $t->nginx_conf($name, $c);
    my $sdir = $t->dir . "/$name/state";
    mkdir $sdir;
    chmod 0777, $sdir;                # worker 0 (nobody) writes in it
    return "$sdir/maintenance.state";
}

sub code { $t->http($t->port("$_[0]_a"), '/')->{status} }
sub status { $t->http($t->port("$_[0]_st"), '/status' . ($_[1] // ''))
                 ->{body} // '' }
# connections from nginx, as Redis sees them (without this query's own)
sub nginx_clients {
    my @c = grep { !/ cmd=client/ }
            split /\n/, $t->redis('r', 'CLIENT', 'LIST');
    return scalar @c;
}
sub edge_pid { $t->redis('r', 'HGET', "migctl:edge:$_[0]", 'pid') // 0 }

# cold start with Redis frozen (SIGSTOP: connects, never answers): the node
# must come back in the mode of the state file, and stay in it after the
# link to the frozen Redis times out
sub cold_start_frozen {
    my ($name, $want, $what) = @_;
    $t->stop_nginx($name);
    $t->kill_redis('r', 'STOP');
    $t->start_nginx($name);
    is(code($name), $want, "$what: cold start with Redis frozen serves $want");
    ok($t->wait_for(sub { $t->error_log($name)
                          =~ /redis command link to \S+ down/ }, 5),
       "$what: the link to the frozen Redis went down");
    is(code($name), $want, "$what: still $want with the link down");
    like(status($name), qr/"default":\{"mode":"\w+","epoch":\d+,"source":
                          "state_file"/x, "$what: source state_file");
    $t->kill_redis('r', 'CONT');
}

# --- 1. on 1 -> off 2 -> HUP -> on 3; the old worker 0 drains a download --

my $sf = setup('h', 1);
sub hfile { $t->read_file($sf) // '' }
$t->write_file($t->dir . '/h/big', 'x' x (8 * 1024 * 1024));

$t->start_nginx('h');
ok($t->wait_for(sub { status('h') =~ /"redis":\{[^}]*"up":true/ }, 5),
   'h: synced');

$t->set_state('r', 'default', 'on', 1);
ok($t->wait_for(sub { hfile() =~ /^default on 1 /m }, 5), 'h: file on 1');

# a slow download held open on the only worker (worker 0)
my $dl = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                               PeerPort => $t->port('h_st'), Proto => 'tcp',
                               Timeout => 5) or die "connect: $!";
print $dl "GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n";
my $head = '';
$t->wait_for(sub { sysread($dl, $head, 4096, length $head);
                   $head =~ /\r\n\r\n/ }, 5);
like($head, qr{^HTTP/1\.1 200}, 'h: the slow download started');
my ($old_w0) = $t->worker_pids('h');

$t->set_state('r', 'default', 'off', 2);
ok($t->wait_for(sub { code('h') == 200 }, 3), 'h: off 2 served');
my $t0 = time;
ok($t->wait_for(sub { hfile() =~ /^default off 2 /m }, 1),
   'h: the file follows the change at once, not at the next tick');
diag(sprintf('h: state file written %.0f ms after the change was served',
             1000 * (time - $t0)));

kill 'HUP', $t->nginx_pid('h');
my $new_w0;
ok($t->wait_for(sub {
    ($new_w0) = grep { $_ != $old_w0
                       && $t->process_title($_) =~ /worker process$/ }
                $t->worker_pids('h');
    $new_w0 && edge_pid('h') == $new_w0;
}, 10), 'h: a new worker 0 after HUP took over');
ok($t->wait_for(sub { $t->process_title($old_w0) =~ /shutting down/ }, 5),
   'h: the old worker 0 still drains the download');
# the next change must reach only the new worker 0: wait until the old one
# has closed its Redis links (Redis sees the new pair only)
ok($t->wait_for(sub { nginx_clients() == 2 }, 5),
   'h: the old worker 0 let go of Redis');

$t->set_state('r', 'default', 'on', 3);
ok($t->wait_for(sub { code('h') == 503 }, 3), 'h: on 3 served');
ok($t->wait_for(sub { hfile() =~ /^default on 3 /m }, 3), 'h: file on 3');

close $dl;
ok($t->wait_gone($old_w0, 10), 'h: the old worker 0 exited');
like(hfile(), qr/^default on 3 /m,
     'h: the exiting old worker 0 did not rewrite the file');
unlike($t->error_log('h'), qr/\[\w+\] $old_w0#\d+: .*write state file/,
       'h: nor tried to');

cold_start_frozen('h', 503, 'h');
$t->stop_nginx('h');
$t->check_logs('h');

# --- 2. kill -9 of worker 0 inside the poll window ----------------------

$sf = setup('k', 2);
sub kfile { $t->read_file($sf) // '' }

$t->start_nginx('k');
$t->set_state('r', 'default', 'off', 4);
ok($t->wait_for(sub { kfile() =~ /^default off 4 /m }, 5), 'k: file off 4');
ok($t->wait_for(sub { edge_pid('k') }, 5), 'k: heartbeat in');
my $w0 = edge_pid('k');

$t->set_state('r', 'default', 'on', 5);
ok($t->wait_for(sub { code('k') == 503 }, 3), 'k: on 5 served');
kill 'KILL', $w0;
ok($t->wait_for(sub { my $p = edge_pid('k'); $p && $p != $w0 }, 10),
   'k: worker 0 respawned');
ok($t->wait_for(sub { kfile() =~ /^default on 5 /m }, 3),
   'k: the file says on 5 after the kill');

# a write lost to a kill (between fsync and rename): the respawned owner
# finds a file that differs from the zone and rewrites it
$w0 = edge_pid('k');
$t->write_file($sf, "default off 4 0 0\n");
kill 'KILL', $w0;
ok($t->wait_for(sub { my $p = edge_pid('k'); $p && $p != $w0 }, 10),
   'k: worker 0 respawned again');
my $w0b = edge_pid('k');
ok($t->wait_for(sub { kfile() =~ /^default on 5 /m }, 3),
   'k: the new owner rewrote the stale file it inherited');

# --- 3. write errors in status --------------------------------------------

my $sdir = $t->dir . '/k/state';
chmod 0755, $sdir;                    # root's: worker 0 cannot write
$t->set_state('r', 'default', 'on', 6);
ok($t->wait_for(sub { status('k') =~ /"state_file_errors":[1-9]/ }, 3),
   'k: status counts the failed write');
# worker 0 counts first, then stores the error text and logs it (another
# worker may serve the status in between): wait for the log, written last
$t->wait_for(sub { $t->error_log('k') =~ /cannot write state file/ }, 3);
my $js = eval { decode_json(status('k')) } // {};
like($js->{state_file_last_error} // '',
     qr/^open\(\) "\Q$sf\E\.tmp\.\d+" failed \(13: Permission denied\)$/,
     'k: status shows the last error');
cmp_ok($js->{counters}{state_file_errors} // 0, '>=', 1,
       'k: status: counters.state_file_errors');
my $prom = status('k', '?format=prometheus');
like($prom, qr/^nginx_maintenance_state_file_errors_total [1-9]/m,
     'k: prometheus: state_file_errors_total');
like($prom, qr/^nginx_maintenance_state_file_failing 1$/m,
     'k: prometheus: failing');
like($t->error_log('k'), qr/\[error\].*cannot write state file/,
     'k: logged at error');
like(kfile(), qr/^default on 5 /m, 'k: the old file is intact');

chmod 0777, $sdir;
ok($t->wait_for(sub { kfile() =~ /^default on 6 /m }, 5),
   'k: written at the next try once the directory is writable');
# the file is renamed in a thread, the status follows in the event loop
ok($t->wait_for(sub {
    $js = eval { decode_json(status('k')) } // {};
    exists $js->{state_file_last_error}
        && !defined $js->{state_file_last_error};
}, 2), 'k: status: last error cleared (null)');
cmp_ok($js->{counters}{state_file_errors}, '>=', 1,
       'k: the counter keeps the failures');
like(status('k', '?format=prometheus'),
     qr/^nginx_maintenance_state_file_failing 0$/m, 'k: not failing');
like($t->error_log('k'), qr/\[error\].*state file \S+ written again/,
     'k: recovery logged');
my @tmp = grep { !/maintenance\.state$/ } glob "$sdir/*";
is(scalar @tmp, 0, 'k: no temporary file left');

cold_start_frozen('k', 503, 'k');
$t->stop_nginx('k');
$t->check_logs('k', qr/worker process ($w0|\d+) exited on signal 9/);

# --- 4. nginx -t: the workers must be able to write the directory ---------

my $tconf = <<'CONF';
load_module %%MODULE%%;
user %%USER%%;
events { worker_connections 64; }
http {
    maintenance_state_file %%STATE%%;
    server {
        listen 127.0.0.1:%%PORT_t%%;
        location / { return 200; }
    }
}
CONF

sub conf_t {
    my ($path, $user) = @_;
    (my $c = $tconf) =~ s/%%STATE%%/$path/;
    $c =~ s/%%USER%%/$user \/\/ 'nobody nogroup'/e;
    $t->nginx_conf('t', $c);
}

SKIP: {
    skip 'nginx -t as another user needs root', 6 unless $> == 0;

    my $d = $t->dir . '/t/sd';
    conf_t("$d/maintenance.state");
    my ($rc, $out) = $t->nginx_test('t');
    isnt($rc, 0, 'nginx -t: a missing directory fails');
    like($out, qr/maintenance_state_file.*\Q$d\E.*No such file/,
         'nginx -t: names the directory and why') or diag($out);

    mkdir $d;
    chmod 0755, $d;
    ($rc, $out) = $t->nginx_test('t');
    isnt($rc, 0, 'nginx -t: a directory only root can write fails');
    like($out, qr/\Q$d\E.*not writable by user "nobody"/,
         'nginx -t: names the worker user') or diag($out);

    chown scalar(getpwnam('nobody')), 0, $d;
    ($rc, $out) = $t->nginx_test('t');
    is($rc, 0, 'nginx -t: a directory the worker user owns passes')
        or diag($out);

    chown 0, 0, $d;
    chmod 0777, $d;
    ($rc, $out) = $t->nginx_test('t');
    is($rc, 0, 'nginx -t: a world-writable directory passes') or diag($out);
}

# Debian: the old example's path is not writable by www-data; the README's
# directory is
SKIP: {
    skip 'needs root, user www-data and /var/lib/nginx', 3
        unless $> == 0 && getpwnam('www-data') && -d '/var/lib/nginx';

    conf_t('/var/lib/nginx/maintenance.state', 'www-data');
    my ($rc, $out) = $t->nginx_test('t');
    isnt($rc, 0, 'nginx -t: /var/lib/nginx/maintenance.state as www-data '
                 . 'fails');
    like($out, qr{"/var/lib/nginx" is not writable by user "www-data"},
         'nginx -t: says why') or diag($out);

    my $d = $t->dir . '/t/maintenance';
    system('install', '-d', '-o', 'www-data', '-g', 'www-data', '-m', '0750',
           $d);
    conf_t("$d/maintenance.state", 'www-data');
    ($rc, $out) = $t->nginx_test('t');
    is($rc, 0, "nginx -t: README's install -d directory passes")
        or diag($out);
}

done_testing;
