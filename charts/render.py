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


def main():
    made = []
    line = RESULTS / "line_vs_redis.json"
    if line.exists():
        data = json.loads(line.read_text())
        (HERE / "line_vs_redis.svg").write_text(comparison(
            data, "Line protocol: Sluice TAKE vs redis-server INCR (redis-benchmark -c 50 -r 100000)", "ops/s",
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
    print("wrote", ", ".join(made) if made else "nothing (no results yet)")


if __name__ == "__main__":
    main()
