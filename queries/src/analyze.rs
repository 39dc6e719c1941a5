//! Running the named analyses on a lake: which ones apply, their parameters,
//! and their results as record batches.

use std::collections::BTreeSet;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::DataType;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::DFParser;

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
    let filter = match run {
        Some(r) => format!(" WHERE run = '{}'", r.replace('\'', "''")),
        None => String::new(),
    };
    let batches =
        ctx.sql(&format!("SELECT DISTINCT CAST(kind AS VARCHAR) FROM grads{filter}")).await?.collect().await?;
    let mut kinds = BTreeSet::new();
    for b in &batches {
        let col = arrow::compute::cast(b.column(0), &DataType::Utf8)?;
        kinds.extend(col.as_string::<i32>().iter().flatten().map(str::to_string));
    }
    Ok(kinds)
}

/// Checks that every `NAME=VALUE` in `values` is a parameter of at least one of `queries`.
pub fn check_params(queries: &[NamedQuery], values: &[(String, String)]) -> Result<(), AnalyzeError> {
    let mut known = BTreeSet::new();
    for q in queries {
        let decls = params::declared(q.sql).map_err(|source| AnalyzeError::Param { analysis: q.name, source })?;
        known.extend(decls.into_iter().map(|d| d.name));
    }
    match values.iter().find(|(name, _)| !known.contains(name)) {
        Some((name, _)) => Err(AnalyzeError::UnknownParam {
            name: name.clone(),
            known: known.into_iter().collect::<Vec<_>>().join(", "),
        }),
        None => Ok(()),
    }
}

/// Runs `query` with those of `values` it declares (others are for other analyses).
/// Its tables are left in `ctx` for plots; the summary SELECT's rows are returned.
/// An analysis whose kinds are all missing from `kinds` is skipped, not run.
pub async fn run_named(
    ctx: &SessionContext,
    query: NamedQuery,
    values: &[(String, String)],
    kinds: &BTreeSet<String>,
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
    let declared =
        params::declared(query.sql).map_err(|source| AnalyzeError::Param { analysis: query.name, source })?;
    let mine: Vec<(String, String)> =
        values.iter().filter(|(name, _)| declared.iter().any(|d| &d.name == name)).cloned().collect();
    let sql = params::bind(query.sql, &mine).map_err(|source| AnalyzeError::Param { analysis: query.name, source })?;
    let statements = DFParser::parse_sql(&sql).map_err(err)?;
    let mut last = Vec::new();
    for statement in statements {
        let plan = ctx.state().statement_to_plan(statement).await.map_err(err)?;
        last = ctx.execute_logical_plan(plan).await.map_err(err)?.collect().await.map_err(err)?;
    }
    Ok(Outcome::Ran(last))
}
