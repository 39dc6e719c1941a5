//! A whole-sample aggregate, generic over the statistic it computes.
//!
//! Each SQL function of this kind is a [`SampleFunction`]: its name, which
//! inputs it keeps, its constant arguments, its result type and how it
//! evaluates a sorted sample. [`SampleUdaf`] does the DataFusion plumbing
//! (coercion, constant arguments, state, merging) once for all of them.

use std::fmt::Debug;
use std::hash::Hash;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, GroupsAccumulator, Signature, Volatility,
};

use super::args::{check_arity, coerce_float, coerce_with_options};
use super::sample_function::SampleFunction;
use super::sample_groups::SampleGroups;
use super::sample_state::{Element, SampleState, state_fields};

/// The aggregate for a [`SampleFunction`].
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct SampleUdaf<F> {
    signature: Signature,
    documentation: Documentation,
    function: F,
}

impl<F: SampleFunction> SampleUdaf<F> {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
            documentation: F::DOC.build(F::USAGE),
            function: F::default(),
        }
    }
}

impl<F: SampleFunction> AggregateUDFImpl for SampleUdaf<F> {
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
        if F::OPTIONS {
            return coerce_with_options(F::NAME, F::USAGE, types, F::CONSTANTS, F::REQUIRED);
        }
        check_arity(F::NAME, types, 1 + F::REQUIRED, 1 + F::CONSTANTS.len(), F::USAGE)?;
        let mut out = vec![coerce_float(F::NAME, "x", &types[0])?];
        out.extend(F::CONSTANTS[..types.len() - 1].iter().cloned());
        Ok(out)
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(F::return_type())
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(state_fields(args.name, args.input_fields[0].data_type()))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let params = F::params(args.exprs)?;
        Ok(match args.expr_fields[0].data_type() {
            DataType::Float32 => Box::new(SampleAccumulator::<F, f32> { state: SampleState::new(F::KEEP), params }),
            _ => Box::new(SampleAccumulator::<F, f64> { state: SampleState::new(F::KEEP), params }),
        })
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        let params = F::params(args.exprs)?;
        Ok(match args.expr_fields[0].data_type() {
            DataType::Float32 => Box::new(SampleGroups::<F, f32>::new(params)),
            _ => Box::new(SampleGroups::<F, f64>::new(params)),
        })
    }
}

#[derive(Debug)]
struct SampleAccumulator<F: SampleFunction, T> {
    state: SampleState<T>,
    params: F::Params,
}

impl<F: SampleFunction, T: Element> Accumulator for SampleAccumulator<F, T> {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.state.update(&values[0])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let (mut sorted, skipped) = self.state.sorted();
        F::evaluate(&self.params, &mut sorted, skipped)
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.state.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(self.state.state())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.state.merge(states)
    }
}
