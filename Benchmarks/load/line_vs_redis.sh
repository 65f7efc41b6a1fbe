#!/usr/bin/env bash
# Sluice's line protocol against redis-server, same load generator, alternating in one run.
#   sluice:  redis-benchmark -c 50 -r 100000 TAKE bench key:__rand_int__   (token bucket, 1e9/s: all allowed)
#   redis:   redis-benchmark -c 50 -r 100000 INCR key:__rand_int__
# without pipelining and with -P 16. Prints medians and the ratio sluice/redis; writes JSON (RESULTS=file).
# Env: REPS (3), N (500000), C (50), R (100000), RESULTS (Benchmarks/results/line_vs_redis.json),
#      EVENT_LOOPS (sluice's --event-loops; default one per core)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); . "$here/common.sh"
N=${N:-500000}; C=${C:-50}; R=${R:-100000}
RESULTS=${RESULTS:-$here/../results/line_vs_redis.json}
BIN=$(build_sluice)
TMP=$(mktemp -d -t sluice-line.XXXXXX)
RPID=; SPID=
trap 'stop_pid "$RPID"; stop_pid "$SPID"; rm -rf "$TMP"' EXIT
bench_servers "$TMP"

for rep in $(seq "$REPS"); do
  for P in 1 16; do
    redis-benchmark -h 127.0.0.1 -p "$RPORT" -c "$C" -n "$N" -r "$R" -P "$P" --csv INCR 'key:__rand_int__' | rb_row "redis/P$P" >> "$TMP/rows"
    redis-benchmark -h 127.0.0.1 -p "$SPORT" -c "$C" -n "$N" -r "$R" -P "$P" --csv TAKE bench 'key:__rand_int__' | rb_row "sluice/P$P" >> "$TMP/rows"
  done
done
# The load must have been decided, not refused: every reply an allowed decision.
check=$(redis-cli -h 127.0.0.1 -p "$SPORT" TAKE bench probe | head -1)
[ "$check" = 1 ] || { echo "sluice did not allow the probe ($check)" >&2; exit 1; }
errors=$(redis-cli -h 127.0.0.1 -p "$SPORT" INFO | awk -F: '/^protocol_errors/{print $2}' | tr -d '\r')

med() { awk -v l="$1" -v c="$2" '$1==l{print $c}' "$TMP/rows" | median; }
echo "# machine: $(machine_note)"
echo "# redis-server $(redis-server --version | awk '{print $3}' | cut -d= -f2), sluice $("$BIN" --version); protocol errors: $errors"
echo "# cmd: redis-benchmark -h 127.0.0.1 -p PORT -c $C -n $N -r $R -P {1,16} --csv {INCR key:__rand_int__ | TAKE bench key:__rand_int__}  (x$REPS alternating, medians); sluice --event-loops ${EVENT_LOOPS:-default}"
json_rows=()
for P in 1 16; do
  rs=$(med "redis/P$P" 2); so=$(med "sluice/P$P" 2)
  rp50=$(med "redis/P$P" 3); sp50=$(med "sluice/P$P" 3); rp99=$(med "redis/P$P" 4); sp99=$(med "sluice/P$P" 4)
  ratio=$(awk -v a="$so" -v b="$rs" 'BEGIN{printf "%.2f", a/b}')
  printf 'P%-3s redis INCR %9.0f ops/s (p50 %.3f ms, p99 %.3f ms) | sluice TAKE %9.0f ops/s (p50 %.3f ms, p99 %.3f ms) | ratio %sx\n' \
    "$P" "$rs" "$rp50" "$rp99" "$so" "$sp50" "$sp99" "$ratio"
  json_rows+=("{\"pipeline\": $P, \"reference_ops\": $rs, \"sluice_ops\": $so, \"reference_p50_ms\": $rp50, \"sluice_p50_ms\": $sp50, \"reference_p99_ms\": $rp99, \"sluice_p99_ms\": $sp99, \"ratio\": $ratio}")
done
write_results "$RESULTS" line_vs_redis \
  "redis-benchmark -c $C -n $N -r $R -P {1,16}: TAKE bench key:__rand_int__ vs INCR key:__rand_int__, x$REPS alternating, medians" \
  "\"reference\": \"redis-server INCR\", \"event_loops\": \"${EVENT_LOOPS:-one per core}\"" "${json_rows[@]}"
