//! `_core.LakeWriter`: the Rust [`gradlake_ingest::LakeWriter`] for Python.
//!
//! Arrays arrive through numpy's array interface (`__array_interface__`: data
//! pointer, type string, shape, strides), which every numpy array and, via
//! `Tensor.numpy()`, every CPU torch tensor offers without a copy. Their values
//! are copied once, into the `Vec` the writer's queue takes; that copy and any
//! wait for room in the queue run with the GIL released.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use gradlake_ingest::writer::GradKey;
use gradlake_ingest::{GradCompression, IngestError, Kind, ParamSpec, PublishLag, RunInfo, WriteStats, WriterOptions};
use pyo3::exceptions::{PyKeyError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::GradlakeError;
use crate::convert::json_of;

/// Streams one run's gradients into a lake (see the Python `gradlake.LakeWriter`).
#[pyclass(module = "gradlake._core")]
pub struct LakeWriter {
    /// `None` once finished. A mutex, not `&mut self`, so that the lock is
    /// waited for with the GIL released.
    inner: Mutex<Option<gradlake_ingest::LakeWriter>>,
    /// Declared shapes, in declaration order, to check arrays against.
    shapes: Vec<(String, Vec<usize>)>,
    lake: PathBuf,
    run: String,
}

/// Maps the core's errors to the Python exceptions a caller expects: bad
/// arguments are `ValueError`/`KeyError`, the rest [`GradlakeError`].
fn py_err(e: IngestError) -> PyErr {
    match e {
        IngestError::UnknownParam(_) => PyKeyError::new_err(e.to_string()),
        IngestError::ShapeMismatch { .. }
        | IngestError::StepBackwards { .. }
        | IngestError::Negative { .. }
        | IngestError::InvalidRunId(_)
        | IngestError::InvalidParams(_)
        | IngestError::InvalidArgument(_) => PyValueError::new_err(e.to_string()),
        _ => GradlakeError::new_err(e.to_string()),
    }
}

fn options_from(options: Option<&Bound<'_, PyDict>>) -> PyResult<WriterOptions> {
    let mut out = WriterOptions::default();
    let Some(options) = options else { return Ok(out) };
    for (key, value) in options.iter() {
        let key: String = key.extract()?;
        let bad = |what: &str| PyValueError::new_err(format!("options[{key:?}]: {what}"));
        match key.as_str() {
            "queue_bytes" => out.queue_bytes = value.extract().map_err(|_| bad("a positive integer"))?,
            "row_group_bytes" => out.row_group_bytes = value.extract().map_err(|_| bad("a positive integer"))?,
            "file_bytes" => out.file_bytes = value.extract().map_err(|_| bad("a positive integer"))?,
            "encoder_threads" => out.encoder_threads = value.extract().map_err(|_| bad("an integer ≥ 0"))?,
            "zstd_level" => out.zstd_level = value.extract().map_err(|_| bad("an integer"))?,
            "compression" => {
                out.compression = match value.extract::<String>().as_deref() {
                    Ok("zstd") => GradCompression::Zstd,
                    Ok("none") => GradCompression::Uncompressed,
                    _ => return Err(bad("'zstd' or 'none'")),
                }
            }
            "publish_every" => {
                let seconds: f64 = value.extract().map_err(|_| bad("seconds, a positive number"))?;
                if !(seconds > 0.0 && seconds.is_finite()) {
                    return Err(bad("seconds, a positive number"));
                }
                out.publish_lag = Some(PublishLag::fixed(Duration::from_secs_f64(seconds)));
            }
            _ => {
                return Err(PyValueError::new_err(format!(
                    "options: unknown key {key:?} (known: queue_bytes, row_group_bytes, file_bytes, \
                     encoder_threads, zstd_level, compression, publish_every)"
                )));
            }
        }
    }
    Ok(out)
}

/// `RunInfo` from the run's description: the columns of `runs` that `info`
/// names, the whole dict (JSON) as `runs.config`.
fn run_info(run: &str, info: Option<&Bound<'_, PyDict>>) -> PyResult<RunInfo> {
    let text = |key: &str, default: &str| -> PyResult<String> {
        match info.map(|d| d.get_item(key)).transpose()?.flatten() {
            Some(v) if !v.is_none() => {
                v.extract().map_err(|_| PyTypeError::new_err(format!("config[{key:?}] must be a string")))
            }
            _ => Ok(default.to_string()),
        }
    };
    let number = |key: &str| -> PyResult<Option<Bound<'_, PyAny>>> {
        Ok(info.map(|d| d.get_item(key)).transpose()?.flatten().filter(|v| !v.is_none()))
    };
    let lr = match number("lr")? {
        Some(v) => v.extract().map_err(|_| PyTypeError::new_err("config['lr'] must be a number"))?,
        None => f64::NAN,
    };
    let int = |key: &str| -> PyResult<i64> {
        match number(key)? {
            Some(v) => v.extract().map_err(|_| PyTypeError::new_err(format!("config[{key:?}] must be an integer"))),
            None => Ok(0),
        }
    };
    let config = match info {
        Some(d) => json_of(d.as_any()).map_err(|e| PyTypeError::new_err(format!("config: {e}")))?,
        None => serde_json::json!({}),
    };
    Ok(RunInfo {
        run: run.to_string(),
        model: text("model", "python")?,
        dataset: text("dataset", "")?,
        optimizer: text("optimizer", "")?,
        lr,
        batch_size: int("batch_size")?,
        seed: int("seed")?,
        start_time_us: RunInfo::now_us(),
        config,
    })
}

