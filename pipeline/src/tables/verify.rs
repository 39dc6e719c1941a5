//! Verified reads: every `grads` chunk whose values a query reads is checked
//! against the checksum stored with it (`values_crc32`, format v2) before any
//! operator uses it. A damaged chunk fails the query with an error naming the
//! chunk and the file that holds it, instead of answering with wrong numbers.
//! Files of format v1 have no checksums (the column reads as NULL): their
//! chunks pass unverified, and opening the lake says so.
//!
//! [`VerifiedGrads`] is the `grads` table: it asks its listing table for the
//! checksum and the chunk keys along with `values`, and puts a [`Verify`]
//! over the scan that checks each row and passes on the columns asked for.
//! The derived tables' scans ([`super::grads_scan::scan_grads`]) put it above
//! their key filter, so that the filter still reaches the Parquet reader.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Float32Type, Int32Type, Int64Type, Schema, SchemaRef, UInt32Type};
use datafusion::catalog::Session;
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::{ExecutionPlan, RecordBatchStream, SendableRecordBatchStream};
use futures::{Stream, StreamExt};
use gradlake_ingest::CHUNK_LEN;
use gradlake_ingest::chunk::values_crc32;
use gradlake_ingest::schema::VALUES_CRC32;

use super::grads_exec::{GradsExec, GradsOperator};

/// The columns a verified scan reads besides those asked for: the checksum, and
/// the keys that name a damaged chunk.
pub(crate) const VERIFY_COLUMNS: [&str; 7] = [VALUES_CRC32, "run", "step", "kind", "sample", "param_id", "chunk"];

/// `grads` with every read of `values` verified. See the module docs.
#[derive(Debug)]
pub(crate) struct VerifiedGrads {
    inner: Arc<dyn TableProvider>,
}

impl VerifiedGrads {
    pub fn new(inner: Arc<dyn TableProvider>) -> Self {
        Self { inner }
    }

    /// The unverified table, for scans that put [`Verify`] over a filter of their own.
    pub fn inner(&self) -> &Arc<dyn TableProvider> {
        &self.inner
    }
}

/// The columns to scan for `wanted` (indices into `schema`): those, then what
/// [`Verify`] needs if `values` is among them. `None`: nothing to verify.
pub(crate) fn verified_projection(schema: &Schema, wanted: &[usize]) -> Result<Option<Vec<usize>>> {
    let values = schema.index_of("values")?;
    if !wanted.contains(&values) {
        return Ok(None);
    }
    let mut scan = wanted.to_vec();
    for name in VERIFY_COLUMNS {
        let i = schema.index_of(name)?;
        if !scan.contains(&i) {
            scan.push(i);
        }
    }
    Ok(Some(scan))
}

#[async_trait]
impl TableProvider for VerifiedGrads {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = self.inner.schema();
        let wanted: Vec<usize> = projection.cloned().unwrap_or_else(|| (0..schema.fields().len()).collect());
        match verified_projection(&schema, &wanted)? {
            None => self.inner.scan(state, projection, filters, limit).await,
            Some(scan) => {
                let input = self.inner.scan(state, Some(&scan), filters, limit).await?;
                Verify::plan(input, (0..wanted.len()).collect())
            }
        }
    }
}

/// A file a scan reads: its run, its path, and its step range if the scan has statistics.
type ScannedFile = (String, String, Option<(i64, i64)>);

/// Checks each row's values against its checksum; passes on the input columns `output`.
#[derive(Debug)]
pub(crate) struct Verify {
    check: Arc<Check>,
}

impl Verify {
    /// `Verify` over `input`, passing on its columns `output`.
    pub fn plan(input: Arc<dyn ExecutionPlan>, output: Vec<usize>) -> Result<Arc<dyn ExecutionPlan>> {
        let operator = Arc::new(Self::new(&input, output)?);
        let schema = Arc::new(input.schema().project(operator.output())?);
        Ok(Arc::new(GradsExec::new(input, operator, schema)))
    }

    /// The operator for `input`'s schema (also how a worker rebuilds it).
    pub fn new(input: &Arc<dyn ExecutionPlan>, output: Vec<usize>) -> Result<Self> {
        let schema = input.schema();
        if let Some(&bad) = output.iter().find(|&&i| i >= schema.fields().len()) {
            return plan_err!("verified grads scan: output column {bad} out of range");
        }
        let [crc, run, step, kind, sample, param_id, chunk] = VERIFY_COLUMNS.map(|c| schema.index_of(c));
        let check = Check {
            output,
            values: schema.index_of("values")?,
            crc: crc?,
            keys: [run?, step?, kind?, sample?, param_id?, chunk?],
            files: scanned_files(input),
        };
        Ok(Self { check: Arc::new(check) })
    }

    /// The output columns, for the codec.
    pub fn output(&self) -> &[usize] {
        &self.check.output
    }
}

