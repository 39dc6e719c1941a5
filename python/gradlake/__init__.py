"""gradlake from Python: record gradients into a lake and query lakes with SQL.

The writer, the lake format and the SQL engine are gradlake's Rust core
(``gradlake._core``); this package is a thin layer over it.

* :class:`LakeWriter` streams gradient tensors (numpy arrays or torch tensors)
  of one run into a lake directory;
* :class:`Lake` opens a lake for SQL (every gradlake function registered), and
  :func:`sql` runs one query; results are ``pyarrow`` tables;
* :func:`analyze` runs the named analyses of ``gradlake analyze``;
* :mod:`gradlake.torch` records a PyTorch training loop (``Recorder``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import pyarrow as pa

from . import _core
from ._core import CHUNK_LEN, FORMAT_VERSION, GradlakeError

__all__ = [
    "Analysis",
    "CHUNK_LEN",
    "FORMAT_VERSION",
    "GradlakeError",
    "Lake",
    "LakeWriter",
    "analyze",
    "sql",
]

PathLike = Union[str, "os.PathLike[str]"]


def _as_float32_array(param: str, array: Any) -> np.ndarray:
    """A C-contiguous view of ``array`` for the core, copying only when the
    input is not contiguous or lives on another device (a torch tensor on a GPU)."""
    if isinstance(array, np.ndarray):
        return array if array.flags.c_contiguous else np.ascontiguousarray(array)
    if hasattr(array, "detach") and hasattr(array, "numpy"):  # a torch tensor, without importing torch
        tensor = array.detach()
        if str(tensor.dtype) != "torch.float32":
            raise TypeError(
                f'param "{param}": expected float32 values, got {tensor.dtype}; convert with .float()'
            )
        if tensor.device.type != "cpu":
            tensor = tensor.cpu()
        return tensor.contiguous().numpy()
    raise TypeError(f'param "{param}": expected a numpy array or a torch tensor, got {type(array).__name__}')


class LakeWriter:
    """Streams the gradients of one run into the lake directory ``lake``.

    ``params`` maps each param's name to its shape, in the order they are to
    be stored; every gradient written must be one of them, of that shape,
    float32. ``config`` describes the run: ``model``, ``dataset``,
    ``optimizer`` (strings), ``lr``, ``batch_size`` and ``seed`` fill the
    columns of the ``runs`` table, and the whole dict (JSON values) is kept as
    its ``config``. ``options`` tunes the writer: ``queue_bytes``,
    ``row_group_bytes``, ``file_bytes``, ``encoder_threads``, ``zstd_level``,
    ``compression`` (``"zstd"`` or ``"none"``), ``publish_every`` (seconds:
    also publish open files this often, for ``gradlake watch``).

    Writing is asynchronous: :meth:`grad` copies the values into a queue
    bounded by ``queue_bytes`` and returns; a background thread chunks,
    compresses and writes them. Only when the queue is full does :meth:`grad`
    wait, with the GIL released. Every file appears whole (written under a
    hidden name, then renamed): a process killed at any moment leaves a lake
    that reads. Use it as a context manager, or call :meth:`finish`.
    """

    def __init__(
        self,
        lake: PathLike,
        run: str,
        params: Mapping[str, Sequence[int]],
        config: Optional[Mapping[str, Any]] = None,
        options: Optional[Mapping[str, Any]] = None,
    ) -> None:
        declared = [(str(name), [int(d) for d in shape]) for name, shape in params.items()]
        self._core = _core.LakeWriter(os.fspath(lake), run, declared, dict(config or {}), dict(options or {}))

    def grad(self, step: int, kind: str, param: str, array: Any, sample: int = 0) -> float:
        """Queues the gradient ``array`` (numpy array or torch tensor, float32,
        of the param's shape) of ``param`` at ``step`` and returns its L2 norm.
        ``kind`` is one of ``minibatch``, ``full``, ``draw``, ``noise``,
        ``sample``; ``sample`` is the example's index (``sample``) or the
        draw's (``draw``, ``noise``). Steps of one kind may not go back."""
        return self._core.grad(int(step), kind, param, _as_float32_array(param, array), int(sample))

    def scalar(self, step: int, name: str, value: float) -> None:
        """Queues the scalar ``name`` (loss, lr, ...) of ``step``."""
        self._core.scalar(int(step), name, float(value))

    def flush(self) -> None:
        """Writes everything queued so far into whole, visible files."""
        self._core.flush()

    def finish(self) -> Dict[str, int]:
        """Writes everything, marks the run finished and returns counts of what
        was written (``tensors``, ``grad_rows``, ``values``, ``files``, ``bytes``, ...)."""
        return self._core.finish()

    def abandon(self) -> None:
        """Stops without marking the run finished, keeping everything queued."""
        self._core.abandon()

    @property
    def closed(self) -> bool:
        """Whether :meth:`finish` or :meth:`abandon` was called."""
        return self._core.closed

    @property
    def run(self) -> str:
        """The run id."""
        return self._core.run

    @property
    def params(self) -> Dict[str, Tuple[int, ...]]:
        """The declared params and their shapes."""
        return {name: tuple(shape) for name, shape in self._core.params}

    def __enter__(self) -> "LakeWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.closed:
            return
        if exc_type is None:
            self.finish()
        else:
            # The loop failed: keep what it wrote, without claiming the run finished.
            self.abandon()


class Lake:
    """A SQL session over the lake ``lake`` (a directory or a URL such as
    ``s3://bucket/lake``), or over no lake (only files named in the query).

    Opening checks every file's footer. ``memory_limit`` (bytes, or text such
    as ``"2G"``) bounds the queries' operators, which spill to disk beyond it.
    """

    def __init__(
        self,
        lake: Optional[PathLike] = None,
        memory_limit: Union[int, str, None] = None,
        skip_bad_files: bool = False,
    ) -> None:
        self._core = _core.Lake(None if lake is None else os.fspath(lake), memory_limit, skip_bad_files)

    def sql(self, query: str) -> pa.Table:
        """Runs the ``;``-separated statements of ``query``; the last one's rows."""
        return _read_all(self.reader(query))

    def reader(self, query: str) -> pa.RecordBatchReader:
        """Like :meth:`sql`, as a stream of record batches computed as they are read."""
        return self._core.reader(query)

    @property
    def warnings(self) -> List[str]:
        """What opening the lake found worth saying (unverified or skipped files)."""
        return list(self._core.warnings)


def _read_all(reader: pa.RecordBatchReader) -> pa.Table:
    try:
        return reader.read_all()
    except pa.ArrowException as e:  # an error while the query ran, raised through the C stream
        interrupt = _core.take_interrupt()  # Ctrl-C while the query ran: its KeyboardInterrupt
        if interrupt is not None:
            raise interrupt from None
        raise GradlakeError(str(e)) from e


def sql(query: str, lake: Optional[PathLike] = None, memory_limit: Union[int, str, None] = None) -> pa.Table:
    """Runs ``query`` on ``lake`` (see :class:`Lake`) and returns its rows as a ``pyarrow.Table``."""
    return Lake(lake, memory_limit).sql(query)


@dataclass
class Analysis:
    """The result of one named analysis."""

    name: str
    title: str
    #: ``"ran"`` or ``"skipped"``.
    status: str
    #: Why it was skipped (the lake lacks the gradient kinds it reads).
    reason: Optional[str]
    #: Its summary rows (what ``gradlake analyze`` prints).
    summary: Optional[pa.Table]
    #: Its per-test tables, by name (what the report plots).
    tables: Dict[str, pa.Table] = field(default_factory=dict)


def analyze(
    lake: PathLike,
    report: Optional[PathLike] = None,
    only: Optional[Iterable[str]] = None,
    run: Optional[str] = None,
    params: Optional[Mapping[str, Any]] = None,
    xmin: Optional[Iterable[str]] = None,
    memory_limit: Union[int, str, None] = None,
    steps_per_pass: Optional[int] = None,
) -> Dict[str, Analysis]:
    """Runs the named analyses of ``gradlake analyze`` on ``lake``: all of them,
    or those in ``only`` (``summary``, ``dimension_wise``, ``iteration_wise``,
    ``noise``, ``spectrum``), in windows sized to ``memory_limit`` (default:
    half the machine's memory). ``params`` sets analysis parameters, ``xmin``
    the power-law xmin rules; with ``report`` the HTML report is written into
    that directory. Returns each analysis by name."""
    results = _core.analyze(
        os.fspath(lake),
        None if report is None else os.fspath(report),
        None if only is None else [str(o) for o in only],
        run,
        None if params is None else [(str(k), str(v)) for k, v in params.items()],
        None if xmin is None else [str(x) for x in xmin],
        memory_limit,
        steps_per_pass,
    )
    return {r["name"]: Analysis(**r) for r in results}
