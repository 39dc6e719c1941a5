//! Running the named analyses on a lake: which ones apply, their parameters,
//! and their results as record batches.

use std::collections::BTreeSet;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type};
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;

use crate::named::NamedQuery;
use crate::params::{self, ParamError};

/// Errors of an analysis.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// A parameter was wrong.
    #[error("{analysis}: {source}")]
    Param {
        /// The analysis.
        analysis: &'static str,
        /// What was wrong.
        source: ParamError,
    },
    /// A parameter no selected analysis declares.
    #[error("no analysis has a parameter {name:?} (they have: {known})")]
    UnknownParam {
        /// The parameter given.
        name: String,
        /// Every parameter of the selected analyses.
        known: String,
    },
    /// The query engine failed.
    #[error("{analysis}: {source}")]
    DataFusion {
        /// The analysis.
        analysis: &'static str,
        /// What went wrong.
        source: DataFusionError,
    },
}

/// What running one analysis gave.
#[derive(Debug)]
pub enum Outcome {
    /// It ran; the batches of its closing summary SELECT.
    Ran(Vec<RecordBatch>),
    /// The lake lacks every kind it reads.
    Skipped {
        /// A sentence saying what is missing.
        reason: String,
    },
}

/// The gradient kinds present in the lake (for `run`, when given).
pub async fn lake_kinds(ctx: &SessionContext, run: Option<&str>) -> Result<BTreeSet<String>, DataFusionError> {
    let filter = run_filter(run);
    let batches =
        ctx.sql(&format!("SELECT DISTINCT CAST(kind AS VARCHAR) FROM grads{filter}")).await?.collect().await?;
    let mut kinds = BTreeSet::new();
    for b in &batches {
        let col = arrow::compute::cast(b.column(0), &DataType::Utf8)?;
        kinds.extend(col.as_string::<i32>().iter().flatten().map(str::to_string));
    }
    Ok(kinds)
}

/// ` WHERE run = '...'` (quoted), or nothing without a run.
fn run_filter(run: Option<&str>) -> String {
    run.map_or_else(String::new, |r| format!(" WHERE run = '{}'", r.replace('\'', "''")))
}

/// Checks, before anything runs, that every `NAME=VALUE` in `values` is a parameter of at
/// least one of `queries` and that each query accepts the values of its own parameters.
pub fn check_params(queries: &[NamedQuery], values: &[(String, String)]) -> Result<(), AnalyzeError> {
    let mut known = BTreeSet::new();
    for q in queries {
        let decls = params::declared(q.sql).map_err(|source| AnalyzeError::Param { analysis: q.name, source })?;
        known.extend(decls.into_iter().map(|d| d.name));
        params::bind(q.sql, &own_params(*q, values)?)
            .map_err(|source| AnalyzeError::Param { analysis: q.name, source })?;
    }
    match values.iter().find(|(name, _)| !known.contains(name)) {
        Some((name, _)) => Err(AnalyzeError::UnknownParam {
            name: name.clone(),
            known: known.into_iter().collect::<Vec<_>>().join(", "),
        }),
        None => Ok(()),
    }
}

/// Those of `values` that `query` declares (the others are for other analyses).
fn own_params(query: NamedQuery, values: &[(String, String)]) -> Result<Vec<(String, String)>, AnalyzeError> {
    let declared =
        params::declared(query.sql).map_err(|source| AnalyzeError::Param { analysis: query.name, source })?;
    Ok(values.iter().filter(|(name, _)| declared.iter().any(|d| &d.name == name)).cloned().collect())
}

/// Runs `query` with those of `values` it declares (others are for other analyses).
/// Its tables are left in `ctx` for plots; the summary SELECT's rows are returned.
/// An analysis whose kinds are all missing from `kinds` is skipped, not run.
/// Everything is computed in one pass; see [`run_named_in_passes`] for bounded memory.
pub async fn run_named(
    ctx: &SessionContext,
    query: NamedQuery,
    values: &[(String, String)],
    kinds: &BTreeSet<String>,
) -> Result<Outcome, AnalyzeError> {
    run_named_in_passes(ctx, query, values, kinds, None, &mut |_, _| {}).await
}

