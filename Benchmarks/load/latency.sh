#!/usr/bin/env bash
# Latency under a fixed offered rate: `sluice bench --rate` (open loop: each request falls due on a schedule and
# its latency counts from then, so queueing is not hidden) at several rates, on the line protocol (TAKE) and the
# HTTP API (GET /v1/check), 50 connections, keys drawn from 100,000. Writes JSON (RESULTS=file).
# Env: RATES (per second, "5000 10000 20000 40000"), DURATION (5s), EVENT_LOOPS (sluice's, default 1).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); . "$here/common.sh"
RATES=${RATES:-"5000 10000 20000 40000"}; DURATION=${DURATION:-5s}
RESULTS=${RESULTS:-$here/../results/latency.json}
BIN=$(build_sluice)
TMP=$(mktemp -d -t sluice-latency.XXXXXX)
LPORT=$(free_port 17379); HPORT=$(free_port 17380)
bench_yaml "$LPORT" "$HPORT" > "$TMP/sluice.yaml"
"$BIN" serve --config "$TMP/sluice.yaml" --log-level warning --event-loops "${EVENT_LOOPS:-1}" 2>"$TMP/sluice.log" &
SPID=$!
trap 'stop_pid $SPID; rm -rf "$TMP"' EXIT
wait_port "$LPORT"; wait_port "$HPORT"
rows=()
for target in "line://127.0.0.1:$LPORT" "http://127.0.0.1:$HPORT"; do
  for rate in $RATES; do
    report=$("$BIN" bench --target "$target" --connections 50 --rate "$rate" --duration "$DURATION" --keys 100000 --json --quiet)
    python3 - "$report" >&2 <<'PY'
import json, sys
r = json.loads(sys.argv[1]); l = r["latency_ms"]
print(f"  {r['target']:<28} offered {r['rate']:>7.0f}/s: {r['throughput']:>8.0f} decisions/s, p50 {l['p50']:.3f} p99 {l['p99']:.3f} "
      f"p99.9 {l['p999']:.3f} max {l['max']:.3f} ms, errors {r['errors']}")
PY
    rows+=("$report")
  done
done
write_results "$RESULTS" latency \
  "sluice bench --target {line,http} --connections 50 --rate {$RATES} --duration $DURATION --keys 100000; sluice --event-loops ${EVENT_LOOPS:-1}" \
  "" "${rows[@]}"
