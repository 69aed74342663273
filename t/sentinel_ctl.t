#!/usr/bin/perl
# sentinel_ctl.t: migctl through Redis Sentinel (Debian's redis-sentinel):
# a master, a replica and three sentinels; the master found and named,
# ROLE refusing a stale sentinel's replica, one and all sentinels down,
# WAIT for replicas, a change across a SIGKILL failover and a graceful one,
# a demoted master's READONLY retried once, a link lost after the write
# never reported done, config errors, the sentinel password kept secret.

use strict;
use warnings;

use lib 't/lib';
use MigTest;
use Test::More;
use JSON::PP;
use IO::Select;
use POSIX ();
use IO::Socket::INET;
use Time::HiRes qw(time sleep);

my $t = MigTest->new;
my $g = $t->start_sentinels('g', master => 'mymaster', down_after => 3000,
                            failover_timeout => 3000);
my $nodes = join(', ', map { "\"$_\"" } @{ $g->{nodes} });
my $S1 = $g->{nodes}[0];

sub conf {
    my ($name, $redis, $extra) = @_;
    return $t->write_file("$name.conf", <<"EOF");
redis = { $redis timeout_ms = 500; };
prefix = "sc";
health = { checks = ( { name = "app"; command = "true"; } ); };
${\ ($extra // '') }
EOF
}

my $conf = conf('sentinel', "sentinel = { master = \"mymaster\";"
                            . " nodes = ( $nodes ); };");
my %env = (MIGCTL_CONFIG => $conf, MIGCTL_ACTOR => 'sam');

sub mig { my $o = ref $_[0] eq 'HASH' ? shift : {};
          $t->migctl({ %$o, env => { %env, %{ $o->{env} || {} } } }, @_) }

sub state {
    my ($inst) = @_;
    my $a = $t->redis($inst, 'HGETALL', 'sc:state:default');
    return { @$a };
}

sub clean {
    my ($r, $what) = @_;
    unlike($r->{err}, qr/AddressSanitizer|LeakSanitizer|runtime error/,
           "$what: no sanitizer report");
}

sub addr { '127.0.0.1:' . $t->port($_[0]) }

my $JSON = JSON::PP->new;
my $r;

# --- configuration errors: exit 2, one line, the line named ----------

my @bad = (
    [ "redis = { host = \"127.0.0.1\";\n"
      . "  sentinel = { master = \"m\"; nodes = ( \"$S1\" ); }; };\n", 2,
      qr/give sentinel or host\/port\/unix, not both/, 'host and sentinel' ],
    [ "redis = { sentinel = { master = \"m\";\n nodes = ( ); }; };\n", 2,
      qr/must list 1\.\.16 sentinels/, 'empty nodes' ],
    [ "redis = { sentinel = { master = \"m\"; nodes = (\n \"$S1\",\n"
      . " \"127.0.0.1\" ); }; };\n", 3,
      qr/nodes\[1\] "127\.0\.0\.1" is not "host:port"/, 'a node without port' ],
    [ "redis = { sentinel = { master = \"m\"; nodes = (\n"
      . " \"127.0.0.1:99999\" ); }; };\n", 2, qr/port 1\.\.65535/,
      'a node with a bad port' ],
);
for my $b (@bad) {
    my ($text, $line, $says, $what) = @$b;
    my $f = $t->write_file('bad.conf', $text);
    $r = $t->migctl({ env => { MIGCTL_CONFIG => $f } }, 'maintenance',
                    'status');
    is($r->{rc}, 2, "config error, $what: exit 2");
    like($r->{err}, qr/^migctl: maintenance: \Q$f\E:$line: .*$says/,
         "... names the file and line $line");
    is(scalar(() = $r->{err} =~ /\n/g), 1, '... one line');
}

# --- on / status / off through the sentinels ------------------------

my $M = addr('g-m');
$r = mig(qw(maintenance on --reason), 'through sentinels');
is($r->{rc}, 0, 'on through the sentinels: exit 0') or diag($r->{err});
is(state('g-m')->{mode}, 'on', '... written on the master');
is(state('g-m')->{reason}, 'through sentinels', '... with its reason');

$r = mig(qw(maintenance status));
is($r->{rc}, 0, 'status: exit 0') or diag($r->{err});
like($r->{out}, qr/^redis: \Q$M\E \(master of mymaster via sentinel \Q$S1\E\)$/m,
     'status names the master and the sentinel that named it');
like($r->{out}, qr/scope default: ON \(epoch 1\)/, 'status: the state read');

$r = mig(qw(--json maintenance status));
my $j = eval { $JSON->decode($r->{out}) } // {};
is($j->{redis}{addr}, $M, 'status --json: redis.addr is the master');
is($j->{redis}{master_name}, 'mymaster', '... master_name');
is($j->{redis}{sentinel}, $S1, '... and the sentinel');

$r = mig(qw(--json maintenance off));
is($r->{rc}, 0, 'off through the sentinels: exit 0') or diag($r->{err});
$j = eval { $JSON->decode($r->{out}) } // {};
is($j->{redis}{addr}, $M, 'off --json: says which server answered');
is(state('g-m')->{mode}, 'off', '... written on the master');
is(state('g-m')->{epoch}, 2, '... epoch 2');
ok(!exists $j->{replication}, 'no redis.wait: no WAIT, no replication');
clean($r, 'on/status/off');

# --- one sentinel down (stopped: it accepts, never answers) ---------

$t->kill_redis('g-s1', 'STOP');
my $t0 = time;
$r = mig(qw(maintenance status));
my $one_down = time - $t0;
$t->kill_redis('g-s1', 'CONT');
is($r->{rc}, 0, 'first sentinel stopped: status still works')
    or diag($r->{err});
like($r->{out}, qr/^redis: \Q$M\E \(master of mymaster via sentinel \Q$g->{nodes}[1]\E\)$/m,
     '... through the second sentinel');
cmp_ok($one_down, '<', 0.5 + 1 + 5, '... after the short sentinel timeout');
diag(sprintf('status with the first sentinel stopped: %.2f s', $one_down));

# --- a stale sentinel listed first: ROLE refuses its replica ---------

$t->start_fake_sentinel('fs', 'mymaster', '127.0.0.1', $t->port('g-r'));
my $stale = conf('stale', "sentinel = { master = \"mymaster\"; nodes = ("
                          . " \"${\ addr('fs')}\", $nodes ); };");
$r = mig({ env => { MIGCTL_CONFIG => $stale } }, qw(--json maintenance on));
is($r->{rc}, 0, 'a stale sentinel first: on works') or diag($r->{err});
$j = eval { $JSON->decode($r->{out}) } // {};
is($j->{redis}{addr}, $M, '... on the real master, not the replica it named');
is($j->{redis}{sentinel}, $S1, '... found through the next sentinel');
is(state('g-m')->{mode}, 'on', '... the master holds it');

# --- redis.wait: WAIT for the replica ------------------------------

my $wconf = conf('wait', "sentinel = { master = \"mymaster\";"
                         . " nodes = ( $nodes ); };"
                         . " wait = { replicas = 1; timeout = \"300ms\"; };");
$r = mig({ env => { MIGCTL_CONFIG => $wconf } }, qw(--json maintenance on));
is($r->{rc}, 0, 'wait, replica running: exit 0') or diag($r->{err});
$j = eval { $JSON->decode($r->{out}) } // {};
is($j->{replication}{acknowledged}, 1, '... 1 replica acknowledged');
is($j->{replication}{wanted}, 1, '... of 1 wanted');

$t->kill_redis('g-r', 'STOP');
$t0 = time;
$r = mig({ env => { MIGCTL_CONFIG => $wconf } }, qw(--json maintenance on));
my $wait_short = time - $t0;
$t->kill_redis('g-r', 'CONT');
is($r->{rc}, 3, 'wait, replica stopped: exit 3');
like($r->{err}, qr/^migctl: maintenance: written on the master \(Redis \Q$M\E .*\) but only 0 of 1 replicas acknowledged within 300 ms: the change may be lost in a failover; run migctl maintenance status and repeat if needed$/m,
     '... says it is only on the master');
$j = eval { $JSON->decode($r->{out}) } // {};
is($j->{replication}{acknowledged}, 0, '... JSON: 0 acknowledged');
ok($j->{replication} && !$j->{replication}{ok}, '... JSON: not ok');
is($j->{exit}, 3, '... JSON: exit 3');
my $au = $t->redis('g-m', 'XREVRANGE', 'sc:audit', '+', '-', 'COUNT', 1);
my %ae = @{ $au->[0][1] };
is("$ae{action} $ae{result}", 'replication short',
   '... the audit says so');
like($ae{reason}, qr/^0 of 1 replicas acknowledged within 300 ms$/,
     '... with the count');
diag(sprintf('on with the replica stopped, WAIT 300 ms: %.2f s', $wait_short));
clean($r, 'wait');

# --- the link lost after the change was sent: never reported done ---

# the health gate of "off" pauses the master's writes: the probe (a read)
# answers, the change script waits past redis.timeout_ms
my $pport = $t->port('g-m');
my $pause = conf('pause', "sentinel = { master = \"mymaster\";"
                          . " nodes = ( $nodes ); };");
$t->write_file($pause, $t->read_file($pause) =~ s/command = "true"/command = "redis-cli -p $pport CLIENT PAUSE 2000 WRITE"/r);
my $e0 = state('g-m')->{epoch};
$r = mig({ env => { MIGCTL_CONFIG => $pause } }, qw(maintenance off));
is($r->{rc}, 3, 'link lost after the change was sent: exit 3');
like($r->{err}, qr/the connection was lost after the change was sent \(timed out\): reading the state again/,
     '... says the outcome is unknown');
like($r->{err}, qr/^migctl: maintenance: the change was sent to Redis \Q$M\E .* but is not confirmed: .* holds on epoch $e0, not it .*repeat the change if needed$/m,
     '... not confirmed: what the master holds, what to do');
unlike($r->{out}, qr/maintenance off for scope/, '... never reported done');
ok($t->wait_for(sub { ($t->redis('g-m', 'ROLE') // [])->[0] eq 'master'
                      && $t->redis('g-m', 'SET', 'sc:probe', 1) eq 'OK' }, 5),
   'the pause ends');
cmp_ok(state('g-m')->{epoch}, '<=', $e0 + 1,
       '... the change was sent once, never twice');
clean($r, 'lost after sending');

# a proxy in front of the master that relays everything, except that the
# first change script's reply is swallowed and the client's link closed:
# the change ran, migctl cannot know; it reads the state back
my $pp = $t->port('proxy');
my $proxy = fork // die "fork: $!";
if ($proxy == 0) {
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $pp,
                                  Listen => 16, ReuseAddr => 1)
        or POSIX::_exit(1);
    my $sel = IO::Select->new($l);
    my (%peer, $done);
    my $end = time + 60;
    while (time < $end) {
        for my $s ($sel->can_read(0.2)) {
            if ($s == $l) {
                my $c = $l->accept or next;
                my $u = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                              PeerPort => $t->port('g-m'))
                    or do { close $c; next };
                $peer{$c} = $u; $peer{$u} = $c;
                $sel->add($c, $u);
                next;
            }
            my $o = $peer{$s} or next;
            my $n = sysread($s, my $buf, 65536);
            if (!$n) {
                $sel->remove($s, $o); delete @peer{$s, $o};
                close $s; close $o;
                next;
            }
            syswrite($o, $buf);
            next if $done || $buf !~ /HINCRBY/;
            $done = 1;
            sysread($o, my $reply, 65536);          # the script ran
            $sel->remove($s, $o); delete @peer{$s, $o};
            close $s; close $o;
        }
    }
    POSIX::_exit(0);                # not exit: no END (the harness's) here
}
END { kill 'KILL', $proxy if $proxy; }
ok($t->wait_port($pp, 10), 'proxy up');
my $pxconf = conf('proxy', "host = \"127.0.0.1\"; port = $pp;");
$e0 = state('g-m')->{epoch};
$r = mig({ env => { MIGCTL_CONFIG => $pxconf } }, qw(maintenance on --reason),
         'reply lost');
is($r->{rc}, 0, 'reply lost after the change ran: exit 0') or diag($r->{err});
like($r->{err}, qr/the connection was lost after the change was sent \(.*\): reading the state again to confirm it/,
     '... the outcome was unknown');
like($r->{err}, qr/the change is confirmed on Redis 127\.0\.0\.1:$pp \(epoch ${\ ($e0 + 1)}\)/,
     '... then confirmed from the state');
like($r->{out}, qr/maintenance on for scope default \(epoch ${\ ($e0 + 1)}\)/,
     '... and reported done');
is(state('g-m')->{epoch}, $e0 + 1, '... made once');
is(state('g-m')->{reason}, 'reply lost', '... ours');
kill 'KILL', $proxy;
waitpid($proxy, 0);
$proxy = 0;
clean($r, 'reply lost');

# --- evidence and health through the sentinels ---------------------

my $hconf = conf('health', "sentinel = { master = \"mymaster\";"
                           . " nodes = ( $nodes ); };");
$t->write_file($hconf, $t->read_file($hconf) =~ s/command = "true"; \}/command = "true"; }, { name = "fleet"; type = "edges"; }/r);
$r = mig({ env => { MIGCTL_CONFIG => $hconf } }, qw(--json health));
$j = eval { $JSON->decode($r->{out}) } // {};
my ($edges) = grep { $_->{name} eq 'fleet' } @{ $j->{checks} || [] };
ok($edges, 'health: the edges check ran');
unlike($edges ? $edges->{detail} : '', qr/unreachable|Sentinel/,
       '... and reached Redis through the sentinels');
