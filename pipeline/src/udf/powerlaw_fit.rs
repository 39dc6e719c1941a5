//! `powerlaw_fit(x [, max_candidates] [, options])`: the continuous power-law
//! fit of Clauset, Shalizi & Newman (2009) over a group, exact by default.
//!
//! Returns `{alpha, xmin, sigma, ks, n_tail, n, n_skipped}`. Values that are
//! NULL, non-finite or ≤ 0 are skipped and counted in `n_skipped`; `n` counts
//! the values used. With fewer than two distinct values in the tail the fit
//! fields are NULL. `max_candidates` (a constant ≥ 1) tries at most that many
//! xmin values at evenly spaced ranks instead of every distinct value.
//! `options` (a constant string) chooses the xmin rule and the KS convention
//! under ties, e.g. `'xmin=top:0.1, ks=powerlaw'` (`stats::powerlaw_options`).
//!
//! ```sql
//! SELECT param, powerlaw_fit(abs(value)) FROM grad_values WHERE step = 100 GROUP BY param
//! ```

use super::docs::{FunctionDoc, Section};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::physical_expr::PhysicalExpr;

use super::args::{constant_int, split_options};
use super::fit_memo::fit_once;
use super::results::{f64_value, i64_value, struct_value};
use super::sample_function::SampleFunction;
use super::sample_state::Keep;
use gradlake_stats::powerlaw::{Candidates, FitOptions, XminRule};

/// `powerlaw_fit`.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct PowerLawFit;

fn fields() -> Fields {
    Fields::from(vec![
        Field::new("alpha", DataType::Float64, true),
        Field::new("xmin", DataType::Float64, true),
        Field::new("sigma", DataType::Float64, true),
        Field::new("ks", DataType::Float64, true),
        Field::new("n_tail", DataType::Int64, true),
        Field::new("n", DataType::Int64, true),
        Field::new("n_skipped", DataType::Int64, true),
    ])
}

impl SampleFunction for PowerLawFit {
    const NAME: &'static str = "powerlaw_fit";
    const USAGE: &'static str = "powerlaw_fit(x [, max_candidates] [, options])";
    const DOC: FunctionDoc = FunctionDoc {
        section: Section::Statistics,
        description: "Fits a continuous power law p(x) ∝ x^-alpha to the tail x ≥ xmin of the positive values, by Clauset, Shalizi and Newman (2009): exact, every distinct value a candidate xmin, the one of least KS distance chosen. Returns {alpha, xmin, sigma, ks, n_tail, n, n_skipped}; NULL, non-finite, zero and negative inputs are skipped and counted.",
        arguments: &[
            ("x", "the sample, e.g. abs(value); Float32 or Float64"),
            (
                "max_candidates",
                "optional constant: search at most this many quantile candidates instead of every distinct value",
            ),
            (
                "options",
                "power-law fit options, a constant string of key=value pairs: xmin=csn|csn:K|top:F|value:X|all, ks=csn|powerlaw",
            ),
        ],
        example: "SELECT param, powerlaw_fit(abs(value)) AS fit FROM grad_values WHERE kind = 'full' AND step = 0 GROUP BY param",
    };
    const KEEP: Keep = Keep::Positive;
    const CONSTANTS: &'static [DataType] = &[DataType::Int64];
    const REQUIRED: usize = 0;
    const OPTIONS: bool = true;
    type Params = FitOptions;

    fn params(exprs: &[Arc<dyn PhysicalExpr>]) -> Result<FitOptions> {
        let (exprs, options) = split_options(Self::NAME, exprs, Self::REQUIRED)?;
        match constant_int(Self::NAME, "max_candidates", exprs, 1, 1)? {
            None => Ok(options),
            Some(k) if options.xmin == XminRule::Search(Candidates::All) => {
                Ok(options.with_xmin(XminRule::Search(Candidates::Quantiles(k as usize))))
            }
            Some(_) => {
                plan_err!("{}: argument max_candidates applies only to xmin=csn, not xmin={}", Self::NAME, options.xmin)
            }
        }
    }

    fn return_type() -> DataType {
        DataType::Struct(fields())
    }

    fn evaluate(options: &FitOptions, sorted: &mut [f64], skipped: u64) -> Result<ScalarValue> {
        let f = fit_once(sorted, options);
        struct_value(
            &fields(),
            vec![
                f64_value(f.map(|f| f.alpha)),
                f64_value(f.map(|f| f.xmin)),
                f64_value(f.map(|f| f.sigma)),
                f64_value(f.map(|f| f.ks)),
                i64_value(f.map(|f| f.n_tail)),
                i64_value(Some(sorted.len() as u64)),
                i64_value(Some(skipped)),
            ],
        )
    }
}
