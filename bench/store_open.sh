#!/usr/bin/env bash
# Opening a lake of ~1,000 files in S3 (moto on 127.0.0.1, scripts/setup-moto): every footer read
# one at a time (GRADLAKE_FOOTER_CONCURRENCY=1, the "before") against 32 at a time (the default),
# through `gradlake check` (list + footers) and `gradlake sql` (open + first query). Best of 3.
#
#   bench/store_open.sh                 # release build
#   BIN=path/to/gradlake bench/store_open.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release --locked --bin gradlake)
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/gradlake"
fi
MOTO="$("$ROOT/scripts/setup-moto")"
PORT="${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
"$MOTO" -H 127.0.0.1 -p "$PORT" >/dev/null 2>&1 &
MOTO_PID=$!
trap 'kill $MOTO_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.1; done
curl -s -X PUT "http://127.0.0.1:$PORT/bench" >/dev/null
export AWS_ENDPOINT="http://127.0.0.1:$PORT" AWS_ALLOW_HTTP=true AWS_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
URL=s3://bench/lake
# One grads file per step (and a scalars file with it): ~2 files a step, ~1,000 in all.
STEPS="${STEPS:-500}"
/usr/bin/time -f "synth to S3: %e s, peak RSS %M KB" "$BIN" synth --out "$URL" --steps "$STEPS" \
  --params w:32x32,b:32 --samples 2 --draws 2 --row-group-size 4K --file-size 1 >/dev/null
"$BIN" check "$URL"

best_of_3() {
  local best=""
  for _ in 1 2 3; do
    /usr/bin/time -f "%e" -o /tmp/gl-store-time "$@" >/dev/null
    t=$(cat /tmp/gl-store-time)
    if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
  done
  echo "$best s"
}
Q="SELECT count(*) AS rows, sum(numel) AS values FROM grads"
echo "check, footers one at a time:   $(GRADLAKE_FOOTER_CONCURRENCY=1 best_of_3 "$BIN" check "$URL")"
echo "check, 32 footers at a time:    $(best_of_3 "$BIN" check "$URL")"
echo "sql open + query, one at a time: $(GRADLAKE_FOOTER_CONCURRENCY=1 best_of_3 "$BIN" sql --lake "$URL" "$Q")"
echo "sql open + query, 32 at a time:  $(best_of_3 "$BIN" sql --lake "$URL" "$Q")"
