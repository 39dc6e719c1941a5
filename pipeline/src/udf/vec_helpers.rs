//! `vec_sub(a, b)`, `vec_norm(a)`, `vec_dot(a, b)`: element-wise helpers on vectors.
//!
//! Vectors are List, LargeList or FixedSizeList of Float32/Float64. `vec_sub`
//! returns `List<Float32>` when both are Float32 (gradients stay compact),
//! `List<Float64>` otherwise; `vec_norm` (Euclidean) and `vec_dot` return
//! Float64, accumulated in f64. NULL in, NULL out; vectors of different
//! lengths in one row are an error naming the function and the row. Non-finite
//! values propagate as IEEE arithmetic says.
//!
//! ```sql
//! SELECT d.sample, vec_norm(vec_sub(d.values, f.values)) AS noise_norm
//! FROM grad_vectors d JOIN grad_vectors f USING (run, step, param_id)
//! WHERE d.kind = 'draw' AND f.kind = 'full'
//! ```

use super::docs::{FunctionDoc, Section};
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float32Builder, Float64Array, Float64Builder, ListBuilder};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{Result, exec_err};

use super::row_udf::RowFunction;
use super::vectors::{Row, Vectors, coerce_vector};

fn item_type(t: &DataType) -> Option<&DataType> {
    match t {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => Some(f.data_type()),
        _ => None,
    }
}

fn coerce_all(function: &str, types: &[DataType]) -> Result<Vec<DataType>> {
    let names = ["a", "b"];
    types.iter().zip(names).map(|(t, name)| coerce_vector(function, name, t)).collect()
}

/// Calls `f` with each row's pair of vectors (`None` if either is NULL).
fn for_each_pair(
    function: &str,
    a: &ArrayRef,
    b: &ArrayRef,
    mut f: impl FnMut(Option<(&[f64], &[f64])>) -> Result<()>,
) -> Result<()> {
    let (va, vb) = (Vectors::new(function, a)?, Vectors::new(function, b)?);
    let (mut bufa, mut bufb) = (Vec::new(), Vec::new());
    for row in 0..va.len() {
        match (va.row(row, &mut bufa), vb.row(row, &mut bufb)) {
            (Row::Values { values: x, .. }, Row::Values { values: y, .. }) => {
                if x.len() != y.len() {
                    return exec_err!(
                        "{function}: vectors of different lengths in row {row}: {} and {}",
                        x.len(),
                        y.len()
                    );
                }
                f(Some((x, y)))?
            }
            _ => f(None)?,
        }
    }
    Ok(())
}

/// `vec_sub`.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct VecSub;

impl RowFunction for VecSub {
    const NAME: &'static str = "vec_sub";
    const USAGE: &'static str = "vec_sub(a, b)";
    const DOC: FunctionDoc = FunctionDoc {
        section: Section::Vectors,
        description: "Element-wise difference of two vectors of one length (Float32 when both are).",
        arguments: &[("a", "a vector"), ("b", "a vector of the same length")],
        example: "SELECT vec_sub(d.\"values\", f.\"values\") FROM grad_vectors d JOIN grad_vectors f ON d.step = f.step AND d.param = f.param WHERE d.kind = 'draw' AND f.kind = 'full'",
    };
    const MIN_ARGS: usize = 2;
    const MAX_ARGS: usize = 2;

    fn coerce(types: &[DataType]) -> Result<Vec<DataType>> {
        coerce_all(Self::NAME, types)
    }

    fn return_type(types: &[DataType]) -> Result<DataType> {
        let f32_only = types.iter().all(|t| item_type(t) == Some(&DataType::Float32));
        let item = if f32_only { DataType::Float32 } else { DataType::Float64 };
        Ok(DataType::List(Arc::new(Field::new_list_field(item, true))))
    }

    fn invoke(args: &[ArrayRef], rows: usize, return_type: &DataType) -> Result<ArrayRef> {
        if item_type(return_type) == Some(&DataType::Float32) {
            let mut out = ListBuilder::with_capacity(Float32Builder::new(), rows);
            for_each_pair(Self::NAME, &args[0], &args[1], |pair| {
                match pair {
                    Some((x, y)) => out.append_value(x.iter().zip(y).map(|(a, b)| Some((a - b) as f32))),
                    None => out.append_null(),
                }
                Ok(())
            })?;
            Ok(Arc::new(out.finish()))
        } else {
            let mut out = ListBuilder::with_capacity(Float64Builder::new(), rows);
            for_each_pair(Self::NAME, &args[0], &args[1], |pair| {
                match pair {
                    Some((x, y)) => out.append_value(x.iter().zip(y).map(|(a, b)| Some(a - b))),
                    None => out.append_null(),
                }
                Ok(())
            })?;
            Ok(Arc::new(out.finish()))
        }
    }
}

/// `vec_dot`.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct VecDot;

impl RowFunction for VecDot {
    const NAME: &'static str = "vec_dot";
    const USAGE: &'static str = "vec_dot(a, b)";
    const DOC: FunctionDoc = FunctionDoc {
        section: Section::Vectors,
        description: "Dot product of two vectors of one length, in Float64.",
        arguments: &[("a", "a vector"), ("b", "a vector of the same length")],
        example: "SELECT vec_dot(\"values\", \"values\") FROM grad_vectors WHERE kind = 'full'",
    };
    const MIN_ARGS: usize = 2;
    const MAX_ARGS: usize = 2;

    fn coerce(types: &[DataType]) -> Result<Vec<DataType>> {
        coerce_all(Self::NAME, types)
    }

    fn return_type(_: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke(args: &[ArrayRef], rows: usize, _: &DataType) -> Result<ArrayRef> {
        let mut out = Vec::with_capacity(rows);
        for_each_pair(Self::NAME, &args[0], &args[1], |pair| {
            out.push(pair.map(|(x, y)| x.iter().zip(y).map(|(a, b)| a * b).sum::<f64>()));
            Ok(())
        })?;
        Ok(Arc::new(Float64Array::from(out)))
    }
}

/// `vec_norm`.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct VecNorm;

impl RowFunction for VecNorm {
    const NAME: &'static str = "vec_norm";
    const USAGE: &'static str = "vec_norm(a)";
    const DOC: FunctionDoc = FunctionDoc {
        section: Section::Vectors,
        description: "Euclidean norm of a vector, in Float64.",
        arguments: &[("a", "a vector")],
        example: "SELECT step, param, vec_norm(\"values\") FROM grad_vectors WHERE kind = 'minibatch'",
    };
    const MIN_ARGS: usize = 1;
    const MAX_ARGS: usize = 1;

    fn coerce(types: &[DataType]) -> Result<Vec<DataType>> {
        coerce_all(Self::NAME, types)
    }

    fn return_type(_: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke(args: &[ArrayRef], rows: usize, _: &DataType) -> Result<ArrayRef> {
        let vectors = Vectors::new(Self::NAME, &args[0])?;
        let mut buf = Vec::new();
        let out: Float64Array = (0..rows)
            .map(|row| match vectors.row(row, &mut buf) {
                Row::Values { values, .. } => Some(scaled_norm(values)),
                Row::Null => None,
            })
            .collect();
        Ok(Arc::new(out))
    }
}

/// ‖x‖₂ without overflow or underflow for huge or tiny entries (as LAPACK's nrm2).
fn scaled_norm(x: &[f64]) -> f64 {
    let scale = x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if scale == 0.0 || !scale.is_finite() {
        return if x.iter().any(|v| v.is_nan()) { f64::NAN } else { scale };
    }
    scale * x.iter().map(|v| (v / scale) * (v / scale)).sum::<f64>().sqrt()
}
