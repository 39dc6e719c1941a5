"""bench/query.sh's Q1 timed inside one Python process, for gradlake and DuckDB alike: each
measurement opens the lake afresh (gradlake: `gradlake.sql(Q1, lake)`, which checks every
footer; DuckDB: a new connection running read_parquet over the same files) and runs the query.
Best of 7, interleaved, after one untimed call each (module loading, thread pools).

    python bench/q1_inprocess.py LAKE
"""

import sys
import time

import duckdb

import gradlake

lake = sys.argv[1]
Q1 = (
    "SELECT kind, step, count(*) AS chunk_rows, sqrt(sum(CAST(l2 AS DOUBLE) * l2)) AS norm "
    "FROM grads GROUP BY kind, step ORDER BY kind, step"
)
D1 = Q1.replace("FROM grads", f"FROM read_parquet('{lake}/grads/*/*.parquet', hive_partitioning = true)")


def gradlake_q1():
    return gradlake.sql(Q1, lake).num_rows


def gradlake_q1_open():
    return OPEN.sql(Q1).num_rows


def duckdb_q1():
    con = duckdb.connect()
    con.execute("SET threads = 2")
    return len(con.execute(D1).fetchall())


OPEN = gradlake.Lake(lake)
runs = {"gradlake (open + query)": gradlake_q1, "gradlake (query, lake open)": gradlake_q1_open, "duckdb (connect + query)": duckdb_q1}
rows = {name: f() for name, f in runs.items()}
assert len(set(rows.values())) == 1, rows
best = {name: float("inf") for name in runs}
for _ in range(7):
    for name, f in runs.items():
        start = time.perf_counter()
        f()
        best[name] = min(best[name], time.perf_counter() - start)
for name, secs in best.items():
    print(f"{name:>28}: {secs * 1000:6.1f} ms")
ratio = best["gradlake (open + query)"] / best["duckdb (connect + query)"]
print(f"ratio, open + query: {ratio:.2f}x DuckDB ({rows['duckdb (connect + query)']} rows)")
