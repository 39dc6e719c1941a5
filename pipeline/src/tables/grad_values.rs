//! The `grad_values` table: one row per gradient element, produced by
//! exploding `grads` chunk rows in a dedicated operator.
//!
//! A SQL view (`unnest(values)` zipped with `range(numel)`, then a join for the
//! param name) materialises a 4096-entry index list per chunk and probes a hash
//! table per element. [`Explode`] instead builds each output column
//! directly: `value` is a zero-copy slice of the chunk values when no chunk in
//! the slice is padded, repeated keys are written once per element, `run`,
//! `kind` and `param` are dictionary-encoded (their keys are repeated, never the
//! strings), and the param name comes from a lookup built when the lake is opened.
//!
//! Filters on the keys and on `param` reach the `grads` scan ([`super::grads_scan`]).

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, AsArray, DictionaryArray, Float32Array, Int32Array, Int64Array, RecordBatch, RecordBatchOptions,
    StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Float32Type, Int32Type, Int64Type, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::{Result, internal_err};
use datafusion::datasource::TableProvider;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream};
use futures::StreamExt;
use gradlake_ingest::CHUNK_LEN;

use super::grads_exec::{GradsExec, GradsOperator};
use super::grads_scan::{ParamIndex, scan_grads};

/// Output rows per batch, at most: big enough to amortise per-batch work, small
/// enough (a few MB per column) to keep memory bounded.
const MAX_OUTPUT_ROWS: usize = 1 << 18;

/// Columns of `grads` the operator reads, in this order.
const INPUT: [&str; 8] = ["run", "step", "kind", "sample", "param_id", "chunk", "numel", "values"];

/// The columns of `grad_values` after the keys.
pub(crate) fn value_fields() -> Vec<Field> {
    vec![Field::new("idx", DataType::Int64, false), Field::new("value", DataType::Float32, true)]
}

/// The plan of a `grad_values` scan: the `grads` scan under an [`Explode`].
/// `schema` is the full `grad_values` schema, `output` the indices wanted.
pub(crate) async fn plan(
    grads: &Arc<dyn TableProvider>,
    params: &Arc<ParamIndex>,
    schema: &Schema,
    state: &dyn Session,
    output: Vec<usize>,
    filters: &[Expr],
) -> Result<Arc<dyn ExecutionPlan>> {
    let input = scan_grads(grads, params, state, &INPUT, filters, Vec::new(), None).await?;
    let schema = Arc::new(schema.project(&output)?);
    let operator = Arc::new(Explode { params: params.clone(), output });
    Ok(Arc::new(GradsExec::new(input, operator, schema)))
}

/// Explodes `grads` chunk rows (columns [`INPUT`]) into one row per valid element.
#[derive(Debug)]
pub(crate) struct Explode {
    params: Arc<ParamIndex>,
    /// Indices into the full `grad_values` schema.
    output: Vec<usize>,
}

impl Explode {
    /// The operator for `output` (indices into the `grad_values` schema).
    pub(crate) fn new(params: Arc<ParamIndex>, output: Vec<usize>) -> Self {
        Self { params, output }
    }

    /// The param index and the output columns, for the codec.
    pub(crate) fn parts(&self) -> (&Arc<ParamIndex>, &[usize]) {
        (&self.params, &self.output)
    }
}

impl GradsOperator for Explode {
    const NAME: &'static str = "ExplodeGradValuesExec";
    const ROW_LOCAL: bool = true;

    fn output_rows(input: usize) -> usize {
        input.saturating_mul(CHUNK_LEN)
    }

