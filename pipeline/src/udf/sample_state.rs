//! The state of the whole-sample statistics: every usable value of a group.
//!
//! Exact CSN (and the other tests) need the whole sample, so the state is the
//! values themselves (a `List<Float64>`) plus the count of skipped inputs;
//! `size()` reports the buffer so the memory pool can account for it.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, ListArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float32Type, Float64Type, Int64Type};
use datafusion::common::{Result, ScalarValue, internal_err};

/// Which inputs a statistic can use; the rest are skipped and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Keep {
    /// Finite values > 0 (power-law tails).
    Positive,
    /// Any finite value (Gaussianity, stable index).
    Finite,
    /// |x| of finite non-zero values (Hill).
    NonZeroMagnitude,
}

impl Keep {
    /// The value a statistic uses for input `v`, or `None` to skip it.
    pub fn map(self, v: f64) -> Option<f64> {
        match self {
            Keep::Positive => (v.is_finite() && v > 0.0).then_some(v),
            Keep::Finite => v.is_finite().then_some(v),
            Keep::NonZeroMagnitude => (v.is_finite() && v != 0.0).then_some(v.abs()),
        }
    }
}

/// Calls `f(row, value)` for every row of a Float32, Float64 or Null column (NULL as `None`).
pub(crate) fn for_each_value(array: &ArrayRef, mut f: impl FnMut(usize, Option<f64>)) -> Result<()> {
    match array.data_type() {
        DataType::Float64 => array.as_primitive::<Float64Type>().iter().enumerate().for_each(|(i, v)| f(i, v)),
        DataType::Float32 => {
            array.as_primitive::<Float32Type>().iter().enumerate().for_each(|(i, v)| f(i, v.map(f64::from)))
        }
        DataType::Null => (0..array.len()).for_each(|i| f(i, None)),
        t => return internal_err!("sample statistics got {t} after coercion"),
    }
    Ok(())
}

/// A `List<Float64>` array with one list per entry of `lists`.
pub(crate) fn list_array(lists: impl IntoIterator<Item = Vec<f64>>) -> ListArray {
    let mut lengths = Vec::new();
    let mut flat = Vec::new();
    for l in lists {
        lengths.push(l.len());
        flat.extend(l);
    }
    ListArray::new(
        Arc::new(Field::new_list_field(DataType::Float64, true)),
        OffsetBuffer::from_lengths(lengths),
        Arc::new(Float64Array::from(flat)),
        None,
    )
}

/// The two state fields: `values` and `skipped`.
pub(crate) fn state_fields(name: &str) -> Vec<FieldRef> {
    let list = DataType::List(Arc::new(Field::new_list_field(DataType::Float64, true)));
    vec![
        Arc::new(Field::new(format!("{name}[values]"), list, true)),
        Arc::new(Field::new(format!("{name}[skipped]"), DataType::Int64, true)),
    ]
}

/// Usable values seen so far, and how many inputs were skipped.
#[derive(Debug)]
pub(crate) struct SampleState {
    keep: Keep,
    values: Vec<f64>,
    skipped: u64,
}

impl SampleState {
    pub fn new(keep: Keep) -> Self {
        Self { keep, values: Vec::new(), skipped: 0 }
    }

    /// Adds a Float32 or Float64 column; NULL and unusable values are counted as skipped.
    pub fn update(&mut self, array: &ArrayRef) -> Result<()> {
        let keep = self.keep;
        for_each_value(array, |_, v| match v.and_then(|v| keep.map(v)) {
            Some(v) => self.values.push(v),
            None => self.skipped += 1,
        })
    }

    /// The state as scalars: `[values, skipped]`. Leaves the state empty (it is not used afterwards).
    pub fn state(&mut self) -> Vec<ScalarValue> {
        let list = list_array([std::mem::take(&mut self.values)]);
        vec![ScalarValue::List(Arc::new(list)), ScalarValue::Int64(Some(self.skipped as i64))]
    }

    /// Merges partial states.
    pub fn merge(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists = states[0].as_list::<i32>();
        for i in 0..lists.len() {
            if lists.is_valid(i) {
                let part = lists.value(i);
                self.values.extend(part.as_primitive::<Float64Type>().iter().flatten());
            }
        }
        self.skipped += states[1].as_primitive::<Int64Type>().iter().flatten().sum::<i64>() as u64;
        Ok(())
    }

    /// The values, sorted in place (cheap to repeat), and the skipped count.
    pub fn sorted(&mut self) -> (&mut [f64], u64) {
        if !self.values.is_sorted() {
            self.values.sort_unstable_by(f64::total_cmp);
        }
        (&mut self.values, self.skipped)
    }

    /// Bytes held.
    pub fn size(&self) -> usize {
        size_of::<Self>() + self.values.capacity() * size_of::<f64>()
    }
}
