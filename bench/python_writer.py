"""Writer throughput from Python: gradlake.LakeWriter fed numpy arrays and torch tensors.

    python bench/python_writer.py DIR [GiB] [--tensors numpy|torch]

The workload of the Rust benchmark `writer_throughput` (ingest/examples): GiB of f32 gradients
as 1024x1024 tensors, a pool of 8 drawn once from the same distribution (|Pareto(2.5)| magnitudes,
xmin 1e-3, times Gaussian noise) and cycled, one run, default writer options. Prints MB/s of
payload, from the first grad() to the end of finish().
"""

import argparse
import shutil
import time
from pathlib import Path

import numpy as np

import gradlake

TENSOR = (1024, 1024)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("gib", nargs="?", type=float, default=1.0)
    ap.add_argument("--tensors", choices=["numpy", "torch"], default="numpy")
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    alpha, xmin = 2.5, 1e-3
    pool = []
    for _ in range(8):
        u = np.maximum(rng.random(TENSOR), 1e-12)
        pool.append((xmin * u ** (-1.0 / (alpha - 1.0)) * rng.standard_normal(TENSOR)).astype(np.float32))
    if args.tensors == "torch":
        import torch

        pool = [torch.from_numpy(a) for a in pool]
    count = int(np.ceil(args.gib * (1 << 30) / (TENSOR[0] * TENSOR[1] * 4)))
    lake = Path(args.dir) / "lake"
    shutil.rmtree(lake, ignore_errors=True)
    start = time.perf_counter()
    w = gradlake.LakeWriter(lake, "bench", {"w": TENSOR})
    for i in range(count):
        w.grad(i, "minibatch", "w", pool[i % len(pool)])
    stats = w.finish()
    secs = time.perf_counter() - start
    payload = count * TENSOR[0] * TENSOR[1] * 4
    print(
        f"python ({args.tensors}): {payload / 1e6:.0f} MB in {secs:.2f} s = {payload / 1e6 / secs:.0f} MB/s "
        f"({stats['bytes'] / 1e6:.0f} MB on disk)"
    )


if __name__ == "__main__":
    main()
