#!/usr/bin/env bash
# `gradlake watch` following `gradlake record` (LeNet-5 on the real MNIST digits, 3000
# steps) on the same machine: how long after the recorder exits watch is done, each
# process's wall and CPU time; then watch over the finished lake alone, and `analyze`.
#
#   bench/watch.sh            # needs scripts/setup-libtorch and scripts/setup-mnist
#   STEPS=1000 bench/watch.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BENCH_DIR="${BENCH_DIR:-/var/tmp/gradlake-bench}"
STEPS="${STEPS:-3000}"
LIBTORCH="${LIBTORCH:-$ROOT/.deps/libtorch-2.13.0-cpu}"
export LIBTORCH LD_LIBRARY_PATH="$LIBTORCH/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
(cd "$ROOT" && cargo build --release --locked --features torch --bin gradlake)
BIN="$TARGET/release/gradlake"
LAKE="$BENCH_DIR/watch-lenet"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
rm -rf "$LAKE"
mkdir -p "$BENCH_DIR"
cd "$ROOT" # record finds .deps/mnist from here
( /usr/bin/time -f 'watch (live): %e s wall, %U s user' "$BIN" watch "$LAKE" --run lenet --interval 0.2 \
    >"$OUT/watch.out" 2>"$OUT/watch.err"; date +%s.%N >"$OUT/watch.end" ) &
sleep 0.5
/usr/bin/time -f 'record (watched): %e s wall, %U s user' "$BIN" record --model lenet --dataset mnist \
    --steps "$STEPS" --out "$LAKE" --run lenet >"$OUT/rec.out" 2>"$OUT/rec.err"
date +%s.%N >"$OUT/rec.end"
wait
cat "$OUT/rec.out"
tail -n1 "$OUT/rec.err"
tail -n1 "$OUT/watch.err"
echo "watch done $(python3 -c "print(round($(cat "$OUT/watch.end") - $(cat "$OUT/rec.end"), 2))") s after the recorder exited"
rm -rf "$LAKE.alone"
/usr/bin/time -f 'record (alone): %e s wall, %U s user' "$BIN" record --model lenet --dataset mnist \
    --steps "$STEPS" --out "$LAKE.alone" --run lenet 2>&1 >/dev/null | tail -n1
rm -rf "$LAKE.alone"
/usr/bin/time -f 'watch (finished lake): %e s wall, %U s user, %M KB' "$BIN" watch "$LAKE" --run lenet 2>&1 >/dev/null | tail -n1
/usr/bin/time -f 'analyze --only dimension_wise,spectrum: %e s wall, %M KB' "$BIN" analyze "$LAKE" \
    --only dimension_wise,spectrum 2>&1 >/dev/null | tail -n1
/usr/bin/time -f 'analyze (all five): %e s wall, %M KB' "$BIN" analyze "$LAKE" 2>&1 >/dev/null | tail -n1