/// [`run_named`], a window of `steps_per_pass` steps at a time when the
/// analysis declares `first_step`/`last_step` (its groups never span steps)
/// and they are not set in `values`. Exact per-group statistics hold their
/// groups' values, so one pass over a long run holds every step's values at
/// once; in windows, memory is bounded by the window, not by the run's length.
/// The first window creates each table, the others insert into it, and the
/// summary runs once at the end. `progress(done, total)` counts windows.
pub async fn run_named_in_passes(
    ctx: &SessionContext,
    query: NamedQuery,
    values: &[(String, String)],
    kinds: &BTreeSet<String>,
    steps_per_pass: Option<u64>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Outcome, AnalyzeError> {
    if !query.kinds.iter().any(|k| kinds.contains(*k)) {
        let reason = format!(
            "the lake has no {} gradients (it has: {})",
            query.kinds.join(" or "),
            if kinds.is_empty() { "none".to_string() } else { kinds.iter().cloned().collect::<Vec<_>>().join(", ") }
        );
        return Ok(Outcome::Skipped { reason });
    }
    let err = |source| AnalyzeError::DataFusion { analysis: query.name, source };
    let param_err = |source| AnalyzeError::Param { analysis: query.name, source };
    let declared = params::declared(query.sql).map_err(param_err)?;
    let declares = |name: &str| declared.iter().any(|d| d.name == name);
    let mine = own_params(query, values)?;
    let user_window = mine.iter().any(|(n, _)| n == "first_step" || n == "last_step");
    let windows = match steps_per_pass {
        Some(w) if declares("first_step") && declares("last_step") && !user_window => {
            let run = mine.iter().find(|(n, _)| n == "run").map(|(_, v)| v.as_str()).filter(|r| !r.is_empty());
            match step_range(ctx, run).await.map_err(err)? {
                Some((lo, hi)) => windows(lo, hi, w.max(1)),
                None => Vec::new(),
            }
        }
        _ => Vec::new(),
    };
    if windows.len() <= 1 {
        let sql = params::bind(query.sql, &mine).map_err(param_err)?;
        let statements = DFParser::parse_sql(&sql).map_err(err)?;
        let mut last = Vec::new();
        for statement in statements {
            last = execute(ctx, statement).await.map_err(err)?;
        }
        progress(1, 1);
        return Ok(Outcome::Ran(last));
    }
    let total = windows.len() as u64;
    let mut last = Vec::new();
    for (i, (first, last_step)) in windows.into_iter().enumerate() {
        let mut bound = mine.clone();
        bound.push(("first_step".into(), first.to_string()));
        bound.push(("last_step".into(), last_step.to_string()));
        let sql = params::bind(query.sql, &bound).map_err(param_err)?;
        let final_window = i as u64 + 1 == total;
        for statement in DFParser::parse_sql(&sql).map_err(err)? {
            match created_table(&statement) {
                // Later windows append to the table the first one created.
                Some((name, select)) if i > 0 => {
                    let insert = DFParser::parse_sql(&format!("INSERT INTO {name} {select}")).map_err(err)?;
                    for s in insert {
                        execute(ctx, s).await.map_err(err)?;
                    }
                }
                Some(_) => {
                    execute(ctx, statement).await.map_err(err)?;
                }
                // The summary reads the complete tables.
                None if final_window => last = execute(ctx, statement).await.map_err(err)?,
                None => {}
            }
        }
        progress(i as u64 + 1, total);
    }
    Ok(Outcome::Ran(last))
}

async fn execute(ctx: &SessionContext, statement: DfStatement) -> Result<Vec<RecordBatch>, DataFusionError> {
    let plan = ctx.state().statement_to_plan(statement).await?;
    ctx.execute_logical_plan(plan).await?.collect().await
}

/// `CREATE [OR REPLACE] TABLE name AS query` → (name, query).
fn created_table(statement: &DfStatement) -> Option<(String, String)> {
    match statement {
        DfStatement::Statement(s) => match s.as_ref() {
            SqlStatement::CreateTable(c) => c.query.as_ref().map(|q| (c.name.to_string(), q.to_string())),
            _ => None,
        },
        _ => None,
    }
}

/// The lowest and highest step of the lake's gradients (of `run`), from the key column.
async fn step_range(ctx: &SessionContext, run: Option<&str>) -> Result<Option<(i64, i64)>, DataFusionError> {
    let filter = run_filter(run);
    let batches = ctx.sql(&format!("SELECT min(step), max(step) FROM grads{filter}")).await?.collect().await?;
    let Some(b) = batches.first().filter(|b| b.num_rows() == 1) else { return Ok(None) };
    let (lo, hi) = (b.column(0).as_primitive::<Int64Type>(), b.column(1).as_primitive::<Int64Type>());
    Ok((lo.is_valid(0) && hi.is_valid(0)).then(|| (lo.value(0), hi.value(0))))
}

/// Consecutive step windows of `width` covering lo..=hi.
fn windows(lo: i64, hi: i64, width: u64) -> Vec<(i64, i64)> {
    let width = i64::try_from(width).unwrap_or(i64::MAX);
    let mut out = Vec::new();
    let mut a = lo;
    while a <= hi {
        let b = a.saturating_add(width - 1).min(hi);
        out.push((a, b));
        if b == hi {
            break;
        }
        a = b + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::windows;

    #[test]
    fn windows_cover_the_range_once() {
        assert_eq!(windows(0, 9, 4), vec![(0, 3), (4, 7), (8, 9)]);
        assert_eq!(windows(5, 5, 100), vec![(5, 5)]);
        assert_eq!(windows(1, i64::MAX, u64::MAX), vec![(1, i64::MAX)]);
        assert_eq!(windows(i64::MAX - 1, i64::MAX, 1), vec![(i64::MAX - 1, i64::MAX - 1), (i64::MAX, i64::MAX)]);
    }
}
