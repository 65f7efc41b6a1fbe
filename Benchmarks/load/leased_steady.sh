#!/usr/bin/env bash
# Leased global decisions in steady state, against the same fixed window with local scope, in one Sluice:
#   redis-benchmark -c 50 -P 16 -r 1000 TAKE {local|global} w:__rand_int__, warm keys (every bucket holds a
#   lease before the first measured run), alternating, each pair's global/local ratio and their median.
# global_vs_local.sh measures from fresh keys (each run starts without leases); this one measures what a
# leased decision costs once leases exist, and how it moves with a change to the leased path.
# PIN=1 (default) gives Sluice (one event loop) CPU 0 alone, and redis-benchmark and redis-server CPU 1, so the
# ratio is of Sluice's own CPU per decision; PIN=0 lets everything share both cores.
# Also prints redis-server's CPU per renewal (its main thread's schedstat over the lease requests counted).
# Writes JSON (RESULTS=file). Env: PAIRS (10), N (600000 per run), C (50), PIN (1)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); . "$here/common.sh"
PAIRS=${PAIRS:-10}; N=${N:-600000}; C=${C:-50}
RESULTS=${RESULTS:-$here/../results/leased_steady.json}
BIN=$(build_sluice)
TMP=$(mktemp -d -t sluice-steady.XXXXXX)
SRV=(); CLI=(); LOOPS=()
if [ "${PIN:-1}" = 1 ]; then SRV=(taskset -c 0); CLI=(taskset -c 1); LOOPS=(--event-loops 1); fi
RPID=; SPID=
trap 'stop_pid "$SPID"; stop_pid "$RPID"; rm -rf "$TMP"' EXIT
global_servers "$TMP"
rb() { "${CLI[@]}" redis-benchmark -h 127.0.0.1 -p "$SPORT" -c "$C" -n "$2" -r 1000 -P 16 --csv TAKE "$1" 'w:__rand_int__' | rb_row "$1"; }
rb local 300000 >/dev/null; rb global 300000 >/dev/null   # warm: every key has its bucket and its lease
# redis-server's CPU time (its main thread, nanoseconds from schedstat): what each renewal costs the fleet's Redis.
redis_ns() { awk '{print $1}' "/proc/$RPID/schedstat"; }
renewals_before=$(info lease_requests); decisions_before=$(info global_local_decisions); redis_before=$(redis_ns)
for rep in $(seq "$PAIRS"); do
  if (( rep % 2 )); then rb local "$N"; rb global "$N"; else rb global "$N"; rb local "$N"; fi
done > "$TMP/rows"
[ "$(info global_fallback_decisions)" = 0 ] || { echo "decisions fell back: Redis was not answering" >&2; exit 1; }
renewals=$(( $(info lease_requests) - renewals_before )); decisions=$(( $(info global_local_decisions) - decisions_before ))
redis_us=$(awk -v n=$(( $(redis_ns) - redis_before )) -v r="$renewals" 'BEGIN{printf "%.1f", r ? n/r/1000 : 0}')
pairs=$(awk '$1=="local"{l[++nl]=$2} $1=="global"{g[++ng]=$2} END{for(i=1;i<=ng;i++) printf "%s%.3f", (i>1?" ":""), g[i]/l[i]}' "$TMP/rows")
ratio=$(printf '%.2f' "$(tr ' ' '\n' <<<"$pairs" | median)")
lo=$(awk '$1=="local"{print $2}' "$TMP/rows" | median); gl=$(awk '$1=="global"{print $2}' "$TMP/rows" | median)
echo "# leased, steady state: redis-benchmark -c $C -n $N -r 1000 -P 16 TAKE {global|local} w:__rand_int__, warm keys, x$PAIRS alternating pairs, PIN=${PIN:-1}"
printf 'global %9.0f ops/s | local %9.0f ops/s | median of pair ratios %sx (pairs: %s) | renewals per 1000 global decisions: %.2f | redis-server CPU per renewal: %s µs\n' \
  "$gl" "$lo" "$ratio" "$pairs" "$(awk -v r="$renewals" -v d="$decisions" 'BEGIN{printf "%.2f", d ? 1000*r/d : 0}')" "$redis_us"
write_results "$RESULTS" leased_steady \
  "redis-benchmark -c $C -n $N -r 1000 -P 16 TAKE global|local w:__rand_int__; warm keys; x$PAIRS alternating pairs; PIN=${PIN:-1}" \
  "\"pinned\": $([ "${PIN:-1}" = 1 ] && echo true || echo false), \"pair_ratios\": [$(tr ' ' ',' <<<"$pairs")], \"renewals\": $renewals, \"global_decisions\": $decisions, \"redis_cpu_us_per_renewal\": $redis_us" \
  "{\"mode\": \"leased steady\", \"pipeline\": 16, \"reference\": \"scope local\", \"reference_ops\": $lo, \"sluice_ops\": $gl, \"ratio\": $ratio}"
