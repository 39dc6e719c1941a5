"""gradlake.LakeWriter and gradlake.sql against values known independently:
the arrays written, numpy's sums of them, and closed-form query results."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pyarrow as pa
import pytest
import torch

import gradlake

PARAMS = {"w": (3, 5000), "b": (7,)}  # w spans 4 chunks of 4096 values, the last partial


def arrays(seed):
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in PARAMS.items()}


def stored(lake, run, kind, step, sample=0):
    """Each param's values as stored: the chunks of grads, reassembled by numpy."""
    t = gradlake.sql(
        f"""SELECT p.param AS name, g.chunk, g.numel, g."values" FROM grads g JOIN params p
            ON g.run = p.run AND g.param_id = p.param_id
            WHERE g.run = '{run}' AND g.kind = '{kind}' AND g.step = {step} AND g.sample = {sample}
            ORDER BY name, g.chunk""",
        lake,
    ).to_pylist()
    out = {}
    for row in t:
        out.setdefault(row["name"], []).append(np.asarray(row["values"][: row["numel"]], dtype=np.float32))
    return {name: np.concatenate(parts) for name, parts in out.items()}


def test_numpy_and_torch_gradients_are_stored_exactly_and_queryable(tmp_path):
    lake = tmp_path / "lake"
    a0, a1 = arrays(0), arrays(1)
    with gradlake.LakeWriter(lake, "r1", PARAMS, {"model": "test", "lr": 0.1, "seed": 4, "note": [1, "x"]}) as w:
        for name, a in a0.items():
            norm = w.grad(0, "minibatch", name, a)
            assert norm == pytest.approx(np.sqrt((a.astype(np.float64) ** 2).sum()), rel=1e-12)
        for name, a in a1.items():
            w.grad(1, "minibatch", name, torch.from_numpy(a.copy()))  # a torch tensor
        # A non-contiguous array is accepted (copied), a transposed view included.
        w.grad(0, "full", "w", np.asfortranarray(a0["w"]))
        w.grad(0, "full", "b", a0["b"][::-1][::-1])
        w.scalar(0, "loss", 2.5)
    for step, truth in [(0, a0), (1, a1)]:
        got = stored(lake, "r1", "minibatch", step)
        for name, a in truth.items():
            np.testing.assert_array_equal(got[name], a.ravel())
    np.testing.assert_array_equal(stored(lake, "r1", "full", 0)["w"], a0["w"].ravel())

    # Every gradlake table and view is there, with values numpy agrees with.
    t = gradlake.sql(
        "SELECT step, sum(CAST(value AS DOUBLE)) AS s, count(*) AS n FROM grad_values "
        "WHERE kind = 'minibatch' GROUP BY step ORDER BY step",
        lake,
    )
    assert isinstance(t, pa.Table)
    for row, truth in zip(t.to_pylist(), [a0, a1]):
        assert row["n"] == sum(a.size for a in truth.values())
        assert row["s"] == pytest.approx(sum(a.astype(np.float64).sum() for a in truth.values()), rel=1e-12)
    runs = gradlake.sql("SELECT model, lr, seed, config FROM runs", lake).to_pylist()
    assert runs[0]["model"] == "test" and runs[0]["lr"] == 0.1 and runs[0]["seed"] == 4
    assert '"note":[1,"x"]' in runs[0]["config"].replace(" ", "")
    scalars = gradlake.sql("SELECT step, name, value FROM scalars ORDER BY name", lake).to_pylist()
    assert {"step": 0, "name": "loss", "value": 2.5} in scalars
    assert any(s["name"] == "run_finished" for s in scalars)


def test_finish_reports_what_was_written(tmp_path):
    w = gradlake.LakeWriter(tmp_path / "lake", "r", PARAMS)
    for step in range(3):
        for name, a in arrays(step).items():
            w.grad(step, "minibatch", name, a)
    stats = w.finish()
    assert stats["tensors"] == 6
    assert stats["values"] == 3 * (15000 + 7)
    assert stats["grad_rows"] == 3 * (4 + 1)
    assert w.closed
    with pytest.raises(ValueError, match="closed"):
        w.grad(3, "minibatch", "b", arrays(0)["b"])


