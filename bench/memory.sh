#!/usr/bin/env bash
# Memory that must not grow with the length of a run: peak RSS of `synth` (the LakeWriter,
# README: "O(model size)", ~84 MiB of writer buffers with the defaults) and of `watch` over the
# finished lake (README: "bounded by the model"), for a run and one 8 times longer. Fails (exit 1)
# if the longer run's peak exceeds the shorter's by more than 25%.
#
#   bench/memory.sh               # 512M and 4G of payload
#   SMALL=256M LARGE=2G bench/memory.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BENCH_DIR="${BENCH_DIR:-/var/tmp/gradlake-bench}"
SMALL="${SMALL:-512M}"
LARGE="${LARGE:-4G}"
(cd "$ROOT" && cargo build --release --locked --bin gradlake)
BIN="$TARGET/release/gradlake"
mkdir -p "$BENCH_DIR"
peak() {  # label, command...: prints the peak RSS in MB and echoes it to stdout's last line
  local label="$1"; shift
  /usr/bin/time -f "%e %M" -o /tmp/gl-mem-time "$@" >/dev/null
  read -r t m < /tmp/gl-mem-time
  printf '%-34s %7.2f s  peak RSS %5d MB\n' "$label" "$t" "$((m / 1024))" >&2
  echo "$((m / 1024))"
}
declare -A rss
for size in "$SMALL" "$LARGE"; do
  lake="$BENCH_DIR/memory-$size"
  rm -rf "$lake"
  rss[synth-$size]=$(peak "synth --size $size" "$BIN" synth --out "$lake" --run mem --seed 1 --size "$size")
  echo "  lake: $(du -sh "$lake" | cut -f1) on disk" >&2
  rss[watch-$size]=$(peak "watch (finished lake, $size)" "$BIN" watch "$lake" --run mem --interval 0.1)
  rm -rf "$lake"
done
status=0
for what in synth watch; do
  small=${rss[$what-$SMALL]} large=${rss[$what-$LARGE]}
  if [ "$large" -gt $((small + small / 4)) ]; then
    echo "$what: peak RSS grows with the run: $small MB at $SMALL, $large MB at $LARGE" >&2
    status=1
  else
    echo "$what: $small MB at $SMALL, $large MB at $LARGE: bounded" >&2
  fi
done
exit $status
