package MigTest;

# MigTest: the test harness.  Each test gets a temp dir and free loopback
# ports, starts real redis-server, nginx and PostgreSQL in it, and stops
# every daemon it started by PID at exit, also when the test dies.

use strict;
use warnings;

use Cwd qw(abs_path);
use Exporter qw(import);
use File::Basename qw(dirname);
use Fcntl qw(:flock);
use File::Path qw(make_path);
use File::Spec;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use Socket qw(SOL_SOCKET SO_RCVTIMEO SO_SNDTIMEO);
use POSIX qw(:sys_wait_h);
use Test::More;
use Time::HiRes qw(time sleep);

our @EXPORT_OK = qw();

my $ROOT = abs_path(dirname(__FILE__) . '/../..');
my @ALL;                           # every harness object, for END

sub new {
    my ($class, %opt) = @_;
    my $dir = tempdir('migtest-XXXXXX', TMPDIR => 1,
                      CLEANUP => !$ENV{MIGTEST_KEEP});
    chmod 0755, $dir;              # workers (nobody) and postgres traverse it
    my $self = bless { dir => $dir, ports => {}, redis => {}, nginx => {},
                       pg => {}, used_ports => {} }, $class;
    push @ALL, $self;
    diag("test dir: $dir") if $ENV{MIGTEST_KEEP};
    return $self;
}

sub dir { $_[0]{dir} }
sub root { $ROOT }

END {
    my $rc = $?;
    $_->stop_all for @ALL;
    $? = $rc;
}

$SIG{INT} = $SIG{TERM} = sub { die "interrupted\n" };

sub stop_all {
    my ($self) = @_;
    for my $pid (@{ $self->{valgrind} || [] }) {
        next unless waitpid($pid, WNOHANG) == 0;    # ours, still running
        kill 'KILL', $pid;
        waitpid($pid, 0);
    }
    for my $n (keys %{ $self->{nginx} }) {
        eval { $self->stop_nginx($n) };
    }
    for my $n (keys %{ $self->{redis} }) {
        eval { $self->stop_redis($n) };
    }
    for my $n (keys %{ $self->{pg} }) {
        eval { $self->stop_pg($n) };
    }
    eval { $self->stop_dns };
}

# --- ports and files ----------------------------------------------------

# Free loopback ports, safe against two harnesses at once (CI and a
# developer, two test files under prove -j) and against this test's own
# client sockets: a port is taken from below the kernel's ephemeral range,
# where connect() never puts an outgoing socket, and locked (flock on a
# file in the temp directory) for the life of this process, so another
# harness skips it even while no daemon listens on it yet (or any more).
# Both TCP and UDP must bind (the DNS server listens on UDP).
my $LOCKDIR;
my @LOCKS;                         # open lock files: held until exit
my ($CURSOR, $CURSOR_PID);         # the next port to try, and whose

sub _port_lock {
    my ($p) = @_;
    unless ($LOCKDIR) {
        $LOCKDIR = File::Spec->tmpdir . '/migtest-ports';
        unless (-d $LOCKDIR) {
            mkdir $LOCKDIR;
            chmod 01777, $LOCKDIR;     # shared by every user, like /tmp
        }
        # made by someone else, not writable: this user's own
        $LOCKDIR .= "-$<" unless -w $LOCKDIR;
        mkdir $LOCKDIR;
    }
    my $f = "$LOCKDIR/$p";
    my $fh;
    # another user's lock file: locked through a read-only descriptor
    open($fh, '>>', $f) or open($fh, '<', $f) or return 0;
    chmod 0666, $f if -O $f;
    flock($fh, LOCK_EX | LOCK_NB) or return 0;
    push @LOCKS, $fh;
    return 1;
}

sub _port_free {
    my ($p) = @_;
    my $tcp = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                    LocalPort => $p, Proto => 'tcp',
                                    Listen => 1, ReuseAddr => 0)
        or return 0;
    my $udp = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                    LocalPort => $p, Proto => 'udp')
        or return 0;
    close $tcp;
    close $udp;
    return 1;
}

