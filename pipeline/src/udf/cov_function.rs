//! The contract of a covariance aggregate and the folding both of its
//! accumulators share: [`super::cov_udaf`] (one group) and
//! [`super::cov_groups`] (many) read input rows and states through here.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, LargeBinaryArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::physical_expr::PhysicalExpr;
use gradlake_stats::spectrum::{CovEstimator, Method, SpectrumError, codec};

use super::docs::FunctionDoc;
use super::vectors::{Row, Vectors};

/// What the rows of a covariance aggregate are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Input {
    /// Observations (vectors).
    Vectors,
    /// Sketches written by `cov_sketch` (LargeBinary).
    Sketches,
}

/// A covariance aggregate `NAME(v, constants...)`.
pub(crate) trait CovFunction: Debug + Default + PartialEq + Eq + Hash + Send + Sync + 'static {
    /// SQL name.
    const NAME: &'static str;
    /// Call syntax, for error messages.
    const USAGE: &'static str;
    /// What `SHOW FUNCTIONS` and `information_schema` tell of it.
    const DOC: FunctionDoc;
    /// What the rows are.
    const INPUT: Input;
    /// Types of the constant arguments after the first.
    const CONSTANTS: &'static [DataType];
    /// How many of them are required.
    const REQUIRED: usize;

    /// The method, from the constant arguments (`exprs[1..]`); `None` when it
    /// comes from the sketches being merged.
    fn method(exprs: &[Arc<dyn PhysicalExpr>]) -> Result<Option<Method>>;
    /// The result type.
    fn return_type() -> DataType;
    /// The result for an estimator (`None`: no row at all).
    fn evaluate(estimator: Option<&mut CovEstimator>) -> Result<ScalarValue>;
}

/// A [`SpectrumError`] as a DataFusion error naming the function.
pub(crate) fn spectrum_error(function: &str, e: SpectrumError) -> DataFusionError {
    DataFusionError::Execution(format!("{function}: {e}"))
}

/// One row of a covariance aggregate's input.
pub(crate) enum Item<'a> {
    /// A usable vector.
    Vector(&'a [f64]),
    /// A NULL vector or one with a non-finite element: skipped and counted.
    Skipped,
    /// A stored sketch.
    Sketch(&'a [u8]),
}

/// Calls `f` for each row of `input` (NULL sketches are ignored).
pub(crate) fn for_each_item<F: CovFunction>(
    input: &ArrayRef,
    buf: &mut Vec<f64>,
    mut f: impl FnMut(usize, Item<'_>) -> Result<()>,
) -> Result<()> {
    match F::INPUT {
        Input::Vectors => {
            let vectors = Vectors::new(F::NAME, input)?;
            for row in 0..vectors.len() {
                match vectors.row(row, buf) {
                    Row::Values { values, finite: true } => f(row, Item::Vector(values))?,
                    _ => f(row, Item::Skipped)?,
                }
            }
        }
        Input::Sketches => for_each_state(input, f)?,
    }
    Ok(())
}

/// Folds one item into `slot`, which starts with `method` (vectors) or with
/// the first sketch merged into it.
pub(crate) fn apply<F: CovFunction>(
    slot: &mut Option<CovEstimator>,
    method: Option<Method>,
    item: Item<'_>,
) -> Result<()> {
    let fresh = || {
        method
            .map(CovEstimator::new)
            .ok_or_else(|| DataFusionError::Internal(format!("{}: a vector aggregate without a method", F::NAME)))
    };
    match item {
        Item::Vector(v) => {
            if slot.is_none() {
                *slot = Some(fresh()?);
            }
            slot.as_mut().expect("set above").push(v).map_err(|e| spectrum_error(F::NAME, e))
        }
        Item::Skipped => {
            if slot.is_none() {
                *slot = Some(fresh()?);
            }
            slot.as_mut().expect("set above").skip();
            Ok(())
        }
        Item::Sketch(bytes) => {
            let other = codec::decode(bytes).map_err(|e| spectrum_error(F::NAME, e))?;
            match slot {
                None => *slot = Some(other),
                Some(e) => e.merge(other).map_err(|e| spectrum_error(F::NAME, e))?,
            }
            Ok(())
        }
    }
}

/// Calls `f` for each non-NULL sketch of a state column.
pub(crate) fn for_each_state(states: &ArrayRef, mut f: impl FnMut(usize, Item<'_>) -> Result<()>) -> Result<()> {
    let sketches = states.as_binary::<i64>();
    for row in 0..sketches.len() {
        if sketches.is_valid(row) {
            f(row, Item::Sketch(sketches.value(row)))?;
        }
    }
    Ok(())
}

/// Encodes estimators as a state column, each compacted first (a state is
/// copied at least once on its way to the final aggregate).
pub(crate) fn state_array(
    function: &str,
    estimators: impl IntoIterator<Item = Option<CovEstimator>>,
) -> Result<LargeBinaryArray> {
    estimators
        .into_iter()
        .map(|e| {
            e.map(|mut e| {
                e.compact().map_err(|err| spectrum_error(function, err))?;
                Ok(codec::encode(&mut e))
            })
            .transpose()
        })
        .collect()
}
