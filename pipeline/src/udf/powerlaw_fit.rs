//! `powerlaw_fit(x [, max_candidates])`: the continuous power-law fit of
//! Clauset, Shalizi & Newman (2009) over a group, exact by default.
//!
//! Returns `{alpha, xmin, sigma, ks, n_tail, n, n_skipped}`. Values that are
//! NULL, non-finite or ≤ 0 are skipped and counted in `n_skipped`; `n` counts
//! the values used. With fewer than two distinct values the fit fields are NULL.
//! `max_candidates` (a constant ≥ 1) tries at most that many xmin values at
//! evenly spaced ranks instead of every distinct value.
//!
//! ```sql
//! SELECT param, powerlaw_fit(abs(value)) FROM grad_values WHERE step = 100 GROUP BY param
//! ```

use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};

use super::args::{check_arity, coerce_float, constant_int};
use super::sample_state::{SampleState, state_fields};
use crate::stats::powerlaw::{Candidates, PowerLawFit, fit};

const NAME: &str = "powerlaw_fit";

/// The `powerlaw_fit` aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PowerLawFitUdaf {
    signature: Signature,
}

impl PowerLawFitUdaf {
    /// A new instance.
    pub fn new() -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

impl Default for PowerLawFitUdaf {
    fn default() -> Self {
        Self::new()
    }
}

/// The fields of the result struct.
pub fn result_fields() -> Fields {
    Fields::from(vec![
        Field::new("alpha", DataType::Float64, true),
        Field::new("xmin", DataType::Float64, true),
        Field::new("sigma", DataType::Float64, true),
        Field::new("ks", DataType::Float64, true),
        Field::new("n_tail", DataType::Int64, true),
        Field::new("n", DataType::Int64, false),
        Field::new("n_skipped", DataType::Int64, false),
    ])
}

impl AggregateUDFImpl for PowerLawFitUdaf {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, types: &[DataType]) -> Result<Vec<DataType>> {
        check_arity(NAME, types, 1, 2, "powerlaw_fit(x [, max_candidates])")?;
        let mut out = vec![coerce_float(NAME, "x", &types[0])?];
        if types.len() == 2 {
            out.push(DataType::Int64);
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
        let candidates = match constant_int(NAME, "max_candidates", args.exprs, 1, 1)? {
            Some(k) => Candidates::Quantiles(k as usize),
            None => Candidates::All,
        };
        Ok(Box::new(PowerLawFitAccumulator { state: SampleState::default(), candidates }))
    }
}

#[derive(Debug)]
struct PowerLawFitAccumulator {
    state: SampleState,
    candidates: Candidates,
}

impl Accumulator for PowerLawFitAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.state.update(&values[0])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let (sorted, skipped) = self.state.sorted();
        let n = sorted.len() as i64;
        Ok(fit_struct(fit(sorted, self.candidates).as_ref(), n, skipped as i64))
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

/// The result struct for a fit (NULL fields when there is none).
fn fit_struct(f: Option<&PowerLawFit>, n: i64, skipped: i64) -> ScalarValue {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(datafusion::arrow::array::Float64Array::from(vec![f.map(|f| f.alpha)])),
        Arc::new(datafusion::arrow::array::Float64Array::from(vec![f.map(|f| f.xmin)])),
        Arc::new(datafusion::arrow::array::Float64Array::from(vec![f.map(|f| f.sigma)])),
        Arc::new(datafusion::arrow::array::Float64Array::from(vec![f.map(|f| f.ks)])),
        Arc::new(datafusion::arrow::array::Int64Array::from(vec![f.map(|f| f.n_tail as i64)])),
        Arc::new(datafusion::arrow::array::Int64Array::from(vec![n])),
        Arc::new(datafusion::arrow::array::Int64Array::from(vec![skipped])),
    ];
    ScalarValue::Struct(Arc::new(datafusion::arrow::array::StructArray::new(result_fields(), columns, None)))
}
