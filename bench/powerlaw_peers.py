"""Power-law fits of the same samples by the Python peers: `powerlaw` and igraph (plfit, C).

    bench/.venv/bin/python bench/powerlaw_peers.py make DIR      # writes DIR/<dist>-<n>.f64 (raw little-endian)
    bench/.venv/bin/python bench/powerlaw_peers.py fit DIR TOOL N [N ...]

TOOL: powerlaw (Fit with parameter_ranges={'alpha': [1, None]}: every distinct value a
candidate, as CSN) or igraph (power_law_fit, continuous, plfit's exhaustive xmin search).
Prints one line per file: tool, file, seconds, alpha, xmin, D.
"""
import glob
import os
import sys
import time
import warnings

import numpy as np


def make(out):
    os.makedirs(out, exist_ok=True)
    for n in (10_000, 100_000, 1_000_000, 2_000_000):
        rng = np.random.default_rng(n)
        samples = {
            "abs-gaussian": np.abs(rng.standard_normal(n)),
            "abs-student-t3": np.abs(rng.standard_t(3, n)),
            "power-law-2.5": (1.0 - rng.random(n)) ** (-1.0 / 1.5),
        }
        for name, x in samples.items():
            x.astype("<f8").tofile(os.path.join(out, f"{name}-{n}.f64"))


def fit(path, tool):
    x = np.fromfile(path, dtype="<f8")
    start = time.perf_counter()
    if tool == "powerlaw":
        import powerlaw

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f = powerlaw.Fit(x, parameter_ranges={"alpha": [1, None]}, verbose=False)
        alpha, xmin, d = f.power_law.alpha, f.xmin, f.power_law.D
    elif tool == "igraph":
        import igraph

        # p_precision=0.5: about the fewest bootstrap replicates python-igraph allows, so the fit dominates.
        f = igraph.power_law_fit(x, method="continuous", p_precision=0.5)
        alpha, xmin, d = f.alpha, f.xmin, f.D
    else:
        sys.exit(f"unknown tool {tool}")
    secs = time.perf_counter() - start
    print(f"{tool:9} {os.path.basename(path):28} {secs:9.3f} s  alpha={alpha:.6f} xmin={xmin:.6e} D={d:.6e}", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        out, tool, ns = sys.argv[2], sys.argv[3], sys.argv[4:]
        for n in ns:
            for path in sorted(glob.glob(os.path.join(out, f"*-{n}.f64"))):
                fit(path, tool)