/// A C-contiguous little-endian f32 array's data pointer and shape, from its
/// `__array_interface__` (version 3).
struct ArrayView {
    address: usize,
    shape: Vec<usize>,
}

fn array_view(param: &str, array: &Bound<'_, PyAny>) -> PyResult<ArrayView> {
    let interface = array.getattr("__array_interface__").map_err(|_| {
        PyTypeError::new_err(format!(
            "param {param:?}: expected a numpy array or a torch tensor, got {}",
            array.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "an object".into())
        ))
    })?;
    let interface =
        interface.cast_into::<PyDict>().map_err(|_| PyTypeError::new_err("__array_interface__ is not a dict"))?;
    let get = |key: &str| -> PyResult<Bound<'_, PyAny>> {
        interface.get_item(key)?.ok_or_else(|| PyTypeError::new_err(format!("__array_interface__ has no {key:?}")))
    };
    let typestr: String = get("typestr")?.extract()?;
    if typestr != "<f4" {
        return Err(PyTypeError::new_err(format!(
            "param {param:?}: expected float32 values (typestr '<f4'), got '{typestr}'; \
             convert with .astype(numpy.float32) or .float()"
        )));
    }
    let shape: Vec<usize> = get("shape")?.extract()?;
    let strides = interface.get_item("strides")?;
    if let Some(strides) = strides.filter(|s| !s.is_none()) {
        let strides: Vec<isize> = strides.extract()?;
        let mut expected = 4isize;
        for (stride, dim) in strides.iter().zip(&shape).rev() {
            if *dim > 1 && *stride != expected {
                return Err(PyValueError::new_err(format!(
                    "param {param:?}: the array is not C-contiguous; pass numpy.ascontiguousarray(a) or t.contiguous()"
                )));
            }
            expected *= *dim as isize;
        }
    }
    let data = get("data")?;
    let data = data.cast_into::<PyTuple>().map_err(|_| {
        PyTypeError::new_err(format!(
            "param {param:?}: the array's data is not in memory (its interface has no pointer)"
        ))
    })?;
    let address: usize = data.get_item(0)?.extract()?;
    Ok(ArrayView { address, shape })
}

#[pymethods]
impl LakeWriter {
    /// Starts run `run` in the lake directory `lake` with the params `params`
    /// (a list of `(name, shape)`), described by `info`, written with `options`.
    #[new]
    #[pyo3(signature = (lake, run, params, info=None, options=None))]
    fn new(
        py: Python<'_>,
        lake: PathBuf,
        run: String,
        params: Vec<(String, Vec<usize>)>,
        info: Option<&Bound<'_, PyDict>>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let info = run_info(&run, info)?;
        let options = options_from(options)?;
        let specs: Vec<ParamSpec> = params.iter().map(|(n, s)| ParamSpec::new(n.clone(), s.clone())).collect();
        let dir = lake.clone();
        let writer =
            py.detach(move || gradlake_ingest::LakeWriter::create(&dir, &info, specs, options)).map_err(py_err)?;
        Ok(Self { inner: Mutex::new(Some(writer)), shapes: params, lake, run })
    }

