"""What the drills and the soak share: free loopback ports, a redis-server and a `sluice serve` they start and
stop by PID, INFO, resident memory, and RESP encoding. Everything binds 127.0.0.1."""

import os, random, signal, socket, subprocess, time


def free_port():
    while True:
        port = random.randint(20000, 29999)
        for p in (port, port + 10000):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p)); break
                except OSError:
                    pass
        else:
            continue
        return port


def wait_port(port, seconds=10):
    deadline = time.time() + seconds
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} never came up")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Redis:
    def __init__(self, directory, persistent=False):
        self.port = free_port()
        self.directory = directory
        self.persistent = persistent
        self.process = None

    def start(self):
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.directory, "--save", ""]
        args += ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else ["--appendonly", "no"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def signal(self, sig):
        self.process.send_signal(sig)

    def kill(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait()


class Sluice:
    def __init__(self, binary, directory, config):
        self.binary, self.directory = binary, directory
        self.line, self.http, self.grpc = free_port(), free_port(), free_port()
        self.path = os.path.join(directory, "sluice.yaml")
        self.write(config)
        self.log = open(os.path.join(directory, "sluice.log"), "w")
        self.process = None

    def write(self, config):
        text = f'listen: {{ line: "127.0.0.1:{self.line}", http: "127.0.0.1:{self.http}", grpc: "127.0.0.1:{self.grpc}" }}\n' + config
        with open(self.path + ".tmp", "w") as f:
            f.write(text)
        os.replace(self.path + ".tmp", self.path)

    def start(self):
        self.process = subprocess.Popen([self.binary, "serve", "--config", self.path], stdout=self.log, stderr=subprocess.STDOUT, cwd=self.directory)
        wait_port(self.line); wait_port(self.grpc)

    def alive(self):
        return self.process.poll() is None

    def info(self):
        with socket.create_connection(("127.0.0.1", self.line), timeout=5) as s:
            s.sendall(b"INFO\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
                if data.startswith(b"$"):
                    head, _, rest = data.partition(b"\r\n")
                    if len(rest) >= int(head[1:]) + 2:
                        break
        return dict(line.split(":", 1) for line in data.decode().splitlines() if ":" in line and not line.startswith("#"))

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill(); self.process.wait()
                return "killed"
        return self.process.returncode


def encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def summarize(samples, seconds):
    """samples: (end_time, latency_ms, outcome). Count, rate, p50/p99/max and a count per outcome."""
    latencies = sorted(s[1] for s in samples)
    def pct(p):
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))], 2) if latencies else None
    outcomes = {}
    for s in samples:
        outcomes[s[2]] = outcomes.get(s[2], 0) + 1
    return {"decisions": len(samples), "per_second": round(len(samples) / seconds) if seconds else None,
            "p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": round(latencies[-1], 2) if latencies else None, **outcomes}


def machine():
    """The machine line every chart carries: `machine_note` of the load scripts' helpers."""
    common = os.path.join(os.path.dirname(os.path.abspath(__file__)), "load", "common.sh")
    return subprocess.run(["bash", "-c", f'. "{common}"; machine_note'], capture_output=True, text=True).stdout.strip()
