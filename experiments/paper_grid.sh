#!/usr/bin/env bash
# The study of Xie et al. (2023), "On the Overlooked Structure of Stochastic Gradients", on real
# data at a scale two cores finish in about half an hour: LeNet-5 on 8,000 real MNIST digits and
# the MLP on scikit-learn's 1,797 8x8 digits, each at minibatch sizes 16, 64 and 256, 600 SGD
# steps (momentum 0.9, lr 0.05), every minibatch gradient recorded, and at the start, middle and
# end 1,024 per-sample gradients and 256 extra minibatch draws (so covariance spectra span more
# than two decades of rank). Then every analysis under three xmin rules, and iteration-wise tests
# over the whole run and over its last third (late training, closer to stationary).
#
#   experiments/paper_grid.sh                 # release build; results in experiments/out/
#   MODELS="mlp" BATCHES="64" STEPS=100 experiments/paper_grid.sh   # a quick subset
#
# Writes OUT/<run>.json (analyze --format json), OUT/<run>-spectrum.json (spectra up to rank 256),
# OUT/<run>-late.json (iteration-wise, last third),
# OUT/<run>-report/ (HTML), OUT/times.txt, and prints the tables of EXPERIMENTS.md
# (experiments/summarise.py).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-$ROOT/experiments/out}"
STEPS="${STEPS:-600}"
SAMPLES="${SAMPLES:-1024}"
DRAWS="${DRAWS:-256}"
BATCHES="${BATCHES:-16 64 256}"
MODELS="${MODELS:-lenet mlp}"
XMIN="${XMIN:-csn,top:0.1,all}"
"$ROOT/scripts/setup-libtorch" >/dev/null
"$ROOT/scripts/setup-mnist" >/dev/null
"$ROOT/scripts/setup-digits" >/dev/null
export LIBTORCH="${LIBTORCH:-$ROOT/.deps/libtorch-2.13.0-cpu}"
export LD_LIBRARY_PATH="$LIBTORCH/lib:${LD_LIBRARY_PATH:-}"
if [ -z "${BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release --locked --features torch --bin gradlake)
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/gradlake"
fi
mkdir -p "$OUT"
: > "$OUT/times.txt"
timed() {  # label, command...: runs it, appends its wall time and peak RSS to times.txt
  local label="$1"; shift
  /usr/bin/time -f "$label %e s %M KB" -a -o "$OUT/times.txt" "$@"
}
for model in $MODELS; do
  dataset=mnist; [ "$model" = mlp ] && dataset=digits
  for batch in $BATCHES; do
    run="$model-$dataset-b$batch"
    lake="$OUT/lakes/$run"
    if [ ! -d "$lake/runs/run=$run" ]; then
      rm -rf "$lake"
      timed "record $run" "$BIN" record --model "$model" --dataset "$dataset" --batch-size "$batch" \
        --steps "$STEPS" --samples "$SAMPLES" --draws "$DRAWS" --seed 0 --out "$lake" --run "$run" \
        --at "0,$((STEPS / 2)),$((STEPS - 5))" >/dev/null
    fi
    timed "analyze $run" "$BIN" analyze "$lake" --only summary,dimension_wise,iteration_wise,noise \
      --xmin "$XMIN" --param step_every=5 --format json --report "$OUT/$run-report" > "$OUT/$run.json"
    # Spectra over up to 256 ranks (n/4 of 1,024 samples): a sketch of rank 512, near exact here.
    timed "spectrum $run" "$BIN" analyze "$lake" --only spectrum --param max_rank=256 \
      --param sketch_rank=512 --format json > "$OUT/$run-spectrum.json"
    timed "late $run" "$BIN" analyze "$lake" --only iteration_wise --param phases=3 --xmin "$XMIN" \
      --format json > "$OUT/$run-late.json"
  done
done
python3 "$ROOT/experiments/summarise.py" "$OUT"
