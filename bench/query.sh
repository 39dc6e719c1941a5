#!/usr/bin/env bash
# Scan-and-aggregate queries on a >= 1 GB synthetic lake: gradlake (DataFusion) vs DuckDB on the
# same files, 2 threads each, warm page cache, best of 3. Also gradlake's peak RSS under
# --memory-limit 512M.
#
#   bench/query.sh            # builds release gradlake, makes the lake once under $BENCH_DIR
#   SIZE=2G bench/query.sh    # a bigger lake
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET/release/gradlake"
BENCH_DIR="${BENCH_DIR:-/var/tmp/gradlake-bench}"
SIZE="${SIZE:-1G}"
LAKE="$BENCH_DIR/lake-$SIZE"
(cd "$ROOT" && cargo build --release --locked --bin gradlake)
[ -x "$ROOT/bench/.venv/bin/python" ] || { python3 -m venv "$ROOT/bench/.venv"; "$ROOT/bench/.venv/bin/pip" install -q duckdb; }
PY="$ROOT/bench/.venv/bin/python"
if [ ! -d "$LAKE" ]; then
  mkdir -p "$BENCH_DIR"
  "$BIN" synth --out "$LAKE" --size "$SIZE" --seed 1 --samples 16 --draws 4 \
    --params fc1.weight:1024x1024,fc1.bias:1024,fc2.weight:256x1024,fc2.bias:256 >/dev/null
fi
echo "lake: $LAKE ($(du -sh "$LAKE" | cut -f1) on disk)"
"$BIN" sql --lake "$LAKE" "SELECT count(*) AS chunk_rows, sum(numel) AS gradient_values, sum(numel) * 4 / 1e9 AS payload_gb FROM grads"

best_of_3() {  # the best wall time (ms resolution; /usr/bin/time has 10 ms) and its peak RSS
  local best="" rss=""
  for _ in 1 2 3; do
    local start end t m
    start=$(date +%s%N)
    /usr/bin/time -f "%M" -o /tmp/gl-time "$@" >/dev/null
    end=$(date +%s%N)
    t=$(awk "BEGIN{printf \"%.3f\", ($end - $start) / 1e9}")
    read -r m < /tmp/gl-time
    if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; rss=$m; fi
  done
  echo "$best s, peak RSS $((rss / 1024)) MB"
}

G="'$LAKE/grads/*/*.parquet'"
Q1="SELECT kind, step, count(*) AS chunk_rows, sqrt(sum(CAST(l2 AS DOUBLE) * l2)) AS norm FROM grads GROUP BY kind, step ORDER BY kind, step"
D1="SELECT kind, step, count(*) AS chunk_rows, sqrt(sum(CAST(l2 AS DOUBLE) * l2)) AS norm FROM read_parquet($G, hive_partitioning = true) GROUP BY kind, step ORDER BY kind, step"
Q2="SELECT kind, count(*) AS n, avg(abs(value)) AS mean_abs, max(abs(value)) AS max_abs FROM grad_values GROUP BY kind ORDER BY kind"
D2="SELECT kind, count(*) AS n, avg(abs(v)) AS mean_abs, max(abs(v)) AS max_abs FROM (SELECT kind, unnest(values[1:numel]) AS v FROM read_parquet($G, hive_partitioning = true)) GROUP BY kind ORDER BY kind"

echo "== Q1 grads: per (kind, step) gradient norm from chunk summaries"
echo "gradlake: $(best_of_3 "$BIN" sql --lake "$LAKE" --format csv "$Q1")"
echo "duckdb:   $("$PY" "$ROOT/bench/duck.py" "$D1" 2 | head -1)"
"$BIN" sql --lake "$LAKE" --format csv "$Q1" >/tmp/gl-q1.csv
"$PY" "$ROOT/bench/agree.py" /tmp/gl-q1.csv "$D1"
echo "== Q2 grad_values: per kind count, mean |g|, max |g| over every gradient element"
"$BIN" sql --lake "$LAKE" "$Q2"
echo "gradlake: $(best_of_3 "$BIN" sql --lake "$LAKE" --format csv "$Q2")"
echo "gradlake --memory-limit 512M: $(best_of_3 "$BIN" sql --lake "$LAKE" --memory-limit 512M --format csv "$Q2")"
"$PY" "$ROOT/bench/duck.py" "$D2" 2
echo "duckdb:   $("$PY" "$ROOT/bench/duck.py" "$D2" 2 | head -1)"
"$BIN" sql --lake "$LAKE" --format csv "$Q2" >/tmp/gl-q2.csv
"$PY" "$ROOT/bench/agree.py" /tmp/gl-q2.csv "$D2"
