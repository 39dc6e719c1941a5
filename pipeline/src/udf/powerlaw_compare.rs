//! `powerlaw_compare(x, alternative [, options])`: likelihood-ratio test of the fitted
//! power-law tail against `exponential`, `lognormal`, `stretched_exponential`
//! (Vuong's normalized ratio, two-sided p) or `truncated_power_law` (nested, χ²₁).
//!
//! Returns `{alternative, loglik_ratio, normalized_ratio, p_value}`. A positive
//! ratio favours the power law; p is the significance of its sign. The tail is
//! the one `powerlaw_fit` chooses with the same `options`; see `stats::powerlaw_compare` for how the
//! alternatives are fitted and what happens in degenerate cases.
//!
//! ```sql
//! SELECT powerlaw_compare(abs(value), 'lognormal') FROM grad_values WHERE kind = 'full'
//! ```

use super::docs::{FunctionDoc, Section};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::physical_expr::PhysicalExpr;

use super::args::{constant_str, split_options};
use super::fit_memo::fit_once;
use super::results::{f64_value, struct_value};
use super::sample_function::SampleFunction;
use super::sample_state::Keep;
use gradlake_stats::powerlaw::FitOptions;
use gradlake_stats::powerlaw_compare::{Alternative, compare};

/// `powerlaw_compare`.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct PowerLawCompare;

fn fields() -> Fields {
    Fields::from(vec![
        Field::new("alternative", DataType::Utf8, true),
        Field::new("loglik_ratio", DataType::Float64, true),
        Field::new("normalized_ratio", DataType::Float64, true),
        Field::new("p_value", DataType::Float64, true),
    ])
}

impl SampleFunction for PowerLawCompare {
    const NAME: &'static str = "powerlaw_compare";
    const USAGE: &'static str = "powerlaw_compare(x, alternative [, options])";
    const DOC: FunctionDoc = FunctionDoc {
        section: Section::Statistics,
        description: "Likelihood ratio of the fitted power-law tail against an alternative distribution on the same tail: exponential, lognormal, stretched_exponential (Vuong's test) or truncated_power_law (nested, chi-squared with one degree of freedom). Returns {alternative, loglik_ratio, normalized_ratio, p_value}; a positive ratio favours the power law.",
        arguments: &[
            ("x", "the sample, e.g. abs(value)"),
            ("alternative", "constant: exponential, lognormal, stretched_exponential or truncated_power_law"),
            (
                "options",
                "power-law fit options, a constant string of key=value pairs: xmin=csn|csn:K|top:F|value:X|all, ks=csn|powerlaw",
            ),
        ],
        example: "SELECT powerlaw_compare(abs(value), 'lognormal') AS vs FROM grad_values WHERE kind = 'noise' AND param = 'fc2.weight'",
    };
    const KEEP: Keep = Keep::Positive;
    const CONSTANTS: &'static [DataType] = &[DataType::Utf8];
    const REQUIRED: usize = 1;
    const OPTIONS: bool = true;
    type Params = (Alternative, FitOptions);

    fn params(exprs: &[Arc<dyn PhysicalExpr>]) -> Result<(Alternative, FitOptions)> {
        let (exprs, options) = split_options(Self::NAME, exprs, Self::REQUIRED)?;
        match constant_str(Self::NAME, "alternative", exprs, 1)? {
            Some(s) => Ok((s.parse().or_else(|e| plan_err!("{}: argument alternative: {e}", Self::NAME))?, options)),
            None => plan_err!("{}: argument alternative is required", Self::NAME),
        }
    }

    fn return_type() -> DataType {
        DataType::Struct(fields())
    }

    fn evaluate(
        (alternative, options): &(Alternative, FitOptions),
        sorted: &mut [f64],
        _skipped: u64,
    ) -> Result<ScalarValue> {
        let c = fit_once(sorted, options).and_then(|f| compare(sorted, &f, *alternative));
        struct_value(
            &fields(),
            vec![
                ScalarValue::Utf8(Some(alternative.to_string())),
                f64_value(c.map(|c| c.loglik_ratio)),
                f64_value(c.map(|c| c.normalized_ratio)),
                f64_value(c.map(|c| c.p_value)),
            ],
        )
    }
}
