#!/usr/bin/env python3
"""Turns Benchmarks/results/*.json into the SVG charts the README shows, with matplotlib.

Usage: Benchmarks/.venv-charts/bin/python charts/render.py   (Benchmarks/run.sh makes the venv and runs this)
Each chart states the machine, the date and the command under it. A result that is missing is skipped.
"""
import json
import pathlib
import textwrap

import matplotlib
import matplotlib.ticker

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
RESULTS = HERE.parent / "Benchmarks" / "results"
SLUICE, REFERENCE, THIRD, FOURTH = "#2b6cb0", "#a0aec0", "#38a169", "#d69e2e"
plt.rcParams.update({"font.size": 9, "svg.fonttype": "none", "axes.spines.top": False, "axes.spines.right": False})


def title(axes, text):
    """The figure's bold title at its left edge, wrapped to its width."""
    width = int(axes.figure.get_size_inches()[0] * 11)
    axes.figure.suptitle("\n".join(textwrap.wrap(text, width)), x=0.01, ha="left", fontweight="bold")


def thousands(axes):
    axes.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:,.0f}"))


def load(name):
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def finish(figure, data, name, command=None):
    """The caption (machine, date, command) under the axes, then the file."""
    lines = [f"{data.get('machine', '')} — {data.get('date', '')}"]
    for part in (command or data.get("command", "")).split("; "):
        lines += textwrap.wrap(part, 150)
    figure.text(0.01, 0.01, "\n".join(lines), fontsize=7, color="#4a5568", va="bottom")
    height = figure.get_size_inches()[1]
    figure.tight_layout(rect=(0, min(0.5, (0.25 + 0.13 * len(lines)) / height), 1, 1))
    figure.savefig(HERE / f"{name}.svg")
    plt.close(figure)
    return f"{name}.svg"


def comparison(data, name, heading, unit, label_of, command=None):
    """Grouped horizontal bars, reference and Sluice per row, with the ratio."""
    rows = data["rows"]
    figure, axes = plt.subplots(figsize=(8, 1.2 + 0.75 * len(rows)))
    for index, row in enumerate(rows):
        base = -index * 3
        reference = row.get("reference", data.get("reference", "reference"))
        sluice = row.get("sluice", "Sluice")
        for offset, label, value, color in ((0.5, reference, row["reference_ops"], REFERENCE), (-0.5, sluice, row["sluice_ops"], SLUICE)):
            axes.barh(base + offset, value, color=color, height=0.9)
            axes.text(value, base + offset, f" {label}: {value:,.0f} {unit}", va="center", fontsize=8)
    def label(row):
        note = f"\nwithout Redis {100 * row['without_redis_share']:.2f}%" if "without_redis_share" in row else ""
        return f"{label_of(row)}\nSluice / reference {row['ratio']}x{note}"

    axes.set_yticks([-index * 3 for index in range(len(rows))], [label(row) for row in rows])
    axes.set_xlim(0, 1.6 * max(max(r["reference_ops"], r["sluice_ops"]) for r in rows))
    axes.set_xlabel(unit)
    thousands(axes)
    title(axes, heading)
    return finish(figure, data, name, command)


def core(data):
    rows = [r for r in data["rows"] if " hot-key" in r["name"] or "1M" in r["name"]]
    figure, axes = plt.subplots(figsize=(8, 1.5 + 0.22 * len(rows)))
    names = [r["name"].replace("_", " ") for r in rows][::-1]
    values = [r["p50_ns"] for r in rows][::-1]
    axes.barh(names, values, color=SLUICE)
    for y, value in enumerate(values):
        axes.text(value, y, f" {value} ns", va="center", fontsize=7)
    axes.set_xlabel("p50 ns per decision (2-threads: wall time per decision, both threads busy)")
    title(axes, "Decision core: ns per decision, key hashing and lookup included")
    return finish(figure, data, "core")


def soak(data):
    samples = data["samples"]
    times = [s["t"] for s in samples]
    figure, (memory, latency) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    memory.plot(times, [s["rss_mib"] for s in samples], color=SLUICE)
    memory.set_ylabel("resident MiB")
    memory.set_ylim(bottom=0)
    title(memory,
          f"Soak, {data['duration_s'] // 60} min: {data['mean_decisions_per_second_after_warmup']:,} decisions/s, "
          f"{data['keyspace'] // 1_000_000}M keys through max_keys {data['max_keys']:,}; resident memory grew "
          f"{data['rss_growth_after_warmup_pct']}% after the warm-up (dashed)")
    for name, color in (("line", SLUICE), ("http", THIRD), ("grpc", FOURTH)):
        points = [(s["t"], s[f"{name}_p99_ms"]) for s in samples if s.get(f"{name}_p99_ms") is not None]
        latency.plot([t for t, _ in points], [v for _, v in points], color=color, label=name)
    for axes in (memory, latency):
        axes.axvline(data["warmup_s"], color="#cbd5e0", linestyle="--")
    latency.set_ylabel("p99 ms per 10 s (probe decisions)")
    latency.set_xlabel("seconds")
    latency.set_ylim(bottom=0)
    latency.legend(frameon=False)
    return finish(figure, data, "soak")


