//! `gaussian_test(x)`: is a sample normal?
//!
//! Returns `{mean, std, skewness, excess_kurtosis, ks, ks_p_value, jarque_bera,
//! jb_p_value, n}`: moments, the KS distance to the normal with the sample's
//! mean and standard deviation with its Lilliefors p-value, and Jarque–Bera
//! with its χ²₂ p-value. NULL and non-finite inputs are skipped. NULL fields
//! (except n) with fewer than 3 values or zero variance.
//!
//! ```sql
//! SELECT step, gaussian_test(value) FROM grad_values WHERE kind = 'noise' GROUP BY step
//! ```

use super::docs::{FunctionDoc, Section};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::{Result, ScalarValue};
use datafusion::physical_expr::PhysicalExpr;

use super::results::{f64_value, i64_value, struct_value};
use super::sample_function::SampleFunction;
use super::sample_state::Keep;
use gradlake_stats::gaussian::gaussian_test;

/// `gaussian_test`.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct GaussianTest;

fn fields() -> Fields {
    let f = |n: &str| Field::new(n, DataType::Float64, true);
    Fields::from(vec![
        f("mean"),
        f("std"),
        f("skewness"),
        f("excess_kurtosis"),
        f("ks"),
        f("ks_p_value"),
        f("jarque_bera"),
        f("jb_p_value"),
        Field::new("n", DataType::Int64, true),
    ])
}

impl SampleFunction for GaussianTest {
    const NAME: &'static str = "gaussian_test";
    const USAGE: &'static str = "gaussian_test(x)";
    const DOC: FunctionDoc = FunctionDoc {
        section: Section::Statistics,
        description: "Is the sample Gaussian? The KS distance to the fitted normal with the Lilliefors p-value (Dallal-Wilkinson), and Jarque-Bera with chi-squared(2). Returns {mean, std, skewness, excess_kurtosis, ks, ks_p_value, jarque_bera, jb_p_value, n}.",
        arguments: &[("x", "the sample; NULL and non-finite values are skipped")],
        example: "SELECT idx, gaussian_test(value)['ks_p_value'] AS p FROM grad_values WHERE kind = 'minibatch' AND param = 'fc1.bias' GROUP BY idx",
    };
    const KEEP: Keep = Keep::Finite;
    const CONSTANTS: &'static [DataType] = &[];
    const REQUIRED: usize = 0;
    type Params = ();

    fn params(_: &[Arc<dyn PhysicalExpr>]) -> Result<()> {
        Ok(())
    }

    fn return_type() -> DataType {
        DataType::Struct(fields())
    }

    fn evaluate(_: &(), sorted: &mut [f64], _skipped: u64) -> Result<ScalarValue> {
        let t = gaussian_test(sorted);
        struct_value(
            &fields(),
            vec![
                f64_value(t.map(|t| t.mean)),
                f64_value(t.map(|t| t.std)),
                f64_value(t.map(|t| t.skewness)),
                f64_value(t.map(|t| t.excess_kurtosis)),
                f64_value(t.map(|t| t.ks)),
                f64_value(t.map(|t| t.ks_p_value)),
                f64_value(t.map(|t| t.jarque_bera)),
                f64_value(t.map(|t| t.jb_p_value)),
                i64_value(Some(sorted.len() as u64)),
            ],
        )
    }
}