$r = mig({ env => { PGPORT => $t->port('closed'), PGHOST => '127.0.0.1' },
           cwd => $t->dir }, 'evidence', '--out', $t->dir . '/ev');
my $sum = $t->read_file($t->dir . '/ev/summary.md') // '';
unlike($sum, qr/maintenance \(Redis\)/, 'evidence: the maintenance part is'
       . ' not missing');
like($t->read_file($t->dir . '/ev/maintenance.json') // '', qr/"mode"/,
     '... maintenance.json holds the state read through the sentinels');
clean($r, 'evidence');

# --- SIGKILL of the master: the change lands on the new master -------

# (down-after 3 s: with 1 s a loaded machine saw a sentinel PING answered
# late enough for a failover nobody asked for, and this part then failed)
is($t->sentinel_master($g), 'g-m', 'the sentinels still name g-m');
$r = mig(qw(maintenance on --reason), 'before the failover');
is($r->{rc}, 0, 'on before the failover') or diag($r->{err});
my $eon = state('g-m')->{epoch};
ok($t->wait_for(sub { (state('g-r')->{epoch} // 0) == $eon }, 10),
   '... replicated');

$t->kill_redis('g-m');
my $tk = time;
my $new = $t->wait_failover($g, 'g-m', 30);
my $failover = time - $tk;
is($new, 'g-r', 'SIGKILL: the sentinels promote the replica');
my $NEW = addr('g-r');
my $seen;
$t->wait_for(sub {
    my $s = mig(qw(maintenance status));
    return 0 unless $s->{out} =~ /^redis: \Q$NEW\E /m;
    $seen = time - $tk;
}, 30);
ok(defined $seen, 'status reads from the new master after the failover');
cmp_ok($seen // 99, '<=', $failover + 2, '... within the failover time + 2 s');
diag(sprintf('SIGKILL to the failover seen: %.2f s, to status reading the'
             . ' new master: %.2f s', $failover, $seen // -1));

# the old master back as a replica of the new one
$t->start_redis('g-m', args => ['--replicaof', '127.0.0.1', $t->port('g-r')]);
ok($t->wait_for(sub { $t->redis('g-m', 'INFO', 'replication')
                      =~ /master_link_status:up/ }, 10),
   'the old master is back, a replica');
$r = mig(qw(maintenance off));
is($r->{rc}, 0, 'off after the failover: exit 0') or diag($r->{err});
like($r->{out}, qr/maintenance off for scope default \(epoch ${\ ($eon + 1)}\)/,
     '... the next epoch');
is(state('g-r')->{mode}, 'off', '... on the new master');
unlike($t->redis('g-m', 'INFO', 'commandstats'), qr/cmdstat_eval:/,
       '... the old master (a replica now) was never sent the change');
clean($r, 'SIGKILL failover');

# --- SENTINEL FAILOVER during the health checks ----------------------

# the health gate of "off" runs a graceful failover and waits until the
# sentinels have reconfigured the old master: migctl asks for the master
# again after the health checks and writes there, once
my @sp = map { $t->port($_) } @{ $g->{sentinels} };
my $fo = $t->write_file('failover.sh', <<"EOF");
#!/bin/sh
redis-cli -p $sp[1] SENTINEL FAILOVER mymaster >/dev/null || exit 1
i=0
while [ \$i -lt 300 ]; do
    if redis-cli -p ${\ $t->port('g-r')} ROLE 2>/dev/null | head -1 | grep -q slave \\
       && redis-cli -p ${\ $t->port('g-m')} ROLE 2>/dev/null | head -1 | grep -q master
    then exit 0; fi
    sleep 0.1; i=\$((i + 1))
done
exit 1
EOF
chmod 0755, $fo;
my $fconf = conf('failover', "sentinel = { master = \"mymaster\";"
                             . " nodes = ( $nodes ); };");
$t->write_file($fconf, $t->read_file($fconf) =~ s/command = "true"/command = "$fo"; timeout_ms = 40000/r);
mig(qw(maintenance on --reason), 'before the graceful failover');
my $eg = state('g-r')->{epoch};
# the replica holds it: read there (a WAIT on the harness's own fresh
# connection proves nothing); a failover right after the replica's full
# sync otherwise loses it, as asynchronous replication may
ok($t->wait_for(sub { (state('g-m')->{epoch} // 0) == $eg }, 10),
   'on: the replica holds it');
$t->redis('g-r', 'CONFIG', 'RESETSTAT');
$r = mig({ env => { MIGCTL_CONFIG => $fconf } }, qw(--json maintenance off));
is($r->{rc}, 0, 'graceful failover during the health checks: exit 0')
    or diag($r->{err});
like($r->{err}, qr/the master moved during the health checks: \Q$NEW\E, now \Q$M\E /,
     '... the master asked for again, and the move said');
$j = eval { $JSON->decode($r->{out}) } // {};
is($j->{redis}{addr}, $M, '... the change went to the new master');
is(state('g-m')->{mode}, 'off', '... which holds it');
is(state('g-m')->{epoch}, $eg + 1, '... once (epoch + 1)')
    or diag($r->{err});
unlike($t->redis('g-r', 'INFO', 'commandstats'), qr/cmdstat_eval:/,
       '... the demoted master was never sent it');
clean($r, 'graceful failover');

# --- the link lost before the write was sent -------------------------

# a hooks.off kills migctl's connection (as the sentinels' reconfiguration
# does): the probe finds it lost, the write goes out once on a new link
my $kconf = conf('kill', "sentinel = { master = \"mymaster\";"
                         . " nodes = ( $nodes ); };",
                 "hooks = { off = ( { name = \"kill\"; command = \"redis-cli"
                 . " -p ${\ $t->port('g-m')} CLIENT KILL TYPE normal\"; } ); };");
mig(qw(maintenance on));
my $ek = state('g-m')->{epoch};
$r = mig({ env => { MIGCTL_CONFIG => $kconf } }, qw(maintenance off));
is($r->{rc}, 0, 'link killed before the write: exit 0') or diag($r->{err});
like($r->{err}, qr/Redis \Q$M\E .* the connection was lost before the change was sent: finding the master again/,
     '... found lost by the probe, nothing sent on it');
like($r->{err}, qr/sending the change to Redis \Q$M\E /, '... sent again');
is(state('g-m')->{epoch}, $ek + 1, '... the change made once');
my @hk = grep { my %h = @{ $_->[1] }; $h{action} eq 'hook_off' }
         @{ $t->redis('g-m', 'XRANGE', 'sc:audit', '-', '+') };
is(scalar(@hk), 1, '... the hook audited once');
clean($r, 'link lost before sending');

# --- READONLY: a master demoted between discovery and the write -------

# a pair outside the sentinels' care and a fake sentinel naming the
# master; a hooks.off demotes it and points the fake at the other: the
# hook's audit entry (a write script, as the change) gets -READONLY
my $ap = $t->start_redis('a');
my $bp = $t->start_redis('b', args => ['--replicaof', '127.0.0.1', $ap]);
ok($t->wait_for(sub { $t->redis('b', 'INFO', 'replication')
                      =~ /master_link_status:up/ }, 10), 'pair a, b ready');
my $fsp = $t->start_fake_sentinel('fsa', 'pair', '127.0.0.1', $ap);
my $demote = $t->write_file('demote.sh', <<"EOF");
#!/bin/sh
redis-cli -p $bp REPLICAOF NO ONE >/dev/null &&
redis-cli -p $ap REPLICAOF 127.0.0.1 $bp >/dev/null &&
redis-cli -p $fsp FAKE SENTINEL pair 127.0.0.1 $bp >/dev/null
EOF
chmod 0755, $demote;
my $roconf = conf('ro', "sentinel = { master = \"pair\";"
                        . " nodes = ( \"${\ addr('fsa')}\" ); };",
                  "hooks = { off = ( { name = \"demote\";"
                  . " command = \"$demote\"; } ); };");
$r = mig({ env => { MIGCTL_CONFIG => $roconf } }, qw(maintenance on));
is($r->{rc}, 0, 'pair: on, on a') or diag($r->{err});
# (a WAIT on the harness's own fresh connection returns at once: read b)
ok($t->wait_for(sub {
    my $e = state('a')->{epoch} // return 0;
    (state('b')->{epoch} // '') eq $e;
}, 5), '... b has it');
$r = mig({ env => { MIGCTL_CONFIG => $roconf } }, qw(--json maintenance off));
is($r->{rc}, 0, 'READONLY: retried on the new master: exit 0')
    or diag($r->{err});
like($r->{err}, qr/Redis 127\.0\.0\.1:$ap .* refused the write as a replica \(READONLY\), nothing was written: finding the master again/,
     '... says the old master refused as a replica');
like($r->{err}, qr/sending the change to Redis 127\.0\.0\.1:$bp /,
     '... and where it sent it');
$j = eval { $JSON->decode($r->{out}) } // {};
is($j->{redis}{addr}, "127.0.0.1:$bp", '... JSON: the new master');
is(state('b')->{mode}, 'off', '... b holds the change');
is(state('b')->{epoch}, 2, '... once');
my @ro = map { { @{ $_->[1] } } }
         @{ $t->redis('b', 'XRANGE', 'sc:audit', '-', '+') };
is(scalar(grep { $_->{action} eq 'off' } @ro), 1, '... one audit entry');
is(scalar(grep { $_->{action} eq 'hook_off' } @ro), 1,
   '... the hook audited once');
clean($r, 'READONLY');

# a configured host that is a replica (a, demoted above): the change is
# refused, sent once more after connecting again, refused again: exit 3
$t->redis('a', 'CONFIG', 'RESETSTAT');
my $eb = state('b')->{epoch};
my $plain = conf('plain', "host = \"127.0.0.1\"; port = $ap;");
$r = mig({ env => { MIGCTL_CONFIG => $plain } }, qw(maintenance on));
is($r->{rc}, 3, 'READONLY twice: exit 3');
like($r->{err}, qr/^migctl: maintenance: Redis 127\.0\.0\.1:$ap refused the write as a replica \(READONLY\), nothing was written, again after finding the master again: wait for the failover to settle and retry$/m,
     '... says so; the second refusal ends it');
is(scalar(() = $r->{err} =~ /READONLY/g), 2, '... sent twice, never a third time');
like($t->redis('a', 'INFO', 'commandstats'),
     qr/cmdstat_eval:calls=\d+,[^\r\n]*rejected_calls=\d+,failed_calls=\d+/,
     '... (commandstats)');
my ($ec, $er, $ef) = $t->redis('a', 'INFO', 'commandstats')
    =~ /cmdstat_eval:calls=(\d+),.*rejected_calls=(\d+),failed_calls=(\d+)/;
is(($ec // 0) + ($er // 0), 2, '... the replica saw the script twice');
is(state('b')->{epoch}, $eb, '... nothing written');
clean($r, 'READONLY twice');

# --- the sentinel password: AUTH, never shown ------------------------

my $SPW = 'sentinel-secret-7f3a';
$t->redis('g-s3', 'ACL', 'SETUSER', 'default', 'resetpass', ">$SPW");
my $pwf = $t->write_file('spw', "$SPW\n");
my $aconf = conf('auth', "sentinel = { master = \"mymaster\";"
                         . " nodes = ( \"$g->{nodes}[2]\" );"
                         . " password_file = \"$pwf\"; };");
my @argv = qw(--json maintenance status);
$r = mig({ env => { MIGCTL_CONFIG => $aconf } }, @argv);
is($r->{rc}, 0, 'sentinel with a password: status') or diag($r->{err});
$j = eval { $JSON->decode($r->{out}) } // {};
is($j->{redis}{sentinel}, $g->{nodes}[2], '... through it');
$t->write_file($pwf, "not-the-password\n");
$r = mig({ env => { MIGCTL_CONFIG => $aconf } }, @argv);
is($r->{rc}, 3, 'a wrong sentinel password: exit 3');
like($r->{err}, qr/\Q$g->{nodes}[2]\E refused AUTH: WRONGPASS/,
     '... the sentinel named, and why');
# from the environment: used, and kept from the commands migctl runs
$t->write_file($pwf, "$SPW\n");
my $econf = conf('authenv', "sentinel = { master = \"mymaster\";"
                            . " nodes = ( \"$g->{nodes}[2]\" );"
                            . " password_env = \"MIGCTL_SPW\"; };");
$t->write_file($econf, $t->read_file($econf) =~ s/command = "true"/command = "test -z \\"\$MIGCTL_SPW\\""/r);
$r = mig({ env => { MIGCTL_CONFIG => $econf, MIGCTL_SPW => $SPW } },
         qw(--json maintenance off));
is($r->{rc}, 0, 'sentinel password from the environment: off through it')
    or diag($r->{err});
$j = eval { $JSON->decode($r->{out}) } // {};
ok($j->{health}{ok}, '... the health command did not get $MIGCTL_SPW');
unlike($r->{out} . $r->{err}, qr/\Q$SPW\E/, '... nor printed it');
$t->write_file($pwf, "not-the-password\n");

my $logs = join('', map { $t->read_file("$_/redis.log") // '' }
                    map { $t->{redis}{$_}{dir} } grep { $t->{redis}{$_} }
                    @{ $g->{sentinels} });
for my $x ($r->{out}, $r->{err}, join(' ', @argv), $logs,
           $t->read_file($aconf)) {
    unlike($x, qr/\Q$SPW\E|not-the-password/,
           'the sentinel password is in no argv, output, log or config');
}

# --- every sentinel failing: exit 3 naming each ----------------------

my $closed = $t->port('closed');
$t->start_fake_sentinel('fso', 'other', '127.0.0.1', 1);
$t->start_fake_sentinel('fsr', 'mymaster', '127.0.0.1', $t->port('g-r'));
$t->kill_redis('g-s2', 'STOP');
my $all = conf('all', "sentinel = { master = \"mymaster\"; nodes = ("
                      . " \"127.0.0.1:$closed\", \"$g->{nodes}[1]\","
                      . " \"${\ addr('fso')}\", \"${\ addr('fsr')}\" ); };");
$t0 = time;
$r = mig({ env => { MIGCTL_CONFIG => $all } }, qw(maintenance on));
my $all_down = time - $t0;
$t->kill_redis('g-s2', 'CONT');
is($r->{rc}, 3, 'every sentinel failing: exit 3');
is(scalar(() = $r->{err} =~ /\n/g), 1, '... one line');
like($r->{err}, qr/^migctl: maintenance: Redis Sentinel: no master "mymaster": 127\.0\.0\.1:$closed refused, \Q$g->{nodes}[1]\E timed out, \Q${\ addr('fso')}\E unknown master, \Q${\ addr('fsr')}\E pointed at a replica \Q$NEW\E: check the sentinels and redis\.sentinel in \Q$all\E$/,
     '... naming each sentinel and why');
diag(sprintf('every sentinel failing (one stopped): %.2f s', $all_down));
is(state('g-m')->{mode}, 'off', '... nothing written');
clean($r, 'all down');

for my $n (qw(g-m g-r a b)) {
    unlike($t->read_file($t->{redis}{$n}{dir} . '/redis.log') // '',
           qr/Guru Meditation|crashed by signal/, "$n did not crash");
}

done_testing();