def sweep(data):
    figure, (by_connections, by_keys) = plt.subplots(1, 2, figsize=(9, 4))
    for axes, dimension, label in ((by_connections, "connections", "connections"), (by_keys, "keys", "distinct keys")):
        rows = [r for r in data["rows"] if r["dimension"] == dimension]
        values = [r["value"] for r in rows]
        axes.plot(values, [r["reference_ops"] for r in rows], "o-", color=REFERENCE, label=data.get("reference", "reference"))
        axes.plot(values, [r["sluice_ops"] for r in rows], "o-", color=SLUICE, label="Sluice TAKE")
        for r in rows:
            axes.annotate(f"{r['ratio']:.2f}x", (r["value"], r["sluice_ops"]), textcoords="offset points", xytext=(0, 6),
                          ha="center", fontsize=7, color=SLUICE)
        axes.set_xscale("log")
        axes.set_xlabel(label)
        axes.set_ylabel("requests/s")
        axes.set_ylim(bottom=0)
    by_connections.legend(frameon=False, loc="lower right")
    title(by_connections, "Throughput against connections and keys (labels: Sluice / Redis)")
    return finish(figure, data, "sweep")


def latency(data):
    figure, panels = plt.subplots(1, 2, figsize=(9, 4), sharey=True)
    for axes, scheme in zip(panels, ("line", "http")):
        rows = sorted((r for r in data["rows"] if r["target"].startswith(scheme)), key=lambda r: r["rate"])
        rates = [r["rate"] for r in rows]
        for key, label, color in (("p50", "p50", SLUICE), ("p90", "p90", THIRD), ("p99", "p99", FOURTH), ("p999", "p99.9", "#c53030")):
            axes.plot(rates, [r["latency_ms"][key] for r in rows], "o-", color=color, label=label)
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlabel("offered requests/s (open loop)")
        axes.set_title("line protocol TAKE" if scheme == "line" else "HTTP GET /v1/check", loc="left")
    panels[0].set_ylabel("latency ms, from when each request was due")
    panels[0].legend(frameon=False)
    title(panels[0], "Latency under a fixed offered rate (sluice bench --rate)")
    return finish(figure, data, "latency")


def memory(data):
    rows = data["rows"]
    figure, axes = plt.subplots(figsize=(8, 3.5))
    keys = [r["keys"] for r in rows]
    axes.plot(keys, [r["bytes_per_key"] for r in rows], "o-", color=SLUICE)
    for r in rows:
        axes.annotate(f"{r['bytes_per_key']} B/key\n{r['rss_mib']} MiB", (r["keys"], r["bytes_per_key"]), textcoords="offset points",
                      xytext=(0, 8), ha="center", fontsize=7)
    axes.set_xscale("log")
    axes.set_ylim(0, 1.4 * max(r["bytes_per_key"] for r in rows))
    axes.set_xlabel("live keys (store.max_keys = keys)")
    axes.set_ylabel("resident bytes per key, whole process")
    title(axes, "Memory per key against key count")
    return finish(figure, data, "memory")


def rls(data):
    direct, envoy = data["direct"], data["envoy"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    labels = [f"{r['in_flight']} in flight" for r in direct]
    positions = range(len(direct))
    left.bar([p - 0.2 for p in positions], [r["line_ops"] for r in direct], width=0.4, color=REFERENCE, label="line protocol TAKE")
    left.bar([p + 0.2 for p in positions], [r["grpc_ops"] for r in direct], width=0.4, color=SLUICE, label="gRPC ShouldRateLimit")
    left.set_xticks(list(positions), labels)
    left.set_ylabel("decisions/s")
    left.legend(frameon=False, fontsize=7)
    left.set_title("Sluice direct: gRPC against the line protocol", loc="left")
    names = ["Envoy alone", "with Sluice", "with a zero-cost\nservice"]
    values = [envoy["alone_rps"], envoy["sluice_rps"], envoy["zero_cost_rps"]]
    right.bar(names, values, color=[REFERENCE, SLUICE, FOURTH])
    for x, value in enumerate(values):
        right.text(x, value, f"{value:,.0f}", ha="center", va="bottom", fontsize=7)
    right.set_ylabel("requests/s through Envoy")
    right.set_title("Envoy's ratelimit filter", loc="left")
    return finish(figure, data, "rls")


def main():
    made = []
    data = load("line_vs_redis")
    if data:
        loops = f"; sluice --event-loops {data['event_loops']}" if data.get("event_loops", "").isdigit() else ""
        made.append(comparison(data, "line_vs_redis", f"Line protocol: Sluice TAKE vs redis-server INCR (redis-benchmark -c 50 -r 100000{loops})",
                               "ops/s", lambda r: "no pipelining" if r["pipeline"] == 1 else f"pipeline -P {r['pipeline']}"))
    data = load("http_vs_nginx")
    if data:
        made.append(comparison(data, "http_vs_nginx", "HTTP: Sluice GET /v1/check vs nginx limit_req + empty_gif (wrk -t1 -c50)", "req/s",
                               lambda r: "100k random keys"))
    data = load("global_vs_local")
    if data:
        for row in data["rows"]:
            row["sluice"] = "Sluice, global leased" if row["mode"] == "leased" else "Sluice, global strict"
        command = data.get("command", "")
        steady = load("leased_steady")
        if steady:
            # The leased path once leases exist (leased_steady.sh), beside the run from fresh keys.
            row = dict(steady["rows"][0], sluice="Sluice, global leased (warm, pinned)")
            data["rows"].insert(1, row)
            command += f"; leased steady ({steady.get('date', '')}): {steady.get('command', '')}"
        made.append(comparison(data, "global_vs_local", "Global policies through Redis (one sidecar, redis-benchmark -c 50)", "ops/s",
                               lambda r: f"{r['mode']}, -P {r['pipeline']}", command))
    for name, render in (("core", core), ("soak", soak), ("sweep", sweep), ("latency", latency), ("memory", memory), ("rls", rls)):
        data = load(name)
        if data:
            made.append(render(data))
    print("wrote", ", ".join(made) if made else "nothing (no results yet)")


if __name__ == "__main__":
    main()
