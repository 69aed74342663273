# state_file_upgrade.t: a binary upgrade (kill -USR2) runs two generations
# of nginx side by side, each with its own zone and its own worker 0, both
# rewriting maintenance_state_file.  The file must never move a scope back
# to an older epoch: not while both run, not after the old master is QUIT,
# not on a rollback (HUP the old master, QUIT the new one); a restart with
# Redis down serves the last state set.
use strict;
use warnings;
use Test::More;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);
use lib 't/lib';
use MigTest;

my $t = MigTest->new;

# USR2 re-executes the master's argv[0]: start nginx by absolute path
my ($NGINX) = grep { -x } map { "$_/nginx" } split /:/,
              "$ENV{PATH}:/usr/sbin:/usr/local/sbin";
plan skip_all => 'no nginx binary' unless $NGINX;

$t->start_redis('r');

$t->nginx_conf('u', <<'CONF');
load_module %%MODULE%%;
worker_processes 2;
events { worker_connections 64; }
http {
    access_log off;
    maintenance_redis 127.0.0.1:%%PORT_r%% timeout=300ms;
    maintenance_poll 200ms;
    maintenance_state_file %%DIR%%/state/maintenance.state;
    maintenance on;

    server {
        listen 127.0.0.1:%%PORT_a%%;
        location / { return 200 "a\n"; }
    }

    server {
        listen 127.0.0.1:%%PORT_b%%;
        maintenance_scope api;
        location / { return 200 "b\n"; }
    }

    server {
        listen 127.0.0.1:%%PORT_st%%;
        maintenance off;
        location /status { maintenance_status; }
    }
}
CONF

my $dir = $t->dir . '/u';
my $sdir = "$dir/state";
mkdir $sdir;
chmod 0777, $sdir;                    # worker 0 (nobody) writes in it
my $sf = "$sdir/maintenance.state";
my $pidfile = "$dir/nginx.pid";

# every master this test started, killed at the end whatever happens
my %masters;
END {
    for my $m (keys %masters) {
        next unless kill 0, $m;
        kill 'CONT', $m;
        kill 'TERM', $m;
    }
}

sub pid_of {
    my $p = $t->read_file($_[0]) // return 0;
    $p =~ s/\s+//g;
    return $p || 0;
}

sub alive { my $p = shift; $p && kill(0, $p) && (-e "/proc/$p") }

# worker processes of a master (not a shutting-down one), lowest pid first:
# worker 0 is spawned first
sub workers {
    my ($master) = @_;
    my @w;
    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $fh, '<', $stat or next;
        my $l = <$fh> // '';
        close $fh;
        my ($pid, $st, $ppid) = $l =~ /^(\d+) \(.*\) (\S) (\d+)/s
            or next;
        next unless $ppid == $master && $st ne 'Z';
        push @w, $pid if $t->process_title($pid) =~ /worker process$/;
    }
    my @s = sort { $a <=> $b } @w;
    return @s;
}

sub start_nginx_abs {
    unlink $pidfile;
    my @cmd = $t->_nginx_cmd('u');
    $cmd[0] = $NGINX;
    my $r = $t->run({}, @cmd);
    die "nginx failed to start: $r->{err}" . $t->error_log('u') if $r->{rc};
    $t->{nginx}{u}{running} = 1;
    $t->wait_for(sub { pid_of($pidfile) }, 10) or die "nginx: no pid file";
    my $m = pid_of($pidfile);
    $masters{$m} = 1;
    $t->{nginx}{u}{pid} = $m;
    $t->wait_port($t->port($_), 10) or die "nginx: port $_ not listening"
        for qw(a b st);
    $t->wait_for(sub { workers($m) == 2 }, 10) or die "nginx: no workers";
    return $m;
}

# USR2: the new master's pid in nginx.pid, the old one's in nginx.pid.oldbin
sub upgrade {
    my ($old) = @_;
    kill 'USR2', $old;
    my $new;
    $t->wait_for(sub {
        return 0 unless pid_of("$pidfile.oldbin") == $old;
        $new = pid_of($pidfile);
        $new && $new != $old && workers($new) == 2;
    }, 15) or return 0;
    $masters{$new} = 1;
    return $new;
}

sub quit_master {
    my ($m) = @_;
    kill 'QUIT', $m;
    my $gone = $t->wait_gone($m, 15);
    delete $masters{$m} if $gone;
    return $gone;
}