    fn execute(
        &self,
        input: SendableRecordBatchStream,
        _partition: usize,
        _context: Arc<TaskContext>,
        schema: SchemaRef,
    ) -> Result<SendableRecordBatchStream> {
        let (params, output, out_schema) = (self.params.clone(), self.output.clone(), schema.clone());
        let stream = input.flat_map(move |batch| {
            let batches: Vec<Result<RecordBatch>> = match batch {
                Ok(b) => explode(&b, &params, &output, &out_schema),
                Err(e) => vec![Err(e)],
            };
            futures::stream::iter(batches)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}

/// Explodes one input batch into output batches of at most [`MAX_OUTPUT_ROWS`] rows.
fn explode(batch: &RecordBatch, params: &ParamIndex, output: &[usize], schema: &SchemaRef) -> Vec<Result<RecordBatch>> {
    let rows_per_slice = (MAX_OUTPUT_ROWS / CHUNK_LEN).max(1);
    let mut out = Vec::new();
    let mut start = 0;
    while start < batch.num_rows() {
        let len = rows_per_slice.min(batch.num_rows() - start);
        out.push(explode_slice(&batch.slice(start, len), params, output, schema));
        start += len;
    }
    out
}

/// Explodes the chunk rows of `b` (columns [`INPUT`]) into the `grad_values` columns `output`
/// (indices into its schema) of `schema`.
pub(crate) fn explode_slice(
    b: &RecordBatch,
    params: &ParamIndex,
    output: &[usize],
    schema: &SchemaRef,
) -> Result<RecordBatch> {
    let run = datafusion::arrow::compute::cast(b.column(0), &DataType::Utf8)?;
    let run = run.as_string::<i32>();
    let step = b.column(1).as_primitive::<Int64Type>();
    let kind = b.column(2);
    let sample = b.column(3).as_primitive::<Int64Type>();
    let param_id = b.column(4).as_primitive::<Int32Type>();
    let chunk = b.column(5).as_primitive::<Int32Type>();
    let numel = b.column(6).as_primitive::<Int32Type>();
    let values = b.column(7).as_fixed_size_list();
    let n = b.num_rows();
    let counts: Vec<usize> = (0..n).map(|i| numel.value(i).clamp(0, CHUNK_LEN as i32) as usize).collect();
    let total: usize = counts.iter().sum();
    let repeat_i64 = |a: &datafusion::arrow::array::PrimitiveArray<Int64Type>| {
        let mut v = Vec::with_capacity(total);
        for (i, &c) in counts.iter().enumerate() {
            v.extend(std::iter::repeat_n(a.value(i), c));
        }
        Arc::new(Int64Array::from(v)) as ArrayRef
    };
    let repeat_keys = |keys: &[i32]| {
        let mut v = Vec::with_capacity(total);
        for (i, &c) in counts.iter().enumerate() {
            v.extend(std::iter::repeat_n(keys[i], c));
        }
        Int32Array::from(v)
    };
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(output.len());
    for &col in output {
        columns.push(match col {
            0 => {
                // A batch comes from one file, so usually one run: a tiny dictionary.
                let mut names: Vec<&str> = Vec::new();
                let keys: Vec<i32> = (0..n)
                    .map(|i| {
                        let r = run.value(i);
                        names.iter().position(|x| *x == r).unwrap_or_else(|| {
                            names.push(r);
                            names.len() - 1
                        }) as i32
                    })
                    .collect();
                Arc::new(DictionaryArray::<Int32Type>::try_new(repeat_keys(&keys), Arc::new(StringArray::from(names)))?)
            }
            1 => repeat_i64(step),
            2 => {
                let kind = kind.as_dictionary::<Int32Type>();
                let keys: Vec<i32> = kind.keys().values().to_vec();
                Arc::new(DictionaryArray::<Int32Type>::try_new(repeat_keys(&keys), kind.values().clone())?)
            }
            3 => repeat_i64(sample),
            4 => Arc::new(repeat_keys(param_id.values())),
            5 => {
                let keys: Vec<Option<i32>> =
                    (0..n).map(|i| params.get(run.value(i), param_id.value(i)).map(|e| e.name)).collect();
                let mut v = Vec::with_capacity(total);
                for (i, &c) in counts.iter().enumerate() {
                    v.extend(std::iter::repeat_n(keys[i], c));
                }
                let names = StringArray::from_iter_values(params.names.iter());
                Arc::new(DictionaryArray::<Int32Type>::try_new(Int32Array::from(v), Arc::new(names))?)
            }
            6 => {
                let mut v = Vec::with_capacity(total);
                for (i, &c) in counts.iter().enumerate() {
                    let base = i64::from(chunk.value(i)) * CHUNK_LEN as i64;
                    v.extend((0..c as i64).map(|j| base + j));
                }
                Arc::new(Int64Array::from(v))
            }
            7 => {
                // Slicing a FixedSizeList slices its child too: chunk i starts at i·CHUNK_LEN.
                let flat = values.values().as_primitive::<Float32Type>();
                if counts.iter().all(|&c| c == CHUNK_LEN) {
                    Arc::new(flat.slice(0, total))
                } else {
                    let raw = flat.values();
                    let mut v = Vec::with_capacity(total);
                    for (i, &c) in counts.iter().enumerate() {
                        let s = i * CHUNK_LEN;
                        v.extend_from_slice(&raw[s..s + c]);
                    }
                    Arc::new(Float32Array::from(v))
                }
            }
            other => return internal_err!("grad_values has no column {other}"),
        });
    }
    // (no columns: `count(*)` needs only the number of rows)
    let options = RecordBatchOptions::new().with_row_count(Some(total));
    Ok(RecordBatch::try_new_with_options(schema.clone(), columns, &options)?)
}
