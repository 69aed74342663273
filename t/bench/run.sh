#!/usr/bin/env bash
# run.sh: the benchmarks (make bench).  Bounded in time: a few seconds each.
set -euo pipefail
cd "$(dirname "$0")/../.."
perl -I t/lib t/bench/gate.pl
perl -I t/lib t/bench/migrations.pl
perl -I t/lib t/bench/verify.pl
perl -I t/lib t/bench/peers.pl
