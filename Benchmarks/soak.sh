#!/usr/bin/env bash
# The soak: a mixed load (line, HTTP, gRPC; three algorithms; local and global through Redis) at about 70% of the
# line protocol's maximum measured in the same run, with keys churning 100 times beyond store.max_keys. Samples
# resident memory and p99 every 10 s. Usage: Benchmarks/soak.sh [--duration SECONDS] (default 600).
# Results: Benchmarks/results/soak.json (OUT overrides), rendered by charts/render.py. Exits 1 if Sluice died,
# a probe got an error, or resident memory grew more than 5% after the warm-up.
# Env: SLUICE_BIN (default: build release).
set -euo pipefail
cd "$(dirname "$0")/.."
source Benchmarks/load/common.sh
bin=$(build_sluice)
exec python3 Benchmarks/soak.py "$bin" --out "${OUT:-Benchmarks/results/soak.json}" "$@"
