//! `hill_index(x, k)`: Hill's estimator of the tail index α on the k largest |x|
//! (P(|X| > x) ~ x^−α). NULL, non-finite and zero inputs are skipped; NULL when
//! no more than k values remain. `k` is a constant ≥ 1.
//!
//! ```sql
//! SELECT param, hill_index(value, 1000) FROM grad_values WHERE kind = 'minibatch' AND step = 0 GROUP BY param
//! ```

use super::docs::{FunctionDoc, Section};
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::physical_expr::PhysicalExpr;

use super::args::constant_int;
use super::results::f64_value;
use super::sample_function::SampleFunction;
use super::sample_state::Keep;
use gradlake_stats::tail_index::hill;

/// `hill_index`.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct HillIndex;

impl SampleFunction for HillIndex {
    const NAME: &'static str = "hill_index";
    const USAGE: &'static str = "hill_index(x, k)";
    const DOC: FunctionDoc = FunctionDoc {
        section: Section::Statistics,
        description: "Hill's estimator of the tail index from the k largest |x|.",
        arguments: &[
            ("x", "the sample; zeros, NULL and non-finite values are skipped"),
            ("k", "constant number of order statistics used"),
        ],
        example: "SELECT param, hill_index(abs(value), 100) AS tail FROM grad_values WHERE kind = 'full' GROUP BY param",
    };
    const KEEP: Keep = Keep::NonZeroMagnitude;
    const CONSTANTS: &'static [DataType] = &[DataType::Int64];
    const REQUIRED: usize = 1;
    type Params = usize;

    fn params(exprs: &[Arc<dyn PhysicalExpr>]) -> Result<usize> {
        match constant_int(Self::NAME, "k", exprs, 1, 1)? {
            Some(k) => Ok(k as usize),
            None => plan_err!("{}: argument k is required", Self::NAME),
        }
    }

    fn return_type() -> DataType {
        DataType::Float64
    }

    fn evaluate(&k: &usize, sorted: &mut [f64], _skipped: u64) -> Result<ScalarValue> {
        Ok(f64_value(hill(sorted, k)))
    }
}