def test_bad_input_raises_with_a_message_naming_it(tmp_path):
    w = gradlake.LakeWriter(tmp_path / "lake", "r", PARAMS)
    b = np.zeros(7, np.float32)
    with pytest.raises(TypeError, match=r"param \"b\".*float32.*<f8"):
        w.grad(0, "minibatch", "b", np.zeros(7))
    with pytest.raises(TypeError, match=r"param \"b\".*float32.*torch.float64"):
        w.grad(0, "minibatch", "b", torch.zeros(7, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"param \"b\".*numpy array or a torch tensor.*list"):
        w.grad(0, "minibatch", "b", [0.0] * 7)
    with pytest.raises(ValueError, match=r"param \"w\": expected shape \[3, 5000\], got \[5000, 3\]"):
        w.grad(0, "minibatch", "w", np.zeros((5000, 3), np.float32))
    with pytest.raises(KeyError, match='unknown param "v": the run declared w, b'):
        w.grad(0, "minibatch", "v", b)
    with pytest.raises(ValueError, match="unknown gradient kind"):
        w.grad(0, "gradient", "b", b)
    w.grad(5, "minibatch", "b", b)
    with pytest.raises(ValueError, match="step 4 is lower than step 5"):
        w.grad(4, "minibatch", "b", b)
    w.grad(4, "full", "b", b)  # steps go forward per kind
    with pytest.raises(ValueError, match="sample must be non-negative"):
        w.grad(6, "sample", "b", b, sample=-1)
    with pytest.raises(ValueError, match='options: unknown key "queue"'):
        gradlake.LakeWriter(tmp_path / "lake", "r2", PARAMS, options={"queue": 1})
    with pytest.raises(ValueError, match="invalid run id"):
        gradlake.LakeWriter(tmp_path / "lake", "../r", PARAMS)
    w.finish()
    with pytest.raises(gradlake.GradlakeError, match="already exists"):
        gradlake.LakeWriter(tmp_path / "lake", "r", PARAMS)
    # Nothing written before the errors was lost.
    assert gradlake.sql("SELECT count(*) AS n FROM grads", tmp_path / "lake").column("n")[0].as_py() == 2


def test_a_failing_loop_keeps_its_gradients_without_marking_the_run_finished(tmp_path):
    lake = tmp_path / "lake"
    with pytest.raises(RuntimeError, match="diverged"):
        with gradlake.LakeWriter(lake, "r", PARAMS) as w:
            w.grad(0, "minibatch", "b", np.ones(7, np.float32))
            raise RuntimeError("diverged")
    assert w.closed
    got = gradlake.sql("SELECT count(*) AS n FROM grads", lake).column("n")[0].as_py()
    assert got == 1
    names = gradlake.sql("SELECT name FROM scalars", lake).column("name").to_pylist()
    assert "run_finished" not in names


KILLED_WRITER = textwrap.dedent(
    """
    import sys, numpy as np, gradlake
    w = gradlake.LakeWriter(sys.argv[1], "killed", {"w": (64, 1024)},
                            options={"file_bytes": 1 << 20, "row_group_bytes": 256 << 10, "publish_every": 0.05})
    rng = np.random.default_rng(0)
    a = rng.standard_normal((64, 1024)).astype(np.float32)
    step = 0
    while True:
        w.grad(step, "minibatch", "w", a)
        w.scalar(step, "loss", float(step))
        step += 1
    """
)


def test_a_killed_python_writer_leaves_a_lake_that_passes_check(tmp_path, run_cli):
    lake = tmp_path / "lake"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(lake)], stderr=subprocess.PIPE)
    grads = lake / "grads" / "run=killed"
    def published():
        return len(list(grads.glob("part-*.parquet"))) if grads.exists() else 0

    try:
        deadline = time.monotonic() + 60
        while published() < 3 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.05)
    finally:  # killed whatever happened above: a failing test leaves no writer running
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert published() >= 3, "the writer did not publish 3 files in 60 s"
    done = run_cli("check", lake, "--deep")
    assert "ok" in done.stdout
    n = gradlake.sql("SELECT count(DISTINCT step) AS n FROM grads", lake).column("n")[0].as_py()
    assert n >= 1


def test_sql_without_a_lake_runs_gradlake_functions():
    t = gradlake.sql("SELECT vec_agg(v, i) AS vec FROM (VALUES (2.0, 1), (1.0, 0), (3.0, 2)) AS t(v, i)")
    assert t.column("vec").to_pylist() == [[1.0, 2.0, 3.0]]
    # Several statements: the last one's rows.
    t = gradlake.sql("CREATE VIEW v AS SELECT 41 AS x; SELECT x + 1 AS y FROM v")
    assert t.to_pylist() == [{"y": 42}]


def test_errors_of_queries_name_what_is_wrong(tmp_path):
    with pytest.raises(gradlake.GradlakeError, match="nope"):
        gradlake.sql("SELECT nope FROM (VALUES (1)) AS t(x)")
    with pytest.raises(gradlake.GradlakeError, match="not_a_lake"):
        gradlake.Lake(tmp_path / "not_a_lake")
    with pytest.raises(ValueError, match="memory_limit"):
        gradlake.Lake(memory_limit="lots")


def test_a_reader_streams_a_result_in_batches(tmp_path):
    lake = tmp_path / "lake"
    with gradlake.LakeWriter(lake, "r", PARAMS) as w:
        for step in range(4):
            for name, a in arrays(step).items():
                w.grad(step, "minibatch", name, a)
    reader = gradlake.Lake(lake).reader("SELECT value FROM grad_values")
    assert isinstance(reader, pa.RecordBatchReader)
    rows = sum(batch.num_rows for batch in reader)
    assert rows == 4 * (15000 + 7)


ENDLESS_QUERY = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    import gradlake
    threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    start = time.monotonic()
    try:
        gradlake.sql(
            "SELECT count(*) FROM (SELECT unnest(range(0, 200000)) AS v) a "
            "CROSS JOIN (SELECT unnest(range(0, 200000)) AS v) b"
        )
    except KeyboardInterrupt:
        print(f"interrupted after {time.monotonic() - start:.2f} s")
    """
)


def test_ctrl_c_interrupts_a_running_query():
    done = subprocess.run([sys.executable, "-c", ENDLESS_QUERY], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("interrupted after"), done.stdout + done.stderr
    # The signal came after 1 s; the query (4e10 rows) would have run for hours.
    assert float(done.stdout.split()[2]) < 10
