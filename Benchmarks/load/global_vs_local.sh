#!/usr/bin/env bash
# Global policies through Redis, measured on one sidecar under redis-benchmark, each against a reference
# run in the same session, alternating:
#   leased:  TAKE global repN:__rand_int__  vs  TAKE local repN:__rand_int__   (same fixed window, scope global vs local)
#            -c 50 -P 16 -r 1000; also the share of global decisions answered without waiting for Redis (INFO)
#   strict:  TAKE strict key:__rand_int__  (one EVALSHA per decision, token bucket in Lua)
#            vs EVALSHA of the common Redis+Lua token bucket sent straight to redis-server
#            -c 50 -r 100000, -P 1 and -P 16
# Writes JSON (RESULTS=file). Env: REPS (3), N (2000000 leased, NS 300000 strict), C (50), EVENT_LOOPS (Sluice's
# --event-loops; default one per core)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); . "$here/common.sh"
N=${N:-2000000}; NS=${NS:-300000}; C=${C:-50}
RESULTS=${RESULTS:-$here/../results/global_vs_local.json}
BIN=$(build_sluice)
TMP=$(mktemp -d -t sluice-global.XXXXXX)
RPID=; SPID=
LOOPS=(); [ -z "${EVENT_LOOPS:-}" ] || LOOPS=(--event-loops "$EVENT_LOOPS")
trap 'stop_pid "$SPID"; stop_pid "$RPID"; rm -rf "$TMP"' EXIT
global_servers "$TMP" "strict: { algorithm: token_bucket, limit: 100, period: 1s, scope: global, sync: strict }"
TB=$(redis-cli -h 127.0.0.1 -p "$RPORT" SCRIPT LOAD "$(cat "$here/reference_token_bucket.lua")")
NOW=$(date +%s%3N)   # a fixed client clock, capacity 100: ~3 hits per key, every request allowed

rb() { local port=$1; shift; redis-benchmark -h 127.0.0.1 -p "$port" -c "$C" --csv "$@"; }
for rep in $(seq "$REPS"); do
  # Fresh keys every rep, so each global run starts with no lease at all.
  rb "$SPORT" -n "$N" -r 1000 -P 16 TAKE local "rep$rep:__rand_int__" | rb_row "local/P16" >> "$TMP/rows"
  before_local=$(info global_local_decisions); before_redis=$(info global_redis_decisions)
  rb "$SPORT" -n "$N" -r 1000 -P 16 TAKE global "rep$rep:__rand_int__" | rb_row "global/P16" >> "$TMP/rows"
  l=$(( $(info global_local_decisions) - before_local )); r=$(( $(info global_redis_decisions) - before_redis ))
  echo "share $(awk -v l="$l" -v r="$r" 'BEGIN{printf "%.5f", l/(l+r)}') $l $r" >> "$TMP/shares"
  for P in 1 16; do
    rb "$RPORT" -n "$NS" -r 100000 -P "$P" EVALSHA "$TB" 1 'tb:__rand_int__' 100 100 "$NOW" 1 | rb_row "redis-lua/P$P" >> "$TMP/rows"
    rb "$SPORT" -n "$NS" -r 100000 -P "$P" TAKE strict 'key:__rand_int__' | rb_row "strict/P$P" >> "$TMP/rows"
  done
  redis-cli -h 127.0.0.1 -p "$RPORT" FLUSHALL >/dev/null   # next rep starts from empty buckets for both sides
done
# Every decision was a real, allowed one: a probe of each policy, and no fallbacks.
for p in local global strict; do
  [ "$(redis-cli -h 127.0.0.1 -p "$SPORT" TAKE "$p" probe | head -1)" = 1 ] || { echo "sluice did not allow the $p probe" >&2; exit 1; }
done
fallbacks=$(info global_fallback_decisions); errors=$(info redis_errors)
[ "$fallbacks" = 0 ] || { echo "decisions fell back ($fallbacks): Redis was not answering" >&2; exit 1; }

med() { awk -v l="$1" -v c="$2" '$1==l{print $c}' "$TMP/rows" | median; }
share=$(awk '{print $2}' "$TMP/shares" | median)
lo=$(med local/P16 2); gl=$(med global/P16 2)
lease_ratio=$(awk -v a="$gl" -v b="$lo" 'BEGIN{printf "%.2f", a/b}')
# Each rep's global run against the local run just before it: the spread the medians hide.
rep_ratios=$(awk '$1=="local/P16"{l[++nl]=$2} $1=="global/P16"{g[++ng]=$2} END{for(i=1;i<=ng;i++) printf "%s%.2f", (i>1?", ":""), g[i]/l[i]}' "$TMP/rows")
echo "# machine: $(machine_note)"
echo "# redis-server $(redis-server --version | awk '{print $3}' | cut -d= -f2), sluice $("$BIN" --version) (event loops: ${EVENT_LOOPS:-one per core}); redis errors: $errors, fallbacks: $fallbacks"
echo "# leased: redis-benchmark -c $C -n $N -r 1000 -P 16 TAKE {global|local} repN:__rand_int__ (fresh keys each rep; x$REPS alternating, medians)"
printf 'leased  global %9.0f ops/s (p50 %.3f ms) | local %9.0f ops/s (p50 %.3f ms) | ratio %sx (per rep: %s) | answered without Redis: %s (per rep: %s)\n' \
  "$gl" "$(med global/P16 3)" "$lo" "$(med local/P16 3)" "$lease_ratio" "$rep_ratios" "$share" "$(awk '{printf "%s ", $2}' "$TMP/shares")"
echo "# strict: redis-benchmark -c $C -n $NS -r 100000 -P {1,16}: TAKE strict key:__rand_int__ vs EVALSHA <token_bucket.lua> 1 tb:__rand_int__ 100 100 <now> 1 on redis-server"
json_rows=("{\"mode\": \"leased\", \"pipeline\": 16, \"reference\": \"scope local\", \"reference_ops\": $lo, \"sluice_ops\": $gl, \"ratio\": $lease_ratio, \"rep_ratios\": [$rep_ratios], \"without_redis_share\": $share}")
for P in 1 16; do
  rs=$(med "redis-lua/P$P" 2); so=$(med "strict/P$P" 2)
  ratio=$(awk -v a="$so" -v b="$rs" 'BEGIN{printf "%.2f", a/b}')
  printf 'strict P%-3s sluice %9.0f ops/s (p50 %.3f ms, p99 %.3f ms) | redis+lua %9.0f ops/s (p50 %.3f ms, p99 %.3f ms) | ratio %sx\n' \
    "$P" "$so" "$(med "strict/P$P" 3)" "$(med "strict/P$P" 4)" "$rs" "$(med "redis-lua/P$P" 3)" "$(med "redis-lua/P$P" 4)" "$ratio"
  json_rows+=("{\"mode\": \"strict\", \"pipeline\": $P, \"reference\": \"Redis+Lua token bucket (EVALSHA)\", \"reference_ops\": $rs, \"sluice_ops\": $so, \"ratio\": $ratio}")
done
write_results "$RESULTS" global_vs_local \
  "leased: redis-benchmark -c $C -n $N -r 1000 -P 16 TAKE global|local repN:__rand_int__; strict: -c $C -n $NS -r 100000 -P {1,16} TAKE strict vs EVALSHA token_bucket.lua; x$REPS alternating, medians; sluice event loops ${EVENT_LOOPS:-one per core}" \
  "" "${json_rows[@]}"
