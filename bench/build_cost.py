#!/usr/bin/env python3
# What scale-out adds to a clean build. Run after
#   CARGO_TARGET_DIR=DIR cargo build --release --locked --bin gradlake --timings
# as: bench/build_cost.py DIR
# Which packages of the binary's build exist only for scale-out (object_store's cloud features,
# datafusion-distributed, its proto/flight/tonic stack)? Reachability over `cargo metadata`'s
# resolve graph (normal + build edges), with those edges cut.
import json, subprocess, sys, re, glob, os
meta = json.loads(subprocess.check_output(["cargo", "metadata", "--format-version", "1", "--locked"], cwd=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")))
nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
pkgs = {p["id"]: p for p in meta["packages"]}
name = lambda i: pkgs[i]["name"]
root = [i for i in nodes if name(i) == "gradlake" and pkgs[i]["source"] is None][0]
CUT_TARGETS = {"datafusion-distributed", "datafusion-proto", "tonic", "rcgen", "tokio-stream", "url", "http"}
CLOUD = {"serde", "serde_json", "quick-xml", "hyper", "reqwest", "base64", "rand", "ring", "http-body-util",
         "form_urlencoded", "serde_urlencoded", "md-5", "httparse", "chrono", "tokio"}
def reach(cut):
    seen, stack = set(), [root]
    while stack:
        i = stack.pop()
        if i in seen: continue
        seen.add(i)
        for d in nodes[i]["deps"]:
            kinds = {k["kind"] for k in d["dep_kinds"]}
            if kinds <= {"dev"}: continue
            t = d["pkg"]
            if cut and i == root and name(t) in CUT_TARGETS: continue
            if cut and i != root and name(i) == "gradlake-pipeline" and name(t) in CUT_TARGETS: continue
            if cut and name(i) == "object_store" and name(t) in CLOUD: continue
            stack.append(t)
    return seen
full, base = reach(False), reach(True)
added = sorted({name(i) for i in full - base})
print(len(full), "packages;", len(full - base), "only for scale-out")
html = sorted(glob.glob(sys.argv[1] + "/cargo-timings/cargo-timing-*.html"))[-1]
text = open(html).read()
units = json.loads(re.search(r"const UNIT_DATA = (\[.*?\]);", text, re.S).group(1))
total = sum(u["duration"] for u in units)
extra = sum(u["duration"] for u in units if u["name"].replace("_", "-") in {a.replace("_", "-") for a in added})
print(f"sum of unit times {total:.0f} s, of which scale-out-only {extra:.0f} s ({100*extra/total:.0f}%)")
top = sorted((u for u in units if u["name"].replace("_","-") in {a.replace("_","-") for a in added}), key=lambda u: -u["duration"])[:8]
print("largest:", ", ".join(f'{u["name"]} {u["duration"]:.0f}s' for u in top))
