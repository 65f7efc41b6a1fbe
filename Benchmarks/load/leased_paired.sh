#!/usr/bin/env bash
# Leased global against local, both at once. Two Sluice processes from one configuration (policies `local` and
# `global`: the same fixed window, scope local and global, and the same `redis` section), one loaded with
#   redis-benchmark -c C -P 16 -r 1000 TAKE local  pairN:__rand_int__
# and the other with the same command on `global`, the two loads started together, fresh keys each rep.
# global_vs_local.sh alternates the two policies' runs, so the machine (shared, and its speed moving within
# seconds) changes between the two halves of a pair; here both share the two cores, the scheduler and the noise
# over the same seconds, and their decisions are counted over one window. The load generators run on the same
# cores, so their cost dilutes the ratio as it does in the alternating runs; Sluice's CPU per decision, printed
# beside it, is the undiluted comparison. Also printed: how often each process was preempted (involuntary context
# switches a second, from /proc). A loop busier than its load generator on a shared core is preempted at each
# reply it writes, so both run in smaller batches: a few percent more CPU per decision in one process can tip
# its core into that regime and show as a much larger gap (README, "Global policies through Redis").
# Each rep: both loads start; after WARM seconds both processes' `decisions_allowed` (INFO) and CPU time (/proc)
# are read, and again WINDOW seconds later; the loads are then stopped by their PIDs. The order in which the two
# start alternates between reps. Prints each rep's ratio and the median, checks that nothing was denied or fell
# back, writes JSON (RESULTS=file).
# Env: REPS (5), WINDOW (3), WARM (0.2), C (50), EVENT_LOOPS (each Sluice's --event-loops; default one per core),
# RESULTS (Benchmarks/results/leased_paired.json)
set -euo pipefail
REPS=${REPS:-5}  # before common.sh, whose default is 3
here=$(cd "$(dirname "$0")" && pwd); . "$here/common.sh"
WINDOW=${WINDOW:-3}; WARM=${WARM:-0.2}; C=${C:-50}
RESULTS=${RESULTS:-$here/../results/leased_paired.json}
BIN=$(build_sluice)
TMP=$(mktemp -d -t sluice-paired.XXXXXX)
RPID=; LPID=; GPID=; BL=; BG=
LOOPS=(); [ -z "${EVENT_LOOPS:-}" ] || LOOPS=(--event-loops "$EVENT_LOOPS")
trap 'stop_pid "$BL"; stop_pid "$BG"; stop_pid "$LPID"; stop_pid "$GPID"; stop_pid "$RPID"; rm -rf "$TMP"' EXIT

RPORT=$(free_port 16579)
redis-server --bind 127.0.0.1 --port "$RPORT" --save '' --appendonly no --daemonize no --logfile "$TMP/redis.log" --dir "$TMP" &
RPID=$!
wait_port "$RPORT"
sluice() {   # sluice NAME PORT: starts one Sluice on PORT, prints its PID
  global_yaml "$2" "$RPORT" > "$TMP/$1.yaml"
  "$BIN" serve --config "$TMP/$1.yaml" --log-level warning ${LOOPS[@]+"${LOOPS[@]}"} >/dev/null 2>"$TMP/$1.log" &
  echo $!
}
LPORT=$(free_port 17579); LPID=$(sluice local "$LPORT"); wait_port "$LPORT"
GPORT=$(free_port $((LPORT + 1))); GPID=$(sluice global "$GPORT"); wait_port "$GPORT"

