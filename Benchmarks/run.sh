#!/usr/bin/env bash
# The whole comparison in one command: builds Sluice (release), runs every load script against its reference on
# loopback, the memory and start-up measurements and the core benchmarks, writes JSON under Benchmarks/results/,
# and renders charts/ with matplotlib (in a venv this script makes, Benchmarks/.venv-charts).
#   Benchmarks/run.sh           about 16 minutes after the first build (823 s measured before leased_steady.sh)
#   Benchmarks/run.sh --quick   about 2.5 minutes after the first build: fewer repetitions, shorter runs, smaller sweeps
# Steps whose reference is not installed (nginx, wrk, Envoy, nghttpd) are skipped with the reason; scripts/install-deps
# and scripts/test install them all. Every server binds 127.0.0.1 and is stopped by its PID.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); root=$(cd "$here/.." && pwd)
quick=0
case "${1:-}" in
  --quick) quick=1 ;;
  "") ;;
  *) echo "usage: Benchmarks/run.sh [--quick]" >&2; exit 2 ;;
esac
started=$(date +%s)
steps=11; step=0
progress() { step=$((step + 1)); echo "== [$step/$steps] $1 ($(( $(date +%s) - started ))s so far)" >&2; }
skip() { echo "   skipped: $1" >&2; }
has() { command -v "$1" >/dev/null 2>&1; }
results="$here/results"; mkdir -p "$results"

progress "building sluice (release)"
(cd "$root" && swift build -c release --product sluice >&2)
export SLUICE_BIN="$root/.build/release/sluice" EVENT_LOOPS=1
if (( quick )); then export REPS=1; fi

progress "line protocol: Sluice TAKE against redis-server INCR, no pipelining and -P 16"
if has redis-server && has redis-benchmark; then
  if (( quick )); then N=100000 "$here/load/line_vs_redis.sh"; else "$here/load/line_vs_redis.sh"; fi
else skip "needs redis-server and redis-benchmark"; fi

progress "throughput against connections (1 to 200) and keys (1, 10k, 1M), against redis-server"
if has redis-server && has redis-benchmark; then
  if (( quick )); then N=50000 CONNECTIONS="1 50 200" KEYS="1 1000000" "$here/load/sweep.sh"; else "$here/load/sweep.sh"; fi
else skip "needs redis-server and redis-benchmark"; fi

progress "latency under a fixed offered rate (sluice bench --rate, open loop), line protocol and HTTP"
if (( quick )); then RATES="5000 20000" DURATION=2s "$here/load/latency.sh"; else "$here/load/latency.sh"; fi

progress "HTTP: Sluice /v1/check against nginx limit_req"
if has nginx && has wrk; then
  if (( quick )); then DUR=3s "$here/load/http_vs_nginx.sh"; else "$here/load/http_vs_nginx.sh"; fi
else skip "needs nginx and wrk"; fi

progress "global policies through Redis: leased against local, strict against Redis+Lua EVALSHA"
if has redis-server && has redis-benchmark; then
  if (( quick )); then N=300000 NS=50000 "$here/load/global_vs_local.sh"; else "$here/load/global_vs_local.sh"; fi
  if (( quick )); then PAIRS=2 N=200000 "$here/load/leased_steady.sh"; else "$here/load/leased_steady.sh"; fi
  if (( quick )); then REPS=2 WINDOW=1 "$here/load/leased_paired.sh"; else "$here/load/leased_paired.sh"; fi
else skip "needs redis-server and redis-benchmark"; fi

progress "Envoy's rate limit service: direct, and through Envoy with and without it"
if has h2load && has nghttpd && has wrk && "$root/.venv-e2e/bin/python" -c 'import envoy' 2>/dev/null; then
  if (( quick )); then N=20000 DUR=2s "$here/load/rls.sh"; else N=100000 DUR=5s "$here/load/rls.sh"; fi
else skip "needs h2load and nghttpd (nghttp2-client, nghttp2-server), wrk, and Envoy in .venv-e2e (scripts/test makes it)"; fi

progress "memory against keys, start-up and idle memory"
if (( quick )); then
  python3 "$here/footprint.py" "$SLUICE_BIN" --sweep 100000,1000000 --out "$results/memory.json" >/dev/null
  python3 "$here/footprint.py" "$SLUICE_BIN" --runs 1 --keys 100000 --out "$results/startup.json" >/dev/null
else
  python3 "$here/footprint.py" "$SLUICE_BIN" --sweep 100000,1000000,10000000 --out "$results/memory.json" >/dev/null
  python3 "$here/footprint.py" "$SLUICE_BIN" --runs 5 --out "$results/startup.json" >/dev/null
fi

progress "the decision core (package-benchmark)"
if (( quick )); then FILTER=".*hot-key 1-thread" "$here/run_core.sh"; else "$here/run_core.sh"; fi

progress "matplotlib (Benchmarks/.venv-charts)"
if ! "$here/.venv-charts/bin/python" -c 'import matplotlib' >/dev/null 2>&1; then
  python3 -m venv "$here/.venv-charts"
  "$here/.venv-charts/bin/pip" install -q --disable-pip-version-check 'matplotlib==3.11.2'
fi

progress "charts"
"$here/.venv-charts/bin/python" "$root/charts/render.py"
echo "== done in $(( $(date +%s) - started ))s: results in Benchmarks/results/, charts in charts/" >&2
