#!/usr/bin/env bash
# Throughput and latency against connections and against keys: Sluice TAKE against redis-server INCR under the
# same redis-benchmark load, alternating at each point (no pipelining).
#   connections: -c 1 10 50 100 200, -r 100000 (keys drawn from 100,000)
#   keys:        -r 1 (one hot key), 10000, 1000000, -c 50
# Writes JSON (RESULTS=file). Env: N (requests at 50 connections, 200000; scaled down for fewer), CONNECTIONS,
# KEYS (the lists), EVENT_LOOPS (sluice's --event-loops, default 1: the load generator has the other core).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); . "$here/common.sh"
N=${N:-200000}; CONNECTIONS=${CONNECTIONS:-"1 10 50 100 200"}; KEYS=${KEYS:-"1 10000 1000000"}
RESULTS=${RESULTS:-$here/../results/sweep.json}
BIN=$(build_sluice)
TMP=$(mktemp -d -t sluice-sweep.XXXXXX)
RPID=; SPID=
trap 'stop_pid "$RPID"; stop_pid "$SPID"; rm -rf "$TMP"' EXIT
EVENT_LOOPS=${EVENT_LOOPS:-1} bench_servers "$TMP"

point() {   # point DIMENSION VALUE CONNECTIONS KEYS -> a JSON row
  local c=$3 r=$4 n
  n=$(( N * (c < 50 ? c : 50) / 50 )); (( n >= 20000 )) || n=20000
  local ref sl
  ref=$(redis-benchmark -h 127.0.0.1 -p "$RPORT" -c "$c" -n "$n" -r "$r" --csv INCR 'key:__rand_int__' | rb_row x)
  sl=$(redis-benchmark -h 127.0.0.1 -p "$SPORT" -c "$c" -n "$n" -r "$r" --csv TAKE bench 'key:__rand_int__' | rb_row x)
  read -r _ rops rp50 rp99 <<<"$ref"; read -r _ sops sp50 sp99 <<<"$sl"
  printf '  %-11s %8s: redis INCR %9.0f ops/s (p99 %.3f ms) | sluice TAKE %9.0f ops/s (p99 %.3f ms) | ratio %.2fx\n' \
    "$1" "$2" "$rops" "$rp99" "$sops" "$sp99" "$(awk -v a="$sops" -v b="$rops" 'BEGIN{print a/b}')" >&2
  echo "{\"dimension\": \"$1\", \"value\": $2, \"connections\": $c, \"keys\": $r, \"requests\": $n, \"reference_ops\": $rops, \"sluice_ops\": $sops, \"reference_p50_ms\": $rp50, \"sluice_p50_ms\": $sp50, \"reference_p99_ms\": $rp99, \"sluice_p99_ms\": $sp99, \"ratio\": $(awk -v a="$sops" -v b="$rops" 'BEGIN{printf "%.3f", a/b}')}"
}
rows=()
for c in $CONNECTIONS; do rows+=("$(point connections "$c" "$c" 100000)"); done
for r in $KEYS; do rows+=("$(point keys "$r" 50 "$r")"); done
write_results "$RESULTS" sweep \
  "redis-benchmark -c {$CONNECTIONS} -r 100000, and -c 50 -r {$KEYS}: TAKE bench key:__rand_int__ vs INCR key:__rand_int__; sluice --event-loops ${EVENT_LOOPS:-1}" \
  '"reference": "redis-server INCR"' "${rows[@]}"
