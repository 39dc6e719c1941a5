//! `spectrum_ks_test(eigs [, significance] [, options])`: the paper's KS test of a power-law spectrum.
//!
//! The nonzero eigenvalues are fitted as a sample with density p(λ) ∝ λ^−β
//! above xmin (Clauset–Shalizi–Newman, exactly as `powerlaw_ks_test`), and
//! s = 1/(β − 1) (if λ_k = λ_1·k^−s, the eigenvalues' density has
//! β = 1 + 1/s). `power_law` is true when ks ≤ ks_critical =
//! c(significance)/√n_tail (c(0.05) = 1.358). Returns
//! `{beta, s, ks, ks_critical, power_law, xmin, n_tail}`; NULL fields with
//! fewer than two distinct nonzero eigenvalues, NULL for a NULL list.
//! `options` chooses the xmin rule and the KS convention under ties, as for
//! `powerlaw_ks_test` (e.g. `'xmin=all'` fits every nonzero eigenvalue).
//!
//! ```sql
//! SELECT param, spectrum_ks_test(cov_spectrum(values)) FROM grad_vectors WHERE kind = 'noise' GROUP BY param
//! ```

use super::docs::{FunctionDoc, Section};
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, Fields, Float64Type};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};

use super::args::{is_string, parse_options};
use super::results::{f64_value, i64_value, struct_value};
use super::row_udf::RowFunction;
use super::vectors::{Row, Vectors, coerce_vector};
use gradlake_stats::powerlaw::FitOptions;
use gradlake_stats::spectrum::fit::spectrum_ks_test;

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
    const USAGE: &'static str = "spectrum_ks_test(eigs [, significance] [, options])";
    const DOC: FunctionDoc = FunctionDoc {
        section: Section::Spectra,
        description: "The paper's KS test of a power-law spectrum: the eigenvalues' density fitted as p(lambda) ∝ lambda^-beta by exact CSN, s = 1/(beta - 1). Returns {beta, s, ks, ks_critical, power_law, xmin, n_tail}.",
        arguments: &[
            ("eigs", "eigenvalues, e.g. cov_spectrum(...)"),
            ("significance", "optional constant level of the test, default 0.05"),
            (
                "options",
                "power-law fit options, a constant string of key=value pairs: xmin=csn|csn:K|top:F|value:X|all, ks=csn|powerlaw",
            ),
        ],
        example: "SELECT spectrum_ks_test(cov_spectrum(\"values\", 'fd', 64)) FROM grad_vectors WHERE kind = 'noise' AND param = 'fc1.weight'",
    };
    const MIN_ARGS: usize = 1;
    const MAX_ARGS: usize = 3;

    fn coerce(types: &[DataType]) -> Result<Vec<DataType>> {
        let mut out = vec![coerce_vector(Self::NAME, "eigs", &types[0])?];
        for (i, t) in types.iter().enumerate().skip(1) {
            let last = i + 1 == types.len();
            out.push(if last && is_string(t) { DataType::Utf8 } else { DataType::Float64 });
        }
        if types.len() == 3 && !is_string(&types[2]) {
            return plan_err!("{}: argument options must be a string, got {}", Self::NAME, types[2]);
        }
        Ok(out)
    }

    fn return_type(_: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(fields()))
    }

    fn invoke(args: &[ArrayRef], rows: usize, return_type: &DataType) -> Result<ArrayRef> {
        let eigs = Vectors::new(Self::NAME, &args[0])?;
        let options_column =
            args[1..].last().filter(|a| a.data_type() == &DataType::Utf8).map(|a| a.as_string::<i32>());
        let significance_columns = args.len() - 1 - usize::from(options_column.is_some());
        let significance = (significance_columns == 1).then(|| args[1].as_primitive::<Float64Type>().clone());
        let mut buf = Vec::new();
        let mut out = Vec::with_capacity(rows);
        // Options are almost always one literal: parse each distinct text once.
        let mut parsed: Option<(String, FitOptions)> = None;
        for row in 0..rows {
            let level = match &significance {
                Some(a) if a.is_valid(row) => a.value(row),
                _ => 0.05,
            };
            if !(level > 0.0 && level < 1.0) {
                return exec_err!("{}: argument significance must be in (0, 1), got {level}", Self::NAME);
            }
            let options = match options_column.filter(|a| a.is_valid(row)).map(|a| a.value(row)) {
                None => FitOptions::default(),
                Some(text) => match &parsed {
                    Some((t, o)) if t == text => *o,
                    _ => {
                        let o = parse_options(Self::NAME, text)?;
                        parsed = Some((text.to_string(), o));
                        o
                    }
                },
            };
            out.push(match eigs.row(row, &mut buf) {
                Row::Null => ScalarValue::try_from(return_type)?,
                Row::Values { values, .. } => {
                    let t = spectrum_ks_test(values, level, &options);
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
