//! The rows of one `grads` row group, collected, sorted and turned into a batch.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, DictionaryArray, FixedSizeListArray, Float32Array, Int32Array, Int64Array, RecordBatch, StringArray,
    UInt32Array,
};
use arrow::buffer::ScalarBuffer;
use arrow::datatypes::{Field, Int32Type};

use crate::chunk::{self, ChunkSummary, values_crc32};
use crate::schema::{CHUNK_LEN, Kind, Table};

/// Sort key and summaries of one chunk row; the values live in [`GradsBuffer::values`].
#[derive(Debug, Clone, Copy)]
struct Row {
    step: i64,
    param_id: i32,
    chunk: i32,
    kind: Kind,
    sample: i64,
    numel: i32,
    summary: ChunkSummary,
}

impl Row {
    /// The declared sort order of `grads` files: (step, param_id, chunk, kind, sample).
    fn key(&self) -> (i64, i32, i32, Kind, i64) {
        (self.step, self.param_id, self.chunk, self.kind, self.sample)
    }
}

/// Rows waiting to be written as one row group.
#[derive(Default)]
pub(crate) struct GradsBuffer {
    rows: Vec<Row>,
    values: Vec<f32>,
}

impl GradsBuffer {
    /// Number of buffered chunk rows.
    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    /// Appends a whole tensor as chunk rows (the last one zero-padded).
    /// Returns the number of non-finite values it held.
    pub fn push_tensor(&mut self, step: i64, kind: Kind, sample: i64, param_id: i32, data: &[f32]) -> u64 {
        let mut non_finite = 0;
        for (i, part) in data.chunks(CHUNK_LEN).enumerate() {
            let summary = chunk::summarize(part);
            non_finite += summary.non_finite;
            self.values.extend_from_slice(part);
            self.values.resize(self.values.len() + (CHUNK_LEN - part.len()), 0.0);
            self.rows.push(Row { step, param_id, chunk: i as i32, kind, sample, numel: part.len() as i32, summary });
        }
        non_finite
    }

    /// Sorts the buffered rows into the declared order and returns them as a
    /// batch of the `grads` schema, leaving the buffer empty (its allocations kept).
    pub fn take_sorted_batch(&mut self) -> RecordBatch {
        let n = self.rows.len();
        let sorted = self.rows.is_sorted_by_key(Row::key);
        let mut order: Vec<usize> = (0..n).collect();
        if !sorted {
            order.sort_by_key(|&i| self.rows[i].key());
        }
        let values: Vec<f32> = if sorted {
            // Hand the buffer to Arrow without a copy; the next row group allocates anew.
            let capacity = self.values.capacity();
            std::mem::replace(&mut self.values, Vec::with_capacity(capacity))
        } else {
            let mut v = Vec::with_capacity(self.values.len());
            for &i in &order {
                v.extend_from_slice(&self.values[i * CHUNK_LEN..(i + 1) * CHUNK_LEN]);
            }
            v
        };
        let rows: Vec<Row> = order.iter().map(|&i| self.rows[i]).collect();
        self.rows.clear();
        self.values.clear();

        let crcs = UInt32Array::from_iter_values(values.chunks_exact(CHUNK_LEN).map(values_crc32));
        let kinds = Arc::new(StringArray::from_iter_values(Kind::ALL.iter().map(|k| k.as_str())));
        let kind_keys = Int32Array::from_iter_values(rows.iter().map(|r| r.kind.index() as i32));
        let item = Arc::new(Field::new("item", arrow::datatypes::DataType::Float32, true));
        let values = FixedSizeListArray::new(
            item,
            CHUNK_LEN as i32,
            Arc::new(Float32Array::new(ScalarBuffer::from(values), None)),
            None,
        );
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.step))),
            Arc::new(DictionaryArray::<Int32Type>::new(kind_keys, kinds)),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.sample))),
            Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.param_id))),
            Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.chunk))),
            Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.numel))),
            Arc::new(Float32Array::from_iter_values(rows.iter().map(|r| r.summary.l2))),
            Arc::new(Float32Array::from_iter_values(rows.iter().map(|r| r.summary.max_abs))),
            Arc::new(values),
            Arc::new(crcs),
        ];
        RecordBatch::try_new(Table::Grads.schema(), columns).expect("columns follow the grads schema")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::AsArray;
    use arrow::datatypes::Int64Type;

    #[test]
    fn rows_come_out_sorted_and_padded() {
        let mut b = GradsBuffer::default();
        let big: Vec<f32> = (0..CHUNK_LEN + 3).map(|i| i as f32).collect();
        b.push_tensor(2, Kind::Minibatch, 0, 1, &[1.0, 2.0]);
        b.push_tensor(1, Kind::Full, 0, 0, &big);
        b.push_tensor(1, Kind::Draw, 5, 0, &[7.0]);
        let batch = b.take_sorted_batch();
        assert_eq!(b.rows(), 0);
        let steps: Vec<i64> = batch.column(0).as_primitive::<Int64Type>().values().to_vec();
        assert_eq!(steps, [1, 1, 1, 2]);
        let chunks = batch.column(4).as_primitive::<Int32Type>().values().to_vec();
        assert_eq!(chunks, [0, 0, 1, 0]); // (1,0,0,draw) < (1,0,0,full) < (1,0,1,full)
        let numel = batch.column(5).as_primitive::<Int32Type>().values().to_vec();
        assert_eq!(numel, [1, CHUNK_LEN as i32, 3, 2]);
        let values = batch.column(8).as_fixed_size_list();
        let last_full = values.value(2);
        let last_full = last_full.as_primitive::<arrow::datatypes::Float32Type>();
        assert_eq!(&last_full.values()[..4], &[4096.0, 4097.0, 4098.0, 0.0]);
        assert!(last_full.values()[3..].iter().all(|&v| v == 0.0));
    }
}
