#!/usr/bin/env perl
# capture_sentinel.pl: real Redis and Sentinel replies, raw bytes, as seeds
# of the reply fuzzer (t/fuzz/corpus/reply/real-sentinel-*): a master, a
# replica and three sentinels (MigTest start_sentinels), then a failover.
# Usage: perl -I t/lib t/fuzz/capture_sentinel.pl [OUTDIR]
use strict;
use warnings;
use IO::Socket::INET;
use IO::Select;
use Time::HiRes qw(time);
use MigTest;

my $out = shift // MigTest->root . '/t/fuzz/corpus/reply';
my $t = MigTest->new;
my $g = $t->start_sentinels('cap', master => 'mymaster');
my ($s1, $s2) = @{ $g->{sentinels} };

# the length of the first complete RESP reply in $buf, or undef
sub complete {
    my ($buf, $pos) = @_;
    $pos //= 0;
    my $eol = index($buf, "\r\n", $pos);
    return undef if $eol < 0;
    my ($type, $v) = (substr($buf, $pos, 1),
                      substr($buf, $pos + 1, $eol - $pos - 1));
    my $next = $eol + 2;
    return $next if $type =~ /^[+\-:]$/;
    if ($type eq '$') {
        return $next if $v < 0;
        return length($buf) >= $next + $v + 2 ? $next + $v + 2 : undef;
    }
    if ($type eq '*') {
        return $next if $v < 0;
        for (1 .. $v) {
            $next = complete($buf, $next) // return undef;
        }
        return $next;
    }
    die "not RESP: $buf\n";
}

sub conn {
    my ($name) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $t->port($name),
                                  Proto => 'tcp', Timeout => 5)
        or die "connect $name: $!\n";
    return $s;
}

sub req {
    my (@cmd) = @_;
    my $r = '*' . scalar(@cmd) . "\r\n";
    $r .= '$' . length($_) . "\r\n$_\r\n" for @cmd;
    return $r;
}

# the raw bytes of $n complete replies, read within $secs
sub replies {
    my ($s, $n, $secs) = @_;
    my ($buf, $end, $sel) = ('', time + $secs, IO::Select->new($s));
    for (;;) {
        my ($len, $k) = (0, 0);
        while ($k < $n && defined(my $l = complete($buf, $len))) {
            ($len, $k) = ($l, $k + 1);
        }
        return $buf if $k == $n;
        my $left = $end - time;
        die "no reply in $secs s (have: $buf)\n" if $left <= 0;
        next unless $sel->can_read($left);
        sysread($s, $buf, 65536, length $buf) or die "closed\n";
    }
}

# @cmds on one connection, each reply's bytes
sub ask {
    my ($name, @cmds) = @_;
    my $s = conn($name);
    my @r;
    for my $c (@cmds) {
        print $s req(@$c);
        push @r, replies($s, 1, 5);
    }
    close $s;
    return @r;
}

sub save {
    my ($file, $bytes) = @_;
    open my $fh, '>:raw', "$out/real-sentinel-$file" or die "$file: $!\n";
    print $fh $bytes;
    close $fh;
    printf "%-32s %4d bytes\n", $file, length $bytes;
}

my @d = ask($s1, [ 'SENTINEL', 'get-master-addr-by-name', 'mymaster' ],
                 [ 'SENTINEL', 'sentinels', 'mymaster' ],
                 [ 'SENTINEL', 'get-master-addr-by-name', 'nosuch' ],
                 [ 'SENTINEL', 'sentinels', 'nosuch' ],
                 [ 'AUTH', 'secret' ], [ 'ROLE' ]);
save('discovery', $d[0] . $d[1]);
save('master-addr', $d[0]);
save('sentinels', $d[1]);
save('unknown-master', $d[2] . $d[3]);
save('auth-refused', $d[4] . $d[0] . $d[1]);
save('role-sentinel', $d[5]);

my ($rm) = ask($g->{master}, [ 'ROLE' ]);
my ($rr) = ask($g->{replica}, [ 'ROLE' ]);
save('role-master', $rm);
save('role-replica', $rr);

# the command link: SELECT, ROLE, then a poll of a missing state
my @c = ask($g->{master}, [ 'SELECT', '0' ], [ 'ROLE' ],
            [ 'HGETALL', 'migctl:state:default' ]);
save('command-link', join '', @c);
my @cr = ask($g->{replica}, [ 'SELECT', '0' ], [ 'ROLE' ]);
save('command-link-replica', join '', @cr);

# the subscription: the confirmation, a pong, then the +switch-master of a
# failover that another connection asks for
my $sub = conn($s2);
print $sub req('SUBSCRIBE', '+switch-master');
my $conf = replies($sub, 1, 5);
print $sub req('PING');
my $pong = replies($sub, 1, 5);
$t->redis($s1, 'SENTINEL', 'FAILOVER', 'mymaster');
my $msg = replies($sub, 1, 30);
close $sub;
save('subscription', $conf . $pong . $msg);
save('switch-master', $msg);

# the old master, a replica now
my $ok = $t->wait_for(sub {
    my $r = eval { $t->redis($g->{master}, 'ROLE') };
    ref $r eq 'ARRAY' && $r->[0] eq 'slave';
}, 30);
my ($ro) = ask($g->{master}, [ 'ROLE' ]);
save('role-demoted', $ro);
my ($rn) = ask($g->{replica}, [ 'ROLE' ]);
save('role-promoted', $rn);
