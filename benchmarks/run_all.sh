#!/usr/bin/env bash
# Run every benchmark in sequence against the benchmark instance (~/.spotify-engine/neo4j-bench,
# ports 27687/27474, wiped), printing figures and saving JSON under benchmarks/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
export SPOTIFY_ENGINE_NEO4J_HOME="${SPOTIFY_ENGINE_NEO4J_HOME:-$HOME/.spotify-engine/neo4j-bench}"
export SPOTIFY_ENGINE_BOLT_PORT="${SPOTIFY_ENGINE_BOLT_PORT:-27687}"
export SPOTIFY_ENGINE_HTTP_PORT="${SPOTIFY_ENGINE_HTTP_PORT:-27474}"
PY="${PYTHON:-$HOME/.cache/spotify-engine/venv/bin/python}"
"$HOME/.cache/spotify-engine/venv/bin/spotify-engine" neo4j start
"$PY" benchmarks/ingest.py --bulk --force-rerun
"$PY" benchmarks/export.py
"$PY" benchmarks/writeback.py
"$PY" benchmarks/quality.py
"$PY" benchmarks/train_budget.py
"$PY" benchmarks/explanations.py