    /// Queues the gradient `array` of `param` (float32, C-contiguous, of the
    /// param's shape) as `kind` at `step` for example or draw `sample`, and
    /// returns its L2 norm (summed in f64 while the values are in cache from
    /// the copy: the recorder's `grad_norm` scalars cost no second pass).
    #[pyo3(signature = (step, kind, param, array, sample=0))]
    fn grad(
        &self,
        py: Python<'_>,
        step: i64,
        kind: &str,
        param: &str,
        array: &Bound<'_, PyAny>,
        sample: i64,
    ) -> PyResult<f64> {
        let kind: Kind = kind.parse().map_err(|e: String| PyValueError::new_err(e))?;
        let Some((_, shape)) = self.shapes.iter().find(|(n, _)| n == param) else {
            let names: Vec<&str> = self.shapes.iter().map(|(n, _)| n.as_str()).collect();
            return Err(PyKeyError::new_err(format!("unknown param {param:?}: the run declared {}", names.join(", "))));
        };
        let view = array_view(param, array)?;
        if &view.shape != shape {
            return Err(PyValueError::new_err(format!(
                "param {param:?}: expected shape {shape:?}, got {:?}",
                view.shape
            )));
        }
        let len: usize = shape.iter().product();
        let address = view.address;
        // `array` stays referenced (and its memory alive) until this returns.
        py.detach(|| {
            let mut values = Vec::<f32>::with_capacity(len);
            // An empty array may have no address at all.
            if len > 0 {
                // SAFETY: the interface promised `len` contiguous f32 at `address`
                // (checked above); copied as bytes, so its alignment does not matter.
                unsafe {
                    std::ptr::copy_nonoverlapping(address as *const u8, values.as_mut_ptr().cast::<u8>(), len * 4);
                    values.set_len(len);
                }
            }
            let norm = l2_norm(&values);
            let mut guard = self.inner.lock().map_err(|_| PyRuntimeError::new_err("the writer was poisoned"))?;
            let writer = guard.as_mut().ok_or_else(finished)?;
            writer.write_grad_blocking(GradKey { step, kind, sample, param }, values).map_err(py_err)?;
            Ok(norm)
        })
    }

    /// Queues the scalar `name` = `value` of `step`.
    fn scalar(&self, py: Python<'_>, step: i64, name: &str, value: f64) -> PyResult<()> {
        py.detach(|| {
            let mut guard = self.inner.lock().map_err(|_| PyRuntimeError::new_err("the writer was poisoned"))?;
            guard.as_mut().ok_or_else(finished)?.write_scalar(step, name, value).map_err(py_err)
        })
    }

    /// Writes everything queued so far into whole, visible files.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| {
            let mut guard = self.inner.lock().map_err(|_| PyRuntimeError::new_err("the writer was poisoned"))?;
            guard.as_mut().ok_or_else(finished)?.flush_blocking().map_err(py_err)
        })
    }

    /// Writes everything, closes the run (its `run_finished` marker) and
    /// returns what was written.
    fn finish<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let stats = py.detach(|| {
            let writer = self
                .inner
                .lock()
                .map_err(|_| PyRuntimeError::new_err("the writer was poisoned"))?
                .take()
                .ok_or_else(finished)?;
            writer.finish().map_err(py_err)
        })?;
        stats_dict(py, &stats)
    }

    /// Stops without the `run_finished` marker, keeping everything queued (as a
    /// crash would, but without losing the queue): for a training loop that failed.
    fn abandon(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| {
            let writer = self.inner.lock().map_err(|_| PyRuntimeError::new_err("the writer was poisoned"))?.take();
            drop(writer);
            Ok(())
        })
    }

    /// Whether `finish` or `abandon` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.lock().map(|g| g.is_none()).unwrap_or(true)
    }

    /// The lake directory.
    #[getter]
    fn lake(&self) -> PathBuf {
        self.lake.clone()
    }

    /// The run id.
    #[getter]
    fn run(&self) -> String {
        self.run.clone()
    }

    /// The declared params, `(name, shape)` in declaration order.
    #[getter]
    fn params(&self) -> Vec<(String, Vec<usize>)> {
        self.shapes.clone()
    }
}

/// √Σx² in f64, over eight independent sums so the loop vectorises.
fn l2_norm(values: &[f32]) -> f64 {
    let mut sums = [0.0f64; 8];
    let chunks = values.chunks_exact(8);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (sum, &x) in sums.iter_mut().zip(chunk) {
            *sum += f64::from(x) * f64::from(x);
        }
    }
    let tail: f64 = tail.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    (sums.iter().sum::<f64>() + tail).sqrt()
}

fn finished() -> PyErr {
    PyValueError::new_err("the writer is closed (finish() or abandon() was called)")
}

fn stats_dict<'py>(py: Python<'py>, s: &WriteStats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("tensors", s.tensors)?;
    d.set_item("grad_rows", s.grad_rows)?;
    d.set_item("values", s.values)?;
    d.set_item("non_finite", s.non_finite)?;
    d.set_item("scalar_rows", s.scalar_rows)?;
    d.set_item("files", s.files)?;
    d.set_item("bytes", s.bytes)?;
    Ok(d)
}
