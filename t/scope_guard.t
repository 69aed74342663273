#!/usr/bin/perl
# scope_guard.t: maintenance on/off for a scope no live edge serves (a
# mistyped --scope) is refused before anything is written (exit 4, one
# line, no state, no publish, the refusal audited); --any-scope sets it
# anyway; with no live edge at all the change goes through as before.

use strict;
use warnings;

use lib 't/lib';
use MigTest;
use Test::More;
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use Time::HiRes qw(time);

my $t = MigTest->new;
my $rport = $t->start_redis('r');
my $P = 'sg';
my $LIVE_MS = 1000;
my $ran = $t->dir . '/health_ran';

$t->nginx_conf('n', <<'CONF');
load_module %%MODULE%%;
worker_processes 1;
events { worker_connections 64; }
http {
    access_log off;
    maintenance_redis 127.0.0.1:%%PORT_r%%;
    maintenance_poll 200ms;
    maintenance_prefix sg;
    maintenance_node_id edge-1;
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
}
CONF

# the health check leaves a mark: a refused off must not even run it
my $conf = $t->write_file('migctl.conf', <<"EOF");
redis = { host = "127.0.0.1"; port = $rport; timeout_ms = 2000; };
prefix = "$P";
edge_live_ms = $LIVE_MS;
health = { checks = ( { name = "app"; command = "touch $ran"; } ); };
EOF

my %env = (MIGCTL_CONFIG => $conf, MIGCTL_ACTOR => 'alice');

sub mig { $t->migctl({ env => \%env }, @_) }

sub state {
    my $a = $t->redis('r', 'HGETALL', "$P:state:$_[0]");
    return { @$a };
}

sub audit {
    my $a = $t->redis('r', 'XRANGE', "$P:audit", '-', '+') || [];
    return [ map { { id => $_->[0], @{ $_->[1] } } } @$a ];
}

sub edge {
    my $r = $t->redis('r', 'HGETALL', "$P:edge:edge-1") || [];
    return { @$r };
}

my $sub = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $rport,
                                Proto => 'tcp', Timeout => 5) or die $!;
print $sub "*2\r\n\$9\r\nSUBSCRIBE\r\n\$9\r\nsg:events\r\n";
my $subbuf = '';

# the first message published after the subscription, bounded
sub next_message {
    my $sel = IO::Select->new($sub);
    my $deadline = time + 5;
    while (time < $deadline) {
        return $1 if $subbuf =~ s/^.*?\*3\r\n\$7\r\nmessage\r\n\$\d+\r\n
                                  sg:events\r\n\$\d+\r\n([^\r]*)\r\n//sx;
        last unless $sel->can_read($deadline - time);
        my $n = sysread($sub, $subbuf, 4096, length $subbuf);
        last unless $n;
    }
    return undef;
}

# bytes until re matches, bounded by 5 s
sub read_until {
    my ($re) = @_;
    my $sel = IO::Select->new($sub);
    my $deadline = time + 5;
    while ($subbuf !~ $re) {
        my $left = $deadline - time;
        return 0 if $left <= 0 || !$sel->can_read($left);
        sysread($sub, $subbuf, 4096, length $subbuf) or return 0;
    }
    return 1;
}

ok(read_until(qr/subscribe.*\r\n:1\r\n/s), 'subscribed to sg:events');
$subbuf = '';

$t->start_nginx('n');
ok($t->wait_for(sub { my $e = edge(); $e->{default} && $e->{api} }, 5),
   'the edge heartbeats: it serves default and api');

my $line = "migctl: maintenance: no live edge serves scope 'report' (the 1"
         . " live edge serves: api, default): a mistyped --scope? --any-scope"
         . " sets it anyway";
$line = qr/^\Q$line\E\n\z/;

# --- on for a scope nobody serves: refused, nothing written ---------------

my $r = mig(qw(--scope report maintenance on --reason typo));
is($r->{rc}, 4, 'on, scope report: exit 4 (refused)');
like($r->{err}, $line, 'on: the one line, naming the scopes served');
is($r->{out}, '', 'on: nothing on stdout');
is_deeply(state('report'), {}, 'on: no state written for report');
is($t->redis('r', 'EXISTS', "$P:state:report"), 0, 'on: the key is absent');

my $a = audit();
is(scalar @$a, 1, 'on: one audit entry');
is_deeply([ @{ $a->[0] }{qw(action scope result actor reason)} ],
          [ 'on', 'report', 'refused', 'alice', 'typo' ],
          'on: the refusal is audited');

# --json: the error object, with the edges' view
$r = mig(qw(--json --scope report maintenance on));
is($r->{rc}, 4, 'on --json: exit 4');
my $j = eval { decode_json($r->{out}) } || {};
is($j->{ok}, JSON::PP::false, 'on --json: ok false');
is($j->{exit}, 4, 'on --json: exit 4 in the object');
like($j->{error} // '', qr/^no live edge serves scope 'report'/,
     'on --json: the error');
is($j->{live_edges}, 1, 'on --json: live_edges 1');
is_deeply($j->{scopes_served}, [ 'api', 'default' ],
          'on --json: scopes_served');
like($r->{err}, $line, 'on --json: the one line on stderr too');
is($t->redis('r', 'EXISTS', "$P:state:report"), 0, 'on --json: not written');

# --- a scope the edge serves: written as before ---------------------------

$r = mig(qw(--scope api maintenance on));
is($r->{rc}, 0, 'on, scope api: exit 0') or diag($r->{err});
is(state('api')->{mode}, 'on', 'api: state on');
is(next_message(), 'api 1',
   'the first publish is api\'s: the refused changes published nothing');

