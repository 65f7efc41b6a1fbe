#!/usr/bin/env bash
# Two builds of Sluice under the same load, alternated: how each change in the README's change tables is measured.
#   Benchmarks/load/builds_ab.sh BEFORE_BIN AFTER_BIN
# Both builds serve at once (one event loop each, pinned to CPU 0; idle while the other is loaded), and the load
# generator, on CPU 1, runs against one then the other, the order swapped every pair, so that the machine's drift
# (its speed moves within minutes) falls on both halves alike. Prints each pair's requests per second and
# after/before ratio, then the medians and the median of the ratios.
#   MODE=http  wrk -t1 -c50 -d$DUR, GET /v1/check?policy=bench&key=kR, R random in 1..100000 (as http_vs_nginx.sh)
#   MODE=line  redis-benchmark -c 50 -n $N -r 100000 -P $P TAKE bench key:__rand_int__ (as line_vs_redis.sh)
# Env: MODE (http), PAIRS (6), DUR (8s), N (1000000), P (16). Loopback only; both servers stopped by their PIDs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); . "$here/common.sh"
[ $# -eq 2 ] && [ -x "$1" ] && [ -x "$2" ] || { echo "usage: $0 BEFORE_BIN AFTER_BIN (two sluice executables)" >&2; exit 2; }
MODE=${MODE:-http}; PAIRS=${PAIRS:-6}; DUR=${DUR:-8s}; N=${N:-1000000}; P=${P:-16}
case "$MODE" in http) need=wrk ;; line) need=redis-benchmark ;; *) echo "MODE is http or line" >&2; exit 2 ;; esac
command -v "$need" >/dev/null || { echo "MODE=$MODE needs $need (scripts/install-deps)" >&2; exit 2; }
TMP=$(mktemp -d -t sluice-ab.XXXXXX)
PIDS=()
trap 'for pid in "${PIDS[@]}"; do stop_pid "$pid"; done; rm -rf "$TMP"' EXIT
PORTS=()
for side in before after; do
  port=$(free_port $((17600 + ${#PORTS[@]} * 50)))
  if [ "$MODE" = http ]; then bench_yaml 0 "$port"; else bench_yaml "$port" 0; fi > "$TMP/$side.yaml"
  bin=$1; shift
  taskset -c 0 "$bin" serve --config "$TMP/$side.yaml" --log-level warning --event-loops 1 2>"$TMP/$side.log" &
  PIDS+=($!); PORTS+=("$port")
  wait_port "$port"
done
wrk_keys_lua "$TMP/rand.lua"
load() {  # load PORT -> requests per second (fails on any non-2xx answer or socket error)
  if [ "$MODE" = http ]; then
    WRK_PREFIX="/v1/check?policy=bench&key=k" taskset -c 1 wrk -t1 -c50 -d"$DUR" -s "$TMP/rand.lua" "http://127.0.0.1:$1" | awk '
      /^Requests\/sec:/ {rps=$2} /Non-2xx|Socket errors/ {bad=1} END {if (bad || rps == "") exit 1; print rps}'
  else
    taskset -c 1 redis-benchmark -h 127.0.0.1 -p "$1" -c 50 -n "$N" -r 100000 -P "$P" --csv TAKE bench 'key:__rand_int__' 2>/dev/null |
      rb_row line | awk '{print $2; found=1} END {if (!found) exit 1}'
  fi
}
for pair in $(seq "$PAIRS"); do
  if (( pair % 2 )); then before=$(load "${PORTS[0]}"); after=$(load "${PORTS[1]}"); else after=$(load "${PORTS[1]}"); before=$(load "${PORTS[0]}"); fi
  ratio=$(awk -v a="$after" -v b="$before" 'BEGIN{printf "%.3f", a/b}')
  echo "pair $pair  before $before  after $after  after/before $ratio"
  echo "$before $after $ratio" >> "$TMP/rows"
done
echo "# machine: $(machine_note)"
echo "# $MODE: $( [ "$MODE" = http ] && echo "wrk -t1 -c50 -d$DUR, 100k keys" || echo "redis-benchmark -c 50 -n $N -r 100000 -P $P"); one loop each on CPU 0, load on CPU 1; $PAIRS pairs, order swapped each pair"
printf 'medians: before %s  after %s  |  median after/before %s (after higher in %s of %s)\n' \
  "$(cut -d' ' -f1 "$TMP/rows" | median)" "$(cut -d' ' -f2 "$TMP/rows" | median)" "$(cut -d' ' -f3 "$TMP/rows" | median)" \
  "$(awk '$2 > $1' "$TMP/rows" | wc -l)" "$PAIRS"