/// The files of the first file scan under `plan`.
fn scanned_files(plan: &Arc<dyn ExecutionPlan>) -> Vec<ScannedFile> {
    if let Some(config) =
        plan.downcast_ref::<DataSourceExec>().and_then(|d| d.data_source().downcast_ref::<FileScanConfig>())
    {
        let step = config.file_schema().index_of("step").ok();
        // The store's URL and the path in it: file:///lake/... or s3://bucket/lake/...
        let store = config.object_store_url.as_str().trim_end_matches('/');
        let mut files = BTreeSet::new();
        for file in config.file_groups.iter().flat_map(|g| g.files()) {
            let run = match file.partition_values.first() {
                Some(ScalarValue::Utf8(Some(r))) => r.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            let range = step.and_then(|i| {
                let column = file.statistics.as_ref()?.column_statistics.get(i)?;
                let as_i64 = |v: Option<&ScalarValue>| match v {
                    Some(ScalarValue::Int64(Some(x))) => Some(*x),
                    _ => None,
                };
                Some((as_i64(column.min_value.get_value())?, as_i64(column.max_value.get_value())?))
            });
            files.insert((run, format!("{store}/{}", file.object_meta.location), range));
        }
        return files.into_iter().collect();
    }
    plan.children().into_iter().map(scanned_files).find(|f| !f.is_empty()).unwrap_or_default()
}

impl GradsOperator for Verify {
    const NAME: &'static str = "VerifyGradsExec";
    /// Each row is checked on its own, but the operator above may need a
    /// tensor's chunks in one partition (`grad_vectors`): no repartitioning here.
    const ROW_LOCAL: bool = false;

    fn output_rows(input: usize) -> usize {
        input
    }

    fn execute(
        &self,
        input: SendableRecordBatchStream,
        _partition: usize,
        _context: Arc<TaskContext>,
        schema: SchemaRef,
    ) -> Result<SendableRecordBatchStream> {
        Ok(Box::pin(VerifyStream { input, check: self.check.clone(), schema }))
    }
}

/// What [`Verify`] reads where, and the files that may hold a damaged chunk.
#[derive(Debug)]
struct Check {
    /// Input columns passed on.
    output: Vec<usize>,
    /// Input columns read: `values`, `values_crc32`, and the keys that name a chunk.
    values: usize,
    crc: usize,
    keys: [usize; 6],
    /// The files the scan below reads, to name the one holding a damaged chunk.
    files: Vec<ScannedFile>,
}

impl Check {
    fn batch(&self, batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
        let crcs = batch.column(self.crc).as_primitive_opt::<UInt32Type>();
        let Some(crcs) = crcs else {
            return exec_err!("grads: {VALUES_CRC32} is {}, not UInt32", batch.column(self.crc).data_type());
        };
        let values = batch.column(self.values).as_fixed_size_list();
        let flat = values.values().as_primitive::<Float32Type>().values();
        for row in 0..batch.num_rows() {
            if crcs.is_null(row) {
                continue; // format v1
            }
            let start = values.value_offset(row) as usize;
            let Some(chunk) = flat.get(start..start + CHUNK_LEN) else {
                return exec_err!("grads: a values row shorter than {CHUNK_LEN}");
            };
            if values_crc32(chunk) != crcs.value(row) {
                return Err(self.damaged(&batch, row));
            }
        }
        Ok(RecordBatch::try_new(schema.clone(), self.output.iter().map(|&i| batch.column(i).clone()).collect())?)
    }

    fn damaged(&self, batch: &RecordBatch, row: usize) -> datafusion::error::DataFusionError {
        let text = |i: usize| {
            datafusion::arrow::compute::cast(&batch.column(i).slice(row, 1), &DataType::Utf8)
                .ok()
                .map(|a| a.as_string::<i32>().value(0).to_string())
                .unwrap_or_default()
        };
        let [run, step, kind, sample, param_id, chunk] = self.keys;
        let (run, kind) = (text(run), text(kind));
        let step = batch.column(step).as_primitive_opt::<Int64Type>().map_or(-1, |a| a.value(row));
        let sample = batch.column(sample).as_primitive_opt::<Int64Type>().map_or(-1, |a| a.value(row));
        let param_id = batch.column(param_id).as_primitive_opt::<Int32Type>().map_or(-1, |a| a.value(row));
        let chunk = batch.column(chunk).as_primitive_opt::<Int32Type>().map_or(-1, |a| a.value(row));
        let holders: Vec<&str> = self
            .files
            .iter()
            .filter(|(r, _, range)| r == &run && range.is_none_or(|(lo, hi)| (lo..=hi).contains(&step)))
            .map(|(_, path, _)| path.as_str())
            .collect();
        let file = match holders.as_slice() {
            [one] => format!("file {one}"),
            [] => "a file of the scan".to_string(),
            many => format!("one of the files {}", many.join(", ")),
        };
        datafusion::error::DataFusionError::Execution(format!(
            "grads: damaged data in {file}: the values of run '{run}', step {step}, kind '{kind}', sample {sample}, \
             param_id {param_id}, chunk {chunk} do not match their checksum ({VALUES_CRC32}); \
             `gradlake check --deep` names every damaged row"
        ))
    }
}

struct VerifyStream {
    input: SendableRecordBatchStream,
    check: Arc<Check>,
    schema: SchemaRef,
}

impl Stream for VerifyStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.input.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(batch))) => Poll::Ready(Some(self.check.batch(batch, &self.schema))),
            other => other,
        }
    }
}

impl RecordBatchStream for VerifyStream {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

/// `grads`' schema as read: `values_crc32` nullable, so that format v1 files,
/// which lack it, read as NULL (unverified).
pub(crate) fn reading_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| if f.name() == VALUES_CRC32 { f.as_ref().clone().with_nullable(true) } else { f.as_ref().clone() })
        .collect();
    Arc::new(Schema::new(fields))
}
