//! The `grad_vectors` table: one row per (run, step, kind, sample, param) with
//! the whole flattened tensor as `values` (List<Float32>, padding cut off).
//!
//! A SQL view (`array_agg(values ORDER BY chunk)`, `flatten`, `array_slice`)
//! sorts, copies each chunk three times and holds every group until the scan
//! ends. [`Assemble`] instead copies each chunk once into its tensor's buffer
//! and emits the tensor as soon as its last chunk has arrived. The writer
//! keeps a tensor's chunks in one row group, and DataFusion never splits a row
//! group between partitions, so tensors complete within a partition and only
//! those of the row group being read are in flight: memory is bounded by the
//! row-group size (and accounted in the session's memory pool), not by the lake.
//!
//! When `values` is not selected, only chunk 0 of each tensor is read and the
//! values are never decoded.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use datafusion::arrow::array::{
    ArrayRef, AsArray, DictionaryArray, Float32Array, Int32Array, Int64Array, ListArray, RecordBatch, StringArray,
};
use datafusion::arrow::buffer::{OffsetBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::{DataType, Field, Float32Type, Int32Type, Int64Type, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::{DataFusionError, Result, exec_err, internal_err};
use datafusion::datasource::TableProvider;
use datafusion::execution::TaskContext;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::logical_expr::{Expr, col, lit};
use datafusion::physical_plan::{ExecutionPlan, RecordBatchStream, SendableRecordBatchStream};
use futures::{Stream, StreamExt};
use gradlake_ingest::CHUNK_LEN;

use super::grads_exec::{GradsExec, GradsOperator};
use super::grads_scan::{ParamIndex, scan_grads};

/// Columns of `grads` read to assemble tensors, in this order.
const INPUT: [&str; 8] = ["run", "step", "kind", "sample", "param_id", "chunk", "numel", "values"];
/// Columns read when `values` is not wanted (`chunk` for the filter chunk = 0).
const KEYS: [&str; 6] = ["run", "step", "kind", "sample", "param_id", "chunk"];
/// A batch is emitted once completed tensors hold this many values...
const OUTPUT_VALUES: usize = 1 << 20;
/// ...or this many tensors.
const OUTPUT_ROWS: usize = 1024;
/// Index of `values` in the schema.
const VALUES: usize = 6;

/// The columns of `grad_vectors` after the keys.
pub(crate) fn value_fields() -> Vec<Field> {
    vec![Field::new("values", DataType::List(Arc::new(Field::new_list_field(DataType::Float32, true))), false)]
}

/// The plan of a `grad_vectors` scan: the `grads` scan under an [`Assemble`].
/// `schema` is the full `grad_vectors` schema, `output` the indices wanted.
pub(crate) async fn plan(
    grads: &Arc<dyn TableProvider>,
    params: &Arc<ParamIndex>,
    schema: &Schema,
    state: &dyn Session,
    output: Vec<usize>,
    filters: &[Expr],
) -> Result<Arc<dyn ExecutionPlan>> {
    let with_values = output.contains(&VALUES);
    let input = if with_values {
        scan_grads(grads, params, state, &INPUT, filters, Vec::new()).await?
    } else {
        scan_grads(grads, params, state, &KEYS, filters, vec![col("chunk").eq(lit(0i32))]).await?
    };
    let schema = Arc::new(schema.project(&output)?);
    let operator = Arc::new(Assemble { params: params.clone(), output, with_values });
    Ok(Arc::new(GradsExec::new(input, operator, schema)))
}

/// Reassembles tensors from chunk rows.
#[derive(Debug)]
pub(crate) struct Assemble {
    params: Arc<ParamIndex>,
    /// Indices into the full `grad_vectors` schema.
    output: Vec<usize>,
    with_values: bool,
}

impl Assemble {
    /// The operator for `output` (indices into the `grad_vectors` schema).
    pub(crate) fn new(params: Arc<ParamIndex>, output: Vec<usize>, with_values: bool) -> Self {
        Self { params, output, with_values }
    }

    /// The param index, the output columns and whether values are assembled, for the codec.
    pub(crate) fn parts(&self) -> (&Arc<ParamIndex>, &[usize], bool) {
        (&self.params, &self.output, self.with_values)
    }
}

impl GradsOperator for Assemble {
    const NAME: &'static str = "AssembleGradVectorsExec";
    /// A tensor's chunks must stay in one partition: they come from one row
    /// group, which a file scan gives to one partition, but a round-robin
    /// repartition of the scan's batches would scatter them.
    const ROW_LOCAL: bool = false;

    /// One row per tensor: as many as its chunks for small tensors, fewer for large.
    fn output_rows(input: usize) -> usize {
        input
    }

    fn execute(
        &self,
        input: SendableRecordBatchStream,
        partition: usize,
        context: Arc<TaskContext>,
        schema: SchemaRef,
    ) -> Result<SendableRecordBatchStream> {
        let reservation =
            MemoryConsumer::new(format!("AssembleGradVectorsExec[{partition}]")).register(context.memory_pool());
        Ok(Box::pin(AssembleStream {
            input,
            finished: false,
            assembler: Assembler {
                params: self.params.clone(),
                output: self.output.clone(),
                with_values: self.with_values,
                schema,
                runs: Interner::default(),
                kinds: Interner::default(),
                partial: HashMap::new(),
                done: Vec::new(),
                done_values: 0,
                reservation,
            },
        }))
    }
}

/// Strings seen in a partition, numbered in order of appearance.
#[derive(Debug, Default)]
struct Interner {
    names: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Interner {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        id
    }
}

/// (run, step, kind, sample, param_id), strings interned.
type Key = (u32, i64, u32, i64, i32);

/// A tensor whose chunks are still arriving.
struct Partial {
    values: Vec<f32>,
    seen: Vec<bool>,
    missing: usize,
}

struct Assembler {
    params: Arc<ParamIndex>,
    output: Vec<usize>,
    with_values: bool,
    schema: SchemaRef,
    runs: Interner,
    kinds: Interner,
    partial: HashMap<Key, Partial>,
    done: Vec<(Key, Vec<f32>)>,
    done_values: usize,
    reservation: MemoryReservation,
}

impl Assembler {
    fn describe(&self, key: &Key) -> String {
        let (run, step, kind, sample, param_id) = *key;
        let run = &self.runs.names[run as usize];
        let param = self.params.get(run, param_id).map_or("?", |e| self.params.names[e.name as usize].as_str());
        format!(
            "run '{run}', step {step}, kind '{}', sample {sample}, param '{param}' (id {param_id})",
            self.kinds.names[kind as usize]
        )
    }

    fn process(&mut self, b: &RecordBatch) -> Result<()> {
        let run = datafusion::arrow::compute::cast(b.column(0), &DataType::Utf8)?;
        let kind = datafusion::arrow::compute::cast(b.column(2), &DataType::Utf8)?;
        let (run, kind) = (run.as_string::<i32>(), kind.as_string::<i32>());
        let step = b.column(1).as_primitive::<Int64Type>();
        let sample = b.column(3).as_primitive::<Int64Type>();
        let param_id = b.column(4).as_primitive::<Int32Type>();
        for i in 0..b.num_rows() {
            let key = (
                self.runs.id(run.value(i)),
                step.value(i),
                self.kinds.id(kind.value(i)),
                sample.value(i),
                param_id.value(i),
            );
            if self.with_values {
                self.add_chunk(key, b, i)?;
            } else {
                self.done.push((key, Vec::new()));
            }
        }
        Ok(())
    }

    fn add_chunk(&mut self, key: Key, b: &RecordBatch, row: usize) -> Result<()> {
        let run = &self.runs.names[key.0 as usize];
        let Some(entry) = self.params.get(run, key.4) else {
            return exec_err!(
                "grad_vectors: grads of run '{run}' hold param_id {}, which its params table lacks",
                key.4
            );
        };
        let numel = entry.numel;
        let chunks = numel.div_ceil(CHUNK_LEN);
        let chunk = b.column(5).as_primitive::<Int32Type>().value(row);
        let chunk_numel = b.column(6).as_primitive::<Int32Type>().value(row);
        let c = usize::try_from(chunk).unwrap_or(usize::MAX);
        let expected = numel.saturating_sub(c.saturating_mul(CHUNK_LEN)).min(CHUNK_LEN);
        if c >= chunks || usize::try_from(chunk_numel).ok() != Some(expected) {
            return exec_err!(
                "grad_vectors: chunk {chunk} with {chunk_numel} values does not fit a tensor of {numel} elements ({})",
                self.describe(&key)
            );
        }
        if !self.partial.contains_key(&key) {
            self.reservation.try_grow(numel * size_of::<f32>())?;
            self.partial.insert(key, Partial { values: vec![0.0; numel], seen: vec![false; chunks], missing: chunks });
        }
        let part = self.partial.get_mut(&key).expect("inserted above");
        if std::mem::replace(&mut part.seen[c], true) {
            return exec_err!("grad_vectors: chunk {chunk} appears twice ({})", self.describe(&key));
        }
        let values = b.column(7).as_fixed_size_list();
        let start = values.value_offset(row) as usize;
        let flat = values.values().as_primitive::<Float32Type>().values();
        part.values[c * CHUNK_LEN..c * CHUNK_LEN + expected].copy_from_slice(&flat[start..start + expected]);
        part.missing -= 1;
        if part.missing == 0 {
            let part = self.partial.remove(&key).expect("present");
            self.done_values += part.values.len();
            self.done.push((key, part.values));
        }
        Ok(())
    }

    fn ready(&self) -> bool {
        self.done_values >= OUTPUT_VALUES || self.done.len() >= OUTPUT_ROWS
    }

    fn incomplete(&self) -> Option<DataFusionError> {
        let (key, part) = self.partial.iter().next()?;
        Some(DataFusionError::Execution(format!(
            "grad_vectors: {} of {} chunks missing ({}); a tensor must lie in one row group (format v1)",
            part.missing,
            part.seen.len(),
            self.describe(key)
        )))
    }

    fn emit(&mut self) -> Result<RecordBatch> {
        let (done, tensors): (Vec<Key>, Vec<Vec<f32>>) = std::mem::take(&mut self.done).into_iter().unzip();
        let bytes = self.done_values * size_of::<f32>();
        self.done_values = 0;
        let n = done.len();
        let mut tensors = Some(tensors);
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.output.len());
        for &c in &self.output {
            columns.push(match c {
                0 => dictionary(done.iter().map(|k| Some(k.0 as i32)), &self.runs.names)?,
                1 => Arc::new(Int64Array::from_iter_values(done.iter().map(|k| k.1))),
                2 => dictionary(done.iter().map(|k| Some(k.2 as i32)), &self.kinds.names)?,
                3 => Arc::new(Int64Array::from_iter_values(done.iter().map(|k| k.3))),
                4 => Arc::new(Int32Array::from_iter_values(done.iter().map(|k| k.4))),
                5 => {
                    let keys =
                        done.iter().map(|k| self.params.get(&self.runs.names[k.0 as usize], k.4).map(|e| e.name));
                    dictionary(keys, &self.params.names)?
                }
                VALUES => values_column(tensors.take().unwrap_or_default()),
                other => return internal_err!("grad_vectors has no column {other}"),
            });
        }
        let batch = RecordBatch::try_new_with_options(
            self.schema.clone(),
            columns,
            &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(n)),
        )?;
        self.reservation.shrink(bytes.min(self.reservation.size()));
        Ok(batch)
    }
}

