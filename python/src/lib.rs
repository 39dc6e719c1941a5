//! `gradlake._core`: the Rust core of the Python package `gradlake`.
//!
//! A thin binding: the lake writer ([`writer`]), SQL over lakes ([`query`]),
//! the named analyses ([`analyze`]) and the noise-point sampling every
//! recorder shares ([`gradlake_ingest::sampling`]). The Python package
//! (`python/gradlake/`) wraps these in its documented API; nothing here is
//! meant to be called directly.
//!
//! Work that can take long (a full writer queue, a query, an analysis) runs
//! with the GIL released, so other Python threads (a data loader) go on.

mod analyze;
mod convert;
mod query;
mod writer;

use std::future::Future;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

pyo3::create_exception!(
    gradlake,
    GradlakeError,
    pyo3::exceptions::PyException,
    "An error of gradlake's Rust core (a lake that cannot be read or written, a query that failed); \
     its message names the file, table, column or argument at fault."
);

/// The one async runtime of the process, started on first use, for queries.
fn runtime() -> PyResult<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("gradlake-query")
        .build()
        .map_err(|e| GradlakeError::new_err(format!("cannot start the query runtime: {e}")))?;
    Ok(RUNTIME.get_or_init(|| rt))
}

/// How often a long call looks for a pending Ctrl-C.
pub(crate) const SIGNAL_CHECK: Duration = Duration::from_millis(100);

/// Runs the future `make` returns on the runtime with the GIL released,
/// looking every [`SIGNAL_CHECK`] for a pending signal: Ctrl-C raises
/// `KeyboardInterrupt` and cancels the work (dropping the future stops its
/// query), as users of a notebook expect from a long analysis.
pub(crate) fn block_on_interruptibly<T, F>(py: Python<'_>, make: impl FnOnce() -> F + Send) -> PyResult<T>
where
    F: Future<Output = T>,
    T: Send,
{
    let rt = runtime()?;
    py.detach(|| {
        rt.block_on(async {
            let work = make();
            let mut work = std::pin::pin!(work);
            let mut tick = tokio::time::interval(SIGNAL_CHECK);
            loop {
                tokio::select! {
                    out = &mut work => return Ok(out),
                    _ = tick.tick() => Python::attach(|py| py.check_signals())?,
                }
            }
        })
    })
}

/// The exception a signal handler raised while a result stream was being read
/// (see `query::StreamReader`): the stream can only hand pyarrow an error
/// message, so the exception itself waits here for `take_interrupt`.
static INTERRUPT: Mutex<Option<PyErr>> = Mutex::new(None);

/// Runs pending signal handlers; when one raised (Ctrl-C), keeps its exception
/// for [`take_interrupt`] and returns true.
pub(crate) fn interrupted() -> bool {
    match Python::attach(|py| py.check_signals()) {
        Ok(()) => false,
        Err(e) => {
            *INTERRUPT.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
            true
        }
    }
}

/// The exception a signal handler raised while a stream was read, once.
#[pyfunction]
fn take_interrupt() -> Option<PyErr> {
    INTERRUPT.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// The examples whose per-sample gradients a run seeded `seed` records, out of `n`.
#[pyfunction]
fn sampled_examples(n: usize, count: usize, seed: u64) -> PyResult<Vec<i64>> {
    if count > n {
        return Err(PyValueError::new_err(format!("samples={count} is more than the dataset's {n} examples")));
    }
    Ok(gradlake_ingest::sampling::sampled_examples(n, count, seed))
}

/// The minibatches drawn at the noise point of `step` of a run seeded `seed`.
#[pyfunction]
fn noise_point_draws(seed: u64, step: i64, n: usize, batch_size: usize, draws: usize) -> PyResult<Vec<Vec<i64>>> {
    if batch_size == 0 || batch_size > n {
        return Err(PyValueError::new_err(format!(
            "batch_size must be in 1..={n} (the dataset's size), got {batch_size}"
        )));
    }
    if step < 0 {
        return Err(PyValueError::new_err(format!("step must be non-negative, got {step}")));
    }
    Ok(gradlake_ingest::sampling::noise_point_draws(seed, step, n, batch_size, draws))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("GradlakeError", m.py().get_type::<GradlakeError>())?;
    m.add("FORMAT_VERSION", gradlake_ingest::FORMAT_VERSION)?;
    m.add("CHUNK_LEN", gradlake_ingest::CHUNK_LEN)?;
    m.add_class::<writer::LakeWriter>()?;
    m.add_class::<query::Lake>()?;
    m.add_function(wrap_pyfunction!(analyze::analyze, m)?)?;
    m.add_function(wrap_pyfunction!(sampled_examples, m)?)?;
    m.add_function(wrap_pyfunction!(noise_point_draws, m)?)?;
    m.add_function(wrap_pyfunction!(take_interrupt, m)?)?;
    Ok(())
}
