#!/usr/bin/env bash
# make bench-watch: the three watch benchmarks (bench_watch.py) against an -O2 build of hdnsd and
# the fake API server; results as JSON in $OUT (default bench/watch/last-results.json) and on
# stdout. Record them in bench/RESULTS.md by hand, with the load the machine had (printed).
# Needs dnsperf (make bench-watch installs it). Everything runs on 127.0.0.1 and is bounded:
# latency 100 changes, sync 3+3 runs, churn 2 × 60 s of dnsperf.
set -eu
cd "$(dirname "$0")/../.."
bin=${1:-build/hdnsd}
out=${OUT:-bench/watch/last-results.json}
command -v dnsperf >/dev/null || { echo "bench-watch: dnsperf missing (apt-get install dnsperf)" >&2; exit 1; }
echo "machine: $(nproc) cores; $(uptime)"
/usr/bin/python3 bench/watch/bench_watch.py all --hdnsd "$bin" --out "$out" "${@:2}"
echo "machine after: $(uptime)"
echo "results: $out"
