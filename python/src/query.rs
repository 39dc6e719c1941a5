//! `_core.Lake`: a query session over a lake (or over no lake), with every
//! gradlake SQL function registered. Results leave as Arrow streams
//! (`pyarrow.RecordBatchReader`) that pull batches from the query as Python
//! reads them, so a large result need not fit in memory.

use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::{RecordBatch, RecordBatchReader};
use arrow_pyarrow::IntoPyArrow;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::sql::parser::DFParser;
use futures::StreamExt;
use gradlake_pipeline::memory::parse_size;
use gradlake_pipeline::store::LakeLocation;
use gradlake_pipeline::{LakeSession, SessionOptions};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::{GradlakeError, SIGNAL_CHECK, block_on_interruptibly, interrupted, runtime};

/// A memory limit given as bytes (int) or as text (`"512M"`, `"2G"`).
pub fn memory_limit(value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<usize>> {
    let Some(value) = value.filter(|v| !v.is_none()) else { return Ok(None) };
    if let Ok(bytes) = value.extract::<usize>() {
        return Ok(Some(bytes));
    }
    let text: String =
        value.extract().map_err(|_| PyTypeError::new_err("memory_limit: bytes (int) or text such as '512M'"))?;
    parse_size(&text).map(Some).map_err(|e| PyValueError::new_err(format!("memory_limit: {e}")))
}

/// Opens `lake` (a directory or URL) or, without one, a session with no tables.
pub fn open(py: Python<'_>, lake: Option<&str>, options: SessionOptions) -> PyResult<LakeSession> {
    let location =
        lake.map(LakeLocation::parse).transpose().map_err(|e| PyValueError::new_err(format!("lake: {e}")))?;
    block_on_interruptibly(py, || async {
        match &location {
            Some(location) => LakeSession::open_location(location, &options).await,
            None => LakeSession::new(&options),
        }
    })?
    .map_err(|e| GradlakeError::new_err(e.to_string()))
}

/// A query session (see the Python `gradlake.Lake`).
#[pyclass(module = "gradlake._core", frozen)]
pub struct Lake {
    session: LakeSession,
    location: Option<String>,
}

#[pymethods]
impl Lake {
    /// Opens `lake`: checks every file's footer and registers the tables.
    #[new]
    #[pyo3(signature = (lake=None, memory_limit=None, skip_bad_files=false))]
    fn new(
        py: Python<'_>,
        lake: Option<String>,
        memory_limit: Option<&Bound<'_, PyAny>>,
        skip_bad_files: bool,
    ) -> PyResult<Self> {
        let options = SessionOptions {
            memory_limit: self::memory_limit(memory_limit)?,
            skip_bad_files,
            ..SessionOptions::default()
        };
        let session = open(py, lake.as_deref(), options)?;
        Ok(Self { session, location: lake })
    }

    /// Runs the `;`-separated statements of `query` in order and returns the
    /// last one's rows as a `pyarrow.RecordBatchReader`.
    fn reader<'py>(&self, py: Python<'py>, query: &str) -> PyResult<Bound<'py, PyAny>> {
        let ctx = self.session.context().clone();
        let query = query.to_string();
        let rt = runtime()?;
        let stream = block_on_interruptibly(py, || last_statement_stream(&ctx, &query))?
            .map_err(|e| GradlakeError::new_err(e.to_string()))?;
        let reader: Box<dyn RecordBatchReader + Send> = Box::new(StreamReader { schema: stream.schema(), stream, rt });
        reader.into_pyarrow(py)
    }

    /// What opening the lake found worth saying (unverified files, skipped files).
    #[getter]
    fn warnings(&self) -> Vec<String> {
        self.session.warnings().to_vec()
    }

    /// The lake as given, or `None`.
    #[getter]
    fn location(&self) -> Option<String> {
        self.location.clone()
    }
}

/// Executes every statement but the last (DDL, or results nobody reads) and
/// returns the last one's stream.
async fn last_statement_stream(
    ctx: &datafusion::prelude::SessionContext,
    sql: &str,
) -> Result<SendableRecordBatchStream, DataFusionError> {
    let mut statements = DFParser::parse_sql(sql)?;
    let Some(last) = statements.pop_back() else {
        return Err(DataFusionError::Plan("no SQL statement given".into()));
    };
    for statement in statements {
        let plan = ctx.state().statement_to_plan(statement).await?;
        ctx.execute_logical_plan(plan).await?.collect().await?;
    }
    let plan = ctx.state().statement_to_plan(last).await?;
    ctx.execute_logical_plan(plan).await?.execute_stream().await
}

/// A DataFusion stream as an Arrow reader: each `next` runs the query until its
/// next batch, looking for Ctrl-C meanwhile. pyarrow calls it with the GIL released.
struct StreamReader {
    schema: SchemaRef,
    stream: SendableRecordBatchStream,
    rt: &'static tokio::runtime::Runtime,
}

impl Iterator for StreamReader {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        let stream = &mut self.stream;
        self.rt.block_on(async {
            let mut next = std::pin::pin!(stream.next());
            let mut tick = tokio::time::interval(SIGNAL_CHECK);
            loop {
                tokio::select! {
                    item = &mut next => return item.map(|r| r.map_err(|e| ArrowError::ExternalError(Box::new(e)))),
                    _ = tick.tick() => if interrupted() {
                        // The query stops when pyarrow drops the stream; Python re-raises the exception.
                        return Some(Err(ArrowError::ExternalError("interrupted by a signal".into())));
                    },
                }
            }
        })
    }
}

impl RecordBatchReader for StreamReader {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}
