//! The `grad_vectors` table: one row per (run, step, kind, sample, param) with
//! the whole flattened tensor as `values` (List<Float32>, padding cut off).
//!
//! A SQL view (`array_agg(values ORDER BY chunk)`, `flatten`, `array_slice`)
//! sorts, copies each chunk three times and holds every group until the scan
//! ends. [`Assemble`] instead copies each chunk once, straight to its place in
//! the output batch's buffer, in whatever order the chunks come, and emits a
//! batch as soon as its tensors are complete. The writer
//! keeps a tensor's chunks in one row group, and DataFusion never splits a row
//! group between partitions, so tensors complete within a partition and only
//! those of the row group being read are in flight: memory is bounded by the
//! row-group size (and accounted in the session's memory pool), not by the lake.
//!
//! When `values` is not selected, only chunk 0 of each tensor is read and the
//! values are never decoded.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use datafusion::arrow::array::{
    ArrayRef, AsArray, DictionaryArray, Float32Array, Int32Array, Int64Array, ListArray, RecordBatch, StringArray,
};
use datafusion::arrow::buffer::{OffsetBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::{DataType, Field, Float32Type, Int32Type, Int64Type, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::{Result, exec_err, internal_err};
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
/// Chunk rows per scanned batch (512 KiB of values): the Parquet decoder's
/// buffers scale with it, and tensors are assembled as fast from small
/// batches as from the session's 128 rows (`bench/spectrum.sh`).
const INPUT_ROWS: usize = 32;
/// A batch is emitted once completed tensors hold this many values (its
/// buffer is allocated at this size, or a single larger tensor's)...
const OUTPUT_VALUES: usize = 1 << 18;
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
        scan_grads(grads, params, state, &INPUT, filters, Vec::new(), Some(INPUT_ROWS)).await?
    } else {
        scan_grads(grads, params, state, &KEYS, filters, vec![col("chunk").eq(lit(0i32))], None).await?
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
                slabs: VecDeque::new(),
                first_slab: 0,
                incomplete: HashMap::new(),
                ready: VecDeque::new(),
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

/// An output batch being filled. A tensor takes its place here when its
/// first chunk arrives, whichever chunk that is, and every chunk is copied
/// once, straight to its place: the writer's order (within a row group, chunk
/// 0 of every tensor, then chunk 1 of every tensor, …) needs no side buffer.
struct Slab {
    keys: Vec<Key>,
    lengths: Vec<usize>,
    /// The tensors' values one after another; chunks not yet arrived are zeros.
    /// Allocated at its final size: it never grows by reallocation.
    values: Vec<f32>,
    /// Tensors placed here that still miss chunks.
    pending: usize,
    /// No more tensors are placed here: it is full, or a later slab exists.
    closed: bool,
}

/// Where a tensor that still misses chunks lies, and which have arrived.
struct Slot {
    /// The slab's sequence number.
    slab: u64,
    start: usize,
    seen: Vec<bool>,
    missing: usize,
}

/// Reassembles one partition's tensors into output batches (see [`Slab`]).
/// Batches go out in the order their tensors were placed, each as soon as
/// it is closed and all its tensors are complete.
struct Assembler {
    params: Arc<ParamIndex>,
    output: Vec<usize>,
    with_values: bool,
    schema: SchemaRef,
    runs: Interner,
    kinds: Interner,
    slabs: VecDeque<Slab>,
    /// The sequence number of `slabs[0]`.
    first_slab: u64,
    incomplete: HashMap<Key, Slot>,
    /// Batches built and not yet returned.
    ready: VecDeque<RecordBatch>,
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
                self.place(key, 0, &[], 0)?;
                self.complete(self.first_slab + self.slabs.len() as u64 - 1)?;
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
        let values = b.column(7).as_fixed_size_list();
        let start = values.value_offset(row) as usize;
        let flat = values.values().as_primitive::<Float32Type>().values();
        let chunk_values = &flat[start..start + expected];
        let Some(slot) = self.incomplete.get_mut(&key) else {
            let (slab, start) = self.place(key, numel, chunk_values, c)?;
            if chunks == 1 {
                return self.complete(slab);
            }
            let mut seen = vec![false; chunks];
            seen[c] = true;
            self.incomplete.insert(key, Slot { slab, start, seen, missing: chunks - 1 });
            return Ok(());
        };
        if std::mem::replace(&mut slot.seen[c], true) {
            return exec_err!("grad_vectors: chunk {chunk} appears twice ({})", self.describe(&key));
        }
        let offset = slot.start + c * CHUNK_LEN;
        let slab = &mut self.slabs[(slot.slab - self.first_slab) as usize];
        slab.values[offset..offset + expected].copy_from_slice(chunk_values);
        slot.missing -= 1;
        if slot.missing == 0 {
            let slab = slot.slab;
            self.incomplete.remove(&key);
            self.complete(slab)?;
        }
        Ok(())
    }

    /// Gives a tensor of `numel` elements its place, with chunk `c`'s values
    /// written and the rest zero; returns its slab's sequence number and offset.
    fn place(&mut self, key: Key, numel: usize, chunk_values: &[f32], c: usize) -> Result<(u64, usize)> {
        let fits = self.slabs.back().is_some_and(|s| !s.closed && s.values.len() + numel <= s.values.capacity());
        if !fits {
            if let Some(last) = self.slabs.back_mut() {
                last.closed = true;
            }
            self.flush()?;
            let capacity = if self.with_values { OUTPUT_VALUES.max(numel) } else { 0 };
            self.reservation.try_grow(capacity * size_of::<f32>())?;
            self.slabs.push_back(Slab {
                keys: Vec::new(),
                lengths: Vec::new(),
                values: Vec::with_capacity(capacity),
                pending: 0,
                closed: false,
            });
        }
        let slab_seq = self.first_slab + self.slabs.len() as u64 - 1;
        let slab = self.slabs.back_mut().expect("pushed above");
        let start = slab.values.len();
        slab.values.resize(start + c * CHUNK_LEN, 0.0);
        slab.values.extend_from_slice(chunk_values);
        slab.values.resize(start + numel, 0.0);
        slab.keys.push(key);
        slab.lengths.push(numel);
        slab.pending += 1;
        slab.closed = slab.values.len() >= OUTPUT_VALUES || slab.keys.len() >= OUTPUT_ROWS;
        Ok((slab_seq, start))
    }

    /// Records that a tensor of slab `slab` has all its chunks.
    fn complete(&mut self, slab: u64) -> Result<()> {
        self.slabs[(slab - self.first_slab) as usize].pending -= 1;
        self.flush()
    }

    /// Emits the leading slabs that are closed and complete.
    fn flush(&mut self) -> Result<()> {
        while self.slabs.front().is_some_and(|s| s.closed && s.pending == 0) {
            let slab = self.slabs.pop_front().expect("checked above");
            self.first_slab += 1;
            self.emit(slab)?;
        }
        Ok(())
    }

    /// At the end of the input: an error for a tensor that misses chunks, or
    /// the last batches on `ready`.
    fn finish(&mut self) -> Result<()> {
        let first = self.incomplete.iter().min_by_key(|(_, slot)| (slot.slab, slot.start));
        if let Some((key, slot)) = first {
            return exec_err!(
                "grad_vectors: {} of {} chunks missing ({}); a tensor must lie in one row group (format v1)",
                slot.missing,
                slot.seen.len(),
                self.describe(key)
            );
        }
        if let Some(last) = self.slabs.back_mut() {
            last.closed = true;
        }
        self.flush()
    }

    /// Turns a slab into a batch on `ready`.
    fn emit(&mut self, slab: Slab) -> Result<()> {
        let Slab { keys, lengths, values, .. } = slab;
        let bytes = values.capacity() * size_of::<f32>();
        let n = keys.len();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.output.len());
        let mut values = Some(values);
        for &c in &self.output {
            columns.push(match c {
                0 => dictionary(keys.iter().map(|k| Some(k.0 as i32)), &self.runs.names)?,
                1 => Arc::new(Int64Array::from_iter_values(keys.iter().map(|k| k.1))),
                2 => dictionary(keys.iter().map(|k| Some(k.2 as i32)), &self.kinds.names)?,
                3 => Arc::new(Int64Array::from_iter_values(keys.iter().map(|k| k.3))),
                4 => Arc::new(Int32Array::from_iter_values(keys.iter().map(|k| k.4))),
                5 => {
                    let names =
                        keys.iter().map(|k| self.params.get(&self.runs.names[k.0 as usize], k.4).map(|e| e.name));
                    dictionary(names, &self.params.names)?
                }
                VALUES => values_column(&lengths, values.take().unwrap_or_default()),
                other => return internal_err!("grad_vectors has no column {other}"),
            });
        }
        let batch = RecordBatch::try_new_with_options(
            self.schema.clone(),
            columns,
            &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(n)),
        )?;
        self.reservation.shrink(bytes.min(self.reservation.size()));
        self.ready.push_back(batch);
        Ok(())
    }
}

