"""Runs one SQL query in DuckDB and prints seconds, rows and peak RSS (bench/query.sh peer)."""
import resource
import sys
import time

import duckdb

sql, threads = sys.argv[1], int(sys.argv[2])
con = duckdb.connect()
con.execute(f"SET threads = {threads}")
if len(sys.argv) > 3:
    con.execute(f"SET memory_limit = '{sys.argv[3]}'")
start = time.perf_counter()
rows = con.execute(sql).fetchall()
secs = time.perf_counter() - start
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
try:
    print(f"{secs:.3f} s, {len(rows)} rows, peak RSS {rss_mb:.0f} MB", flush=True)
    for r in rows[:8]:
        print("   ", r, flush=True)
except BrokenPipeError:  # the caller kept only the timing line
    sys.stdout = None
