"""Checks that gradlake's answer (a CSV file from `gradlake sql --format csv`) equals DuckDB's
answer to the same question, row by row: strings exactly, numbers to 1e-9 relative (the sums run
in other orders; a Float32 column, printed by gradlake in f32's shortest form, must be the same
f32). Prints the largest difference; exits 1 on any disagreement.

    bench/.venv/bin/python bench/agree.py GRADLAKE.csv "DUCKDB SQL"
"""
import csv
import struct
import sys

import duckdb


def f32(v):
    return struct.unpack("f", struct.pack("f", v))[0]


path, sql = sys.argv[1], sys.argv[2]
with open(path, newline="") as f:
    ours = list(csv.reader(f))[1:]
theirs = duckdb.connect().execute(sql).fetchall()
if len(ours) != len(theirs):
    sys.exit(f"disagree: gradlake {len(ours)} rows, duckdb {len(theirs)}")
worst = 0.0
for i, (a, b) in enumerate(zip(ours, theirs)):
    if len(a) != len(b):
        sys.exit(f"disagree: row {i} has {len(a)} columns in gradlake, {len(b)} in duckdb")
    for j, (x, y) in enumerate(zip(a, b)):
        if isinstance(y, (int, float)) and not isinstance(y, bool):
            x = float(x)
            diff = abs(x - y) / max(abs(y), 1e-300)
            if diff > 1e-9 and f32(x) == f32(y):
                diff = 0.0
            worst = max(worst, diff)
            if diff > 1e-9:
                sys.exit(f"disagree: row {i} column {j}: gradlake {x!r}, duckdb {y!r}")
        elif str(x) != str(y):
            sys.exit(f"disagree: row {i} column {j}: gradlake {x!r}, duckdb {y!r}")
print(f"agree: {len(ours)} rows, largest relative difference {worst:.1e}")
