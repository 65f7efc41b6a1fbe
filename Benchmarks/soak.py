#!/usr/bin/env python3
"""The soak: Sluice for DURATION seconds under a mixed load at about 70% of the line protocol's maximum measured
in the same run, with keys churning far beyond store.max_keys so eviction never rests. Samples resident memory,
decisions per second and each protocol's p99 every 10 s; writes JSON; exits 1 if Sluice died, a probe got an
error, or resident memory grew more than 5% after the warm-up.

The load (all to 127.0.0.1, every process started here and stopped by its PID):
  line   redis-benchmark, three processes: TAKE on a local token bucket, a leased global sliding window (Redis)
         and a local fixed window, keys drawn from 10 million; connections calibrated to ~70% of the maximum
  HTTP   wrk, GET /v1/check over the same three policies and a second 10-million key space
  gRPC   h2load, ShouldRateLimit (Envoy's rate limit service) at a fixed rate, keys from the descriptor's value
  probe  one decision every 5 ms on each protocol from here, on its own connection: its latencies are the p99s

Usage: soak.py SLUICE_BINARY [--duration SECONDS] [--warmup SECONDS] [--out FILE]"""

import argparse, json, os, random, signal, socket, struct, subprocess, sys, tempfile, threading, time

from harness import Redis, Sluice, encode, machine, rss_kib, summarize, wait_port

MAX_KEYS = 100_000
KEYSPACE = 10_000_000
CONFIG = """redis: {{ url: "redis://127.0.0.1:{redis}/0", timeout: 50ms }}
store: {{ max_keys: {max_keys}, shards: 64 }}
policies:
  tb: {{ algorithm: token_bucket, limit: 50, period: 1s, burst: 50 }}
  sw: {{ algorithm: sliding_window, limit: 100, period: 10s, scope: global, on_store_failure: local }}
  fw: {{ algorithm: fixed_window, limit: 20, period: 1s }}
rls: {{ files: [ratelimit/soak.yaml] }}
"""
RLS_DOMAIN = "domain: soak\ndescriptors:\n  - key: user\n    rate_limit: { unit: second, requests_per_unit: 100 }\n"
WRK_SCRIPT = """
local policies = {"tb", "sw", "fw"}
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/v1/check?policy=" .. policies[math.random(3)] .. "&key=h" .. math.random(%d))
end
""" % KEYSPACE


def grpc_body(domain, key, value):
    """A gRPC-framed RateLimitRequest{domain, descriptors: [{entries: [{key, value}]}]}, encoded by hand."""
    def field(number, payload):
        return bytes([number << 3 | 2]) + varint(len(payload)) + payload
    entry = field(1, key.encode()) + field(2, value.encode())
    message = field(1, domain.encode()) + field(2, field(1, entry))
    return b"\x00" + struct.pack(">I", len(message)) + message


def varint(n):
    out = b""
    while True:
        byte = n & 0x7F
        n >>= 7
        out += bytes([byte | (0x80 if n else 0)])
        if not n:
            return out


