//! Argument handling shared by the functions: type coercion with errors that
//! name the function and argument, and constant (literal) arguments.

use std::sync::Arc;

use datafusion::arrow::array::{Array, BooleanArray};
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::ColumnarValue;
use datafusion::physical_expr::PhysicalExpr;

use gradlake_stats::powerlaw::FitOptions;

/// Coerces a data argument: Float32 stays, Float64 stays, other numbers and NULL become Float64.
pub(crate) fn coerce_float(function: &str, arg: &str, t: &DataType) -> Result<DataType> {
    match t {
        DataType::Float32 | DataType::Float64 => Ok(t.clone()),
        DataType::Null => Ok(DataType::Float64),
        t if t.is_numeric() => Ok(DataType::Float64),
        t => plan_err!("{function}: argument {arg} must be Float32 or Float64, got {t}"),
    }
}

/// Checks the number of arguments.
pub(crate) fn check_arity(function: &str, types: &[DataType], min: usize, max: usize, usage: &str) -> Result<()> {
    if types.len() < min || types.len() > max {
        return plan_err!("{function}: expected {usage}, got {} argument(s)", types.len());
    }
    Ok(())
}

/// The value of constant argument `index`, which must be a literal (or a constant expression).
pub(crate) fn constant(
    function: &str,
    arg: &str,
    exprs: &[Arc<dyn PhysicalExpr>],
    index: usize,
) -> Result<Option<ScalarValue>> {
    let Some(expr) = exprs.get(index) else { return Ok(None) };
    let batch = RecordBatch::new_empty(Arc::new(Schema::empty()));
    match expr.evaluate(&batch) {
        Ok(ColumnarValue::Scalar(s)) => Ok(Some(s)),
        _ => plan_err!("{function}: argument {arg} must be a constant"),
    }
}

/// A constant integer argument ≥ `min`.
pub(crate) fn constant_int(
    function: &str,
    arg: &str,
    exprs: &[Arc<dyn PhysicalExpr>],
    index: usize,
    min: i64,
) -> Result<Option<i64>> {
    match constant(function, arg, exprs, index)? {
        None => Ok(None),
        Some(s) if s.is_null() => plan_err!("{function}: argument {arg} must not be NULL"),
        Some(s) => match s.cast_to(&DataType::Int64)? {
            ScalarValue::Int64(Some(v)) if v >= min => Ok(Some(v)),
            _ => plan_err!("{function}: argument {arg} must be an integer >= {min}, got {s}"),
        },
    }
}

/// A constant float argument in the open interval (lo, hi).
pub(crate) fn constant_float_in(
    function: &str,
    arg: &str,
    exprs: &[Arc<dyn PhysicalExpr>],
    index: usize,
    lo: f64,
    hi: f64,
) -> Result<Option<f64>> {
    match constant(function, arg, exprs, index)? {
        None => Ok(None),
        Some(s) if s.is_null() => plan_err!("{function}: argument {arg} must not be NULL"),
        Some(s) => match s.cast_to(&DataType::Float64)? {
            ScalarValue::Float64(Some(v)) if v > lo && v < hi => Ok(Some(v)),
            _ => plan_err!("{function}: argument {arg} must be a number in ({lo}, {hi}), got {s}"),
        },
    }
}

/// A constant string argument.
pub(crate) fn constant_str(
    function: &str,
    arg: &str,
    exprs: &[Arc<dyn PhysicalExpr>],
    index: usize,
) -> Result<Option<String>> {
    match constant(function, arg, exprs, index)? {
        None => Ok(None),
        Some(ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s))) => {
            Ok(Some(s))
        }
        Some(s) => plan_err!("{function}: argument {arg} must be a string, got {s}"),
    }
}

/// Whether `t` is a string type (the options argument of the power-law functions).
pub(crate) fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// Coerces the constant arguments after `x`: `constants` in order, the first
/// `required` of them mandatory, then — for the power-law functions — an optional
/// trailing options string, recognised by its type.
pub(crate) fn coerce_with_options(
    function: &str,
    usage: &str,
    types: &[DataType],
    constants: &[DataType],
    required: usize,
) -> Result<Vec<DataType>> {
    let with_options = types.len() >= 2 + required && types.last().is_some_and(is_string);
    let positional = types.len() - usize::from(with_options);
    check_arity(function, &types[..positional], 1 + required, 1 + constants.len(), usage)?;
    let mut out = vec![coerce_float(function, "x", &types[0])?];
    out.extend(constants[..positional - 1].iter().cloned());
    if with_options {
        out.push(DataType::Utf8);
    }
    Ok(out)
}

/// Splits the trailing options string off the arguments (after the `required`
/// constants), parsed; the default options when there is none.
pub(crate) fn split_options<'a>(
    function: &str,
    exprs: &'a [Arc<dyn PhysicalExpr>],
    required: usize,
) -> Result<(&'a [Arc<dyn PhysicalExpr>], FitOptions)> {
    if exprs.len() >= 2 + required {
        let last = exprs.len() - 1;
        if let Some(ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s))) =
            constant(function, "options", exprs, last)?
        {
            return Ok((&exprs[..last], parse_options(function, &s)?));
        }
    }
    Ok((exprs, FitOptions::default()))
}

/// Parses an options text, with an error naming the function.
pub(crate) fn parse_options(function: &str, text: &str) -> Result<FitOptions> {
    text.parse().or_else(|e| plan_err!("{function}: argument options '{text}': {e}"))
}

/// Whether `row` passes an aggregate's FILTER clause (none: every row does).
pub(crate) fn passes(filter: Option<&BooleanArray>, row: usize) -> bool {
    filter.is_none_or(|f| f.is_valid(row) && f.value(row))
}
