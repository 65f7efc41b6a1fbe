#!/usr/bin/env bash
# Sluice's HTTP API against nginx, same load generator, alternating in one run.
#   sluice: GET /v1/check?policy=bench&key=k<rand>            (token bucket, 1e9/s: all allowed)
#   nginx:  GET /gif?key=<rand>, 1 worker, empty_gif behind limit_req keyed by $arg_key (huge rate, big
#           burst nodelay so nothing is rejected; `return` would run before limit_req and measure nothing)
# Random keys over 100000 buckets. wrk -t1 -c50 -d10s --latency. Prints medians and the ratio sluice/nginx,
# checks that no response was a non-2xx, writes JSON (RESULTS=file).
# Sluice runs one event loop (EVENT_LOOPS), as nginx runs one worker: with wrk on the other core, a second
# loop only competes with the load generator on this 2-core machine.
# PIN=1 pins both servers to CPU 0 and wrk to CPU 1 (as the anchors' redis.sh does), so each server gets
# exactly one core and the scheduler's migrations stay out of the comparison.
# Env: REPS (3), DUR (10s), CONNS (50), EVENT_LOOPS (1), PIN (1), RESULTS (Benchmarks/results/http_vs_nginx.json)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); . "$here/common.sh"
DUR=${DUR:-10s}; CONNS=${CONNS:-50}
RESULTS=${RESULTS:-$here/../results/http_vs_nginx.json}
BIN=$(build_sluice)
TMP=$(mktemp -d -t sluice-http.XXXXXX)
NPORT=$(free_port 18080); SPORT=$(free_port 17380)
mkdir -p "$TMP/logs"
bench_yaml 0 "$SPORT" > "$TMP/sluice.yaml"
cat > "$TMP/nginx.conf" <<NGINX
daemon off;
master_process on;
worker_processes 1;
pid $TMP/nginx.pid;
error_log $TMP/logs/error.log error;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  limit_req_zone \$arg_key zone=bench:32m rate=10000000r/s;
  server {
    listen 127.0.0.1:$NPORT backlog=4096;
    location = /gif { limit_req zone=bench burst=1000000 nodelay; empty_gif; }
  }
}
NGINX
wrk_keys_lua "$TMP/rand.lua"
SRV=(); CLI=()
if [ "${PIN:-1}" = 1 ]; then SRV=(taskset -c 0); CLI=(taskset -c 1); fi
"${SRV[@]}" "$BIN" serve --config "$TMP/sluice.yaml" --log-level warning --event-loops "${EVENT_LOOPS:-1}" 2>"$TMP/sluice.log" &
SPID=$!
"${SRV[@]}" nginx -c "$TMP/nginx.conf" -p "$TMP" -e "$TMP/logs/error.log" &
NPID=$!
trap 'stop_pid $SPID; stop_pid $NPID; rm -rf "$TMP"' EXIT
wait_port "$SPORT"; wait_port "$NPORT"

# Self-test: both answer 200 and really decide (nginx's zone sees the key; Sluice returns a decision).
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$NPORT/gif?key=1")" = 200 ]
curl -s "http://127.0.0.1:$SPORT/v1/check?policy=bench&key=selftest" | grep -q '"allowed":true'

run() {  # run LABEL PORT PATH_PREFIX
  WRK_PREFIX="$3" "${CLI[@]}" wrk -t1 -c"$CONNS" -d"$DUR" --latency -s "$TMP/rand.lua" "http://127.0.0.1:$2" | awk -v l="$1" '
    function ms(v){ if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    $1=="50%" {p50=ms($2)} $1=="99%" {p99=ms($2)} /^Requests\/sec:/ {rps=$2} /Non-2xx or 3xx responses:/ {bad=$NF}
    /Socket errors:/ {bad = bad "+sockerr"}
    END {printf "%s %s %s %s %s\n", l, rps, p50, p99, (bad==""?0:bad)}' >> "$TMP/rows"
}
for rep in $(seq "$REPS"); do
  run nginx "$NPORT" "/gif?key="
  run sluice "$SPORT" "/v1/check?policy=bench&key=k"
done
bad=$(awk '$5!="0"' "$TMP/rows")
[ -z "$bad" ] || { echo "non-2xx responses or socket errors in: $bad" >&2; exit 1; }

med() { awk -v l="$1" -v c="$2" '$1==l{print $c}' "$TMP/rows" | median; }
ns=$(med nginx 2); so=$(med sluice 2)
ratio=$(awk -v a="$so" -v b="$ns" 'BEGIN{printf "%.2f", a/b}')
echo "# machine: $(machine_note)"
echo "# nginx $(nginx -v 2>&1 | cut -d/ -f2) (1 worker), sluice $("$BIN" --version) (event loops: ${EVENT_LOOPS:-1}); pinned: ${PIN:-1}; non-2xx: 0"
echo "# cmd: wrk -t1 -c$CONNS -d$DUR --latency -s rand.lua {nginx /gif?key=R | sluice /v1/check?policy=bench&key=kR}  R in 1..100000  (x$REPS alternating, medians)"
printf 'nginx  %9.0f req/s (p50 %.3f ms, p99 %.3f ms)\n' "$ns" "$(med nginx 3)" "$(med nginx 4)"
printf 'sluice %9.0f req/s (p50 %.3f ms, p99 %.3f ms) | ratio %sx\n' "$so" "$(med sluice 3)" "$(med sluice 4)" "$ratio"
mkdir -p "$(dirname "$RESULTS")"
cat > "$RESULTS" <<JSON
{"benchmark": "http_vs_nginx", "reference": "nginx empty_gif + limit_req (1 worker)", "date": "$(date -u +%FT%TZ)", "machine": "$(machine_note)",
 "command": "wrk -t1 -c$CONNS -d$DUR --latency, random key in 1..100000, x$REPS alternating, medians; sluice event loops ${EVENT_LOOPS:-1}, pinned ${PIN:-1}",
 "rows": [{"pipeline": 1, "reference_ops": $ns, "sluice_ops": $so, "reference_p50_ms": $(med nginx 3), "sluice_p50_ms": $(med sluice 3), "reference_p99_ms": $(med nginx 4), "sluice_p99_ms": $(med sluice 4), "ratio": $ratio}]}
JSON
python3 -m json.tool "$RESULTS" >/dev/null
echo "# results: $RESULTS"
