# Helpers for the load scripts. Source it. Everything binds 127.0.0.1; every server is stopped by its PID.
REPS=${REPS:-3}

free_port() {   # free_port BASE -> first port >= BASE with no listener
  local p=$1
  while ss -Hltn "sport = :$p" | grep -q .; do p=$((p + 1)); done
  echo "$p"
}

wait_port() {   # wait (max ~10 s) until something listens on 127.0.0.1:PORT
  local i
  for i in $(seq 100); do
    ss -Hltn "src 127.0.0.1 and sport = :$1" | grep -q . && return 0
    sleep 0.1
  done
  echo "port $1 never came up" >&2; return 1
}

stop_pid() {    # TERM, wait, KILL if it lingers
  local pid=$1 i
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || return 0
  for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

median() { sort -g | awk '{a[NR]=$1} END{ if(NR==0){print "NA"; exit} print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2 }'; }

# rb_row LABEL: redis-benchmark --csv on stdin -> "LABEL RPS P50_MS P99_MS"
rb_row() { tr -d '"' | awk -F, -v l="$1" '$1!="test" && NF>=7 {print l, $2, $5, $7; exit}'; }

machine_note() {
  echo "$(nproc) vCPU $(lscpu | awk -F: '/Model name/{gsub(/^ +/,"",$2); print $2; exit}'), $(free -g | awk '/Mem:/{print $2}') GiB, $(. /etc/os-release; echo "$PRETTY_NAME")"
}

build_sluice() {   # prints the path of a release build of sluice (SLUICE_BIN overrides)
  if [ -n "${SLUICE_BIN:-}" ]; then echo "$SLUICE_BIN"; return; fi
  local root; root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  (cd "$root" && swift build -c release --product sluice >&2)
  echo "$root/.build/release/sluice"
}

# write_results FILE NAME COMMAND FIELDS ROW...: writes {"benchmark": NAME, "date", "machine", "command": COMMAND,
# FIELDS (more "key": value pairs, or empty), "rows": [ROW, ...]} and checks that it parses.
write_results() {
  local file=$1 name=$2 command=$3 fields=$4; shift 4
  mkdir -p "$(dirname "$file")"
  echo "{\"benchmark\": \"$name\", \"date\": \"$(date -u +%FT%TZ)\", \"machine\": \"$(machine_note)\", \"command\": \"$command\",${fields:+ $fields,} \"rows\": [$(IFS=,; echo "$*")]}" > "$file"
  python3 -m json.tool "$file" >/dev/null
  echo "# results: $file" >&2
}

# bench_yaml LINE_PORT HTTP_PORT: a Sluice configuration listening on both (0: any free port) with the policy `bench`,
# a token bucket that allows everything (1e9 a second): what the throughput scripts measure.
bench_yaml() {
  cat <<YAML
listen: { line: "127.0.0.1:$1", http: "127.0.0.1:$2" }
policies:
  bench: { algorithm: token_bucket, limit: 1000000000, period: 1s }
YAML
}

# wrk_keys_lua FILE: a wrk script requesting WRK_PREFIX (from the environment) followed by a random key in 1..100000.
wrk_keys_lua() {
  cat > "$1" <<'LUA'
math.randomseed(os.time())
local prefix = os.getenv("WRK_PREFIX")
request = function() return wrk.format(nil, prefix .. math.random(100000)) end
LUA
}

# bench_servers DIR: redis-server and `$BIN serve` (policy `bench`, a token bucket that allows everything; event
# loops EVENT_LOOPS, default one per core) on free loopback ports, files in DIR. Sets RPORT SPORT RPID SPID and
# waits until both listen; the caller stops them (stop_pid).
bench_servers() {
  RPORT=$(free_port 16379); SPORT=$(free_port 17379)
  bench_yaml "$SPORT" 0 > "$1/sluice.yaml"
  redis-server --bind 127.0.0.1 --port "$RPORT" --save '' --appendonly no --daemonize no --logfile "$1/redis.log" --dir "$1" &
  RPID=$!
  "$BIN" serve --config "$1/sluice.yaml" --log-level warning ${EVENT_LOOPS:+--event-loops "$EVENT_LOOPS"} 2>"$1/sluice.log" &
  SPID=$!
  wait_port "$RPORT"; wait_port "$SPORT"
}

# global_yaml PORT RPORT: a Sluice configuration listening on PORT, with Redis at RPORT and the policies `local` and
# `global` (one fixed window allowing everything, scope local and global); more policy lines may follow it.
global_yaml() {
  cat <<YAML
listen: { line: "127.0.0.1:$1", http: "127.0.0.1:0" }
# A saturating load queues hundreds of strict decisions per connection: the timeout is set well above that
# queueing (500 ms), so a run measures Redis throughput, and any fallback fails it.
redis: { url: "redis://127.0.0.1:$2/0", timeout: 500ms }
policies:
  local:  { algorithm: fixed_window, limit: 1000000000, period: 1h }
  global: { algorithm: fixed_window, limit: 1000000000, period: 1h, scope: global }
YAML
}

# global_servers DIR [POLICY_LINE...]: redis-server and `$BIN serve` for the global-policy scripts, on free loopback
# ports, files in DIR: policies `local` and `global` (one fixed window, scope local and global) and the extra
# POLICY_LINEs. redis-server runs under ${CLI[@]} and Sluice under ${SRV[@]} with ${LOOPS[@]} (unset: unpinned,
# default loops). Sets RPORT SPORT RPID SPID and waits until both listen; the caller stops them (stop_pid).
# `info FIELD` then reads one field of Sluice's INFO.
global_servers() {
  local dir=$1; shift
  RPORT=$(free_port 16479); SPORT=$(free_port 17479)
  {
    global_yaml "$SPORT" "$RPORT"
    local line; for line in "$@"; do echo "  $line"; done
  } > "$dir/sluice.yaml"
  ${CLI[@]+"${CLI[@]}"} redis-server --bind 127.0.0.1 --port "$RPORT" --save '' --appendonly no --daemonize no --logfile "$dir/redis.log" --dir "$dir" &
  RPID=$!
  wait_port "$RPORT"
  ${SRV[@]+"${SRV[@]}"} "$BIN" serve --config "$dir/sluice.yaml" --log-level warning ${LOOPS[@]+"${LOOPS[@]}"} 2>"$dir/sluice.log" &
  SPID=$!
  wait_port "$SPORT"
}
info() { redis-cli -h 127.0.0.1 -p "$SPORT" INFO | tr -d '\r' | awk -F: -v k="$1" '$1==k{print $2}'; }