sub status { $t->http($t->port('st'), '/status')->{body} // '' }
sub code { $t->http($t->port($_[0]), '/')->{status} }

# --- a sampler: a child that reads the file in a loop --------------------

# Reads the file until told to stop (or 60 s, 2e6 samples); every sample
# must parse whole (a comment line, then "scope mode epoch retry since"
# lines, newline-terminated, each scope once) and no scope's epoch may be
# lower than in an earlier sample.  Reports "samples bad backwards
# first-problem" in a file.
sub sampler_start {
    my ($tag) = @_;
    my $stop = $t->dir . "/sampler.$tag.stop";
    my $out = $t->dir . "/sampler.$tag.out";
    unlink $stop, $out;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        # never back into the test's code: its END would stop the daemons
        local $SIG{__DIE__} = sub { POSIX::_exit(2) };
        my (%hi, $n, $bad, $back, $first);
        ($n, $bad, $back) = (0, 0, 0);
        my $end = time + 60;
        while ($n < 2_000_000 && time < $end && !-e $stop) {
            my $text = $t->read_file($sf);
            next unless defined $text;        # not written yet
            $n++;
            my ($ok, %seen) = (1);
            $ok = 0 unless $text =~ /\A#[^\n]*\n/ && $text =~ /\n\z/;
            for my $l (split /\n/, $text) {
                next if $l =~ /^#/;
                my ($s, $e) = $l =~ /^(\S+) (?:on|off) (\d+) \d+ -?\d+$/
                    or do { $ok = 0; next };
                $ok = 0 if $seen{$s}++;
                if (defined $hi{$s} && $e < $hi{$s}) {
                    $back++;
                    $first //= "$s $hi{$s} -> $e";
                }
                $hi{$s} = $e if !defined $hi{$s} || $e > $hi{$s};
            }
            unless ($ok) {
                $bad++;
                (my $q = $text) =~ s/\n/\\n/g;
                $first //= "unparsable: '$q'";
            }
        }
        open my $fh, '>', "$out.new" or POSIX::_exit(1);
        print $fh "$n $bad $back ", $first // '-', "\n";
        close $fh;
        rename "$out.new", $out;
        POSIX::_exit(0);
    }
    return { pid => $pid, stop => $stop, out => $out, tag => $tag };
}

sub sampler_stop {
    my ($s) = @_;
    $t->write_file($s->{stop}, '');
    $t->wait_for(sub { waitpid($s->{pid}, WNOHANG) == $s->{pid} }, 70)
        or do { kill 'KILL', $s->{pid}; waitpid($s->{pid}, 0) };
    my $r = $t->read_file($s->{out}) // "0 0 0 sampler-died\n";
    chomp $r;
    my ($n, $bad, $back, $first) = split / /, $r, 4;
    diag("$s->{tag}: $n samples, $bad unparsable, $back backwards"
         . ($first ne '-' ? " (first: $first)" : ''));
    return ($n, $bad, $back, $first);
}

# --- toggles -------------------------------------------------------------

my %epoch = (default => 0, api => 0);
my %mode = (default => 'off', api => 'off');

sub toggle {
    my ($s) = @_;
    $epoch{$s}++;
    $mode{$s} = $mode{$s} eq 'on' ? 'off' : 'on';
    $t->set_state('r', $s, $mode{$s}, $epoch{$s}, retry_after => 30,
                  since => int time);
}

# N toggles (bounded also in time), alternating the scopes, at a varying
# pace so that the two writers' jobs interleave in every way
sub toggles {
    my ($n, $seconds) = @_;
    my $end = time + $seconds;
    my $i = 0;
    for (; $i < $n && time < $end; $i++) {
        toggle($i % 3 ? 'default' : 'api');
        sleep(0.0005 * ($i % 13));
    }
    return $i;
}

sub file_is_last {
    my $f = $t->read_file($sf) // '';
    for my $s (qw(default api)) {
        return 0 unless $f =~ /^\Q$s\E \Q$mode{$s}\E $epoch{$s} 30 \d+$/m;
    }
    return 1;
}

