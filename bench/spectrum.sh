#!/usr/bin/env bash
# Covariance spectra: gradlake vs numpy/LAPACK on the same matrices, and Frequent Directions
# (rank 128) over 100,000 per-sample gradients of d = 10,000 streamed from a lake.
#
#   bench/spectrum.sh          # both parts
#   PART=dense bench/spectrum.sh / PART=lake bench/spectrum.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET/release/gradlake"
BENCH_DIR="${BENCH_DIR:-/var/tmp/gradlake-bench}"
DATA="$BENCH_DIR/spectrum"
PART="${PART:-all}"
[ -x "$ROOT/bench/.venv/bin/python" ] || python3 -m venv "$ROOT/bench/.venv"
"$ROOT/bench/.venv/bin/pip" install -q numpy
PY="$ROOT/bench/.venv/bin/python"
# One invocation: the binary and the example share one feature-unified build of DataFusion.
(cd "$ROOT" && cargo build --release --locked --workspace --exclude gradlake-recorder --bin gradlake --example spectrum_bench)

if [ "$PART" = all ] || [ "$PART" = dense ]; then
  echo "== exact spectra: d x d covariance of n rows (numpy: np.cov + eigvalsh)"
  for nd in "4000 500" "4000 2000"; do
    set -- $nd
    f="$DATA/cov-$1-$2.f64"
    [ -f "$f" ] || "$PY" "$ROOT/bench/spectrum_peers.py" make "$DATA" "$1" "$2"
    "$TARGET/release/examples/spectrum_bench" "$1" "$2" "$f" exact
    "$PY" "$ROOT/bench/spectrum_peers.py" eig "$f" "$1" "$2"
  done
  echo "== n << d: the Gram route (numpy: centred X Xᵀ + eigvalsh)"
  f="$DATA/cov-500-20000.f64"
  [ -f "$f" ] || "$PY" "$ROOT/bench/spectrum_peers.py" make "$DATA" 500 20000
  "$TARGET/release/examples/spectrum_bench" 500 20000 "$f" gram fd:128
  "$PY" "$ROOT/bench/spectrum_peers.py" gram "$f" 500 20000
fi

if [ "$PART" = all ] || [ "$PART" = lake ]; then
  LAKE="$BENCH_DIR/lake-fd-100k"
  if [ ! -d "$LAKE" ]; then
    "$BIN" synth --out "$LAKE" --seed 4 --steps 1 --params w:10000 --samples 100000 --draws 0 \
      --noise-points 0 >/dev/null
  fi
  echo "== Frequent Directions over a lake: $(du -sh "$LAKE" | cut -f1) on disk"
  run() {  # label, SQL: wall time and peak RSS from /usr/bin/time, then the result
    /usr/bin/time -f "%e %M" -o /tmp/gl-time "$BIN" sql --lake "$LAKE" --format csv "$2" > /tmp/gl-out
    read -r t m < /tmp/gl-time
    printf '%-34s %7.2f s  peak RSS %5d MB  %s\n' "$1" "$t" "$((m / 1024))" "$(tail -1 /tmp/gl-out)"
  }
  run "process baseline (SELECT 1)" "SELECT 1"
  # The same plan over no rows: the code and the lake's metadata that any query of it maps.
  run "planning baseline (no rows)" "SELECT i['n'] FROM (SELECT sketch_info(cov_sketch(\"values\", 128)) AS i FROM grad_vectors WHERE kind = 'none')"
  run "scan: reassemble every vector" "SELECT count(*), sum(cardinality(\"values\")) FROM grad_vectors WHERE kind = 'sample'"
  run "cov_sketch rank 128" "SELECT i['n'], i['error_bound'], i['total_variance'] FROM (SELECT sketch_info(cov_sketch(\"values\", 128)) AS i FROM grad_vectors WHERE kind = 'sample')"
  run "cov_spectrum fd 128 + spectrum_fit" "SELECT spectrum_fit(cov_spectrum(\"values\", 'fd', 128), 1, 32)['s'] FROM grad_vectors WHERE kind = 'sample'"
fi