def redis_benchmark(port, policy, connections, seconds, pipeline=1):
    """Starts redis-benchmark sending TAKE policy k:<random> for about `seconds` (stopped by PID)."""
    return subprocess.Popen(
        ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", str(connections), "-P", str(pipeline), "-n", "2000000000",
         "-r", str(KEYSPACE), "-q", "TAKE", policy, "k:__rand_int__"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(process):
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill(); process.wait()


def redis_keys(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(b"DBSIZE\r\n")
        return int(connection.recv(100).strip()[1:])


def decisions(sluice):
    info = sluice.info()
    return int(info["decisions_allowed"]) + int(info["decisions_denied"]), info


def measure_line(sluice, connections_per_policy, seconds):
    """Line decisions per second with `connections_per_policy` on each of the three policies."""
    processes = [redis_benchmark(sluice.line, p, connections_per_policy, seconds) for p in ("tb", "sw", "fw")]
    time.sleep(1)
    start, _ = decisions(sluice); t0 = time.time()
    time.sleep(seconds)
    end, _ = decisions(sluice); t1 = time.time()
    for process in processes:
        stop(process)
    return (end - start) / (t1 - t0)


class Probe:
    """One decision every 5 ms on each protocol, each on a connection of its own; latencies by protocol."""

    def __init__(self, sluice):
        self.sluice = sluice
        self.samples = {"line": [], "http": [], "grpc": []}
        self.stopped = False
        self.threads = [threading.Thread(target=self.run, args=(name,), daemon=True) for name in self.samples]

    def start(self):
        for thread in self.threads:
            thread.start()

    def run(self, name):
        port = {"line": self.sluice.line, "http": self.sluice.http, "grpc": self.sluice.grpc}[name]
        connection = socket.create_connection(("127.0.0.1", port), timeout=5)
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if name == "grpc":
            grpc = H2(connection)
        rng = random.Random(name)
        next_at = time.perf_counter()
        while not self.stopped:
            key = f"probe{rng.randrange(1000)}"
            start = time.perf_counter()
            try:
                if name == "line":
                    connection.sendall(encode("TAKE", "tb", key))
                    ok = read_line_reply(connection)
                elif name == "http":
                    connection.sendall(f"GET /v1/check?policy=tb&key={key} HTTP/1.1\r\nHost: soak\r\n\r\n".encode())
                    ok = read_http_reply(connection)
                else:
                    ok = grpc.call("/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit", grpc_body("soak", "user", key))
                outcome = "answered" if ok else "error"
            except OSError as error:
                outcome = "error"
                connection = socket.create_connection(("127.0.0.1", port), timeout=5)
                if name == "grpc":
                    grpc = H2(connection)
            self.samples[name].append((time.time(), (time.perf_counter() - start) * 1000, outcome))
            next_at += 0.005
            time.sleep(max(0, next_at - time.perf_counter()))

    def take_window(self, seconds):
        """The figures of every sample since the last call, which are dropped (so this stays cheap: a scan over a
        whole run's samples would hold Python's lock long enough to delay the probes themselves)."""
        figures = {}
        for name in self.samples:
            taken, self.samples[name] = self.samples[name], []
            figures[name] = summarize(taken, seconds)
        return figures


def read_line_reply(connection):
    data = b""
    while data.count(b"\r\n") < 6:     # *5 and five integers
        chunk = connection.recv(4096)
        if not chunk:
            raise OSError("closed")
        data += chunk
        if data.startswith(b"-"):
            return False
    return data.startswith(b"*5")


def read_http_reply(connection):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(4096)
        if not chunk:
            raise OSError("closed")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += connection.recv(4096)
    return head.startswith(b"HTTP/1.1 200") or head.startswith(b"HTTP/1.1 429")


class H2:
    """Just enough HTTP/2 for unary gRPC calls one at a time on one connection: no HPACK state is kept (every
    header is sent as a literal without indexing) and flow control is never near its limits at this rate."""

    def __init__(self, connection):
        self.connection = connection
        self.stream = 1
        connection.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + self.frame(4, 0, 0, b""))
        self.buffer = b""

    @staticmethod
    def frame(kind, flags, stream, payload):
        return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload

    @staticmethod
    def literal(name, value):
        return b"\x00" + varint_h(len(name), 7) + name + varint_h(len(value), 7) + value

    def call(self, path, body):
        stream, self.stream = self.stream, self.stream + 2
        headers = b"".join(self.literal(n, v) for n, v in ((b":method", b"POST"), (b":scheme", b"http"), (b":path", path.encode()),
                                                         (b":authority", b"soak"), (b"content-type", b"application/grpc"), (b"te", b"trailers")))
        self.connection.sendall(self.frame(1, 4, stream, headers) + self.frame(0, 1, stream, body))
        status = None
        while True:
            kind, flags, sid, payload = self.read_frame()
            if kind == 4 and not flags & 1:
                self.connection.sendall(self.frame(4, 1, 0, b""))          # SETTINGS ack
            elif kind == 6 and not flags & 1:
                self.connection.sendall(self.frame(6, 1, 0, payload))      # PING ack
            elif kind == 7:
                raise OSError("GOAWAY")
            elif sid == stream and kind == 1 and b"grpc-status" in payload:
                status = payload
            elif sid == stream and kind == 0 and len(payload):
                self.connection.sendall(self.frame(8, 0, 0, struct.pack(">I", len(payload))) + self.frame(8, 0, stream, struct.pack(">I", len(payload))))
            elif sid == stream and kind == 3:
                return False
            if sid == stream and flags & 1:
                # Trailers end the stream; grpc-status 0 is a literal "0" here only if not Huffman-coded, so
                # an answer counts as good when the stream ended with HEADERS and no RST_STREAM.
                return kind == 1

    def read_frame(self):
        while len(self.buffer) < 9:
            self.more()
        length = int.from_bytes(self.buffer[:3], "big")
        while len(self.buffer) < 9 + length:
            self.more()
        kind, flags = self.buffer[3], self.buffer[4]
        sid = int.from_bytes(self.buffer[5:9], "big") & 0x7FFFFFFF
        payload = self.buffer[9:9 + length]
        self.buffer = self.buffer[9 + length:]
        return kind, flags, sid, payload

    def more(self):
        chunk = self.connection.recv(65536)
        if not chunk:
            raise OSError("closed")
        self.buffer += chunk


def varint_h(n, prefix):
    limit = (1 << prefix) - 1
    if n < limit:
        return bytes([n])
    out = [limit]; n -= limit
    while n >= 128:
        out.append(n % 128 + 128); n //= 128
    out.append(n)
    return bytes(out)


def cpu_seconds(pid):
    """User and system CPU seconds a process has used."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def steal_ticks():
    """The machine's CPU ticks so far, and those stolen by the hypervisor (noisy neighbours show here)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return sum(values), values[7] if len(values) > 7 else 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--duration", type=int, default=600)
    parser.add_argument("--warmup", type=int)
    parser.add_argument("--out")
    args = parser.parse_args()
    warmup = args.warmup if args.warmup is not None else max(20, args.duration // 10)
    directory = tempfile.mkdtemp(prefix="sluice-soak-")
    redis = Redis(directory); redis.start()
    os.makedirs(os.path.join(directory, "ratelimit"))
    open(os.path.join(directory, "ratelimit", "soak.yaml"), "w").write(RLS_DOMAIN)
    sluice = Sluice(os.path.abspath(args.binary), directory, CONFIG.format(redis=redis.port, max_keys=MAX_KEYS))
    sluice.start(); wait_port(sluice.http)
    load, probe = [], None
    try:
        # The maximum: 16 connections per policy. Then the fewest connections that reach ~70% of it.
        maximum = measure_line(sluice, 16, 5)
        calibration = {}
        chosen = 1
        for per_policy in (1, 2, 3, 4, 6, 8):
            rate = measure_line(sluice, per_policy, 3)
            calibration[per_policy] = round(rate)
            chosen = per_policy
            if rate >= 0.6 * maximum:
                break
        print(f"line maximum {maximum:,.0f} decisions/s; {chosen} connection(s) per policy give {calibration[chosen]:,} "
              f"({100 * calibration[chosen] / maximum:.0f}%)", file=sys.stderr, flush=True)
        body = os.path.join(directory, "grpc.bin")
        open(body, "wb").write(grpc_body("soak", "user", "h2load"))
        script = os.path.join(directory, "wrk.lua")
        open(script, "w").write(WRK_SCRIPT)
        seconds = args.duration + 5
        load = [redis_benchmark(sluice.line, p, chosen, seconds) for p in ("tb", "sw", "fw")]
        load.append(subprocess.Popen(["wrk", "-t1", "-c2", f"-d{seconds}s", "-s", script, f"http://127.0.0.1:{sluice.http}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        load.append(subprocess.Popen(["h2load", "-c1", "-m1", "--rps=500", f"-D{seconds}", "-d", body,
                                      "-H", "content-type: application/grpc", "-H", "te: trailers",
                                      f"http://127.0.0.1:{sluice.grpc}/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        probe = Probe(sluice); probe.start()
        samples = []
        start = time.time()
        previous, _ = decisions(sluice); previous_at = time.time()
        cpu = (cpu_seconds(sluice.process.pid), cpu_seconds(redis.process.pid), *steal_ticks())
        while time.time() - start < args.duration and sluice.alive():
            time.sleep(10 - ((time.time() - start) % 10))
            now = time.time()
            total, info = decisions(sluice)
            window = probe.take_window(now - previous_at)
            sample = {"t": round(now - start), "rss_mib": round(rss_kib(sluice.process.pid) / 1024, 1),
                      "decisions_per_second": round((total - previous) / (now - previous_at)), "keys": int(info["keys"]),
                      "evicted": int(info["evicted_idle_keys"]) + int(info["evicted_pressure_keys"]),
                      **{f"{name}_p99_ms": figures["p99_ms"] for name, figures in window.items()},
                      "probe_errors": sum(figures.get("error", 0) for figures in window.values())}
            # Where the time went: Sluice's and Redis's CPU (% of one core), and the hypervisor's steal (% of all).
            now_cpu = (cpu_seconds(sluice.process.pid), cpu_seconds(redis.process.pid), *steal_ticks())
            sample["sluice_cpu_pct"] = round(100 * (now_cpu[0] - cpu[0]) / (now - previous_at))
            sample["redis_cpu_pct"] = round(100 * (now_cpu[1] - cpu[1]) / (now - previous_at))
            sample["steal_pct"] = round(100 * (now_cpu[3] - cpu[3]) / max(1, now_cpu[2] - cpu[2]), 1)
            sample["redis_keys"] = redis_keys(redis.port)
            previous, previous_at, cpu = total, now, now_cpu
            samples.append(sample)
            print(json.dumps(sample), file=sys.stderr, flush=True)
        alive = sluice.alive()
    finally:
        if probe:
            probe.stopped = True
        for process in load:
            stop(process)
        exit_status = sluice.stop() if sluice.process.poll() is None else sluice.process.returncode
        redis.kill()
    after = [s for s in samples if s["t"] > warmup]
    base = next((s["rss_mib"] for s in samples if s["t"] >= warmup), samples[-1]["rss_mib"] if samples else 0)
    growth = 100 * (max(s["rss_mib"] for s in after) - base) / base if after and base else 0
    def p99_median(part, name):
        values = sorted(s[f"{name}_p99_ms"] for s in part if s[f"{name}_p99_ms"] is not None)
        return values[len(values) // 2] if values else None
    third = max(1, len(after) // 3)
    p99 = {name: {"first_third": p99_median(after[:third], name), "last_third": p99_median(after[-third:], name)} for name in ("line", "http", "grpc")}
    errors = sum(s["probe_errors"] for s in samples)
    mean_rate = sum(s["decisions_per_second"] for s in after) / len(after) if after else 0
    verdict = "ok" if alive and errors == 0 and growth <= 5 else "FAILED"
    document = {
        "machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": f"Benchmarks/soak.sh --duration {args.duration}",
        "duration_s": args.duration, "warmup_s": warmup, "max_keys": MAX_KEYS, "keyspace": KEYSPACE,
        "line_maximum_per_second": round(maximum), "line_calibration": calibration, "line_connections_per_policy": chosen,
        "mean_decisions_per_second_after_warmup": round(mean_rate), "rss_mib_at_warmup": base,
        "rss_growth_after_warmup_pct": round(growth, 2), "p99_ms": p99, "probe_errors": errors, "sluice_alive": alive,
        "sluice_exit": exit_status, "verdict": verdict, "samples": samples,
    }
    print(json.dumps({k: v for k, v in document.items() if k != "samples"}, indent=1), file=sys.stderr)
    if args.out:
        json.dump(document, open(args.out, "w"), indent=1)
    sys.exit(0 if verdict == "ok" else 1)


if __name__ == "__main__":
    main()
