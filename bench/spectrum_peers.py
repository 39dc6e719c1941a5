"""numpy/LAPACK peer for bench/spectrum.sh.

  spectrum_peers.py make DIR N D [S]   write DIR/cov-N-D.f64: N rows of dimension D, row-major f64,
                                       column k scaled so the population spectrum is k^-S (default 1)
  spectrum_peers.py eig FILE N D       np.cov + np.linalg.eigvalsh (LAPACK syevd), timed
  spectrum_peers.py gram FILE N D      eigenvalues through the centred n x n Gram matrix, timed
"""
import pathlib
import sys
import time

import numpy as np


def load(path, n, d):
    return np.fromfile(path, dtype="<f8").reshape(n, d)


def report(label, n, d, seconds, eig):
    top = " ".join(f"{v:.10e}" for v in eig[:3])
    print(f"numpy    {label:8} n={n} d={d}  total {seconds:7.3f} s  top {top}")


def main():
    cmd = sys.argv[1]
    if cmd == "make":
        out, n, d = pathlib.Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
        s = float(sys.argv[5]) if len(sys.argv) > 5 else 1.0
        out.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(n * 7919 + d)
        x = rng.standard_normal((n, d)) * (np.arange(1, d + 1) ** (-s / 2)) + 0.25
        x.astype("<f8").tofile(out / f"cov-{n}-{d}.f64")
        return
    path, n, d = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    x = load(path, n, d)
    start = time.perf_counter()
    if cmd == "eig":
        eig = np.linalg.eigvalsh(np.cov(x, rowvar=False))[::-1]
        report("exact", n, d, time.perf_counter() - start, eig)
    elif cmd == "gram":
        xc = x - x.mean(axis=0)
        eig = np.linalg.eigvalsh(xc @ xc.T)[::-1] / (n - 1)
        report("gram", n, d, time.perf_counter() - start, eig)
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