sub port {
    my ($self, $name) = @_;
    return $self->{ports}{$name} if $self->{ports}{$name};
    my ($eph) = split ' ', ($self->read_file(
                    '/proc/sys/net/ipv4/ip_local_port_range') // '32768');
    my ($lo, $hi) = (10000, ($eph // 32768) - 1);
    ($lo, $hi) = (1024, 65535) if $hi - $lo < 1000;  # no room below it
    # onwards from a start of this process's own (its pid, the time): not
    # rand(), a test may have seeded it, and a forked child shares its seed
    my $range = $hi - $lo + 1;
    if (!defined $CURSOR || $CURSOR_PID != $$) {
        $CURSOR = ($$ * 7919 + int(time * 1000)) % $range;
        $CURSOR_PID = $$;
    }
    for (1 .. 500) {
        my $p = $lo + ($CURSOR++ % $range);
        next if $self->{used_ports}{$p};
        next unless _port_free($p) && _port_lock($p);
        $self->{used_ports}{$p} = 1;
        return $self->{ports}{$name} = $p;
    }
    die "no free port for $name in $lo..$hi after 500 tries\n";
}

sub write_file {
    my ($self, $rel, $text) = @_;
    my $path = $rel =~ m{^/} ? $rel : "$self->{dir}/$rel";
    make_path(dirname($path));
    open my $fh, '>', $path or die "write $path: $!";
    print $fh $text;
    close $fh or die "close $path: $!";
    chmod 0644, $path;
    return $path;
}

sub read_file {
    my ($self, $path) = @_;
    open my $fh, '<', $path or return undef;
    local $/;
    my $t = <$fh>;
    return $t;
}

sub wait_for {
    my ($self, $cond, $seconds) = @_;
    $seconds //= 5;
    my $end = time + $seconds;
    while (1) {
        my $r = eval { $cond->() };
        return $r if $r;
        return 0 if time > $end;
        sleep 0.01;
    }
}

sub wait_port {
    my ($self, $port, $seconds) = @_;
    return $self->wait_for(sub {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $port, Proto => 'tcp');
        return 0 unless $s;
        close $s;
        1;
    }, $seconds // 10);
}

sub pid_alive {
    my ($pid) = @_;
    return 0 unless $pid;
    return 0 if waitpid($pid, WNOHANG) == $pid;
    return 0 unless kill(0, $pid);
    # a daemon's zombie waits for init to reap it: it is gone already
    open my $fh, '<', "/proc/$pid/stat" or return 0;
    my $l = <$fh> // '';
    return $l =~ /^\d+ \(.*\) Z/s ? 0 : 1;
}

sub wait_gone {
    my ($self, $pid, $seconds) = @_;
    return $self->wait_for(sub { !pid_alive($pid) }, $seconds // 10);
}

sub self_signed_cert {
    my ($self, $name) = @_;
    my $crt = "$self->{dir}/$name.crt";
    my $key = "$self->{dir}/$name.key";
    my $r = $self->run({}, 'openssl', 'req', '-x509', '-newkey', 'ec',
                       '-pkeyopt', 'ec_paramgen_curve:prime256v1',
                       '-nodes', '-keyout', $key, '-out', $crt,
                       '-days', '2', '-subj', '/CN=localhost');
    die "openssl: $r->{err}" if $r->{rc};
    chmod 0644, $crt, $key;
    return ($crt, $key);
}

# --- processes ----------------------------------------------------------

# run({env => {...}, stdin => $text, timeout => s}, @cmd) -> {rc, out, err}
sub run {
    my ($self, $o, @cmd) = @_;
    my $tag = "run" . ++$self->{runs};
    my ($in, $out, $err) = map { "$self->{dir}/.$tag.$_" } qw(in out err);
    $self->write_file($in, defined $o->{stdin} ? $o->{stdin} : '');
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $ENV{$_} = $o->{env}{$_} for keys %{ $o->{env} || {} };
        for (keys %{ $o->{env} || {} }) {
            delete $ENV{$_} unless defined $o->{env}{$_};
        }
        chdir $o->{cwd} if $o->{cwd};
        open STDIN, '<', $in or die;
        open STDOUT, '>', $out or die;
        open STDERR, '>', $err or die;
        exec @cmd or do { print STDERR "exec $cmd[0]: $!\n"; POSIX::_exit(127) };
    }
    my $timeout = $o->{timeout} // 120;
    my $end = time + $timeout;
    my $status;
    while (1) {
        my $w = waitpid($pid, WNOHANG);
        if ($w == $pid) { $status = $?; last }
        if (time > $end) {
            kill 'KILL', $pid;
            waitpid($pid, 0);
            $status = -1;
            last;
        }
        sleep 0.005;
    }
    my $res = {
        rc     => $status == -1 ? -1
                : ($status & 127) ? 128 + ($status & 127) : $status >> 8,
        signal => $status == -1 ? 9 : $status & 127,
        out    => $self->read_file($out) // '',
        err    => $self->read_file($err) // '',
    };
    unlink $in, $out, $err;
    return $res;
}

sub migctl {
    my ($self, @args) = @_;
    my $o = ref $args[0] eq 'HASH' ? shift @args : {};
    my $bin = $ENV{MIGCTL} || "$ROOT/build/migctl";
    my @wrap = $ENV{MIGCTL_WRAP} ? split(' ', $ENV{MIGCTL_WRAP}) : ();
    my %env = (ASAN_OPTIONS => 'detect_leaks=1:abort_on_error=0',
               UBSAN_OPTIONS => 'print_stacktrace=1',
               %{ $o->{env} || {} });
    return $self->run({ %$o, env => \%env }, @wrap, $bin, @args);
}

sub django {
    my ($self, @args) = @_;
    my $o = ref $args[0] eq 'HASH' ? shift @args : {};
    my $proj = shift @args;
    my $manage = -f "$ROOT/t/$proj/manage.py" ? "$ROOT/t/$proj/manage.py"
               : "$ROOT/t/django/manage.py";
    return $self->run({ timeout => 300, %$o }, '/usr/bin/python3', $manage,
                      @args);
}

# --- redis --------------------------------------------------------------

sub start_redis {
    my ($self, $name, %opt) = @_;
    my $port = $self->port($name);
    my $dir = "$self->{dir}/$name";
    make_path($dir);
    my @args = ('redis-server', '--port', $port, '--bind', '127.0.0.1',
                '--dir', $dir, '--appendonly', 'no', '--daemonize', 'no',
                '--logfile', "$dir/redis.log", '--protected-mode', 'no');
    push @args, $opt{persist} ? ('--save', '3600 1', '--dbfilename', 'dump.rdb')
                              : ('--save', '');
    push @args, @{ $opt{args} || [] };
    # a sentinel: Debian's redis-sentinel with a config file it may rewrite
    @args = ('redis-sentinel', $opt{sentinel}) if $opt{sentinel};
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$dir/redis.out";
        open STDERR, '>&', \*STDOUT;
        exec @args or POSIX::_exit(127);
    }
    # ip: where a sentinel binds (its config file says), for redis()
    $self->{redis}{$name} = { pid => $pid, port => $port, dir => $dir,
                              ip => $opt{ip} // '127.0.0.1' };
    # the server on the port must be ours (its pid), not a daemon that
    # took the port first: ours then exits on "Address already in use"
    my $gone;
    my $ok = $self->wait_for(sub {
        return $gone = 1 unless pid_alive($pid);
        return 0 unless ($self->redis($name, 'PING') // '') eq 'PONG';
        my $info = $self->redis($name, 'INFO', 'server') // '';
        return $info =~ /^process_id:(\d+)/m && $1 == $pid;
    }, 10);
    if (!$ok || $gone) {
        if ($gone) {
            delete $self->{redis}{$name};
            waitpid($pid, 0);
        }
        my $log = $self->read_file("$dir/redis.log") // '';
        my $busy = $log =~ /Address already in use/
                 ? "port $port in use by another process: " : '';
        die "redis $name did not start on $port: $busy$log";
    }
    return $port;
}

sub stop_redis {
    my ($self, $name) = @_;
    my $r = delete $self->{redis}{$name} or return;
    kill 'CONT', $r->{pid};
    kill 'TERM', $r->{pid};
    unless ($self->wait_gone($r->{pid}, 10)) {
        kill 'KILL', $r->{pid};
        waitpid($r->{pid}, 0);
    }
}

sub kill_redis {
    my ($self, $name, $sig) = @_;
    my $r = $self->{redis}{$name} or die "no redis $name";
    $sig //= 'KILL';
    kill $sig, $r->{pid};
    if ($sig eq 'KILL') {
        waitpid($r->{pid}, 0);
        delete $self->{redis}{$name};
    }
}

# --- Redis Sentinel -----------------------------------------------------

# A master, one replica and three sentinels (quorum 2) on loopback, ready:
# every sentinel sees the master, the replica and the two others, and the
# replica is in sync (so that a failover can pick it).  ip => IP: the
# sentinels bind there (the master and the replica stay on 127.0.0.1);
# ports => [P1, P2, P3]: their ports (another group's, on another ip).
sub start_sentinels {
    my ($self, $g, %opt) = @_;
    my $name = $opt{master} // 'mymaster';
    my $ip = $opt{ip} // '127.0.0.1';
    if ($opt{ports}) {
        $self->{ports}{"$g-s$_"} = $opt{ports}[$_ - 1] for 1 .. 3;
    }
    my $m = $self->start_redis("$g-m");
    $self->start_redis("$g-r", args => ['--replicaof', '127.0.0.1', $m]);
    my @s = map { "$g-s$_" } 1 .. 3;
    for my $s (@s) {
        my $dir = "$self->{dir}/$s";
        make_path($dir);
        $self->write_file("$dir/sentinel.conf", join('',
            "port ", $self->port($s), "\nbind $ip\n",
            # announced as the others see it, not the source address
            $opt{ip} ? "sentinel announce-ip $ip\n" : '',
            "protected-mode no\ndaemonize no\n",
            "dir $dir\nlogfile $dir/redis.log\n",
            "sentinel monitor $name 127.0.0.1 $m 2\n",
            "sentinel down-after-milliseconds $name ",
            $opt{down_after} // 3000, "\n",
            "sentinel failover-timeout $name ",
            $opt{failover_timeout} // 3000, "\n",
            "sentinel parallel-syncs $name 1\n"));
        $self->start_redis($s, sentinel => "$dir/sentinel.conf", ip => $ip);
    }
    my $group = { name => $name, master => "$g-m", replica => "$g-r",
                  sentinels => \@s,
                  nodes => [ map { "$ip:" . $self->port($_) } @s ] };
    my $ok = $self->wait_for(sub {
        my $info = eval { $self->redis("$g-r", 'INFO', 'replication') } // '';
        return 0 unless $info =~ /master_link_status:up/;
        # and streaming: after a diskless sync the master holds the stream
        # back until the replica's first ACK (up to 1 s); a write made
        # before it and a failover then would lose that write
        # (the master shows offset 0 for the replica until that ACK)
        my $mi = eval { $self->redis("$g-m", 'INFO', 'replication') } // '';
        my ($so) = $mi =~ /^slave0:.*state=online,offset=(\d+)/m;
        return 0 unless $so;
        for my $s (@s) {
            my $r = eval { $self->redis($s, 'SENTINEL', 'master', $name) };
            return 0 unless ref $r eq 'ARRAY';
            my %h = @$r;
            return 0 unless ($h{'num-slaves'} // 0) >= 1
                && ($h{'num-other-sentinels'} // 0) >= 2;
        }
        1;
    }, 30);
    die "sentinels for $name not ready in 30 s\n" unless $ok;
    return $group;
}

# the instance the live sentinels report as master (the majority answer)
sub sentinel_master {
    my ($self, $g) = @_;
    my %by_port = map { $self->port($_) => $_ }
                  grep { defined $self->{ports}{$_} } $g->{master},
                  $g->{replica};
    my %votes;
    for my $s (@{ $g->{sentinels} }) {
        next unless $self->{redis}{$s};
        my $r = eval { $self->redis($s, 'SENTINEL',
                                    'get-master-addr-by-name', $g->{name}) };
        next unless ref $r eq 'ARRAY' && defined $r->[1];
        my $who = $by_port{ $r->[1] } // "127.0.0.1:$r->[1]";
        $votes{$who}++;
    }
    # more than half of those that answered: a tie (two live sentinels,
    # one not told of a failover yet) names no master, instead of either
    # one by hash order
    my $n = 0;
    $n += $_ for values %votes;
    my ($best) = grep { 2 * $votes{$_} > $n } keys %votes;
    return $best;
}

# until the sentinels name a master other than $old that says so itself
sub wait_failover {
    my ($self, $g, $old, $seconds) = @_;
    my $new;
    $self->wait_for(sub {
        my $m = $self->sentinel_master($g) // return 0;
        return 0 if $m eq $old || !$self->{redis}{$m};
        my $role = eval { $self->redis($m, 'ROLE') };
        return 0 unless ref $role eq 'ARRAY' && $role->[0] eq 'master';
        $new = $m;
    }, $seconds // 30);
    return $new;
}

# t/fake_redis.pl as a sentinel that names IP:PORT as master of NAME
sub start_fake_sentinel {
    my ($self, $fake, $name, $ip, $port) = @_;
    my $p = $self->port($fake);
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$self->{dir}/$fake.out";
        open STDERR, '>&', \*STDOUT;
        exec $^X, "$ROOT/t/fake_redis.pl", $p or POSIX::_exit(127);
    }
    $self->{redis}{$fake} = { pid => $pid, port => $p,
                              dir => $self->{dir} };
    $self->wait_port($p, 10) or die "fake sentinel did not start\n";
    $self->redis($fake, 'FAKE', 'SENTINEL', $name, $ip, $port);
    return $p;
}

sub redis_pid { $_[0]{redis}{$_[1]} && $_[0]{redis}{$_[1]}{pid} }

sub redis {
    my ($self, $name, @cmd) = @_;
    my $port = $self->{ports}{$name} // die "no port for redis $name";
    my $ip = ($self->{redis}{$name} && $self->{redis}{$name}{ip})
             // '127.0.0.1';
    my $s = IO::Socket::INET->new(PeerAddr => $ip, PeerPort => $port,
                                  Proto => 'tcp', Timeout => 5)
        or die "redis $name: connect: $!\n";
    _io_timeout($s, 5);
    my $req = '*' . scalar(@cmd) . "\r\n";
    $req .= '$' . length($_) . "\r\n$_\r\n" for @cmd;
    print $s $req;
    my $r = _resp_read($s);
    close $s;
    die "redis $name: $$r\n" if ref $r eq 'MigTest::RedisError';
    return $r;
}

# a read or write that waits longer than this fails instead of hanging the
# test: a stopped or wedged daemon must fail a test, not block the suite
sub _io_timeout {
    my ($sock, $seconds) = @_;
    my $tv = pack('l!l!', $seconds, 0);
    setsockopt($sock, SOL_SOCKET, SO_RCVTIMEO, $tv);
    setsockopt($sock, SOL_SOCKET, SO_SNDTIMEO, $tv);
}

sub _resp_read {
    my ($s) = @_;
    local $/ = "\r\n";
    my $line = <$s>;
    die "redis: connection closed\n" unless defined $line;
    chomp $line;
    my ($t, $v) = (substr($line, 0, 1), substr($line, 1));
    return $v if $t eq '+' || $t eq ':';
    return bless \$v, 'MigTest::RedisError' if $t eq '-';
    if ($t eq '$') {
        return undef if $v < 0;
        my $buf = '';
        while (length($buf) < $v + 2) {
            my $n = read($s, $buf, $v + 2 - length($buf), length($buf));
            die "redis: short read\n" unless $n;
        }
        return substr($buf, 0, $v);
    }
    if ($t eq '*') {
        return undef if $v < 0;
        return [ map { _resp_read($s) } 1 .. $v ];
    }
    die "redis: bad reply '$line'\n";
}

# --- nginx --------------------------------------------------------------

sub nginx_dir {
    my ($self, $name) = @_;
    my $dir = "$self->{dir}/$name";
    make_path("$dir/logs");
    chmod 0777, $dir;             # worker 0 (nobody) writes the state file
    return $dir;
}

sub nginx_conf {
    my ($self, $name, $text) = @_;
    my $dir = $self->nginx_dir($name);
    my $module = "$ROOT/build/ngx_http_maintenance_module.so";
    $text =~ s/%%MODULE%%/$module/g;
    $text =~ s/%%DIR%%/$dir/g;
    $text =~ s/%%TESTDIR%%/$ROOT\/t/g;
    $text =~ s/%%PORT_(\w+)%%/$self->port($1)/ge;
    $self->{nginx}{$name}{conf} = $text;
    $self->write_file("$dir/nginx.conf", $text);
    return "$dir/nginx.conf";
}

sub _nginx_cmd {
    my ($self, $name, @extra) = @_;
    my $dir = $self->nginx_dir($name);
    return ('nginx', '-p', "$dir/", '-c', "$dir/nginx.conf", '-e',
            "$dir/error.log",
            '-g', "daemon on; pid $dir/nginx.pid; error_log $dir/error.log info;",
            @extra);
}

sub nginx_test {
    my ($self, $name) = @_;
    my $r = $self->run({}, $self->_nginx_cmd($name, '-t'));
    return ($r->{rc}, $r->{out} . $r->{err});
}

sub nginx_pid {
    my ($self, $name) = @_;
    my $dir = $self->nginx_dir($name);
    my $p = $self->read_file("$dir/nginx.pid") // return undef;
    $p =~ s/\s+//g;
    return $p || undef;
}

sub start_nginx {
    my ($self, $name) = @_;
    my $dir = $self->nginx_dir($name);
    unlink "$dir/nginx.pid";
    my $r = $self->run({}, $self->_nginx_cmd($name));
    die "nginx $name failed to start: $r->{err}"
        . ($self->read_file("$dir/error.log") // '') if $r->{rc};
    $self->{nginx}{$name}{running} = 1;
    $self->wait_for(sub { $self->nginx_pid($name) }, 10)
        or die "nginx $name: no pid file";
    $self->{nginx}{$name}{pid} = $self->nginx_pid($name);
    for my $p ($self->_listen_ports($name)) {
        $self->wait_port($p, 10) or die "nginx $name: port $p not listening";
    }
    # every worker, not the first: the master forks them one by one, and a
    # test counts them (or takes worker 0) right after this returns
    my ($n) = ($self->{nginx}{$name}{conf} // '')
              =~ /^\s*worker_processes\s+(\d+|auto)\s*;/m;
    $n = 1 unless defined $n;
    $n = scalar(() = ($self->read_file('/proc/cpuinfo') // '')
                     =~ /^processor\s*:/mg) || 1 if $n eq 'auto';
    $self->wait_for(sub { $self->worker_pids($name) >= $n }, 10);
    return $self->{nginx}{$name}{pid};
}

sub _listen_ports {
    my ($self, $name) = @_;
    my $conf = $self->{nginx}{$name}{conf} // '';
    my %p;
    while ($conf =~ /^\s*listen\s+(?:127\.0\.0\.1:|localhost:|\[::1\]:)?(\d+)/mg) {
        $p{$1} = 1;
    }
    return keys %p;
}

# children of the master, from /proc (no procps needed)
sub worker_pids {
    my ($self, $name) = @_;
    my $master = $self->{nginx}{$name}{pid} // $self->nginx_pid($name)
        // return ();
    my @w;
    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $fh, '<', $stat or next;
        my $l = <$fh>;
        close $fh;
        next unless $l && $l =~ /^(\d+) \((.*)\) (\S) (\d+)/s;
        push @w, $1 if $4 == $master && $3 ne 'Z';
    }
    my @s = sort { $a <=> $b } @w;
    return @s;
}

sub process_title {
    my ($self, $pid) = @_;
    my $t = $self->read_file("/proc/$pid/cmdline") // '';
    $t =~ s/\0/ /g;
    $t =~ s/\s+$//;
    return $t;
}

# nginx as one process under valgrind (the config in DIR says
# "daemon off; master_process off;"): its report goes to DIR/valgrind.log.
# Returns the pid; the test stops it (QUIT to see a clean exit), and what
# it leaves running is killed at the end.
sub start_nginx_valgrind {
    my ($self, $dir) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', "$dir/stdout";
        open STDERR, '>&', \*STDOUT;
        exec 'valgrind', '-q', "--log-file=$dir/valgrind.log",
             '--track-fds=no', '--leak-check=no', 'nginx', '-p', "$dir/",
             '-c', "$dir/nginx.conf", '-e', "$dir/error.log", '-g',
             "error_log $dir/error.log info;"
            or POSIX::_exit(127);
    }
    push @{ $self->{valgrind} }, $pid;
    return $pid;
}

# QUIT to such an nginx and its graceful exit, bounded: (pid reaped or 0,
# its wait status); one still running is killed at END (stop_all)
sub quit_nginx_valgrind {
    my ($self, $pid, $secs) = @_;
    kill 'QUIT', $pid;
    my $end = Time::HiRes::time() + ($secs // 30);
    while (Time::HiRes::time() < $end) {
        my $w = waitpid($pid, POSIX::WNOHANG());
        return ($w, $?) if $w == $pid;
        Time::HiRes::sleep(0.05);
    }
    return (0, -1);
}

sub reload_nginx {
    my ($self, $name) = @_;
    my $master = $self->{nginx}{$name}{pid} or die "nginx $name not running";
    my %old = map { $_ => 1 } $self->worker_pids($name);
    my $n = scalar keys %old;
    kill 'HUP', $master;
    $self->wait_for(sub {
        my @new = grep { !$old{$_}
                         && $self->process_title($_) =~ /worker process$/ }
                  $self->worker_pids($name);
        @new >= ($n || 1);
    }, 10) or die "nginx $name: no new workers after HUP";
    $self->wait_for(sub { !grep { $old{$_} } $self->worker_pids($name) }, 10);
}

sub stop_nginx {
    my ($self, $name) = @_;
    my $n = $self->{nginx}{$name} or return;
    return unless $n->{running};
    my $pid = $n->{pid} // $self->nginx_pid($name);
    my @workers = $self->worker_pids($name);
    $n->{running} = 0;
    return unless $pid;
    kill 'CONT', $pid, @workers;
    kill 'TERM', $pid;
    unless ($self->wait_gone($pid, 10)) {
        kill 'KILL', $pid, @workers;
    }
    $self->wait_gone($_, 5) for @workers;
}

sub error_log {
    my ($self, $name) = @_;
    return $self->read_file("$self->{dir}/$name/error.log") // '';
}

sub check_logs {
    my ($self, $name, @allowed) = @_;
    my @bad;
    for my $l (split /\n/, $self->error_log($name)) {
        next unless $l =~ /\[(alert|emerg|crit)\]/
                 || $l =~ /AddressSanitizer|LeakSanitizer|runtime error:/;
        next if grep { $l =~ $_ } @allowed;
        push @bad, $l;
    }
    ok(!@bad, "$name: error.log has no alert, crit, emerg or sanitizer report")
        or diag(join "\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)]);
}

# --- http ---------------------------------------------------------------

sub http {
    my ($self, $port, $path, %o) = @_;
    my $method = $o{method} // 'GET';
    my $sock;
    if ($o{tls}) {
        require IO::Socket::SSL;
        $sock = IO::Socket::SSL->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $port, Timeout => 5,
                                     SSL_verify_mode => 0,
                                     SSL_hostname => $o{host} // 'localhost')
            or return { status => 0, error => "$IO::Socket::SSL::SSL_ERROR",
                        headers => {}, body => '', raw => '' };
    } else {
        $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $port, Proto => 'tcp',
                                      Timeout => 5)
            or return { status => 0, error => "$!", headers => {},
                        body => '', raw => '' };
    }
    _io_timeout($sock, $o{timeout} // 5);
    my $body = $o{body} // '';
    my $req = "$method $path HTTP/1.1\r\nHost: " . ($o{host} // 'localhost')
            . "\r\nConnection: close\r\n";
    my %h = %{ $o{headers} || {} };
    $h{'Content-Length'} = length $body if length $body || $method eq 'POST';
    $req .= "$_: $h{$_}\r\n" for sort keys %h;
    $req .= "\r\n$body";
    print $sock $req;
    my $raw = '';
    my $end = time + ($o{timeout} // 5);
    while (time < $end) {
        my $buf;
        my $n = sysread($sock, $buf, 65536);
        last unless $n;
        $raw .= $buf;
    }
    close $sock;
    my ($head, $rest) = split /\r\n\r\n/, $raw, 2;
    $head //= '';
    my ($status) = $head =~ m{^HTTP/\d\.\d (\d+)};
    my %hdr;
    for (split /\r\n/, $head) {
        $hdr{ lc $1 } = $2 if /^([^:\s]+):\s*(.*)$/;
    }
    $rest //= '';
    if (($hdr{'transfer-encoding'} // '') =~ /chunked/i) {
        my $d = '';
        while ($rest =~ s/^([0-9a-fA-F]+)\r\n//) {
            my $len = hex $1;
            last if $len == 0;
            $d .= substr($rest, 0, $len, '');
            $rest =~ s/^\r\n//;
        }
        $rest = $d;
    }
    return { status => $status // 0, headers => \%hdr, body => $rest,
             raw => $raw };
}

# --- postgresql ---------------------------------------------------------

sub _pg_bin {
    my ($prog) = @_;
    my ($bin) = reverse sort glob "/usr/lib/postgresql/*/bin/$prog";
    return $bin // $prog;
}

sub _as_postgres {
    my (@cmd) = @_;
    return $> == 0 ? ('runuser', '-u', 'postgres', '--', @cmd) : @cmd;
}

sub start_pg {
    my ($self, $name, %opt) = @_;
    my $port = $self->port($name);
    my $dir = "$self->{dir}/$name";
    make_path($dir);
    if ($> == 0) {
        my (undef, undef, $uid, $gid) = getpwnam('postgres');
        die "no postgres user" unless defined $uid;
        chown $uid, $gid, $dir;
    }
    chmod 0700, $dir;
    my $r = $self->run({ timeout => 120 },
                       _as_postgres(_pg_bin('initdb'), '-D', $dir, '-U',
                                    'postgres', '--auth=trust', '-E', 'UTF8',
                                    '--locale=C', '--no-sync'));
    die "initdb: $r->{out}$r->{err}" if $r->{rc};
    # each log line starts with the application name, so that check_pg_log
    # can tell migctl's own failed queries from a test's deliberate ones
    open my $pc, '>>', "$dir/postgresql.conf" or die "postgresql.conf: $!";
    print $pc "log_line_prefix = '%a '\n";
    close $pc;
    my $o = join ' ', "-p $port", "-k $dir", "-c listen_addresses=127.0.0.1",
                      "-c fsync=off", "-c synchronous_commit=off",
                      "-c full_page_writes=off", "-c max_connections=60",
                      @{ $opt{args} || [] };
    $r = $self->run({ timeout => 60 },
                    _as_postgres(_pg_bin('pg_ctl'), '-D', $dir, '-o', $o,
                                 '-l', "$dir/postgres.log", '-w', '-t', '30',
                                 'start'));
    die "pg_ctl start: $r->{out}$r->{err}"
        . ($self->read_file("$dir/postgres.log") // '') if $r->{rc};
    my $pidline = $self->read_file("$dir/postmaster.pid") // '';
    my ($pid) = $pidline =~ /^(\d+)/;
    $self->{pg}{$name} = { pid => $pid, port => $port, dir => $dir };
    $self->psql($name, 'CREATE DATABASE app', db => 'postgres');
    return $port;
}

sub stop_pg {
    my ($self, $name) = @_;
    my $p = delete $self->{pg}{$name} or return;
    kill 'CONT', $p->{pid};
    kill 'INT', $p->{pid};                 # fast shutdown
    unless ($self->wait_gone($p->{pid}, 20)) {
        kill 'QUIT', $p->{pid};
        $self->wait_gone($p->{pid}, 5);
    }
}

# one ok(): no query of migctl's failed on the server, and no PANIC
sub check_pg_log {
    my ($self, $name, %o) = @_;
    my $log = $self->read_file("$self->{pg}{$name}{dir}/postgres.log") // '';
    # allow => qr//: the errors a test provokes on purpose (a read meant to
    # meet a held lock), matched line by line
    my @bad = grep { (/^migctl (ERROR|FATAL|PANIC)/
                      && !($o{allow} && /$o{allow}/)) || /PANIC/ }
              split /\n/, $log;
    ok(!@bad, "$name: postgres log: no error from a migctl query, no PANIC")
        or diag(join "\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)]);
}

sub pg_pid { $_[0]{pg}{$_[1]} && $_[0]{pg}{$_[1]}{pid} }

sub pg_env {
    my ($self, $name, %o) = @_;
    my $port = $self->{pg}{$name} ? $self->{pg}{$name}{port}
                                  : $self->port($name);
    return (PGHOST => '127.0.0.1', PGPORT => $port,
            PGUSER => $o{user} // 'postgres',
            PGDATABASE => $o{db} // 'app', PGCONNECT_TIMEOUT => 5);
}

sub psql {
    my ($self, $name, $sql, %o) = @_;
    my %env = $self->pg_env($name, %o);
    my $r = $self->run({ env => \%env, stdin => $sql, timeout => $o{timeout} // 60 },
                       'psql', '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1',
                       '-f', '-');
    die "psql: $r->{err}" if $r->{rc};
    my $out = $r->{out};
    chomp $out;
    return $out;
}

# pg_session('pg', %o) -> a psql client in the background, fed through a
# pipe, for a session that must stay open (hold a lock, sit idle in a
# transaction).  o: user, db, app (application_name, default "migtest").
# $s->send($sql) returns at once, the statement may block; $s->pid is the
# psql client's pid; $s->output is what it printed so far; $s->close ends it
# (TERM first, so a session blocked on a lock does not hang the test).
sub pg_session {
    my ($self, $name, %o) = @_;
    my %env = ($self->pg_env($name, %o), PGAPPNAME => $o{app} // 'migtest');
    my $log = "$self->{dir}/.session" . ++$self->{runs} . ".out";
    my $pid;
    {
        local %ENV = (%ENV, %env);
        $pid = open(my $fh, '|-') // die "fork: $!";
        if ($pid == 0) {
            open STDOUT, '>', $log or POSIX::_exit(1);
            open STDERR, '>&', \*STDOUT or POSIX::_exit(1);
            exec 'psql', '-X', '-A', '-t', '-q', '-f', '-'
                or POSIX::_exit(127);
        }
        $fh->autoflush(1);
        my $s = bless { fh => $fh, pid => $pid, log => $log },
                      'MigTest::Session';
        push @{ $self->{sessions} }, $s;
        return $s;
    }
}

package MigTest::Session;

sub pid { $_[0]{pid} }
sub send { my ($s, $sql) = @_; print { $s->{fh} } $sql, "\n"; }

sub output {
    open my $fh, '<', $_[0]{log} or return '';
    local $/;
    return <$fh> // '';
}

sub close {
    my ($s) = @_;
    return unless $s->{fh};
    kill 'TERM', $s->{pid};
    close $s->{fh};
    delete $s->{fh};
}

package MigTest;

# Writes P:state:S as migctl does (HSET mode, epoch and any other fields,
# then PUBLISH "S epoch" on P:events); prefix "migctl" unless prefix => P.
sub set_state {
    my ($self, $r, $scope, $mode, $epoch, %f) = @_;
    my $p = delete $f{prefix} // 'migctl';
    $self->redis($r, 'HSET', "$p:state:$scope", mode => $mode,
                 epoch => $epoch, %f);
    $self->redis($r, 'PUBLISH', "$p:events", "$scope $epoch");
}

# --- a DNS server -------------------------------------------------------

# Net::DNS::Nameserver (libnet-dns-perl) on 127.0.0.1, port "dns": A
# records of the names dns_set() gave (TTL 1), NODATA for another type of
# such a name, NXDOMAIN for any other name; every query is logged ("A
# name" a line) for dns_queries().  Stopped by PID (SIGCONT first: a test
# may have stopped it to make it silent).
sub start_dns {
    my ($self) = @_;
    require Net::DNS::Nameserver;
    require Net::DNS::Resolver;
    my $port = $self->port('dns');
    my $zone = "$self->{dir}/dns.zone";
    my $log = "$self->{dir}/dns.log";
    $self->write_file($zone, '') unless -e $zone;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$self->{dir}/dns.out";
        open STDERR, '>&', \*STDOUT;
        my $ns = Net::DNS::Nameserver->new(
            LocalAddr => '127.0.0.1', LocalPort => $port, Verbose => 0,
            ReplyHandler => sub {
                my ($qname, $qclass, $qtype) = @_;
                if (open my $l, '>>', $log) { print $l "$qtype $qname\n" }
                my %z;
                for (split /\n/, ($self->read_file($zone) // '')) {
                    my ($n, @ip) = split ' ';
                    $z{ lc $n } = \@ip if defined $n;
                }
                my $ips = $z{ lc $qname }
                    or return ('NXDOMAIN', [], [], [], { aa => 1 });
                return ('NOERROR', [], [], [], { aa => 1 })
                    unless $qtype eq 'A';
                my @rr = map { Net::DNS::RR->new("$qname. 1 IN A $_") }
                         @$ips;
                return ('NOERROR', \@rr, [], [], { aa => 1 });
            }) or POSIX::_exit(1);
        $ns->main_loop;
        POSIX::_exit(0);
    }
    $self->{dns} = $pid;
    my $res = Net::DNS::Resolver->new(nameservers => ['127.0.0.1'],
                                      port => $port, udp_timeout => 1,
                                      retry => 1, recurse => 0);
    my $gone;
    my $ok = $self->wait_for(sub {
        return $gone = 1 unless pid_alive($pid);
        my $p = $res->send('ready.test', 'A');
        $p && $p->header->rcode eq 'NXDOMAIN';
    }, 10);
    if (!$ok || $gone) {
        delete $self->{dns} if $gone;
        die "the DNS server did not start on $port"
            . ($gone ? ' (it exited: port in use?): ' : ': ')
            . ($self->read_file("$self->{dir}/dns.out") // '') . "\n";
    }
    return $port;
}

sub dns_pid { $_[0]{dns} }

sub stop_dns {
    my ($self) = @_;
    my $pid = delete $self->{dns} or return;
    kill 'CONT', $pid;
    kill 'KILL', $pid;
    waitpid($pid, 0);
}

# NAME answers A records IP ...; none: NXDOMAIN.  The zone file is replaced
# whole (rename), so the server never reads a half-written one.
sub dns_set {
    my ($self, $name, @ip) = @_;
    my $zone = "$self->{dir}/dns.zone";
    my %z;
    for (split /\n/, ($self->read_file($zone) // '')) {
        my ($n, @a) = split ' ';
        $z{$n} = \@a if defined $n;
    }
    if (@ip) { $z{ lc $name } = \@ip } else { delete $z{ lc $name } }
    $self->write_file("$zone.new",
                      join('', map { "$_ @{ $z{$_} }\n" } sort keys %z));
    rename "$zone.new", $zone or die "rename $zone: $!";
}

# A queries received for NAME
sub dns_queries {
    my ($self, $name) = @_;
    return scalar(grep { /^A \Q$name\E$/i }
                  split /\n/, ($self->read_file("$self->{dir}/dns.log")
                               // ''));
}

# bytes of queries waiting unread on the DNS server's UDP socket (it is
# stopped: silent)
sub dns_backlog {
    my ($self) = @_;
    my $hex = sprintf('0100007F:%04X', $self->port('dns'));
    for (split /\n/, ($self->read_file('/proc/net/udp') // '')) {
        my @f = split ' ';
        next unless @f > 4 && $f[1] eq $hex;
        my (undef, $rx) = split /:/, $f[4];
        return hex $rx;
    }
    return 0;
}

1;
