//! `stable_alpha(x)`: the α-stable tail-index estimator of Mohammadi,
//! Mohammadpour & Ogata (2015), as Şimşekli et al. (2019) used it on gradient noise.
//!
//! Assumes centred, symmetric data (e.g. gradient noise, not raw gradients with
//! a mean). Values are put in a fixed pseudo-random order before being summed
//! in blocks, so the result does not depend on the order rows arrive in.
//! NULL and non-finite inputs are skipped; NULL when the count has no divisor in
//! 2..√n (fewer than 4 values, or a prime count).
//!
//! ```sql
//! SELECT step, stable_alpha(value) FROM grad_values WHERE kind = 'noise' GROUP BY step
//! ```

use super::docs::{FunctionDoc, Section};
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::physical_expr::PhysicalExpr;

use super::results::f64_value;
use super::sample_function::SampleFunction;
use super::sample_state::Keep;
use gradlake_stats::tail_index::{canonical_shuffle, stable_alpha};

/// `stable_alpha`.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct StableAlpha;

impl SampleFunction for StableAlpha {
    const NAME: &'static str = "stable_alpha";
    const USAGE: &'static str = "stable_alpha(x)";
    const DOC: FunctionDoc = FunctionDoc {
        section: Section::Statistics,
        description: "The alpha-stable index estimator (Mohammadi et al., 2015) that Simsekli et al. (2019) use on gradient noise; assumes centred, symmetric data.",
        arguments: &[("x", "the sample, e.g. noise values")],
        example: "SELECT param, stable_alpha(value) AS alpha FROM grad_values WHERE kind = 'noise' GROUP BY param",
    };
    const KEEP: Keep = Keep::Finite;
    const CONSTANTS: &'static [DataType] = &[];
    const REQUIRED: usize = 0;
    type Params = ();

    fn params(_: &[Arc<dyn PhysicalExpr>]) -> Result<()> {
        Ok(())
    }

    fn return_type() -> DataType {
        DataType::Float64
    }

    fn evaluate(_: &(), values: &mut [f64], _skipped: u64) -> Result<ScalarValue> {
        canonical_shuffle(values);
        Ok(f64_value(stable_alpha(values)))
    }
}
