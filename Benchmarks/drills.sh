#!/usr/bin/env bash
# Fault drills against a release build: Redis hung (SIGSTOP), killed and restarted with its data, restarted
# empty; 100 SIGHUP reloads under load; 2,000 clients vanishing mid-pipeline; gRPC calls cancelled and garbage
# HTTP/2. About a minute. Results: Benchmarks/results/drills.json. Exits 1 if a drill failed.
# Env: SLUICE_BIN (a built sluice; default: build release), PYTHON (default: the test venv's, which has grpcio).
set -euo pipefail
cd "$(dirname "$0")/.."
source Benchmarks/load/common.sh
bin=$(build_sluice)
python=${PYTHON:-.venv-e2e/bin/python}
exec "$python" Benchmarks/drills.py "$bin" --out "${OUT:-Benchmarks/results/drills.json}" "$@"
