//! A covariance aggregate, generic over what it returns.
//!
//! `cov_spectrum`, `cov_sketch` and `sketch_merge` all fold rows into a
//! [`CovEstimator`]; they differ in their arguments, in whether rows are
//! vectors or stored sketches, and in what they return. [`CovUdaf`] does the
//! DataFusion plumbing once. The state is one LargeBinary field, the
//! estimator in the layout of [`gradlake_stats::spectrum::codec`], so partial
//! aggregates merge across partitions and machines.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, LargeBinaryArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{DataFusionError, Result, ScalarValue, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, GroupsAccumulator, Signature, Volatility,
};
use datafusion::physical_expr::PhysicalExpr;

use super::args::check_arity;
use super::cov_groups::CovGroups;
use super::docs::FunctionDoc;
use super::vectors::{Row, Vectors, coerce_vector};
use gradlake_stats::spectrum::{CovEstimator, Method, SpectrumError, codec};

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

/// The aggregate for a [`CovFunction`].
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct CovUdaf<F> {
    signature: Signature,
    documentation: Documentation,
    function: F,
}

impl<F: CovFunction> CovUdaf<F> {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
            documentation: F::DOC.build(F::USAGE),
            function: F::default(),
        }
    }
}

impl<F: CovFunction> AggregateUDFImpl for CovUdaf<F> {
    fn name(&self) -> &str {
        F::NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&self.documentation)
    }

    fn coerce_types(&self, types: &[DataType]) -> Result<Vec<DataType>> {
        check_arity(F::NAME, types, 1 + F::REQUIRED, 1 + F::CONSTANTS.len(), F::USAGE)?;
        let first = match F::INPUT {
            Input::Vectors => coerce_vector(F::NAME, "v", &types[0])?,
            Input::Sketches => match &types[0] {
                DataType::LargeBinary | DataType::Binary | DataType::BinaryView | DataType::Null => {
                    DataType::LargeBinary
                }
                t => {
                    return plan_err!(
                        "{}: argument s must be a sketch (LargeBinary from cov_sketch), got {t}",
                        F::NAME
                    );
                }
            },
        };
        let mut out = vec![first];
        out.extend(F::CONSTANTS[..types.len() - 1].iter().cloned());
        Ok(out)
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(F::return_type())
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(format!("{}[sketch]", args.name), DataType::LargeBinary, true))])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(CovAccumulator::<F> { method: F::method(args.exprs)?, ..Default::default() }))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(CovGroups::<F>::new(F::method(args.exprs)?)))
    }
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

/// The single-group accumulator.
#[derive(Debug, Default)]
struct CovAccumulator<F> {
    method: Option<Method>,
    estimator: Option<CovEstimator>,
    buf: Vec<f64>,
    _function: std::marker::PhantomData<F>,
}

impl<F: CovFunction> Accumulator for CovAccumulator<F> {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let (method, estimator) = (self.method, &mut self.estimator);
        for_each_item::<F>(&values[0], &mut self.buf, |_, item| apply::<F>(estimator, method, item))
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        F::evaluate(self.estimator.as_mut())
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.buf.capacity() * size_of::<f64>() + self.estimator.as_ref().map_or(0, |e| e.bytes())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        if let Some(e) = self.estimator.as_mut() {
            e.compact().map_err(|err| spectrum_error(F::NAME, err))?;
        }
        let bytes = self.estimator.as_mut().map(codec::encode);
        Ok(vec![ScalarValue::LargeBinary(bytes)])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (method, estimator) = (self.method, &mut self.estimator);
        for_each_state(&states[0], |_, item| apply::<F>(estimator, method, item))
    }
}
