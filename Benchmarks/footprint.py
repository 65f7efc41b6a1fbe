#!/usr/bin/env python3
"""What a sidecar costs before and after keys arrive: start-up time (process start to the first answer), idle
resident memory with the embedded default configuration (store.max_keys 1,000,000), and resident memory per
key with 1,000,000 live keys. Runs `sluice serve` with no --config (the embedded default: ports 7379 and 7380
must be free), several times, and takes medians. Writes JSON.

With --sweep N,N,...: resident memory against key count instead, one run per count, each with a configuration
whose store.max_keys is that count (up to 10,000,000 keys: about a minute to fill).

Usage: footprint.py SLUICE_BINARY [--runs N] [--out FILE]
       footprint.py SLUICE_BINARY --sweep 100000,1000000,10000000 [--out FILE]"""

import argparse, json, os, signal, socket, subprocess, sys, tempfile, time

from harness import encode, machine, rss_kib

LINE = 7379


def first_answer(process, limit=10):
    """Seconds from now until PING on the line port gets +PONG (polled every millisecond)."""
    start = time.perf_counter()
    while time.perf_counter() - start < limit:
        if process.poll() is not None:
            raise RuntimeError(f"sluice exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", LINE), timeout=1) as connection:
                connection.sendall(b"PING\r\n")
                if connection.recv(16).startswith(b"+PONG"):
                    return time.perf_counter() - start
        except OSError:
            time.sleep(0.001)
    raise RuntimeError("no answer within 10 s")


def fill(keys):
    """TAKE on `keys` distinct keys of the default `api` policy, pipelined 1,000 at a time."""
    with socket.create_connection(("127.0.0.1", LINE), timeout=30) as connection:
        for start in range(0, keys, 1000):
            connection.sendall(b"".join(encode("TAKE", "api", f"user:{i}") for i in range(start, min(keys, start + 1000))))
            replies = 0
            data = b""
            while replies < min(1000, keys - start):
                data += connection.recv(1 << 20)
                replies = data.count(b"*5\r\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--out")
    parser.add_argument("--sweep", help="key counts, comma-separated: memory against keys")
    args = parser.parse_args()
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", LINE)) == 0:
            sys.exit(f"something already listens on 127.0.0.1:{LINE}; the embedded default needs it")
    if args.sweep:
        return sweep(args.binary, [int(n) for n in args.sweep.split(",")], args.out)
    starts, idle, full = [], [], []
    for run in range(args.runs):
        process = subprocess.Popen([args.binary, "serve"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            starts.append(first_answer(process) * 1000)
            time.sleep(1)
            idle.append(rss_kib(process.pid) / 1024)
            if run == 0:   # one fill is enough: it takes a while and varies little
                fill(args.keys)
                time.sleep(1)
                full.append(rss_kib(process.pid) / 1024)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(15)
    median = lambda values: sorted(values)[len(values) // 2]
    document = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "command": f"Benchmarks/footprint.py BINARY --runs {args.runs}",
        "startup_ms_median": round(median(starts), 1), "startup_ms": [round(v, 1) for v in starts],
        "idle_rss_mib_median": round(median(idle), 1), "idle_rss_mib": [round(v, 1) for v in idle],
        "keys": args.keys, "rss_mib_with_keys": round(full[0], 1), "bytes_per_key": round(full[0] * 1024 * 1024 / args.keys, 1),
    }
    print(json.dumps(document, indent=1))
    if args.out:
        json.dump(document, open(args.out, "w"), indent=1)


def sweep(binary, counts, out):
    """Resident memory with N live keys, the store sized for N (store.max_keys), for each N."""
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        for keys in counts:
            config = os.path.join(directory, "sluice.yaml")
            with open(config, "w") as file:
                file.write(f'listen: {{ line: "127.0.0.1:{LINE}", http: "127.0.0.1:0" }}\nstore: {{ max_keys: {keys} }}\n'
                           "policies:\n  api: { algorithm: token_bucket, limit: 100, period: 1s }\n")
            process = subprocess.Popen([binary, "serve", "--config", config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                first_answer(process)
                time.sleep(1)
                idle = rss_kib(process.pid) / 1024
                fill(keys)
                time.sleep(1)
                full = rss_kib(process.pid) / 1024
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(30)
            row = {"keys": keys, "idle_rss_mib": round(idle, 1), "rss_mib": round(full, 1),
                   "bytes_per_key": round(full * 1024 * 1024 / keys, 1)}
            print(f"  {keys:>10,} keys: {row['rss_mib']:8.1f} MiB resident, {row['bytes_per_key']:6.1f} bytes per key "
                  f"(idle {row['idle_rss_mib']} MiB)", file=sys.stderr)
            rows.append(row)
    document = {"benchmark": "memory", "machine": machine(), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "command": f"Benchmarks/footprint.py BINARY --sweep {','.join(map(str, counts))} (store.max_keys = keys; TAKE on each key)",
                "rows": rows}
    if out:
        json.dump(document, open(out, "w"), indent=1)
    print(json.dumps(document, indent=1))


if __name__ == "__main__":
    main()
