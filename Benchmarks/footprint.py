#!/usr/bin/env python3
"""What a sidecar costs before and after keys arrive: start-up time (process start to the first answer), idle
resident memory with the embedded default configuration (store.max_keys 1,000,000), and resident memory per
key with 1,000,000 live keys. Runs `sluice serve` with no --config (the embedded default: ports 7379 and 7380
must be free), several times, and takes medians. Writes JSON.

Usage: footprint.py SLUICE_BINARY [--runs N] [--out FILE]"""

import argparse, json, os, signal, socket, subprocess, sys, time

from harness import encode, rss_kib

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
    args = parser.parse_args()
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", LINE)) == 0:
            sys.exit(f"something already listens on 127.0.0.1:{LINE}; the embedded default needs it")
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


if __name__ == "__main__":
    main()
