#!/usr/bin/env bash
# Scale-out, side by side in one run, on one 3 GB lake (95,000 per-sample gradients of d = 10,000):
# the grad_values scan (bench/query.sh's Q2) and a Frequent Directions sketch (rank 128), from the
# local disk and from an S3 server (moto on 127.0.0.1), in one process and on 1, 2 and 4
# `gradlake worker` processes on this machine. Wall time is the best of $RUNS; "moved" is what the
# stages sent each other (datafusion-distributed's bytes_transferred, from EXPLAIN ANALYZE).
# On a 2-core machine more workers cannot add cores: the speed-up is bounded by 2, reported as is.
#
#   bench/cluster.sh                   # release build; SAMPLES=95000 (3 GB); RUNS=2 (S3_RUNS=1)
#   S3_WORKERS="2" bench/cluster.sh    # fewer S3 configurations (moto makes each S3 query minutes)
#   SKIP_S3=1 bench/cluster.sh         # local disk only
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release --locked --bin gradlake)
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/gradlake"
fi
BENCH_DIR="${BENCH_DIR:-/var/tmp/gradlake-bench}"
SAMPLES="${SAMPLES:-95000}"
RUNS="${RUNS:-2}"
LAKE="$BENCH_DIR/lake-cluster-$SAMPLES"
if [ ! -d "$LAKE" ]; then
  "$BIN" synth --out "$LAKE" --seed 4 --steps 1 --params w:10000 --samples "$SAMPLES" --draws 0 \
    --noise-points 0 >/dev/null
fi
echo "lake: $LAKE ($(du -sh "$LAKE" | cut -f1) on disk)"

Q2="SELECT kind, count(*) AS n, avg(abs(value)) AS mean_abs, max(abs(value)) AS max_abs FROM grad_values GROUP BY kind ORDER BY kind"
FD="SELECT i['n'] AS n, i['total_variance'] AS tv FROM (SELECT sketch_info(cov_sketch(\"values\", 128)) AS i FROM grad_vectors WHERE kind = 'sample')"

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

start_workers() {  # n, lake: starts n workers; their comma-separated addresses in ADDRS
  local addrs=() log
  for _ in $(seq "$1"); do
    log=$(mktemp)
    "$BIN" worker --listen 127.0.0.1:0 --lake "$2" > "$log" &
    PIDS+=($!)
    until [ -s "$log" ]; do sleep 0.05; done
    addrs+=("$(head -1 "$log" | awk '{print $NF}')")
    rm -f "$log"
  done
  ADDRS=$(IFS=,; echo "${addrs[*]}")
}

measure() {  # label, lake, workers ('' for one process), SQL
  local label=$1 lake=$2 workers=$3 sql=$4 best="" t m extra=()
  [ -n "$workers" ] && extra=(--workers "$workers")
  for _ in $(seq "$RUNS"); do
    if ! /usr/bin/time -f "%e %M" -o /tmp/gl-cluster-time "$BIN" sql --lake "$lake" "${extra[@]}" --format csv "$sql" \
      > /tmp/gl-cluster-out 2> /tmp/gl-cluster-err; then
      printf '%-30s   fails: %s\n' "$label" "$(head -c 150 /tmp/gl-cluster-err)"
      return 0
    fi
    read -r t m < <(tail -1 /tmp/gl-cluster-time)
    if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
  done
  local moved="-"
  if [ -n "$workers" ]; then
    moved=$("$BIN" sql --lake "$lake" "${extra[@]}" --format csv "EXPLAIN ANALYZE $sql" \
      | { grep -o 'bytes_transferred=[0-9.]* [KMG]*B' || true; } | awk '{v=$1; sub(/bytes_transferred=/, "", v); u=$2;
          f = (u=="KB") ? 1e3 : (u=="MB") ? 1e6 : (u=="GB") ? 1e9 : 1; s += v * f} END {printf "%.1f MB", s / 1e6}')
  fi
  printf '%-30s %8.2f s   moved %-10s  %s\n' "$label" "$best" "$moved" "$(tail -1 /tmp/gl-cluster-out | cut -c1-60)"
}

grid() {  # lake, label prefix
  for q in Q2 FD; do
    sql=${!q}
    measure "$2 $q, one process" "$1" "" "$sql"
    for n in ${WORKERS:-1 2 4}; do
      start_workers "$n" "$1"
      measure "$2 $q, $n worker(s)" "$1" "$ADDRS" "$sql"
      cleanup; PIDS=()
    done
  done
}

echo "== local disk"
grid "$LAKE" "disk"

[ -n "${SKIP_S3:-}" ] && exit 0
echo "== S3 (moto on 127.0.0.1)"
MOTO="$("$ROOT/scripts/setup-moto")"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$MOTO" -H 127.0.0.1 -p "$PORT" >/dev/null 2>&1 &
MOTO_PID=$!
trap 'cleanup; kill $MOTO_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.1; done
curl -s -X PUT "http://127.0.0.1:$PORT/bench" >/dev/null
export AWS_ENDPOINT="http://127.0.0.1:$PORT" AWS_ALLOW_HTTP=true AWS_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
URL=s3://bench/lake
start=$(date +%s.%N)
"$BIN" synth --out "$URL" --seed 4 --steps 1 --params w:10000 --samples "$SAMPLES" --draws 0 --noise-points 0 >/dev/null
echo "synth straight into S3: $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $start}") s"
RUNS="${S3_RUNS:-1}" WORKERS="${S3_WORKERS:-1 2 4}" grid "$URL" "s3"
