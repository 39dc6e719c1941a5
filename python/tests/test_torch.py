"""gradlake.torch.Recorder against the Rust recorder and against PyTorch itself.

The central check: for one model, checkpoint and dataset, the lake the
Recorder writes from Python holds the same gradients as the lake
``gradlake replay --torchscript`` writes from the same module saved as
TorchScript (full, draw and noise exactly, per-sample to 1e-6): both run the
same libtorch kernels on one thread, on the same examples.
"""

import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

import gradlake
from gradlake.torch import Recorder

N, FEATURES, CLASSES = 300, 12, 4


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(FEATURES, 16)
        self.fc2 = nn.Linear(16, CLASSES)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def dataset(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, FEATURES, generator=g)
    y = torch.arange(N) % CLASSES  # every class present: the CSV/Parquet reader maps sorted labels to 0..k
    y = y[torch.randperm(N, generator=g)]
    return x, y


def grads_by_key(lake):
    """{(kind, step, sample, param): values} of a lake, reassembled from its chunks."""
    rows = gradlake.sql(
        'SELECT g.kind, g.step, g.sample, p.param, g.chunk, g.numel, g."values" FROM grads g '
        "JOIN params p ON g.run = p.run AND g.param_id = p.param_id ORDER BY 1, 2, 3, 4, 5",
        lake,
    ).to_pylist()
    out = {}
    for r in rows:
        key = (r["kind"], r["step"], r["sample"], r["param"])
        out.setdefault(key, []).append(np.asarray(r["values"][: r["numel"]], dtype=np.float32))
    return {k: np.concatenate(v) for k, v in out.items()}


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_a_python_lake_equals_the_rust_replay_of_the_same_module(tmp_path, run_cli):
    torch.manual_seed(3)
    model = MLP()
    x, y = dataset()
    # The Rust side: the module as TorchScript, its weights as a checkpoint of step 5, the data as Parquet.
    torch.jit.script(model).save(str(tmp_path / "mlp.pt"))
    (tmp_path / "ckpt").mkdir()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "ckpt" / "step-5.safetensors"))
    columns = {f"x{j}": pa.array(x[:, j].numpy()) for j in range(FEATURES)}
    columns["label"] = pa.array(y.numpy())
    pq.write_table(pa.table(columns), tmp_path / "data.parquet")
    run_cli(
        "replay", "--torchscript", tmp_path / "mlp.pt", "--checkpoints", tmp_path / "ckpt",
        "--dataset", f"parquet:{tmp_path / 'data.parquet'}", "--out", tmp_path / "rust", "--run", "r",
        "--batch-size", 32, "--draws", 3, "--samples", 5, "--seed", 11, "--threads", 1,
    )
    # The Python side: the same weights, data and seed.
    with Recorder(model, tmp_path / "python", run="p", draws=3, samples=5, seed=11) as rec:
        assert rec.noise_point(5, (x, y), F.cross_entropy, batch_size=32)
    rust, python = grads_by_key(tmp_path / "rust"), grads_by_key(tmp_path / "python")
    assert sorted(rust) == sorted(python)
    kinds = {k[0] for k in rust}
    assert kinds == {"full", "draw", "noise", "sample"}
    assert len([k for k in rust if k[0] == "sample"]) == 5 * 4
    for key, want in rust.items():
        got = python[key]
        if key[0] == "sample":
            scale = np.abs(want).max()
            assert np.abs(got - want).max() <= 1e-6 * max(scale, 1e-30), key
        else:
            np.testing.assert_array_equal(got, want, err_msg=str(key))


def test_noise_is_draw_minus_full_and_the_gradients_are_pytorchs(tmp_path):
    torch.manual_seed(0)
    model = MLP()
    x, y = dataset(1)
    with Recorder(model, tmp_path / "lake", draws=2, samples=3, seed=2, full_batch_chunk=128) as rec:
        rec.noise_point(0, torch.utils.data.TensorDataset(x, y), F.cross_entropy, batch_size=16)
    got = grads_by_key(tmp_path / "lake")
    for draw in range(2):
        for name in ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]:
            want = got[("draw", 0, draw, name)] - got[("full", 0, 0, name)]
            np.testing.assert_array_equal(got[("noise", 0, draw, name)], want)
    # The full gradient is PyTorch's gradient of the mean loss (in float64 here).
    model64 = MLP().double()
    model64.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
    F.cross_entropy(model64(x.double()), y).backward()
    for name, p in model64.named_parameters():
        want = p.grad.numpy().ravel()
        assert np.abs(got[("full", 0, 0, name)] - want).max() <= 1e-6 * np.abs(want).max(), name
    # Each per-sample gradient is the gradient of that example's loss alone.
    examples = sorted({k[2] for k in got if k[0] == "sample"})
    assert len(examples) == 3
    for i in examples:
        model64.zero_grad()
        F.cross_entropy(model64(x[i : i + 1].double()), y[i : i + 1]).backward()
        for name, p in model64.named_parameters():
            want = p.grad.numpy().ravel()
            assert np.abs(got[("sample", 0, i, name)] - want).max() <= 1e-6 * np.abs(want).max(), (i, name)