fn dictionary(keys: impl Iterator<Item = Option<i32>>, names: &[String]) -> Result<ArrayRef> {
    let values = StringArray::from_iter_values(names.iter());
    Ok(Arc::new(DictionaryArray::<Int32Type>::try_new(Int32Array::from_iter(keys), Arc::new(values))?))
}

/// The tensors as one List<Float32> column: a single tensor is moved, not copied.
fn values_column(mut tensors: Vec<Vec<f32>>) -> ArrayRef {
    let offsets = OffsetBuffer::from_lengths(tensors.iter().map(Vec::len));
    let flat: Vec<f32> = if tensors.len() == 1 {
        tensors.pop().expect("one tensor")
    } else {
        let mut flat = Vec::with_capacity(tensors.iter().map(Vec::len).sum());
        tensors.iter().for_each(|t| flat.extend_from_slice(t));
        flat
    };
    let item = Arc::new(Field::new_list_field(DataType::Float32, true));
    Arc::new(ListArray::new(item, offsets, Arc::new(Float32Array::new(ScalarBuffer::from(flat), None)), None))
}

/// The output stream of one partition.
struct AssembleStream {
    input: SendableRecordBatchStream,
    assembler: Assembler,
    finished: bool,
}

impl Stream for AssembleStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if self.assembler.ready() || (self.finished && !self.assembler.done.is_empty()) {
                return Poll::Ready(Some(self.assembler.emit()));
            }
            if self.finished {
                return Poll::Ready(None);
            }
            match self.input.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(batch))) => {
                    if let Err(e) = self.assembler.process(&batch) {
                        return Poll::Ready(Some(Err(e)));
                    }
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => {
                    self.finished = true;
                    if let Some(e) = self.assembler.incomplete() {
                        self.assembler.done.clear();
                        return Poll::Ready(Some(Err(e)));
                    }
                }
            }
        }
    }
}

impl RecordBatchStream for AssembleStream {
    fn schema(&self) -> SchemaRef {
        self.assembler.schema.clone()
    }
}
