#!/usr/bin/env bash
# Vectors from long data: (sample, dim, value) rows in shuffled order, one vector per sample.
# gradlake's vec_agg(value, dim) against DuckDB's list(value ORDER BY dim) and DataFusion's
# array_agg(value ORDER BY dim), on the same Parquet file, 2 threads each, warm page cache,
# best of 3. Each query keeps only a count and one element per vector, so printing is not timed.
#
#   bench/vectors.sh                     # release build; shapes 2000x400 and 20000x1000
#   SHAPES="500x100" bench/vectors.sh    # other shapes (N x d)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release --locked --bin gradlake)
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/gradlake"
fi
BENCH_DIR="${BENCH_DIR:-/var/tmp/gradlake-bench}"
[ -x "$ROOT/bench/.venv/bin/python" ] || { python3 -m venv "$ROOT/bench/.venv"; "$ROOT/bench/.venv/bin/pip" install -q duckdb; }
PY="$ROOT/bench/.venv/bin/python"
mkdir -p "$BENCH_DIR"

best_of_3() {  # best wall time of a command, with its peak RSS
  local best="" rss=""
  for _ in 1 2 3; do
    /usr/bin/time -f "%e %M" -o /tmp/gl-vec-time "$@" >/dev/null
    read -r t m < /tmp/gl-vec-time
    if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; rss=$m; fi
  done
  echo "$best s, peak RSS $((rss / 1024)) MB"
}

for shape in ${SHAPES:-2000x400 20000x1000}; do
  N="${shape%x*}"; D="${shape#*x}"
  F="$BENCH_DIR/long-$N-$D.parquet"
  if [ ! -f "$F" ]; then
    "$PY" -c "import duckdb; duckdb.sql(\"COPY (SELECT s AS sample, d AS dim, CAST(sin(s * 7.0 + d * 0.37) AS FLOAT) AS value FROM range($N) a(s), range($D) b(d) ORDER BY hash(s * 100003 + d)) TO '$F' (FORMAT parquet)\")"
  fi
  echo "== $N vectors of d = $D from $((N * D)) shuffled rows ($(du -h "$F" | cut -f1))"
  G="SELECT count(*) AS n, sum(v[$D]) AS last FROM (SELECT sample, %s AS v FROM '$F' GROUP BY sample)"
  # shellcheck disable=SC2059
  VEC=$(printf "$G" "vec_agg(value, dim)")
  # shellcheck disable=SC2059
  ARR=$(printf "$G" "array_agg(value ORDER BY dim)")
  DUCK="SELECT count(*) AS n, sum(v[$D]) AS last FROM (SELECT sample, list(value ORDER BY dim) AS v FROM read_parquet('$F') GROUP BY sample)"
  "$BIN" sql --format csv "$VEC"
  echo "gradlake process start (SELECT 1; DuckDB's figure is in-process): $(best_of_3 "$BIN" sql --format csv "SELECT 1")"
  echo "gradlake vec_agg:               $(best_of_3 "$BIN" sql --format csv "$VEC")"
  # array_agg sorts each group's rows: beyond a few million rows it takes minutes (> 60 s at 20 M).
  if [ $((N * D)) -le "${ARRAY_AGG_MAX_ROWS:-2000000}" ]; then
    echo "gradlake array_agg ORDER BY:    $(best_of_3 "$BIN" sql --format csv "$ARR")"
  else
    echo "gradlake array_agg ORDER BY:    skipped above ARRAY_AGG_MAX_ROWS rows"
  fi
  best=""
  for _ in 1 2 3; do
    line=$("$PY" "$ROOT/bench/duck.py" "$DUCK" 2 | head -1)
    t=${line%% s,*}
    if [ -z "$best" ] || awk "BEGIN{exit !($t < ${best%% s,*})}"; then best=$line; fi
  done
  echo "duckdb list ORDER BY:           $best"
done
