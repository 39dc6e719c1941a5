//! `spectrum_ks_test(eigs [, significance])`: the paper's KS test of a power-law spectrum.
//!
//! The nonzero eigenvalues are fitted as a sample with density p(λ) ∝ λ^−β
//! above xmin (Clauset–Shalizi–Newman, exactly as `powerlaw_ks_test`), and
//! s = 1/(β − 1) (if λ_k = λ_1·k^−s, the eigenvalues' density has
//! β = 1 + 1/s). `power_law` is true when ks ≤ ks_critical =
//! c(significance)/√n_tail (c(0.05) = 1.358). Returns
//! `{beta, s, ks, ks_critical, power_law, xmin, n_tail}`; NULL fields with
//! fewer than two distinct nonzero eigenvalues, NULL for a NULL list.
//!
//! ```sql
//! SELECT param, spectrum_ks_test(cov_spectrum(values)) FROM grad_vectors WHERE kind = 'noise' GROUP BY param
//! ```

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, Fields, Float64Type};
use datafusion::common::{Result, ScalarValue, exec_err};

use super::row_udf::RowFunction;
use super::sample_udaf::{f64_value, i64_value, struct_value};
use super::vectors::{Row, Vectors, coerce_vector};
use crate::spectrum::fit::spectrum_ks_test;

/// `spectrum_ks_test`.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct SpectrumKsTestFunction;

fn fields() -> Fields {
    Fields::from(vec![
        Field::new("beta", DataType::Float64, true),
        Field::new("s", DataType::Float64, true),
        Field::new("ks", DataType::Float64, true),
        Field::new("ks_critical", DataType::Float64, true),
        Field::new("power_law", DataType::Boolean, true),
        Field::new("xmin", DataType::Float64, true),
        Field::new("n_tail", DataType::Int64, true),
    ])
}

impl RowFunction for SpectrumKsTestFunction {
    const NAME: &'static str = "spectrum_ks_test";
    const USAGE: &'static str = "spectrum_ks_test(eigs [, significance])";
    const MIN_ARGS: usize = 1;
    const MAX_ARGS: usize = 2;

    fn coerce(types: &[DataType]) -> Result<Vec<DataType>> {
        let mut out = vec![coerce_vector(Self::NAME, "eigs", &types[0])?];
        out.extend(types[1..].iter().map(|_| DataType::Float64));
        Ok(out)
    }

    fn return_type(_: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(fields()))
    }

    fn invoke(args: &[ArrayRef], rows: usize, return_type: &DataType) -> Result<ArrayRef> {
        let eigs = Vectors::new(Self::NAME, &args[0])?;
        let significance = args.get(1).map(|a| a.as_primitive::<Float64Type>().clone());
        let mut buf = Vec::new();
        let mut out = Vec::with_capacity(rows);
        for row in 0..rows {
            let level = match &significance {
                Some(a) if a.is_valid(row) => a.value(row),
                _ => 0.05,
            };
            if !(level > 0.0 && level < 1.0) {
                return exec_err!("{}: argument significance must be in (0, 1), got {level}", Self::NAME);
            }
            out.push(match eigs.row(row, &mut buf) {
                Row::Null => ScalarValue::try_from(return_type)?,
                Row::Values { values, .. } => {
                    let t = spectrum_ks_test(values, level);
                    struct_value(
                        &fields(),
                        vec![
                            f64_value(t.map(|t| t.beta)),
                            f64_value(t.map(|t| t.s)),
                            f64_value(t.map(|t| t.ks)),
                            f64_value(t.map(|t| t.ks_critical)),
                            ScalarValue::Boolean(t.map(|t| t.power_law)),
                            f64_value(t.map(|t| t.xmin)),
                            i64_value(t.map(|t| t.n_tail)),
                        ],
                    )?
                }
            });
        }
        ScalarValue::iter_to_array(out)
    }
}
