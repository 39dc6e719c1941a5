//! The state of the whole-sample statistics: every usable value of a group.
//!
//! Exact CSN (and the other tests) need the whole sample, so the state is the
//! values themselves — a `List<Float32>` when the input is Float32 (gradients
//! are), else `List<Float64>`: the state never holds more precision than its
//! input, so f32 gradients cost 4 bytes a value, not 8 — plus the count of
//! skipped inputs. A statistic converts one group at a time to sorted f64 when
//! it is evaluated; [`eval_bytes_per_value`] is what that costs, so that
//! `size()` can tell the memory pool before it happens.

use std::fmt::Debug;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListArray, PrimitiveArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::ArrowNativeType;
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Field, FieldRef, Float32Type, Float64Type, Int64Type,
};
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
    /// The value a statistic uses for input `v`, or `None` to skip it. Exact in
    /// f32 too: only the sign changes.
    pub fn map(self, v: f64) -> Option<f64> {
        match self {
            Keep::Positive => (v.is_finite() && v > 0.0).then_some(v),
            Keep::Finite => v.is_finite().then_some(v),
            Keep::NonZeroMagnitude => (v.is_finite() && v != 0.0).then_some(v.abs()),
        }
    }
}

/// A value type a sample is stored in: f32 for Float32 input, f64 otherwise.
pub(crate) trait Element: ArrowNativeType + Copy + Default + Debug + Send + Sync + 'static {
    /// The Arrow type of the values.
    type Arrow: ArrowPrimitiveType<Native = Self>;
    /// Its `DataType`.
    const DATA_TYPE: DataType;
    /// Exact: every f32 and f64 the statistics keep is representable.
    fn from_f64(v: f64) -> Self;
    /// Widening (exact).
    fn to_f64(self) -> f64;
    /// Sorts ascending (by radix: O(n)). Values are finite here.
    fn sort(values: &mut [Self]);
}

impl Element for f32 {
    type Arrow = Float32Type;
    const DATA_TYPE: DataType = DataType::Float32;
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn sort(values: &mut [Self]) {
        radsort::sort(values);
    }
}

impl Element for f64 {
    type Arrow = Float64Type;
    const DATA_TYPE: DataType = DataType::Float64;
    fn from_f64(v: f64) -> Self {
        v
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn sort(values: &mut [Self]) {
        radsort::sort(values);
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

/// A `List<T>` array with one list per entry of `lists`.
pub(crate) fn list_array<T: Element>(lists: impl IntoIterator<Item = Vec<T>>) -> ListArray {
    let mut lengths = Vec::new();
    let mut flat = Vec::new();
    for l in lists {
        lengths.push(l.len());
        flat.extend(l);
    }
    ListArray::new(
        Arc::new(Field::new_list_field(T::DATA_TYPE, true)),
        OffsetBuffer::from_lengths(lengths),
        Arc::new(PrimitiveArray::<T::Arrow>::from_iter_values(flat)),
        None,
    )
}

/// Appends the values of a state's `List<T>` entry `row` to `out` (nothing for NULL).
pub(crate) fn extend_from_list<T: Element>(lists: &ListArray, row: usize, out: &mut Vec<T>) -> Result<()> {
    if lists.is_valid(row) {
        let part = lists.value(row);
        let Some(part) = part.as_primitive_opt::<T::Arrow>() else {
            return internal_err!("sample state holds {}, expected {}", part.data_type(), T::DATA_TYPE);
        };
        out.extend(part.iter().flatten());
    }
    Ok(())
}

/// The element type of the state for an input of type `input` (after coercion).
pub(crate) fn element_type(input: &DataType) -> DataType {
    match input {
        DataType::Float32 => DataType::Float32,
        _ => DataType::Float64,
    }
}

/// The two state fields: `values` (a list of the input's float type) and `skipped`.
pub(crate) fn state_fields(name: &str, input: &DataType) -> Vec<FieldRef> {
    let list = DataType::List(Arc::new(Field::new_list_field(element_type(input), true)));
    vec![
        Arc::new(Field::new(format!("{name}[values]"), list, true)),
        Arc::new(Field::new(format!("{name}[skipped]"), DataType::Int64, true)),
    ]
}

/// Bytes per value a statistic's evaluation allocates beyond the state: the
/// sorted f64 copy and the power-law fit's logs and suffix sums (8 + 8 + 8),
/// and its tie index (4) in the `powerlaw` KS convention.
pub(crate) const fn eval_bytes_per_value() -> usize {
    28
}

/// A group's values as a sorted f64 sample. Sorted in their own type by radix
/// (f32 takes half the passes of f64, and widening keeps the order).
pub(crate) fn sorted_f64<T: Element>(values: &mut [T]) -> Vec<f64> {
    T::sort(values);
    values.iter().map(|x| x.to_f64()).collect()
}

/// Usable values seen so far, and how many inputs were skipped.
#[derive(Debug)]
pub(crate) struct SampleState<T> {
    keep: Keep,
    values: Vec<T>,
    skipped: u64,
}

impl<T: Element> SampleState<T> {
    pub fn new(keep: Keep) -> Self {
        Self { keep, values: Vec::new(), skipped: 0 }
    }

    /// Adds a Float32 or Float64 column; NULL and unusable values are counted as skipped.
    pub fn update(&mut self, array: &ArrayRef) -> Result<()> {
        let keep = self.keep;
        for_each_value(array, |_, v| match v.and_then(|v| keep.map(v)) {
            Some(v) => self.values.push(T::from_f64(v)),
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
            extend_from_list(lists, i, &mut self.values)?;
        }
        self.skipped += states[1].as_primitive::<Int64Type>().iter().flatten().sum::<i64>() as u64;
        Ok(())
    }

    /// The values as a sorted f64 sample, and the skipped count.
    pub fn sorted(&mut self) -> (Vec<f64>, u64) {
        (sorted_f64(&mut self.values), self.skipped)
    }

    /// Bytes held, and those the evaluation will allocate.
    pub fn size(&self) -> usize {
        size_of::<Self>() + self.values.capacity() * size_of::<T>() + self.values.len() * eval_bytes_per_value()
    }
}
