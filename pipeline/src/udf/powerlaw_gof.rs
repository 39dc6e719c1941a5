//! `powerlaw_gof(x, reps [, seed] [, options])`: the bootstrap goodness-of-fit
//! test of Clauset, Shalizi & Newman (2009).
//!
//! Returns `{alpha, xmin, ks, p_value, reps}`: p is the share of `reps`
//! synthetic samples (each refitted with its own xmin search, or by the same
//! fixed rule given in `options`) whose KS distance is at least the observed
//! one; p > 0.1 means a power law is plausible. Runs on
//! all cores and gives the same answer for the same `seed` (default 0).
//! Inputs that are NULL, non-finite or ≤ 0 are skipped.
//!
//! ```sql
//! SELECT powerlaw_gof(abs(value), 1000, 42) FROM grad_values WHERE kind = 'full' AND param = 'fc1.weight'
//! ```

use super::docs::{FunctionDoc, Section};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::physical_expr::PhysicalExpr;

use super::args::{constant_int, split_options};
use super::results::{f64_value, i64_value, struct_value};
use super::sample_function::SampleFunction;
use super::sample_state::Keep;
use gradlake_stats::powerlaw::FitOptions;
use gradlake_stats::powerlaw_gof::gof;

/// `powerlaw_gof`.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct PowerLawGof;

fn fields() -> Fields {
    Fields::from(vec![
        Field::new("alpha", DataType::Float64, true),
        Field::new("xmin", DataType::Float64, true),
        Field::new("ks", DataType::Float64, true),
        Field::new("p_value", DataType::Float64, true),
        Field::new("reps", DataType::Int64, true),
    ])
}

impl SampleFunction for PowerLawGof {
    const NAME: &'static str = "powerlaw_gof";
    const USAGE: &'static str = "powerlaw_gof(x, reps [, seed] [, options])";
    const DOC: FunctionDoc = FunctionDoc {
        section: Section::Statistics,
        description: "CSN's semi-parametric bootstrap goodness-of-fit test of the power-law fit: reps synthetic samples, each refitted with its own xmin search (or the same fixed rule); deterministic for a seed. Returns {alpha, xmin, ks, p_value, reps}; p_value above 0.1 means a power law is plausible.",
        arguments: &[
            ("x", "the sample, e.g. abs(value)"),
            ("reps", "constant number of bootstrap replicates"),
            ("seed", "optional constant seed, default 0"),
            (
                "options",
                "power-law fit options, a constant string of key=value pairs: xmin=csn|csn:K|top:F|value:X|all, ks=csn|powerlaw",
            ),
        ],
        example: "SELECT powerlaw_gof(abs(value), 200, 1) AS gof FROM grad_values WHERE kind = 'noise' AND param = 'fc2.weight'",
    };
    const KEEP: Keep = Keep::Positive;
    const CONSTANTS: &'static [DataType] = &[DataType::Int64, DataType::Int64];
    const REQUIRED: usize = 1;
    const OPTIONS: bool = true;
    /// (reps, seed, options)
    type Params = (u64, u64, FitOptions);

    fn params(exprs: &[Arc<dyn PhysicalExpr>]) -> Result<(u64, u64, FitOptions)> {
        let (exprs, options) = split_options(Self::NAME, exprs, Self::REQUIRED)?;
        let Some(reps) = constant_int(Self::NAME, "reps", exprs, 1, 1)? else {
            return plan_err!("{}: argument reps is required", Self::NAME);
        };
        let seed = constant_int(Self::NAME, "seed", exprs, 2, i64::MIN)?.unwrap_or(0);
        Ok((reps as u64, seed as u64, options))
    }

    fn return_type() -> DataType {
        DataType::Struct(fields())
    }

    fn evaluate(
        (reps, seed, options): &(u64, u64, FitOptions),
        sorted: &mut [f64],
        _skipped: u64,
    ) -> Result<ScalarValue> {
        let g = gof(sorted, *reps, *seed, options);
        struct_value(
            &fields(),
            vec![
                f64_value(g.map(|g| g.fit.alpha)),
                f64_value(g.map(|g| g.fit.xmin)),
                f64_value(g.map(|g| g.fit.ks)),
                f64_value(g.map(|g| g.p_value)),
                i64_value(g.map(|g| g.reps)),
            ],
        )
    }
}
