#!/usr/bin/env python3
"""Turns Benchmarks/results/*.json into the SVG charts the README shows (no plotting library needed).

Usage: python3 charts/render.py   (from anywhere; reads ../Benchmarks/results, writes next to itself)
Each chart states the machine, the date and the command under it.
"""
import json
import pathlib
from html import escape

HERE = pathlib.Path(__file__).resolve().parent
RESULTS = HERE.parent / "Benchmarks" / "results"
SLUICE, REFERENCE = "#2b6cb0", "#a0aec0"


def svg(width, height, body):
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'font-family="Helvetica, Arial, sans-serif" font-size="12">'
            f'<rect width="100%" height="100%" fill="white"/>{body}</svg>\n')


def caption(data, y):
    lines = [f"{data['machine']} — {data['date']}"] + data["command"].split("; ")
    return "".join(f'<text x="10" y="{y + 14 * i}" font-size="10" fill="#4a5568">{escape(line)}</text>'
                   for i, line in enumerate(lines))


def comparison(data, title, unit, label_of):
    """Grouped bars: reference and Sluice per row, with the ratio."""
    rows = data["rows"]
    top = max(max(r["reference_ops"], r["sluice_ops"]) for r in rows)
    width, bar_h, gap, left, scale_w = 760, 22, 18, 150, 390
    height = 50 + len(rows) * (2 * bar_h + gap) + 50
    body = f'<text x="10" y="22" font-size="15" font-weight="bold">{escape(title)}</text>'
    y = 40
    for row in rows:
        body += f'<text x="10" y="{y + bar_h + 4}" font-weight="bold">{escape(label_of(row))}</text>'
        reference = row.get("reference", data.get("reference", "reference"))
        for name, value, color in ((reference, row["reference_ops"], REFERENCE), (row.get("sluice", "Sluice"), row["sluice_ops"], SLUICE)):
            w = max(1, scale_w * value / top)
            body += f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h - 4}" fill="{color}"/>'
            body += f'<text x="{left + w + 6:.1f}" y="{y + bar_h - 8}">{escape(name)}: {value:,.0f} {unit}</text>'
            y += bar_h
        note = f' — answered without Redis: {100 * row["without_redis_share"]:.2f}%' if "without_redis_share" in row else ""
        body += f'<text x="{left}" y="{y + 10}" font-size="11" fill="{SLUICE}">ratio Sluice / reference: {row["ratio"]}x{escape(note)}</text>'
        y += gap
    return svg(width, height, body + caption(data, y + 12))


def core(data):
    """Horizontal bars: p50 ns per decision, one bar per benchmark (decision benchmarks only)."""
    rows = [r for r in data["rows"] if " hot-key" in r["name"] or "1M" in r["name"]]
    top = max(r["p50_ns"] for r in rows)
    width, bar_h, left, scale_w = 760, 18, 290, 380
    height = 50 + len(rows) * bar_h + 50
    body = '<text x="10" y="22" font-size="15" font-weight="bold">Decision core: p50 ns per decision, hashing and lookup included (2-threads: wall time per decision, both threads busy)</text>'
    y = 40
    for row in rows:
        w = max(1, scale_w * row["p50_ns"] / top)
        body += f'<text x="10" y="{y + 12}">{escape(row["name"].replace("_", " "))}</text>'
        body += f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h - 4}" fill="{SLUICE}"/>'
        body += f'<text x="{left + w + 6:.1f}" y="{y + 12}">{row["p50_ns"]} ns</text>'
        y += bar_h
    return svg(width, height, body + caption(data, y + 16))


