//! Result scalars shared by the functions: struct results and nullable numbers.

use datafusion::arrow::datatypes::Fields;
use datafusion::common::scalar::ScalarStructBuilder;
use datafusion::common::{Result, ScalarValue};

/// A struct scalar from `fields` and one value per field.
pub(crate) fn struct_value(fields: &Fields, values: Vec<ScalarValue>) -> Result<ScalarValue> {
    fields.iter().zip(values).fold(ScalarStructBuilder::new(), |b, (f, v)| b.with_scalar(f.clone(), v)).build()
}

/// `Some(v)` as a Float64 scalar, NULL for `None`.
pub(crate) fn f64_value(v: Option<f64>) -> ScalarValue {
    ScalarValue::Float64(v)
}

/// `Some(v)` as an Int64 scalar, NULL for `None`.
pub(crate) fn i64_value(v: Option<u64>) -> ScalarValue {
    ScalarValue::Int64(v.map(|v| v as i64))
}