sub phase {
    my ($tag, $n) = @_;
    my $smp = sampler_start($tag);
    my $t0 = time;
    my $done = toggles($n, 20);
    my $ok = $t->wait_for(\&file_is_last, 5);
    diag(sprintf("%s: %d toggles in %.1f s", $tag, $done, time - $t0));
    my ($samples, $bad, $back) = sampler_stop($smp);
    cmp_ok($samples, '>', 0, "$tag: the file was sampled");
    is($bad, 0, "$tag: every sample parsed");
    is($back, 0, "$tag: no scope's epoch ever went backwards");
    ok($ok, "$tag: the file holds the last state")
        or diag('file: ' . ($t->read_file($sf) // '(none)')
                . "want default $mode{default} $epoch{default}, "
                . "api $mode{api} $epoch{api}");
}

# --- 1. start, a state, USR2 -------------------------------------------

my $m1 = start_nginx_abs();
ok($t->wait_for(sub { status() =~ /"redis":\{[^}]*"up":true/ }, 5),
   'synced with Redis');
toggle('default');
toggle('api');
ok($t->wait_for(\&file_is_last, 5), 'the file holds the first state');

my $m2 = upgrade($m1);
ok($m2, 'USR2: a new master and its workers next to the old one')
    or BAIL_OUT('no binary upgrade: ' . $t->error_log('u'));
ok(alive($m1) && workers($m1) == 2, 'the old generation still runs');
ok($t->wait_for(sub { scalar(() = $t->redis('r', 'CLIENT', 'LIST')
                                  =~ /^id=/mg) >= 5 }, 10),
   'both worker 0s are linked to Redis (two connections each)');

# --- 2. both generations write ---------------------------------------------

phase('two generations', 300);

# --- 3. the old master QUIT: the new generation writes alone -----------------

ok(quit_master($m1), 'QUIT: the old master exited');
$t->{nginx}{u}{pid} = $m2;
phase('after QUIT of the old master', 100);

# --- 4. another upgrade, rolled back: WINCH the old workers, HUP the old
#        master back, QUIT the new one ------------------------------------

my $m3 = upgrade($m2);
ok($m3, 'USR2 again: a third master');
phase('two generations again', 150);

# Redis rebuilt while both run (FLUSHALL): epochs start again at 1, and
# both writers must write them over the higher ones of before
$t->redis('r', 'FLUSHALL');
%epoch = (default => 0, api => 0);
toggle('default');
toggle('api');
ok($t->wait_for(\&file_is_last, 5),
   'Redis rebuilt during the upgrade: the file follows epochs from 1')
    or diag('file: ' . ($t->read_file($sf) // '(none)'));
phase('two generations, rebuilt Redis', 100);

my @old = workers($m2);
kill 'WINCH', $m2;
ok($t->wait_for(sub { !grep { alive($_) } @old }, 15),
   'WINCH: the old workers exited');
phase('new generation alone', 60);

# The old zone was left behind at the WINCH: a HUP starts old workers
# whose worker 0 finds the file newer than its zone, while Redis is frozen
# (it cannot catch up: what it writes stays).
my $smp = sampler_start('rollback, Redis frozen');
$t->kill_redis('r', 'STOP');
kill 'HUP', $m2;
my @back;
ok($t->wait_for(sub { (@back = workers($m2)) == 2 }, 10),
   'HUP: the old master has workers again');
# worker 0 writes what it owes as it starts, before its command link to the
# frozen Redis times out (300 ms) and goes down: wait for that
ok($t->wait_for(sub { $t->error_log('u')
                      =~ /\] $back[0]#\d+: .*redis command link to \S+ down/ },
                5), 'the old worker 0 found Redis frozen');
my (undef, $bad, $back) = sampler_stop($smp);
is($bad, 0, 'rollback, Redis frozen: every sample parsed');
is($back, 0, 'rollback, Redis frozen: the old generation did not move the '
             . 'file back to its older zone');
ok(file_is_last(), 'rollback, Redis frozen: the file holds the last state');
$t->kill_redis('r', 'CONT');

ok(quit_master($m3), 'rollback: the new master QUIT');
$t->{nginx}{u}{pid} = $m2;
ok($t->wait_for(sub { status() =~ /"redis":\{[^}]*"up":true/ }, 5),
   'the old generation is synced with Redis again');
phase('rolled back', 100);

# --- 5. a restart with Redis stopped serves the last state ---------------

my %want = (a => $mode{default} eq 'on' ? 503 : 200,
            b => $mode{api} eq 'on' ? 503 : 200);
$t->stop_nginx('u');
delete $masters{$m2} unless alive($m2);
$t->stop_redis('r');
my $m4 = start_nginx_abs();
is(code('a'), $want{a}, "restart with Redis down: default $mode{default}");
is(code('b'), $want{b}, "restart with Redis down: api $mode{api}");
like(status(), qr/"default":\{"mode":"$mode{default}","epoch":$epoch{default},
                  "source":"state_file"/x,
     'status: default restored from the file, the last epoch');
like(status(), qr/"api":\{"mode":"$mode{api}","epoch":$epoch{api},
                  "source":"state_file"/x,
     'status: api restored from the file, the last epoch');

my @tmp = grep { !/maintenance\.state$/ } glob "$sdir/*";
is(scalar @tmp, 0, 'no temporary file left beside it');

$t->stop_nginx('u');
delete $masters{$m4} unless alive($m4);
$t->check_logs('u');

# --- 6. the merge rules, one step at a time (and under valgrind) ---------
#
# The test plays the other generation's writer: it renames its own file in
# place, then a change makes worker 0 write.

$t->start_redis('r2');

sub merge_rules {
    my ($name, $valgrind) = @_;
    my $wait = $valgrind ? 30 : 5;
    my $top = $valgrind ? "master_process off;\ndaemon off;\n"
                        . "pid %%DIR%%/nginx.pid;\n" : '';
    $t->nginx_conf($name, <<CONF);
load_module %%MODULE%%;
$top
events { worker_connections 64; }
http {
    access_log off;
    maintenance_redis 127.0.0.1:%%PORT_r2%% timeout=1s;
    maintenance_poll 200ms;
    maintenance_state_file %%DIR%%/state/maintenance.state;
    maintenance on;

    server {
        listen 127.0.0.1:%%PORT_${name}_st%%;
        maintenance off;
        location /status { maintenance_status; }
    }

    server {
        listen 127.0.0.1:%%PORT_${name}_b%%;
        maintenance_scope api;
        location / { return 200 "b\\n"; }
    }
}
CONF
    my $d = $t->dir . "/$name";
    mkdir "$d/state";
    chmod 0777, "$d/state";
    my $f = "$d/state/maintenance.state";
    my $file = sub { $t->read_file($f) // '' };
    my $has = sub {
        my ($text) = @_;
        return $t->wait_for(sub { $file->() =~ /^\Q$text\E /m }, $wait);
    };
    my $put = sub {
        $t->write_file("$f.test", "# another writer\n$_[0]");
        chmod 0666, "$f.test";
        rename "$f.test", $f or die "rename: $!";
    };
    $t->redis('r2', 'FLUSHALL');

    my $pid;
    if ($valgrind) {
        $pid = $t->start_nginx_valgrind($d);
        ok($t->wait_port($t->port("${name}_st"), 60),
           "$name: nginx under valgrind listens");
    } else {
        $t->start_nginx($name);
    }

    $t->set_state('r2', 'default', 'on', 10);
    $t->set_state('r2', 'api', 'off', 3);
    ok($has->('default on 10') && $has->('api off 3'),
       "$name: the file holds both scopes");

    # another writer renamed a newer default and a scope we do not have
    $put->("default off 50 0 0\napi off 3 0 0\ngone on 7 30 1700000000\n");
    $t->set_state('r2', 'api', 'on', 4);
    ok($has->('api on 4'), "$name: our change written");
    like($file->(), qr/^default off 50 0 0$/m,
         "$name: the other writer's newer epoch kept over ours (10)");
    like($file->(), qr/^gone on 7 30 1700000000$/m,
         "$name: a scope we have no state for kept as it was");
    like($file->(), qr/\A#[^\n]*\n(?:\S+ (?:on|off) \d+ \d+ -?\d+\n){3}\z/,
         "$name: three lines, each scope once");

    $t->set_state('r2', 'default', 'on', 51);
    ok($has->('default on 51'), "$name: a newer epoch of ours replaces it");

    # Redis rebuilt: epochs start again at 1; ours must not lose to 51
    $t->redis('r2', 'FLUSHALL');
    $t->set_state('r2', 'default', 'off', 1);
    ok($has->('default off 1'),
       "$name: after a rebuilt Redis the epoch starting again is written");
    like($file->(), qr/^api on 4 /m, "$name: the other scope unchanged");

    # a file that does not parse is replaced, and said so
    $put->("default banana\n");
    $t->set_state('r2', 'api', 'off', 2);
    ok($has->('api off 2'), "$name: written over an unparsable file");
    like($file->(), qr/^default off 1 /m, "$name: default written again");
    unlike($file->(), qr/banana|^gone /m, "$name: the damaged file is gone");
    # logged in the event loop once the thread's rename is done
    my $re = qr/\[warn\].*state file \S+ could not be read or did not parse:/
             . qr/ replaced/;
    ok($t->wait_for(sub { $t->error_log($name) =~ $re }, $wait),
       "$name: the replacement logged");
    my @tmp = grep { !/maintenance\.state$/ } glob "$d/state/*";
    is(scalar @tmp, 0, "$name: no temporary file left");

    if ($valgrind) {
        my ($w) = $t->quit_nginx_valgrind($pid, 30);
        is($w, $pid, "$name: graceful exit");
        my $vg = $t->read_file("$d/valgrind.log") // '';
        is($vg, '', "$name: valgrind reports nothing") or diag($vg);
    } else {
        $t->stop_nginx($name);
    }
    $t->check_logs($name);
}

merge_rules('m', 0);

SKIP: {
    skip 'valgrind not installed', 17
        unless grep { -x "$_/valgrind" } split /:/, $ENV{PATH};
    merge_rules('v', 1);
}

done_testing;
