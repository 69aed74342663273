#!/usr/bin/perl
# fake_redis.pl: a "Redis" that answers as told, for the edge's tests.
#   perl t/fake_redis.pl PORT
# By default it answers like a Redis holding P:state:S = mode on, epoch 1
# (HGETALL), confirms SUBSCRIBE, queues a MULTI/EXEC.  Control commands,
# sent on their own connection (the harness's redis()):
#   FAKE FRAME CMD HEX [once]  answer CMD (e.g. SUBSCRIBE, HGETALL, ANY)
#                              with these bytes instead, then keep the
#                              connection open; "once": only the next time
#   FAKE CLEAR                 answer normally again
#   FAKE KICK                  close every other connection
#   FAKE STATS                 "accepts N CMD N ..." since the start
#                              (accepts: connections of clients, whose
#                              first command is not FAKE)
#   FAKE STATE MODE EPOCH      what HGETALL answers
#   FAKE SENTINEL NAME IP PORT answer as a sentinel (a stale one, say):
#                              SENTINEL get-master-addr-by-name NAME gives
#                              IP PORT, SENTINEL sentinels NAME an empty list,
#                              ROLE "sentinel"
#   FAKE PEERS NAME [IP:PORT ...] what SENTINEL sentinels NAME lists
use strict;
use warnings;
use IO::Socket::INET;
use IO::Select;

my $port = shift or die "usage: fake_redis.pl PORT\n";
my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
                              Proto => 'tcp', Listen => 64, ReuseAddr => 1)
    or die "fake_redis: listen $port: $!\n";
$SIG{PIPE} = 'IGNORE';

my $sel = IO::Select->new($l);
my (%buf, %frame, %stats, %fresh);
my ($mode, $epoch) = ('on', 1);
my %master;                         # FAKE SENTINEL: name -> [ip, port]
my %peers;                          # FAKE PEERS: name -> [ip:port, ...]
$stats{accepts} = 0;

sub bulk { '$' . length($_[0]) . "\r\n$_[0]\r\n" }

sub normal {
    my ($cmd, @a) = @_;
    return "+OK\r\n" if $cmd eq 'AUTH' || $cmd eq 'SELECT' || $cmd eq 'MULTI';
    return "+PONG\r\n" if $cmd eq 'PING';
    return "*4\r\n" . bulk('mode') . bulk($mode) . bulk('epoch')
         . bulk($epoch) if $cmd eq 'HGETALL';
    return "*3\r\n" . bulk('subscribe') . bulk($a[0] // '') . ":1\r\n"
        if $cmd eq 'SUBSCRIBE';
    return "*4\r\n:1\r\n:3\r\n:1\r\n:1\r\n" if $cmd eq 'EXEC';
    return sentinel(@a) if $cmd eq 'SENTINEL';
    if ($cmd eq 'ROLE') {
        return "*2\r\n" . bulk('sentinel') . '*' . keys(%master) . "\r\n"
            . join('', map { bulk($_) } sort keys %master) if %master;
        return "*3\r\n" . bulk('master') . ":0\r\n*0\r\n";
    }
    return "+QUEUED\r\n" if grep { $cmd eq $_ } qw(DEL HSET EXPIRE ZADD);
    return "+OK\r\n";
}

sub sentinel {
    my ($sub, $name) = (lc($_[0] // ''), $_[1] // '');
    if ($sub eq 'get-master-addr-by-name') {
        my $m = $master{$name} or return "*-1\r\n";
        return "*2\r\n" . bulk($m->[0]) . bulk($m->[1]);
    }
    if ($sub eq 'sentinels' && $peers{$name}) {
        my @p = @{ $peers{$name} };
        return '*' . @p . "\r\n" . join('', map {
            my ($ip, $port) = /^(.*):(\d+)$/;
            "*6\r\n" . bulk('name') . bulk("peer-$port") . bulk('ip')
            . bulk($ip) . bulk('port') . bulk($port)
        } @p);
    }
    return "*0\r\n" if $sub eq 'sentinels' || $sub eq 'replicas'
                       || $sub eq 'slaves';
    return "-ERR unknown sentinel subcommand\r\n";
}

sub close_client {
    my ($c) = @_;
    $sel->remove($c);
    delete $buf{$c};
    delete $fresh{$c};
    close $c;
}

# one complete command from the buffer, or nothing yet
sub take_command {
    my ($c) = @_;
    my $b = \$buf{$c};
    return unless $$b =~ /^\*(\d+)\r\n/;
    my $n = $1;
    my $pos = length("*$n\r\n");
    my @args;
    for (1 .. $n) {
        return unless substr($$b, $pos) =~ /^\$(\d+)\r\n/;
        my $len = $1;
        my $start = $pos + length("\$$len\r\n");
        return if length($$b) < $start + $len + 2;
        push @args, substr($$b, $start, $len);
        $pos = $start + $len + 2;
    }
    substr($$b, 0, $pos) = '';
    return \@args;
}

sub control {
    my ($c, @a) = @_;
    my $what = uc($a[0] // '');
    if ($what eq 'FRAME') {
        $frame{ uc $a[1] } = { bytes => pack('H*', $a[2]),
                              once => ($a[3] // '') eq 'once' };
    } elsif ($what eq 'CLEAR') {
        %frame = ();
    } elsif ($what eq 'STATE') {
        ($mode, $epoch) = @a[1, 2];
    } elsif ($what eq 'SENTINEL') {
        $master{ $a[1] } = [ @a[2, 3] ];
    } elsif ($what eq 'PEERS') {
        $peers{ $a[1] } = [ @a[2 .. $#a] ];
    } elsif ($what eq 'KICK') {
        for my $o ($sel->handles) {
            close_client($o) unless $o == $l || $o == $c;
        }
    } elsif ($what eq 'STATS') {
        return bulk(join ' ', map { "$_ $stats{$_}" } sort keys %stats);
    }
    return "+OK\r\n";
}

while (1) {
    for my $c ($sel->can_read(1)) {
        if ($c == $l) {
            my $n = $l->accept or next;
            $sel->add($n);
            $buf{$n} = '';
            $fresh{$n} = 1;
            next;
        }
        my $r = sysread($c, my $data, 65536);
        unless ($r) {
            close_client($c);
            next;
        }
        $buf{$c} .= $data;
        while (defined $buf{$c} and my $args = take_command($c)) {
            my $cmd = uc($args->[0] // '');
            my $out;
            $stats{accepts}++ if delete $fresh{$c} and $cmd ne 'FAKE';
            if ($cmd eq 'FAKE') {
                $out = control($c, @$args[1 .. $#$args]);
            } else {
                $stats{$cmd}++;
                my $f = $frame{$cmd} // $frame{ANY};
                if ($f) {
                    $out = $f->{bytes};
                    $stats{"bad_$cmd"}++;
                    delete $frame{$frame{$cmd} ? $cmd : 'ANY'} if $f->{once};
                } else {
                    $out = normal($cmd, @$args[1 .. $#$args]);
                }
            }
            syswrite($c, $out) if length $out;
        }
    }
}
