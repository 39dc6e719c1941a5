"""What gradlake.torch.Recorder costs a PyTorch training loop (CPU).

    python bench/python_recorder.py DIR [STEPS]

The MLP of the Rust benchmark `record_overhead` (recorder/examples): 784-128-64-10, ReLU, 109,386
params (0.44 MB of f32 per gradient), batch 64, SGD (lr 0.05, momentum 0.9), on 8,192 synthetic
examples, torch on one thread. Prints steps/s of the plain loop, of the loop recording every 10th
minibatch gradient, and of the loop recording every minibatch gradient (scalars every step in
both), best of 5 runs each, interleaved.
"""

import argparse
import shutil
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from gradlake.torch import Recorder


def train(steps, x, y, lake=None, every=None):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    rec = None
    if lake is not None:
        shutil.rmtree(lake, ignore_errors=True)
        rec = Recorder(model, lake, run="bench", every=every, at=[], optimizer=opt)
    g = torch.Generator().manual_seed(1)
    start = time.perf_counter()
    for step in range(steps):
        i = torch.randint(0, x.shape[0], (64,), generator=g)
        opt.zero_grad()
        loss = F.cross_entropy(model(x[i]), y[i])
        loss.backward()
        if rec is not None:
            rec.minibatch(step, loss)
        opt.step()
    if rec is not None:
        rec.finish()
    return steps / (time.perf_counter() - start)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("steps", nargs="?", type=int, default=2000)
    args = ap.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(8192, 784, generator=g), torch.randint(0, 10, (8192,), generator=g)
    lake = Path(args.dir) / "lake"
    best = {"plain": 0.0, "every 10th": 0.0, "every": 0.0}
    for _ in range(5):
        best["plain"] = max(best["plain"], train(args.steps, x, y))
        best["every 10th"] = max(best["every 10th"], train(args.steps, x, y, lake, every=10))
        best["every"] = max(best["every"], train(args.steps, x, y, lake, every=1))
    plain = best["plain"]
    for name, rate in best.items():
        change = "" if name == "plain" else f" ({100 * (rate / plain - 1):+.1f}% vs plain)"
        print(f"{name:>11}: {rate:7.0f} steps/s{change}")
    mb = 109_386 * 4 * best["every"] / 1e6
    print(f"every minibatch gradient: {mb:.0f} MB/s of gradients")


if __name__ == "__main__":
    main()
