"""The README's Python example runs as written (in a fresh directory) and records what it says."""

import os
import re
import subprocess
import sys
from pathlib import Path

import gradlake

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_example_records_and_analyses(tmp_path):
    text = README.read_text()
    match = re.search(r"<!-- python-example: [^>]*-->\n```python\n(.*?)```", text, re.S)
    assert match, "README.md has no python-example block"
    code = match.group(1)
    assert len(code.strip().splitlines()) <= 17, "the README promises a short example"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    for name in ["summary", "dimension_wise", "iteration_wise", "noise", "spectrum"]:
        assert name in done.stdout
    lake = tmp_path / "lake"
    kinds = gradlake.sql("SELECT kind, count(DISTINCT step) AS steps FROM grads GROUP BY kind ORDER BY kind", lake)
    assert kinds.to_pylist() == [
        {"kind": "draw", "steps": 3},
        {"kind": "full", "steps": 3},
        {"kind": "minibatch", "steps": 30},
        {"kind": "noise", "steps": 3},
        {"kind": "sample", "steps": 3},
    ]