fn dictionary(keys: impl Iterator<Item = Option<i32>>, names: &[String]) -> Result<ArrayRef> {
    let values = StringArray::from_iter_values(names.iter());
    Ok(Arc::new(DictionaryArray::<Int32Type>::try_new(Int32Array::from_iter(keys), Arc::new(values))?))
}

/// The tensors, `lengths` long one after another in `values`, as one
/// List<Float32> column; the buffer is moved, not copied.
fn values_column(lengths: &[usize], values: Vec<f32>) -> ArrayRef {
    let offsets = OffsetBuffer::from_lengths(lengths.iter().copied());
    let item = Arc::new(Field::new_list_field(DataType::Float32, true));
    Arc::new(ListArray::new(item, offsets, Arc::new(Float32Array::new(ScalarBuffer::from(values), None)), None))
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
            if let Some(batch) = self.assembler.ready.pop_front() {
                return Poll::Ready(Some(Ok(batch)));
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
                    if let Err(e) = self.assembler.finish() {
                        self.assembler.ready.clear();
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

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::FixedSizeListArray;
    use datafusion::physical_plan::stream::RecordBatchStreamAdapter;

    use super::*;
    use crate::tables::{Derived, derived_schema};

    /// Element `i` of sample `s`'s tensor: distinct, and exact in f32.
    fn element(s: i64, i: usize) -> f32 {
        ((s as usize * 7919 + i) % 16_000_000) as f32
    }

    /// The `grads` rows of chunks `(sample, chunk)` of param 0 (`numel` elements), in that order.
    fn chunk_rows(numel: usize, rows: &[(i64, usize)]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("run", DataType::Utf8, false),
            Field::new("step", DataType::Int64, false),
            Field::new("kind", DataType::Utf8, false),
            Field::new("sample", DataType::Int64, false),
            Field::new("param_id", DataType::Int32, false),
            Field::new("chunk", DataType::Int32, false),
            Field::new("numel", DataType::Int32, false),
            Field::new(
                "values",
                DataType::FixedSizeList(Arc::new(Field::new_list_field(DataType::Float32, false)), CHUNK_LEN as i32),
                false,
            ),
        ]));
        let mut flat = Vec::with_capacity(rows.len() * CHUNK_LEN);
        let mut chunk_numel = Vec::new();
        for &(s, c) in rows {
            let len = numel.saturating_sub(c * CHUNK_LEN).min(CHUNK_LEN);
            flat.extend((0..CHUNK_LEN).map(|j| if j < len { element(s, c * CHUNK_LEN + j) } else { 0.0 }));
            chunk_numel.push(len as i32);
        }
        let n = rows.len();
        let values = FixedSizeListArray::new(
            Arc::new(Field::new_list_field(DataType::Float32, false)),
            CHUNK_LEN as i32,
            Arc::new(Float32Array::from(flat)),
            None,
        );
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["r"; n])),
                Arc::new(Int64Array::from(vec![0; n])),
                Arc::new(StringArray::from(vec!["sample"; n])),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(Int32Array::from(vec![0; n])),
                Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.1 as i32))),
                Arc::new(Int32Array::from(chunk_numel)),
                Arc::new(values),
            ],
        )
        .expect("a valid grads batch")
    }

    /// `grad_vectors`' (sample, values) from these input batches, as the stream returns them.
    fn assemble(numel: usize, batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>> {
        let params = Arc::new(ParamIndex::from_entries(&[("r".into(), 0, "w".into(), numel as u64)]));
        let output = vec![3, VALUES];
        let schema = Arc::new(derived_schema(Derived::Vectors).project(&output)?);
        let input_schema = batches[0].schema();
        let input =
            Box::pin(RecordBatchStreamAdapter::new(input_schema, futures::stream::iter(batches.into_iter().map(Ok))));
        let stream = Assemble::new(params, output, true).execute(input, 0, Arc::new(TaskContext::default()), schema)?;
        futures::executor::block_on(stream.collect::<Vec<_>>()).into_iter().collect()
    }

    /// Each sample's tensor as assembled, checked against [`element`]; the samples in output order.
    fn check(numel: usize, out: &[RecordBatch]) -> Vec<i64> {
        let mut samples = Vec::new();
        for b in out {
            let (s, v) = (b.column(0).as_primitive::<Int64Type>(), b.column(1).as_list::<i32>());
            for r in 0..b.num_rows() {
                let values = v.value(r);
                let got = values.as_primitive::<Float32Type>().values();
                let want: Vec<f32> = (0..numel).map(|i| element(s.value(r), i)).collect();
                assert!(got[..] == want[..], "sample {} assembled wrong", s.value(r));
                samples.push(s.value(r));
            }
        }
        samples
    }

    #[test]
    fn chunks_in_order_become_whole_tensors_across_batch_boundaries() {
        let numel = 2 * CHUNK_LEN + 17;
        let rows: Vec<(i64, usize)> = (0..5).flat_map(|s| (0..3).map(move |c| (s, c))).collect();
        // Batches of 4 rows: every tensor but the first is cut by a batch boundary.
        let batches = rows.chunks(4).map(|r| chunk_rows(numel, r)).collect();
        assert_eq!(check(numel, &assemble(numel, batches).unwrap()), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn the_writers_chunk_major_order_keeps_the_tensors_order() {
        // Within a row group the writer sorts by chunk, then sample: chunk 0 of
        // every tensor comes first. 300 tensors of 3 chunks span several batches.
        let numel = 2 * CHUNK_LEN + 5;
        let rows: Vec<(i64, usize)> = (0..3).flat_map(|c| (0..300).map(move |s| (s, c))).collect();
        let out = assemble(numel, rows.chunks(32).map(|r| chunk_rows(numel, r)).collect()).unwrap();
        assert_eq!(check(numel, &out), (0..300).collect::<Vec<_>>());
        assert!(out.len() > 1 && out.iter().all(|b| b.column(1).as_list::<i32>().values().len() <= OUTPUT_VALUES));
    }

    #[test]
    fn chunks_out_of_order_or_interleaved_are_assembled_in_place() {
        let numel = 2 * CHUNK_LEN + 1;
        let rows = [(0, 1), (1, 0), (0, 0), (1, 2), (2, 0), (2, 1), (0, 2), (1, 1), (2, 2)];
        let out = assemble(numel, vec![chunk_rows(numel, &rows[..5]), chunk_rows(numel, &rows[5..])]).unwrap();
        let mut samples = check(numel, &out);
        samples.sort_unstable();
        assert_eq!(samples, vec![0, 1, 2]);
    }

    #[test]
    fn batches_hold_at_most_the_output_size_and_a_larger_tensor_travels_alone() {
        // 2.5 output buffers of small tensors: every batch but one full, none over.
        let numel = 1000;
        let count = (OUTPUT_VALUES * 5 / 2 / numel) as i64;
        let rows: Vec<(i64, usize)> = (0..count).map(|s| (s, 0)).collect();
        let out = assemble(numel, rows.chunks(128).map(|r| chunk_rows(numel, r)).collect()).unwrap();
        assert_eq!(check(numel, &out), (0..count).collect::<Vec<_>>());
        let sizes: Vec<usize> = out.iter().map(|b| b.column(1).as_list::<i32>().values().len()).collect();
        assert!(sizes.iter().all(|&s| s <= OUTPUT_VALUES) && sizes.len() == 3, "{sizes:?}");

        let numel = OUTPUT_VALUES + 5;
        let chunks = numel.div_ceil(CHUNK_LEN);
        let rows: Vec<(i64, usize)> = (0..2).flat_map(|s| (0..chunks).map(move |c| (s, c))).collect();
        let out = assemble(numel, rows.chunks(64).map(|r| chunk_rows(numel, r)).collect()).unwrap();
        assert_eq!(check(numel, &out), vec![0, 1]);
        assert!(out.iter().all(|b| b.num_rows() == 1));
    }

    #[test]
    fn a_duplicate_or_missing_chunk_is_an_error_naming_the_tensor() {
        let numel = 2 * CHUNK_LEN;
        let err = assemble(numel, vec![chunk_rows(numel, &[(3, 0), (3, 0), (3, 1)])]).unwrap_err().to_string();
        assert!(err.contains("chunk 0 appears twice") && err.contains("sample 3, param 'w'"), "{err}");
        let err = assemble(numel, vec![chunk_rows(numel, &[(4, 0), (5, 1)])]).unwrap_err().to_string();
        assert!(err.contains("1 of 2 chunks missing"), "{err}");
    }
}
