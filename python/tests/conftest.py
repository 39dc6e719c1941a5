"""Shared fixtures: the gradlake CLI (built by ``cargo test``; ``scripts/test-python``
passes its path in ``GRADLAKE_BIN``) and one thread for torch, whose results
are then bit-reproducible and the same as the Rust recorder's on one thread."""

import os
import subprocess

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def gradlake_bin():
    path = os.environ.get("GRADLAKE_BIN")
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError(
            "GRADLAKE_BIN must name the gradlake binary built with --features torch "
            "(scripts/test-python sets it)"
        )
    return path


@pytest.fixture
def run_cli(gradlake_bin):
    """Runs the CLI; returns the CompletedProcess (text), raising with its stderr on failure."""

    def run(*args, check=True, env=None):
        full_env = dict(os.environ, OMP_NUM_THREADS="1", **(env or {}))
        done = subprocess.run([gradlake_bin, *map(str, args)], capture_output=True, text=True, env=full_env, timeout=600)
        if check and done.returncode != 0:
            raise AssertionError(f"gradlake {' '.join(map(str, args))} failed ({done.returncode}):\n{done.stderr}")
        return done

    return run
