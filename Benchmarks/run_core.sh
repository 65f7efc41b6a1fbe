#!/usr/bin/env bash
# Runs the core benchmarks (package-benchmark) and writes a compact summary for the charts:
# Benchmarks/results/core.json with p50 ns per decision and allocations per 1M decisions.
# Env: FILTER (a regex on benchmark names, default all), RESULTS (default results/core.json). Takes ~2 minutes
# after the first build.
set -euo pipefail
cd "$(dirname "$0")"
out=$(mktemp -d -t sluice-core.XXXXXX)
trap 'rm -rf "$out"' EXIT
args=(--format jmh --path "$out" --no-progress)
[ -n "${FILTER:-}" ] && args+=(--filter "$FILTER")
swift package --allow-writing-to-package-directory --allow-writing-to-directory "$out" benchmark "${args[@]}" >&2
mkdir -p results
python3 - "$out"/*.json "${RESULTS:-results/core.json}" <<'PY'
import json, subprocess, sys, datetime
source, target = sys.argv[1], sys.argv[2]
rows = []
for entry in json.load(open(source)):
    name = entry["benchmark"].split("CoreBenchmarks.", 1)[-1].replace("_", " ")  # JMH turned spaces into _
    wall = entry["secondaryMetrics"].get("Time (wall clock)", {}).get("scorePercentiles", {})
    mallocs = entry["secondaryMetrics"].get("Malloc (total)", {}).get("scorePercentiles", {})
    rows.append({"name": name, "p50_ns": round(wall.get("50.0", 0) / 1000, 1), "mallocs_per_million": mallocs.get("50.0")})
machine = subprocess.run(["bash", "-c", ". load/common.sh; machine_note"], capture_output=True, text=True).stdout.strip()
json.dump({"benchmark": "core", "date": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"), "machine": machine,
           "command": "cd Benchmarks && ./run_core.sh  (package-benchmark 1.38.1; p50 of up to 100 iterations of 1M decisions)",
           "rows": sorted(rows, key=lambda row: row["name"])}, open(target, "w"), indent=1)
print(f"wrote {target}: {len(rows)} benchmarks")
PY