def soak(data):
    """Two panels over the run's time: resident memory, and each protocol's p99 (probe decisions, 10 s windows)."""
    samples = data["samples"]
    width, panel_h, left, plot_w = 760, 170, 70, 640
    end = max(s["t"] for s in samples)
    body = (f'<text x="10" y="22" font-size="15" font-weight="bold">Soak, {data["duration_s"] // 60} min: '
            f'{data["mean_decisions_per_second_after_warmup"]:,} decisions/s, {data["keyspace"] // 1_000_000}M keys '
            f'churning through max_keys {data["max_keys"]:,}</text>')

    def panel(top, title, series, unit):
        peak = max(v for _, values, _ in series for v in values if v is not None) * 1.15 or 1
        out = f'<text x="10" y="{top - 6}" font-weight="bold">{escape(title)}</text>'
        out += f'<rect x="{left}" y="{top}" width="{plot_w}" height="{panel_h}" fill="none" stroke="#cbd5e0"/>'
        for fraction in (0, 0.5, 1):
            y = top + panel_h * (1 - fraction)
            out += f'<text x="{left - 6}" y="{y + 4:.0f}" text-anchor="end" font-size="10">{peak * fraction:.1f}</text>'
        warm = left + plot_w * data["warmup_s"] / end
        out += f'<line x1="{warm:.1f}" y1="{top}" x2="{warm:.1f}" y2="{top + panel_h}" stroke="#e2e8f0" stroke-dasharray="4"/>'
        for index, (name, values, color) in enumerate(series):
            points = " ".join(f'{left + plot_w * s["t"] / end:.1f},{top + panel_h * (1 - v / peak):.1f}'
                              for s, v in zip(samples, values) if v is not None)
            out += f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="1.5"/>'
            out += f'<text x="{left + 10 + 110 * index}" y="{top + 14}" fill="{color}" font-size="11">{escape(name)} ({unit})</text>'
        return out

    body += panel(60, f"Resident memory (MiB): growth after the {data['warmup_s']} s warm-up {data['rss_growth_after_warmup_pct']}%",
                  [("Sluice RSS", [s["rss_mib"] for s in samples], SLUICE)], "MiB")
    body += panel(60 + panel_h + 50, "p99 per 10 s of one decision every 5 ms per protocol, under the load (ms)",
                  [(name, [s[f"{name}_p99_ms"] for s in samples], color)
                   for name, color in (("line", SLUICE), ("http", "#38a169"), ("grpc", "#d69e2e"))], "ms")
    y = 60 + 2 * panel_h + 70
    body += f'<text x="{left}" y="{y - 6}" font-size="10">0 s</text><text x="{left + plot_w}" y="{y - 6}" text-anchor="end" font-size="10">{end} s</text>'
    return svg(width, y + 50, body + caption(data, y + 8))


def main():
    made = []
    line = RESULTS / "line_vs_redis.json"
    if line.exists():
        data = json.loads(line.read_text())
        (HERE / "line_vs_redis.svg").write_text(comparison(
            data, "Line protocol: Sluice TAKE vs redis-server INCR (redis-benchmark -c 50 -r 100000"
            + (f"; sluice --event-loops {data['event_loops']})" if data.get("event_loops", "").isdigit() else ")"), "ops/s",
            lambda r: "no pipelining" if r["pipeline"] == 1 else f"pipeline -P {r['pipeline']}"))
        made.append("line_vs_redis.svg")
    http = RESULTS / "http_vs_nginx.json"
    if http.exists():
        data = json.loads(http.read_text())
        (HERE / "http_vs_nginx.svg").write_text(comparison(
            data, "HTTP: Sluice GET /v1/check vs nginx limit_req + empty_gif (wrk -t1 -c50)", "req/s",
            lambda r: "100k random keys"))
        made.append("http_vs_nginx.svg")
    global_results = RESULTS / "global_vs_local.json"
    if global_results.exists():
        data = json.loads(global_results.read_text())
        for row in data["rows"]:
            row["sluice"] = "Sluice, global leased" if row["mode"] == "leased" else "Sluice, global strict"
        (HERE / "global_vs_local.svg").write_text(comparison(
            data, "Global policies through Redis (one sidecar, redis-benchmark -c 50)", "ops/s",
            lambda r: f"{r['mode']}, -P {r['pipeline']}"))
        made.append("global_vs_local.svg")
    core_results = RESULTS / "core.json"
    if core_results.exists():
        (HERE / "core.svg").write_text(core(json.loads(core_results.read_text())))
        made.append("core.svg")
    soak_results = RESULTS / "soak.json"
    if soak_results.exists():
        (HERE / "soak.svg").write_text(soak(json.loads(soak_results.read_text())))
        made.append("soak.svg")
    print("wrote", ", ".join(made) if made else "nothing (no results yet)")


if __name__ == "__main__":
    main()
