//! Running a script of SQL statements and rendering each result.

use std::io::Write;

use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::DFParser;
use futures::StreamExt;

use crate::output::{OutputError, OutputFormat, ResultWriter};

/// Errors of [`run_statements`].
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Parsing, planning or executing a statement failed.
    #[error("{0}")]
    DataFusion(#[from] DataFusionError),
    /// Rendering a result failed.
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// What a script produced.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunSummary {
    /// Statements executed.
    pub statements: usize,
    /// Rows rendered, over all results.
    pub rows: u64,
    /// Whether a table result was cut at the row limit.
    pub truncated: bool,
}

/// Executes the `;`-separated statements of `sql` in order. Each statement
/// with output columns is rendered to `out` in `format`; DDL (CREATE VIEW, ...)
/// renders nothing. Results stream: only the table format buffers rows, at
/// most `table_row_limit`, and then stops the query.
pub async fn run_statements<W: Write + Send>(
    ctx: &SessionContext,
    sql: &str,
    format: OutputFormat,
    out: &mut W,
    table_row_limit: usize,
) -> Result<RunSummary, RunError> {
    let statements = DFParser::parse_sql(sql)?;
    let mut summary = RunSummary::default();
    for statement in statements {
        let plan = ctx.state().statement_to_plan(statement).await?;
        let df = ctx.execute_logical_plan(plan).await?;
        summary.statements += 1;
        // DDL (CREATE VIEW, SET, ...) has no output columns; everything else is rendered,
        // SHOW and EXPLAIN included.
        if df.schema().fields().is_empty() {
            df.collect().await?;
            continue;
        }
        let task = std::sync::Arc::new(df.task_ctx());
        let plan = df.create_physical_plan().await?;
        // Planning read every file's footer and page index; what it freed
        // would otherwise stay in the main thread's heap, resident for the
        // whole query (~10–20 MB on a lake of a few hundred row groups).
        gradlake_pipeline::memory::process::release_free_memory();
        let mut stream = datafusion::physical_plan::execute_stream(plan, task)?;
        let mut writer = ResultWriter::new(format, stream.schema(), &mut *out, table_row_limit)?;
        while let Some(batch) = stream.next().await {
            if !writer.write(&batch?)? {
                break;
            }
        }
        let (rows, truncated) = writer.finish()?;
        summary.rows += rows;
        summary.truncated |= truncated;
    }
    Ok(summary)
}
