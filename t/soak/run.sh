#!/usr/bin/env bash
# run.sh: the soak (make soak): SOAK_S seconds (default 600) of faults
# under load; the report in build/soak/results.md, exit 1 on a failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p build/soak
exec nice -n "${SOAK_NICE:-10}" perl -I t/lib t/soak/soak.pl
