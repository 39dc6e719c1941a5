//! Vector arguments: a List, LargeList or FixedSizeList of Float32/Float64 per
//! row, read into f64 one row at a time.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float32Array, Float64Array};
use datafusion::arrow::datatypes::{DataType, Field, Float32Type, Float64Type};
use datafusion::common::{Result, plan_err};

/// Coerces a vector argument: lists of Float32/Float64 stay as they are, lists
/// of other numbers become lists of Float64, NULL becomes a NULL list.
pub(crate) fn coerce_vector(function: &str, arg: &str, t: &DataType) -> Result<DataType> {
    let float = |f: &Field| -> Option<Arc<Field>> {
        match f.data_type() {
            DataType::Float32 | DataType::Float64 => Some(Arc::new(f.clone())),
            t if t.is_numeric() || t.is_null() => Some(Arc::new(f.clone().with_data_type(DataType::Float64))),
            _ => None,
        }
    };
    let coerced = match t {
        DataType::Null => Some(DataType::List(Arc::new(Field::new_list_field(DataType::Float64, true)))),
        DataType::List(f) => float(f).map(DataType::List),
        DataType::LargeList(f) => float(f).map(DataType::LargeList),
        DataType::FixedSizeList(f, n) => float(f).map(|f| DataType::FixedSizeList(f, *n)),
        _ => None,
    };
    match coerced {
        Some(t) => Ok(t),
        None => plan_err!("{function}: argument {arg} must be a list of Float32 or Float64 (a vector), got {t}"),
    }
}

/// A vector column after [`coerce_vector`].
pub(crate) struct Vectors<'a> {
    array: &'a dyn Array,
    values: Values<'a>,
}

enum Values<'a> {
    AllNull,
    F32(&'a Float32Array),
    F64(&'a Float64Array),
}

/// One row of a [`Vectors`] column.
pub(crate) enum Row<'a> {
    /// The row is NULL.
    Null,
    /// The values (in the caller's buffer); `finite` is false when one is
    /// NaN, infinite or NULL (read as NaN).
    Values { values: &'a [f64], finite: bool },
}

impl<'a> Vectors<'a> {
    /// Wraps a column of type List/LargeList/FixedSizeList of Float32/Float64.
    pub fn new(function: &str, array: &'a ArrayRef) -> Result<Self> {
        let values = match array.data_type() {
            DataType::List(_) => array.as_list::<i32>().values(),
            DataType::LargeList(_) => array.as_list::<i64>().values(),
            DataType::FixedSizeList(_, _) => array.as_fixed_size_list().values(),
            DataType::Null => return Ok(Self { array: array.as_ref(), values: Values::AllNull }),
            t => return plan_err!("{function}: expected a vector column, got {t}"),
        };
        let values = match values.data_type() {
            DataType::Float32 => Values::F32(values.as_primitive::<Float32Type>()),
            DataType::Float64 => Values::F64(values.as_primitive::<Float64Type>()),
            t => return plan_err!("{function}: expected vectors of Float32 or Float64, got items of {t}"),
        };
        Ok(Self { array: array.as_ref(), values })
    }

    /// Rows.
    pub fn len(&self) -> usize {
        self.array.len()
    }

    fn span(&self, row: usize) -> Option<(usize, usize)> {
        if self.array.is_null(row) {
            return None;
        }
        match self.array.data_type() {
            DataType::List(_) => {
                let o = self.array.as_list::<i32>().value_offsets();
                Some((o[row] as usize, (o[row + 1] - o[row]) as usize))
            }
            DataType::LargeList(_) => {
                let o = self.array.as_list::<i64>().value_offsets();
                Some((o[row] as usize, (o[row + 1] - o[row]) as usize))
            }
            DataType::FixedSizeList(_, n) => {
                Some((self.array.as_fixed_size_list().value_offset(row) as usize, *n as usize))
            }
            _ => None,
        }
    }

    /// Reads row `row` into `buf`.
    pub fn row<'b>(&self, row: usize, buf: &'b mut Vec<f64>) -> Row<'b> {
        let Some((start, len)) = self.span(row) else { return Row::Null };
        buf.clear();
        let finite = match self.values {
            Values::AllNull => return Row::Null,
            Values::F32(v) => read(v, start, len, buf),
            Values::F64(v) => read(v, start, len, buf),
        };
        Row::Values { values: buf, finite }
    }
}

fn read<T>(values: &datafusion::arrow::array::PrimitiveArray<T>, start: usize, len: usize, buf: &mut Vec<f64>) -> bool
where
    T: datafusion::arrow::datatypes::ArrowPrimitiveType,
    T::Native: Into<f64>,
{
    let slice = &values.values()[start..start + len];
    buf.extend(slice.iter().map(|&v| v.into()));
    if values.null_count() > 0 {
        for (i, b) in buf.iter_mut().enumerate() {
            if values.is_null(start + i) {
                *b = f64::NAN;
            }
        }
    }
    buf.iter().all(|v| v.is_finite())
}