# --- --any-scope: set anyway ------------------------------------------------

$r = mig(qw(--scope report maintenance on --any-scope));
is($r->{rc}, 0, 'on --any-scope: exit 0') or diag($r->{err});
is(state('report')->{mode}, 'on', 'on --any-scope: report is on');
is(state('report')->{epoch}, 1, 'on --any-scope: epoch 1');
is(next_message(), 'report 1', 'on --any-scope: published');

# --- off the same ---------------------------------------------------------

unlink $ran;
$r = mig(qw(--scope report maintenance off));
is($r->{rc}, 4, 'off, scope report: exit 4 (refused)');
like($r->{err}, $line, 'off: the one line');
ok(!-e $ran, 'off: refused before the health checks ran');
is(state('report')->{mode}, 'on', 'off: report still on');
is(state('report')->{epoch}, 1, 'off: epoch unchanged');
$a = audit();
is_deeply([ @{ $a->[-1] }{qw(action scope result)} ],
          [ 'off', 'report', 'refused' ], 'off: the refusal is audited');

$r = mig(qw(--scope report maintenance off --any-scope));
is($r->{rc}, 0, 'off --any-scope: exit 0') or diag($r->{err});
ok(-e $ran, 'off --any-scope: the health checks ran');
is(state('report')->{mode}, 'off', 'off --any-scope: report is off');
is(next_message(), 'report 2', 'off --any-scope: published');

$r = mig(qw(--scope api maintenance off));
is($r->{rc}, 0, 'off, scope api: exit 0') or diag($r->{err});
is(state('api')->{mode}, 'off', 'off, scope api: written');
is(next_message(), 'api 2', 'off, scope api: published');

# --- no live edge: no refusal ---------------------------------------------

$t->stop_nginx('n');
ok($t->wait_for(sub {
       my $s = $t->redis('r', 'ZSCORE', "$P:edges", 'edge-1');
       defined $s && time * 1000 - $s > $LIVE_MS + 100 }, 10),
   'the edge stopped: its heartbeat is older than edge_live_ms');

$r = mig(qw(--scope report maintenance on));
is($r->{rc}, 0, 'no live edge: on report, exit 0') or diag($r->{err});
is(state('report')->{mode}, 'on', 'no live edge: written');
is(next_message(), 'report 3', 'no live edge: published');

$r = mig(qw(--scope report maintenance off));
is($r->{rc}, 0, 'no live edge: off report, exit 0') or diag($r->{err});
is(state('report')->{mode}, 'off', 'no live edge: off written');

# --- edges written by hand: the same rule ---------------------------------

# a live edge whose hash is gone: what it serves is unknown, not refused
my $now = int(time * 1000);
$t->redis('r', 'ZADD', "$P:edges", $now, 'ghost', $now, 'ghost2');
$r = mig(qw(--scope report maintenance on));
is($r->{rc}, 0, 'a live edge without its hash: not refused') or diag($r->{err});

# two live edges: the scopes they serve, each once, sorted
$t->redis('r', 'HSET', "$P:edge:ghost", zz => 'off:0', default => 'off:0',
          seen_ms => $now, version => '1.0.0', pid => 1);
$t->redis('r', 'HSET', "$P:edge:ghost2", api => 'off:0', zz => 'off:0',
          seen_ms => $now);
$r = mig(qw(--scope report maintenance off));
is($r->{rc}, 4, 'two live edges, neither serves report: exit 4');
like($r->{err}, qr/^\Qmigctl: maintenance: no live edge serves scope 'report'\E
                   \Q (the 2 live edges serve: api, default, zz): a mistyped\E
                   \Q --scope? --any-scope sets it anyway\E\n\z/x,
     'the 2 live edges and their scopes, sorted');
is(state('report')->{mode}, 'on', 'still on');

# P:edges unreadable: said, and the change goes through (the guard never
# blocks containment on a broken key)
$t->redis('r', 'DEL', "$P:edges");
$t->redis('r', 'SET', "$P:edges", 'garbage');
$r = mig(qw(--scope report maintenance on));
is($r->{rc}, 0, 'P:edges of the wrong type: exit 0') or diag($r->{err});
like($r->{err}, qr/^\Qmigctl: maintenance: the scopes the edges serve are\E
                   \Q unreadable (WRONGTYPE \E[^\n]*\Q): the scope is not\E
                   \Q checked\E\n\z/x, '... said in one line');

# --- a Redis without EVAL_RO (before 7): the same read through EVAL -------

my $oport = $t->start_redis('old', args => [ '--rename-command', 'EVAL_RO',
                                             '' ]);
my $oconf = $t->write_file('old.conf', <<"EOF");
redis = { host = "127.0.0.1"; port = $oport; timeout_ms = 2000; };
prefix = "$P";
EOF
$now = int(time * 1000);
$t->redis('old', 'ZADD', "$P:edges", $now, 'e1');
$t->redis('old', 'HSET', "$P:edge:e1", default => 'off:0', seen_ms => $now);
$r = $t->migctl({ env => { %env, MIGCTL_CONFIG => $oconf } },
                qw(--scope report maintenance on));
is($r->{rc}, 4, 'no EVAL_RO: refused all the same');
like($r->{err}, qr/\Q(the 1 live edge serves: default)\E/, '... the line');
is($t->redis('old', 'EXISTS', "$P:state:report"), 0, '... not written');
like($t->redis('old', 'INFO', 'commandstats'), qr/cmdstat_eval:calls=2,/,
     '... read with EVAL (then the refusal audited)');

$t->check_logs('n');

done_testing();
