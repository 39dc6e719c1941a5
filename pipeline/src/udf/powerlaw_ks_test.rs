//! `powerlaw_ks_test(x [, significance] [, options])`: the power-law test of Xie et al. (2023).
//!
//! Fits the tail exactly (as `powerlaw_fit`, with the same `options` for the
//! xmin rule and the KS convention) and compares its KS distance with
//! ks_critical = c(significance)/√n_tail, c(0.05) = 1.358. Returns
//! `{alpha, xmin, ks, ks_critical, n_tail, power_law}`: `power_law` is true when
//! ks ≤ ks_critical (the power-law hypothesis is not rejected). `significance`
//! is a constant in (0, 1), default 0.05. Inputs that are NULL, non-finite or
//! ≤ 0 are skipped; NULL fields when fewer than two distinct values remain.
//!
//! ```sql
//! SELECT param_id, powerlaw_ks_test(abs(value)) FROM grad_values WHERE step = 100 GROUP BY param_id
//! ```

use super::docs::{FunctionDoc, Section};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::{Result, ScalarValue};
use datafusion::physical_expr::PhysicalExpr;

use super::args::{constant_float_in, split_options};
use super::fit_memo::fit_once;
use super::results::{f64_value, i64_value, struct_value};
use super::sample_function::SampleFunction;
use super::sample_state::Keep;
use gradlake_stats::powerlaw::{FitOptions, ks_test};

/// `powerlaw_ks_test`.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct PowerLawKsTest;

fn fields() -> Fields {
    Fields::from(vec![
        Field::new("alpha", DataType::Float64, true),
        Field::new("xmin", DataType::Float64, true),
        Field::new("ks", DataType::Float64, true),
        Field::new("ks_critical", DataType::Float64, true),
        Field::new("n_tail", DataType::Int64, true),
        Field::new("power_law", DataType::Boolean, true),
    ])
}

impl SampleFunction for PowerLawKsTest {
    const NAME: &'static str = "powerlaw_ks_test";
    const USAGE: &'static str = "powerlaw_ks_test(x [, significance] [, options])";
    const DOC: FunctionDoc = FunctionDoc {
        section: Section::Statistics,
        description: "The power-law test of the paper (Xie et al., 2023): the CSN fit of the positive values and its KS distance against ks_critical = c(significance)/sqrt(n_tail) (c(0.05) = 1.358). Returns {alpha, xmin, ks, ks_critical, n_tail, power_law}; power_law is true when the power law is not rejected.",
        arguments: &[
            ("x", "the sample, e.g. abs(value)"),
            ("significance", "optional constant level of the test, default 0.05"),
            (
                "options",
                "power-law fit options, a constant string of key=value pairs: xmin=csn|csn:K|top:F|value:X|all, ks=csn|powerlaw",
            ),
        ],
        example: "SELECT param, powerlaw_ks_test(abs(value)) AS t FROM grad_values WHERE kind = 'minibatch' AND step = 0 GROUP BY param",
    };
    const KEEP: Keep = Keep::Positive;
    const CONSTANTS: &'static [DataType] = &[DataType::Float64];
    const REQUIRED: usize = 0;
    const OPTIONS: bool = true;
    /// (significance, options)
    type Params = (f64, FitOptions);

    fn params(exprs: &[Arc<dyn PhysicalExpr>]) -> Result<(f64, FitOptions)> {
        let (exprs, options) = split_options(Self::NAME, exprs, Self::REQUIRED)?;
        Ok((constant_float_in(Self::NAME, "significance", exprs, 1, 0.0, 1.0)?.unwrap_or(0.05), options))
    }

    fn return_type() -> DataType {
        DataType::Struct(fields())
    }

    fn evaluate((significance, options): &(f64, FitOptions), sorted: &mut [f64], _skipped: u64) -> Result<ScalarValue> {
        let f = fit_once(sorted, options);
        let test = f.as_ref().and_then(|f| ks_test(f, *significance));
        struct_value(
            &fields(),
            vec![
                f64_value(f.map(|f| f.alpha)),
                f64_value(f.map(|f| f.xmin)),
                f64_value(f.map(|f| f.ks)),
                f64_value(test.map(|t| t.0)),
                i64_value(f.map(|f| f.n_tail)),
                ScalarValue::Boolean(test.map(|t| t.1)),
            ],
        )
    }
}
