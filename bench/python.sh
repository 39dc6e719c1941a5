#!/usr/bin/env bash
# The Python package's costs: writer throughput from Python vs the Rust writer on the same workload,
# gradlake.torch.Recorder's overhead in a PyTorch training loop, and Q1 of bench/query.sh timed in-process
# against DuckDB. Installs the package the way a
# user does (`pip install ./python`, a release build) into a directory of its own, next to the
# PyTorch venv of scripts/setup-python.
#
#   bench/python.sh                  # BENCH_DIR (default /var/tmp/gradlake-bench) holds the lakes
#   REUSE_INSTALL=1 bench/python.sh  # keep the package installed by the last run
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_DIR="${BENCH_DIR:-/var/tmp/gradlake-bench}/python"
VENV="$("$ROOT/scripts/setup-python")"
SITE="$BENCH_DIR/site"
mkdir -p "$BENCH_DIR"
if [ -z "${REUSE_INSTALL:-}" ] || [ ! -d "$SITE/gradlake" ]; then
rm -rf "$SITE"
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps --target "$SITE" "$ROOT/python"
# DuckDB beside it, for Q1 in one process (bench/q1_inprocess.py).
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps --target "$SITE" duckdb==2.0.1
fi
export PYTHONPATH="$SITE"
echo "== writer throughput, 1 GiB of 1024x1024 f32 tensors (best of 3)"
(cd "$ROOT" && cargo build --release --locked -p gradlake-ingest --example writer_throughput >/dev/null 2>&1)
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
for _ in 1 2 3; do
  rm -rf "$BENCH_DIR/lake" "$BENCH_DIR/raw.bin"
  "$TARGET/release/examples/writer_throughput" "$BENCH_DIR" 1 | grep "MB/s" | sed 's/^/rust: /'
done
rm -f "$BENCH_DIR/raw.bin"
for kind in numpy torch; do
  for _ in 1 2 3; do "$VENV/bin/python" "$ROOT/bench/python_writer.py" "$BENCH_DIR" 1 --tensors "$kind"; done
done
echo "== Recorder overhead, MLP 784-128-64-10, batch 64, torch on 1 thread"
"$VENV/bin/python" "$ROOT/bench/python_recorder.py" "$BENCH_DIR" 2000
echo "== Q1 of bench/query.sh inside one Python process (its lake: run bench/query.sh first)"
LAKE="${LAKE:-${BENCH_DIR%/python}/lake-1G}"
if [ -d "$LAKE" ]; then "$VENV/bin/python" "$ROOT/bench/q1_inprocess.py" "$LAKE"; else echo "no $LAKE: skipped"; fi
