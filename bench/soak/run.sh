#!/usr/bin/env bash
# The 10-minute bounded-memory soak (issue 8): bench/soak/run.sh [build/hdnsd] [--duration S].
# Results in bench/soak/results/<date>/ (samples.csv, summary.json, hdnsd.log).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-build/hdnsd}; shift || true
out=bench/soak/results/$(date -u +%Y%m%dT%H%M%SZ)
exec /usr/bin/python3 bench/soak/soak.py "$bin" "$out" "$@"
