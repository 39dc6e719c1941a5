#!/usr/bin/env bash
# Exact power-law fits on the same samples: gradlake vs the Python `powerlaw` package,
# igraph's plfit (C) and the Rust `powerlaw` crate; and gradlake's bootstrap (1000 reps).
#
#   bench/powerlaw.sh                 # n = 1e4 for every tool, larger n where a tool finishes
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BENCH_DIR="${BENCH_DIR:-/var/tmp/gradlake-bench}"
DATA="$BENCH_DIR/powerlaw"
[ -x "$ROOT/bench/.venv/bin/python" ] || python3 -m venv "$ROOT/bench/.venv"
"$ROOT/bench/.venv/bin/pip" install -q numpy scipy powerlaw igraph
PY="$ROOT/bench/.venv/bin/python"
[ -d "$DATA" ] || "$PY" "$ROOT/bench/powerlaw_peers.py" make "$DATA"
(cd "$ROOT" && cargo build --release --locked -p gradlake-stats --example powerlaw_bench)
(cd "$ROOT/bench/rust-peers" && CARGO_TARGET_DIR="$BENCH_DIR/rust-peers-target" cargo build --release)
files() { for n in "$@"; do ls "$DATA"/*-"$n".f64; done; }

"$TARGET/release/examples/powerlaw_bench" $(files 10000 100000 1000000 2000000)
"$TARGET/release/examples/powerlaw_bench" --gof 1000 $(files 10000) | grep gof
"$BENCH_DIR/rust-peers-target/release/gradlake-bench-rust-peers" $(files 10000 100000)
"$PY" "$ROOT/bench/powerlaw_peers.py" fit "$DATA" igraph 10000 100000
"$PY" "$ROOT/bench/powerlaw_peers.py" fit "$DATA" powerlaw 10000
