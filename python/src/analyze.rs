//! `_core.analyze`: the named analyses of `gradlake analyze`, in memory-bounded
//! windows as the CLI runs them, returned as Python values.

use std::collections::BTreeSet;
use std::path::PathBuf;

use gradlake_pipeline::SessionOptions;
use gradlake_pipeline::memory::default_memory_limit;
use gradlake_queries::analyze::{
    Meter, Outcome, Passes, RunOptions, XminRulesError, check_params, lake_kinds, run_named_with, window_target,
    xmin_rules,
};
use gradlake_queries::named::{self, NamedQuery};
use gradlake_queries::report::{Section, write_report};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::convert::table;
use crate::query::{memory_limit, open};
use crate::{GradlakeError, block_on_interruptibly};

/// One analysis's result before it becomes Python values (built without the GIL).
struct Ran {
    query: NamedQuery,
    outcome: Outcome,
    tables: Vec<(String, Vec<arrow::record_batch::RecordBatch>)>,
}

/// Runs the analyses `only` (all when empty) on `lake`, returning one dict per
/// analysis: `name`, `title`, `status` (`ran` or `skipped`), `reason`,
/// `summary` and `tables` (pyarrow Tables); with `report`, also writes the
/// HTML report there.
#[pyfunction]
#[pyo3(signature = (lake, report=None, only=None, run=None, params=None, xmin=None, memory_limit=None, steps_per_pass=None))]
#[allow(clippy::too_many_arguments)]
pub fn analyze<'py>(
    py: Python<'py>,
    lake: &str,
    report: Option<PathBuf>,
    only: Option<Vec<String>>,
    run: Option<String>,
    params: Option<Vec<(String, String)>>,
    xmin: Option<Vec<String>>,
    memory_limit: Option<&Bound<'py, PyAny>>,
    steps_per_pass: Option<u64>,
) -> PyResult<Bound<'py, PyList>> {
    let value_err = |what: &str, e: String| PyValueError::new_err(format!("{what}: {e}"));
    let queries = named::select(&only.unwrap_or_default()).map_err(|e| value_err("only", e))?;
    let mut values = params.unwrap_or_default();
    if let Some(run) = &run {
        if values.iter().any(|(n, _)| n == "run") {
            return Err(PyValueError::new_err("give the run either as run=... or in params, not both"));
        }
        values.push(("run".to_string(), run.clone()));
    }
    check_params(&queries, &values).map_err(|e| value_err("params", e.to_string()))?;
    let rules = xmin_rules(&xmin.unwrap_or_default(), &values).map_err(|e| match e {
        XminRulesError::Twice => {
            PyValueError::new_err("give the xmin rule either as xmin=[...] or in params, not both")
        }
        XminRulesError::Bad { .. } => value_err("xmin", e.to_string()),
    })?;
    let limit = self::memory_limit(memory_limit)?.unwrap_or_else(default_memory_limit);
    let passes = match steps_per_pass {
        Some(0) => Passes::One,
        Some(n) => Passes::Fixed(n),
        None => Passes::Budget { target: window_target(limit) },
    };
    let session = open(py, Some(lake), SessionOptions { memory_limit: Some(limit), ..SessionOptions::default() })?;
    let title = match &run {
        Some(run) => format!("gradlake.analyze({lake:?}, run={run:?})"),
        None => format!("gradlake.analyze({lake:?})"),
    };
    let ran = block_on_interruptibly(py, || async {
        let ctx = session.context();
        let kinds: BTreeSet<String> = lake_kinds(ctx, run.as_deref()).await.map_err(|e| e.to_string())?;
        if kinds.is_empty() {
            return Err(match &run {
                Some(run) => format!("{lake}: no gradients of run {run:?}"),
                None => format!("{lake}: the lake holds no gradients"),
            });
        }
        let options = RunOptions {
            passes,
            pool: Some(session.memory_pool()),
            meter: Meter::Process,
            cluster: false,
            xmin_rules: &rules,
        };
        let mut ran = Vec::with_capacity(queries.len());
        for query in &queries {
            let outcome =
                run_named_with(ctx, *query, &values, &kinds, &options, &mut |_| {}).await.map_err(|e| e.to_string())?;
            let mut tables = Vec::new();
            if matches!(outcome, Outcome::Ran(_)) {
                for name in query.tables {
                    let rows = ctx.table(*name).await.map_err(|e| e.to_string())?;
                    tables.push((name.to_string(), rows.collect().await.map_err(|e| e.to_string())?));
                }
            }
            ran.push(Ran { query: *query, outcome, tables });
        }
        if let Some(dir) = &report {
            let sections: Vec<Section<'_>> =
                ran.iter().map(|r| Section { query: r.query, outcome: &r.outcome }).collect();
            write_report(ctx, dir, &title, &sections, &rules).await.map_err(|e| format!("report: {e}"))?;
        }
        Ok(ran)
    })?;
    let ran = ran.map_err(GradlakeError::new_err)?;
    let out = PyList::empty(py);
    for r in ran {
        let d = PyDict::new(py);
        d.set_item("name", r.query.name)?;
        d.set_item("title", r.query.title)?;
        match r.outcome {
            Outcome::Skipped { reason } => {
                d.set_item("status", "skipped")?;
                d.set_item("reason", reason)?;
                d.set_item("summary", py.None())?;
            }
            Outcome::Ran(batches) => {
                d.set_item("status", "ran")?;
                d.set_item("reason", py.None())?;
                d.set_item("summary", table(py, batches)?)?;
            }
        }
        let tables = PyDict::new(py);
        for (name, batches) in r.tables {
            tables.set_item(name, table(py, batches)?)?;
        }
        d.set_item("tables", tables)?;
        out.append(d)?;
    }
    Ok(out)
}
