//! `powerlaw_ks_test(x [, significance])`: the power-law test of Xie et al. (2023).
//!
//! Fits the tail exactly (as [`powerlaw_fit`](super::powerlaw_fit)) and compares
//! its KS distance with ks_critical = c(significance)/√n_tail, c(0.05) = 1.358.
//! Returns `{alpha, xmin, ks, ks_critical, n_tail, power_law}`: `power_law` is
//! true when ks ≤ ks_critical (the power-law hypothesis is not rejected).
//! `significance` is a constant in (0, 1), default 0.05. NULL fields when the
//! group has fewer than two distinct positive values.
//!
//! ```sql
//! SELECT param_id, powerlaw_ks_test(abs(value)) FROM grad_values WHERE step = 100 GROUP BY param_id
//! ```

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, StructArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};

use super::args::{check_arity, coerce_float, constant_float_in};
use super::sample_state::{SampleState, state_fields};
use crate::stats::powerlaw::{Candidates, fit, ks_test};

const NAME: &str = "powerlaw_ks_test";

/// The `powerlaw_ks_test` aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PowerLawKsTestUdaf {
    signature: Signature,
}

impl PowerLawKsTestUdaf {
    /// A new instance.
    pub fn new() -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

impl Default for PowerLawKsTestUdaf {
    fn default() -> Self {
        Self::new()
    }
}

/// The fields of the result struct.
pub fn result_fields() -> Fields {
    Fields::from(vec![
        Field::new("alpha", DataType::Float64, true),
        Field::new("xmin", DataType::Float64, true),
        Field::new("ks", DataType::Float64, true),
        Field::new("ks_critical", DataType::Float64, true),
        Field::new("n_tail", DataType::Int64, true),
        Field::new("power_law", DataType::Boolean, true),
    ])
}

impl AggregateUDFImpl for PowerLawKsTestUdaf {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, types: &[DataType]) -> Result<Vec<DataType>> {
        check_arity(NAME, types, 1, 2, "powerlaw_ks_test(x [, significance])")?;
        let mut out = vec![coerce_float(NAME, "x", &types[0])?];
        if types.len() == 2 {
            out.push(DataType::Float64);
        }
        Ok(out)
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(result_fields()))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(state_fields(args.name))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let significance = constant_float_in(NAME, "significance", args.exprs, 1, 0.0, 1.0)?.unwrap_or(0.05);
        Ok(Box::new(KsTestAccumulator { state: SampleState::default(), significance }))
    }
}

#[derive(Debug)]
struct KsTestAccumulator {
    state: SampleState,
    significance: f64,
}

impl Accumulator for KsTestAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.state.update(&values[0])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let (sorted, _) = self.state.sorted();
        let f = fit(sorted, Candidates::All);
        let test = f.as_ref().and_then(|f| ks_test(f, self.significance));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Float64Array::from(vec![f.map(|f| f.alpha)])),
            Arc::new(Float64Array::from(vec![f.map(|f| f.xmin)])),
            Arc::new(Float64Array::from(vec![f.map(|f| f.ks)])),
            Arc::new(Float64Array::from(vec![test.map(|t| t.0)])),
            Arc::new(Int64Array::from(vec![f.map(|f| f.n_tail as i64)])),
            Arc::new(BooleanArray::from(vec![test.map(|t| t.1)])),
        ];
        Ok(ScalarValue::Struct(Arc::new(StructArray::new(result_fields(), columns, None))))
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