field() { redis-cli -h 127.0.0.1 -p "$1" INFO | tr -d '\r' | awk -F: -v k="$2" '$1==k{print $2}'; }
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
# How often the process's threads were preempted (involuntary context switches, summed over its threads).
preempted() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^nonvoluntary_ctxt_switches/{s+=$2} END{print s+0}'; }
load() { redis-benchmark -h 127.0.0.1 -p "$1" -c "$C" -n 1000000000 -r 1000 -P 16 -q TAKE "$2" "$3:__rand_int__" >/dev/null 2>&1 & echo $!; }
tk=$(getconf CLK_TCK)
for rep in $(seq "$REPS"); do
  if [ $((rep % 2)) = 1 ]; then BL=$(load "$LPORT" local "pair$rep"); BG=$(load "$GPORT" global "pair$rep")
  else BG=$(load "$GPORT" global "pair$rep"); BL=$(load "$LPORT" local "pair$rep"); fi
  sleep "$WARM"
  l0=$(field "$LPORT" decisions_allowed); g0=$(field "$GPORT" decisions_allowed); lc0=$(cpu "$LPID"); gc0=$(cpu "$GPID"); lp0=$(preempted "$LPID"); gp0=$(preempted "$GPID")
  sleep "$WINDOW"
  l1=$(field "$LPORT" decisions_allowed); g1=$(field "$GPORT" decisions_allowed); lc1=$(cpu "$LPID"); gc1=$(cpu "$GPID"); lp1=$(preempted "$LPID"); gp1=$(preempted "$GPID")
  stop_pid "$BL"; stop_pid "$BG"; BL=; BG=
  echo "$rep $((l1 - l0)) $((g1 - g0)) $(( (lc1 - lc0) * 1000000000 / tk )) $(( (gc1 - gc0) * 1000000000 / tk )) $((lp1 - lp0)) $((gp1 - gp0))" >> "$TMP/rows"
  sleep 0.5
done
for port in "$LPORT" "$GPORT"; do
  [ "$(field "$port" decisions_denied)" = 0 ] || { echo "a decision was denied on port $port" >&2; exit 1; }
done
fallbacks=$(field "$GPORT" global_fallback_decisions); errors=$(field "$GPORT" redis_errors)
[ "$fallbacks" = 0 ] || { echo "global decisions fell back ($fallbacks): Redis was not answering" >&2; exit 1; }
[ "$(field "$GPORT" global_local_decisions)" -gt 0 ] || { echo "no global decision came from a lease" >&2; exit 1; }

# rows: rep local_decisions global_decisions local_cpu_ns global_cpu_ns local_preempted global_preempted
ratios=$(awk '{printf "%s%.3f", (NR>1?", ":""), $3/$2}' "$TMP/rows")
ratio=$(awk '{print $3/$2}' "$TMP/rows" | median)
ratio=$(printf '%.3f' "$ratio")
lo=$(awk -v w="$WINDOW" '{print $2/w}' "$TMP/rows" | median); gl=$(awk -v w="$WINDOW" '{print $3/w}' "$TMP/rows" | median)
cl=$(awk '{print $4/$2}' "$TMP/rows" | median); cg=$(awk '{print $5/$3}' "$TMP/rows" | median)
pl=$(awk -v w="$WINDOW" '{print $6/w}' "$TMP/rows" | median); pg=$(awk -v w="$WINDOW" '{print $7/w}' "$TMP/rows" | median)
echo "# machine: $(machine_note)"
echo "# redis-server $(redis-server --version | awk '{print $3}' | cut -d= -f2), sluice $("$BIN" --version) x2 (event loops: ${EVENT_LOOPS:-one per core}); redis errors: $errors, fallbacks: 0, denied: 0"
echo "# both at once: redis-benchmark -c $C -P 16 -r 1000 TAKE {local|global} pairN:__rand_int__ against two Sluices, decisions over ${WINDOW}s after ${WARM}s (x$REPS, fresh keys each)"
printf 'paired  global %9.0f decisions/s (%.0f ns CPU each) | local %9.0f decisions/s (%.0f ns CPU each) | ratio %sx (per rep: %s)\n' \
  "$gl" "$cg" "$lo" "$cl" "$ratio" "$ratios"
printf 'preempted (involuntary switches a second, all threads): global %.0f | local %.0f\n' "$pg" "$pl"
write_results "$RESULTS" leased_paired \
  "two Sluices loaded at once by redis-benchmark -c $C -P 16 -r 1000 TAKE {local|global} pairN:__rand_int__; decisions over ${WINDOW}s after ${WARM}s; x$REPS, medians" \
  "\"event_loops\": \"${EVENT_LOOPS:-one per core}\"" \
  "{\"mode\": \"leased\", \"pipeline\": 16, \"reference\": \"scope local, at the same time\", \"reference_ops\": $lo, \"sluice_ops\": $gl, \"ratio\": $ratio, \"rep_ratios\": [$ratios], \"reference_cpu_ns\": $cl, \"sluice_cpu_ns\": $cg, \"reference_preempted_per_s\": $pl, \"sluice_preempted_per_s\": $pg}"
