#!/usr/bin/env bash
# Builds and runs the cache micro-benchmark (SIEVE vs LRU on a Zipf trace, memory per entry).
# Usage: bench/cache/run.sh [requests]   (default 2,000,000). Results: bench/RESULTS.md, cache section.
set -eu
cd "$(dirname "$0")/../.."
out=${BENCH_BUILD:-/tmp/hdnsd-bench}/cache_bench
mkdir -p "$(dirname "$out")"
g++ -std=c++20 -O2 -DNDEBUG -Iinclude -o "$out" bench/cache/cache_bench.cc src/cache/cache.cc src/dns/*.cc
"$out" "$@"