def test_a_noise_point_leaves_gradients_and_random_state_as_they_were(tmp_path):
    torch.manual_seed(1)
    model = MLP()
    x, y = dataset()
    F.cross_entropy(model(x[:8]), y[:8]).backward()
    before = {n: p.grad.clone() for n, p in model.named_parameters()}
    rng = torch.get_rng_state()
    with Recorder(model, tmp_path / "lake", draws=2, samples=2) as rec:
        rec.noise_point(0, (x, y), F.cross_entropy, batch_size=8)
        for n, p in model.named_parameters():
            assert torch.equal(p.grad, before[n]), n
        assert torch.equal(torch.get_rng_state(), rng)
        # Steps not in `at` record nothing.
    with Recorder(model, tmp_path / "lake", run="at", at=[3], draws=1, samples=1) as rec:
        assert not rec.noise_point(2, (x, y), F.cross_entropy, batch_size=8)
        assert rec.noise_point(3, (x, y), F.cross_entropy, batch_size=8)
    steps = gradlake.sql("SELECT DISTINCT step FROM grads WHERE run = 'at'", tmp_path / "lake").column("step")
    assert steps.to_pylist() == [3]


def test_minibatch_records_p_grad_every_k_steps_and_the_scalars(tmp_path):
    torch.manual_seed(2)
    model = MLP()
    x, y = dataset()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    seen = {}
    with Recorder(model, tmp_path / "lake", run="m", every=2, optimizer=opt, params="fc1.*") as rec:
        for step in range(5):
            opt.zero_grad()
            loss = F.cross_entropy(model(x[step * 8 : step * 8 + 8]), y[step * 8 : step * 8 + 8])
            loss.backward()
            seen[step] = ({n: p.grad.clone() for n, p in model.named_parameters()}, loss.item())
            rec.minibatch(step, loss)
            opt.step()
    got = grads_by_key(tmp_path / "lake")
    assert sorted({k[1] for k in got}) == [0, 2, 4]
    assert {k[3] for k in got} == {"fc1.weight", "fc1.bias"}
    for step in [0, 2, 4]:
        for name in ["fc1.weight", "fc1.bias"]:
            np.testing.assert_array_equal(got[("minibatch", step, 0, name)], seen[step][0][name].numpy().ravel())
    scalars = gradlake.sql("SELECT step, name, value FROM scalars", tmp_path / "lake").to_pylist()
    by = {(s["step"], s["name"]): s["value"] for s in scalars}
    for step in range(5):
        grads, loss = seen[step]
        assert by[(step, "loss")] == pytest.approx(loss, rel=1e-7)
        assert by[(step, "lr")] == 0.05
        if step % 2 == 0:
            norm = np.sqrt(sum(float((g.double() ** 2).sum()) for n, g in grads.items() if n.startswith("fc1.")))
            assert by[(step, "grad_norm")] == pytest.approx(norm, rel=1e-12)
            bias = float(grads["fc1.bias"].double().norm())
            assert by[(step, "grad_norm/fc1.bias")] == pytest.approx(bias, rel=1e-12)
        else:
            assert (step, "grad_norm") not in by
    runs = gradlake.sql("SELECT model, optimizer, lr FROM runs", tmp_path / "lake").to_pylist()
    assert runs == [{"model": "MLP", "optimizer": "sgd", "lr": 0.05}]


class ItemScaled(nn.Module):
    """A module vmap cannot batch: it reads a tensor's value with .item()."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(FEATURES, CLASSES)

    def forward(self, x):
        return self.fc(x) * (1.0 + 0.0 * x.abs().max().item())


def test_modules_vmap_cannot_batch_fall_back_to_a_loop_with_a_warning(tmp_path):
    torch.manual_seed(4)
    model = ItemScaled()
    x, y = dataset()
    with Recorder(model, tmp_path / "lake", draws=0, samples=3, seed=5) as rec:
        with pytest.warns(RuntimeWarning, match="falling back to one backward pass per example"):
            rec.noise_point(0, (x, y), F.cross_entropy, batch_size=8)
    got = grads_by_key(tmp_path / "lake")
    examples = sorted({k[2] for k in got if k[0] == "sample"})
    assert len(examples) == 3
    for i in examples:
        model.zero_grad()
        F.cross_entropy(model(x[i : i + 1]), y[i : i + 1]).backward()
        for name, p in model.named_parameters():
            np.testing.assert_array_equal(got[("sample", 0, i, name)], p.grad.numpy().ravel())


def test_bad_recorder_arguments_raise(tmp_path):
    model = MLP()
    with pytest.raises(ValueError, match=r"params='conv\*' matches none of the model's params: fc1.weight"):
        Recorder(model, tmp_path / "lake", params="conv*")
    x, y = dataset()
    with Recorder(model, tmp_path / "lake", samples=N + 1) as rec:
        with pytest.raises(ValueError, match=f"samples={N + 1} is more than the dataset's {N} examples"):
            rec.noise_point(0, (x, y), F.cross_entropy, batch_size=8)
        with pytest.raises(ValueError, match="batch_size must be in"):
            rec.samples = 1
            rec.noise_point(0, (x, y), F.cross_entropy, batch_size=N + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gradlake.sql("SELECT 1", tmp_path / "lake")
