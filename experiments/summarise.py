"""The tables of EXPERIMENTS.md from the JSON that experiments/paper_grid.sh wrote.

    python3 experiments/summarise.py experiments/out

Per run: the share of tests that find a power law under each xmin rule, the share where the
likelihood ratio calls the tail heavier than exponential (CSN's xmin), and the share that find
a Gaussian; rates over several phases or steps are averaged weighted by their number of tests.
Then the whole model's covariance spectrum fits. Standard library only.
"""
import glob
import json
import os
import sys
from collections import defaultdict


def summaries(path):
    with open(path) as f:
        doc = json.load(f)
    return {a["name"]: a.get("summary", []) for a in doc["analyses"]}, doc.get("xmin_rules") or ["csn"]


def pooled(rows, rate):
    tests = sum(r.get("tests") or r.get("coordinates") or 0 for r in rows)
    if not tests:
        return None
    return sum((r.get("tests") or r.get("coordinates") or 0) * (r.get(rate) or 0.0) for r in rows) / tests


def fmt(x):
    return "—" if x is None else f"{x:.2f}"


def main(out):
    runs = sorted(
        p for p in glob.glob(os.path.join(out, "*.json")) if not p.endswith(("-late.json", "-spectrum.json"))
    )
    rules = None
    lines, spectra = [], []
    for path in runs:
        run = os.path.basename(path)[:-5]
        s, rules = summaries(path)
        late, _ = summaries(path[:-5] + "-late.json") if os.path.exists(path[:-5] + "-late.json") else ({}, rules)
        tests = []
        for kind in ["minibatch", "full"]:
            tests.append((f"dimension-wise, {kind}", [r for r in s.get("dimension_wise", []) if r["kind"] == kind]))
        tests.append(("iteration-wise, whole run", s.get("iteration_wise", [])))
        last = max((r["phase"] for r in late.get("iteration_wise", [])), default=None)
        tests.append(("iteration-wise, last third", [r for r in late.get("iteration_wise", []) if r["phase"] == last]))
        for view in ["across parameters", "across draws"]:
            tests.append((f"noise, {view}", [r for r in s.get("noise", []) if r["view"] == view]))
        for label, rows in tests:
            by_rule = defaultdict(list)
            for r in rows:
                by_rule[r["xmin_rule"]].append(r)
            n = sum(r.get("tests") or r.get("coordinates") or 0 for r in by_rule[rules[0]])
            cells = [fmt(pooled(by_rule[rule], "power_law_rate")) for rule in rules]
            cells.append(fmt(pooled(by_rule[rules[0]], "heavy_tail_rate")))
            cells.append(fmt(pooled(by_rule[rules[0]], "gaussian_rate")) if "gaussian_rate" in (rows[0] if rows else {}) else "—")
            lines.append(f"| {run} | {label} | {n} | " + " | ".join(cells) + " |")
        spectrum_file = path[:-5] + "-spectrum.json"
        if os.path.exists(spectrum_file):
            s = summaries(spectrum_file)[0]
        for r in s.get("spectrum", []):
            if r["param"] == "(model)":
                spectra.append(
                    f"| {run} | {r['kind']} | {r['step']} | {r['n']} | {r['kmin']}–{r['kmax']} | "
                    f"{fmt(r['s'])} | {fmt(r['r2'])} | {r['power_law']} |"
                )
    if rules is None:
        sys.exit(f"no results in {out}")
    print("| run | test | tests | " + " | ".join(f"power law ({r})" for r in rules) + " | heavier than exp. | Gaussian |")
    print("|---|---|---|" + "---|" * (len(rules) + 2))
    print("\n".join(lines))
    print()
    print("| run | kind | step | vectors | ranks fitted | s | R² | KS: power law |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(spectra))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "experiments/out")
