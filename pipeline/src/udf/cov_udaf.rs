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

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, GroupsAccumulator, Signature, Volatility,
};

use super::args::check_arity;
use super::cov_function::{CovFunction, Input, apply, for_each_item, for_each_state, spectrum_error};
use super::cov_groups::CovGroups;
use super::vectors::coerce_vector;
use crate::memory::process;
use gradlake_stats::spectrum::{CovEstimator, Method, codec};

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

    /// Consumes the estimator (DataFusion asks for a state once): its memory
    /// — a sketch's 2ℓ·d buffer — is freed as soon as it is encoded, not when
    /// the partial aggregate's stream ends. A partition's scan is over when
    /// its state is taken, and what its thread freed stays in that thread's
    /// allocator arena, where the final merge (on another thread) cannot
    /// reuse it: it is handed back to the system here.
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let Some(mut estimator) = self.estimator.take() else {
            return Ok(vec![ScalarValue::LargeBinary(None)]);
        };
        estimator.compact().map_err(|err| spectrum_error(F::NAME, err))?;
        let bytes = codec::encode(&mut estimator);
        drop(estimator);
        process::release_free_memory();
        Ok(vec![ScalarValue::LargeBinary(Some(bytes))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (method, estimator) = (self.method, &mut self.estimator);
        for_each_state(&states[0], |_, item| apply::<F>(estimator, method, item))
    }
}
