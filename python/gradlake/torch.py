"""Recording a PyTorch training loop into a gradlake lake.

Only public PyTorch APIs are used: ``p.grad`` after ``loss.backward()`` for
minibatch gradients, and ``torch.func`` (``functional_call`` + ``vmap(grad(...))``)
for per-sample gradients. The lake is the one ``gradlake record`` writes (the
same format, kinds and scalars), and the noise points draw the same minibatches
and examples as ``gradlake record``/``replay`` for the same seed, so a lake
written here and one replayed from the same checkpoint hold the same gradients.

Typical use::

    rec = Recorder(model, "lake", every=10, at=[0, 500, 999], optimizer=opt)
    for step, (x, y) in enumerate(loader):
        rec.noise_point(step, train_set, F.cross_entropy, batch_size=64)
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        rec.minibatch(step, loss)
        opt.step()
    rec.finish()
"""

from __future__ import annotations

import fnmatch
import math
import time
import warnings
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from . import LakeWriter, _core

__all__ = ["Recorder"]

#: Examples per forward pass of the full-batch gradient: ``gradlake record``'s
#: default, so that the chunks, and so the float sums, are the same.
FULL_BATCH_CHUNK = 1024

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Recorder:
    """Records the gradients of ``model``'s training into the lake ``lake``.

    * ``minibatch(step, loss)`` after ``loss.backward()`` writes the scalars
      ``loss`` and ``lr`` (of ``optimizer``, when given), and every ``every``
      steps (0: never) the minibatch gradient (``p.grad``) with the scalars
      ``grad_norm`` and ``grad_norm/<param>`` (of the recorded params);
    * ``noise_point(step, dataset, loss_fn, batch_size)`` at the steps ``at``
      (every call when ``at`` is None) writes, at the current weights, the
      ``full``-batch gradient, ``draws`` minibatch gradients (``draw``) and
      their ``noise`` (draw − full), and the per-sample gradients of
      ``samples`` fixed examples (``sample``), then restores every ``p.grad``
      and the random number generators, so the optimizer's step is unchanged.

    Only params whose name matches the glob ``params`` are recorded. ``seed``
    chooses the draws and the examples (as ``gradlake record --seed``).
    ``sample_chunk`` examples are differentiated at once by ``vmap``; it
    bounds the memory of per-sample gradients to that many copies of the
    params. ``config`` adds entries to the run's description, ``options``
    tunes the writer (see :class:`gradlake.LakeWriter`).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        lake: Any,
        run: Optional[str] = None,
        every: int = 1,
        at: Optional[Iterable[int]] = None,
        draws: int = 16,
        samples: int = 64,
        params: str = "*",
        seed: int = 0,
        optimizer: Optional[torch.optim.Optimizer] = None,
        sample_chunk: int = 64,
        full_batch_chunk: int = FULL_BATCH_CHUNK,
        config: Optional[Mapping[str, Any]] = None,
        options: Optional[Mapping[str, Any]] = None,
    ) -> None:
        if every < 0 or draws < 0 or samples < 0 or seed < 0:
            raise ValueError("every, draws, samples and seed must be non-negative")
        if sample_chunk < 1 or full_batch_chunk < 1:
            raise ValueError("sample_chunk and full_batch_chunk must be at least 1")
        self.model = model
        self.every = every
        self.at = None if at is None else frozenset(int(s) for s in at)
        self.draws = draws
        self.samples = samples
        self.seed = seed
        self.optimizer = optimizer
        self.sample_chunk = sample_chunk
        self.full_batch_chunk = full_batch_chunk
        all_params = [(n, p) for n, p in model.named_parameters()]
        self._recorded: List[Tuple[str, torch.nn.Parameter]] = [
            (n, p) for n, p in all_params if fnmatch.fnmatchcase(n, params)
        ]
        if not self._recorded:
            names = ", ".join(n for n, _ in all_params) or "(none)"
            raise ValueError(f"params={params!r} matches none of the model's params: {names}")
        if run is None:
            run = f"{type(model).__name__.lower()}-{time.strftime('%Y%m%d-%H%M%S')}"
        lr = optimizer.param_groups[0].get("lr") if optimizer is not None else None
        description: Dict[str, Any] = {
            "model": type(model).__name__,
            "optimizer": type(optimizer).__name__.lower() if optimizer is not None else "",
            "lr": float(lr) if isinstance(lr, (int, float)) else None,
            "seed": seed,
            "recorder": {
                "name": "gradlake.torch",
                "torch": torch.__version__,
                "every": every,
                "at": None if self.at is None else sorted(self.at),
                "draws": draws,
                "samples": samples,
                "params": params,
                "full_batch_chunk": full_batch_chunk,
            },
        }
        description.update(config or {})
        shapes = {n: tuple(p.shape) for n, p in self._recorded}
        self.writer = LakeWriter(lake, run, shapes, description, options)
        self._examples: Optional[List[int]] = None
        # Set when vmap first fails on this model: later noise points go straight to the loop.
        self._vmap_failed = False

    @property
    def run(self) -> str:
        """The run id."""
        return self.writer.run

    # -- the training step -------------------------------------------------

    def minibatch(self, step: int, loss: Optional[Any] = None) -> None:
        """Records the step's scalars and, every ``every`` steps, the gradients
        ``loss.backward()`` just left in ``p.grad`` with their norms.

        ``loss`` and ``lr`` are logged at every call; ``grad_norm`` and
        ``grad_norm/<param>`` with the gradients, where they cost nothing
        extra to read (norms of every step would cost ~5% of a small model's step).
        """
        w = self.writer
        if loss is not None:
            w.scalar(step, "loss", float(loss.detach().item() if hasattr(loss, "detach") else loss))
        if self.optimizer is not None:
            lr = self.optimizer.param_groups[0].get("lr")
            if isinstance(lr, (int, float)) or hasattr(lr, "item"):
                w.scalar(step, "lr", float(lr))
        if self.every == 0 or step % self.every != 0:
            return
        grads = _to_host([_grad_or_zeros(p) for _, p in self._recorded])
        norms = self._write_host(step, "minibatch", 0, grads)
        for (name, _), norm in zip(self._recorded, norms):
            w.scalar(step, f"grad_norm/{name}", norm)
        w.scalar(step, "grad_norm", math.sqrt(sum(n * n for n in norms)))

    # -- noise points -------------------------------------------------------

    def noise_point(self, step: int, dataset: Any, loss_fn: LossFn, batch_size: int) -> bool:
        """Records the noise-point gradients of ``step`` at the current weights
        (when ``step`` is one of ``at``); returns whether it did.

        ``dataset`` is a ``(features, labels)`` pair of tensors, a
        ``TensorDataset``, or any map-style dataset of ``(x, y)`` pairs;
        ``loss_fn(output, labels)`` must be a mean over the batch (like
        ``F.cross_entropy``); ``batch_size`` is the size of the draws.
        """
        if self.at is not None and step not in self.at:
            return False
        data = _Data(dataset)
        n = len(data)
        if self.samples > n:
            raise ValueError(f"samples={self.samples} is more than the dataset's {n} examples")
        # Drawn (and so checked) before anything is written: a bad batch_size writes nothing.
        draws = _core.noise_point_draws(self.seed, step, n, batch_size, self.draws)
        device = self.recorded_device
        saved_grads = [(p, p.grad) for p in self.model.parameters()]
        saved_rng = _rng_state()
        try:
            with torch.enable_grad():
                full_host = _to_host(self._full_gradient(data, loss_fn, device))
                self._write_host(step, "full", 0, full_host)
                for draw, index in enumerate(draws):
                    x, y = data.batch(index, device)
                    grads = self._gradient(lambda: loss_fn(self.model(x), y))
                    host = _to_host(grads)
                    self._write_host(step, "draw", draw, host)
                    self._write_host(step, "noise", draw, [g - f for g, f in zip(host, full_host)])
                self._per_sample(step, data, loss_fn, device)
        finally:
            for p, g in saved_grads:
                p.grad = g
            _set_rng_state(saved_rng)
        return True

    @property
    def recorded_device(self) -> torch.device:
        """Where the model's (first recorded) params live."""
        return self._recorded[0][1].device

    def _gradient(self, loss: Callable[[], torch.Tensor]) -> List[torch.Tensor]:
        """The recorded params' gradient of ``loss()``, from zeroed gradients."""
        _zero_grads(self.model)
        loss().backward()
        return [_grad_or_zeros(p) for _, p in self._recorded]

    def _full_gradient(self, data: "_Data", loss_fn: LossFn, device: torch.device) -> List[torch.Tensor]:
        """The mean loss's gradient over every example, ``full_batch_chunk`` at
        a time; each chunk's mean weighted by its share, as ``gradlake record`` does."""
        _zero_grads(self.model)
        n = len(data)
        for start in range(0, n, self.full_batch_chunk):
            length = min(self.full_batch_chunk, n - start)
            x, y = data.range(start, length, device)
            (loss_fn(self.model(x), y) * (length / n)).backward()
        return [_grad_or_zeros(p) for _, p in self._recorded]

    def _per_sample(self, step: int, data: "_Data", loss_fn: LossFn, device: torch.device) -> None:
        if self._examples is None or len(self._examples) != self.samples:
            self._examples = _core.sampled_examples(len(data), self.samples, self.seed)
        examples = self._examples
        for start in range(0, len(examples), self.sample_chunk):
            chunk = examples[start : start + self.sample_chunk]
            x, y = data.batch(chunk, device)
            for k, grads in enumerate(self._per_sample_chunk(x, y, loss_fn)):
                self._write_host(step, "sample", chunk[k], grads)

    def _per_sample_chunk(self, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn) -> List[List[np.ndarray]]:
        """Each example's gradients (host arrays, recorded params), by
        ``vmap(grad(...))``; one backward pass per example where vmap fails."""
        if not self._vmap_failed:
            try:
                return self._per_sample_vmap(x, y, loss_fn)
            except Exception as e:  # vmap cannot batch every module (in-place ops, .item(), data-dependent flow)
                self._vmap_failed = True
                warnings.warn(
                    f"gradlake.torch: per-sample gradients by torch.func.vmap failed ({type(e).__name__}: {e}); "
                    "falling back to one backward pass per example (slower, same values)",
                    RuntimeWarning,
                    stacklevel=4,
                )
        out = []
        for k in range(x.shape[0]):
            grads = self._gradient(lambda: loss_fn(self.model(x[k : k + 1]), y[k : k + 1]))
            out.append(_to_host(grads))
        return out

    def _per_sample_vmap(self, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn) -> List[List[np.ndarray]]:
        from torch.func import functional_call, grad, vmap

        names = [n for n, _ in self._recorded]
        recorded = {n: p.detach() for n, p in self._recorded}
        fixed = {n: p.detach() for n, p in self.model.named_parameters() if n not in recorded}
        fixed.update(dict(self.model.named_buffers()))

        def loss_of_one(params: Dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
            out = functional_call(self.model, {**fixed, **params}, (xi.unsqueeze(0),))
            return loss_fn(out, yi.unsqueeze(0))

        grads = vmap(grad(loss_of_one), in_dims=(None, 0, 0))(recorded, x, y)
        host = _to_host([grads[n] for n in names])
        return [[g[k] for g in host] for k in range(x.shape[0])]

    # -- writing ------------------------------------------------------------

    def _write_host(self, step: int, kind: str, sample: int, grads: Sequence[np.ndarray]) -> List[float]:
        """Writes each recorded param's gradient; their L2 norms."""
        return [self.writer.grad(step, kind, name, g, sample) for (name, _), g in zip(self._recorded, grads)]

    def finish(self) -> Dict[str, int]:
        """Writes everything, marks the run finished; what was written."""
        return self.writer.finish()

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.writer.__exit__(exc_type, exc, tb)


def _zero_grads(model: torch.nn.Module) -> None:
    """Zero gradients to accumulate into (``gradlake record`` zeroes, then adds:
    the same sums, bit for bit)."""
    for p in model.parameters():
        if p.requires_grad:
            p.grad = torch.zeros_like(p)


def _grad_or_zeros(p: torch.Tensor) -> torch.Tensor:
    """``p.grad``, or zeros where backward did not reach ``p`` (as ``gradlake record`` writes)."""
    return p.grad if p.grad is not None else torch.zeros_like(p)


def _to_host(tensors: Sequence[torch.Tensor]) -> List[np.ndarray]:
    """float32 C-contiguous host arrays of ``tensors``. Tensors on a GPU are
    copied into pinned host memory without blocking, all of them before one
    wait per device, so the training stream is waited for once per call."""
    tensors = [t.detach() for t in tensors]
    on_gpu = {t.device for t in tensors if t.device.type == "cuda"}
    if not on_gpu:
        return [t.float().contiguous().cpu().numpy() for t in tensors]
    host = [torch.empty(t.shape, dtype=torch.float32, pin_memory=True) for t in tensors]
    for h, t in zip(host, tensors):
        h.copy_(t, non_blocking=True)
    for device in on_gpu:
        torch.cuda.current_stream(device).synchronize()
    return [h.numpy() for h in host]


def _rng_state() -> Tuple[torch.Tensor, Optional[List[torch.Tensor]]]:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    return torch.get_rng_state(), cuda


def _set_rng_state(state: Tuple[torch.Tensor, Optional[List[torch.Tensor]]]) -> None:
    cpu, cuda = state
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state_all(cuda)


class _Data:
    """Indexed access to a dataset: tensors directly when it has them, else
    ``dataset[i]`` items collated."""

    def __init__(self, dataset: Any) -> None:
        tensors = None
        if isinstance(dataset, (tuple, list)) and len(dataset) == 2 and all(
            isinstance(t, torch.Tensor) for t in dataset
        ):
            tensors = tuple(dataset)
        elif isinstance(getattr(dataset, "tensors", None), tuple) and len(dataset.tensors) == 2:
            tensors = dataset.tensors  # torch.utils.data.TensorDataset
        if tensors is not None and tensors[0].shape[0] != tensors[1].shape[0]:
            raise ValueError(
                f"dataset: {tensors[0].shape[0]} feature rows but {tensors[1].shape[0]} labels"
            )
        self.tensors = tensors
        self.dataset = dataset

    def __len__(self) -> int:
        return self.tensors[0].shape[0] if self.tensors is not None else len(self.dataset)

    def batch(self, index: Sequence[int], device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
        if self.tensors is not None:
            i = torch.tensor(index, dtype=torch.long, device=self.tensors[0].device)
            x, y = self.tensors[0][i], self.tensors[1][i]
        else:
            from torch.utils.data import default_collate

            x, y = default_collate([self.dataset[int(k)] for k in index])
        return x.to(device), y.to(device)

    def range(self, start: int, length: int, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
        if self.tensors is not None:
            return self.tensors[0][start : start + length].to(device), self.tensors[1][start : start + length].to(device)
        return self.batch(range(start, start + length), device)
