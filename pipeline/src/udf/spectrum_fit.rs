//! `spectrum_fit(eigs [, kmin [, kmax]])`: fits λ_k = λ_1·k^−s to a spectrum.
//!
//! Least squares on log λ_k = log λ_1 − s·log k over ranks kmin..=kmax
//! (1-based; default: every nonzero eigenvalue — above max λ · len · ε, as
//! numpy's `matrix_rank` — and kmax is clamped to the last of them). `eigs`
//! is a descending list, as `cov_spectrum` returns. Returns
//! `{s, lambda1, r2, kmin, kmax}`, `lambda1` being the fitted intercept; NULL
//! fields with fewer than two usable ranks, NULL for a NULL list.
//!
//! ```sql
//! SELECT spectrum_fit(cov_spectrum(values), 1, 100) FROM grad_vectors WHERE kind = 'sample' AND param = 'fc1.weight'
//! ```

use super::docs::{FunctionDoc, Section};
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, Fields, Int64Type};
use datafusion::common::{Result, ScalarValue, exec_err};

use super::results::{f64_value, i64_value, struct_value};
use super::row_udf::RowFunction;
use super::vectors::{Row, Vectors, coerce_vector};
use gradlake_stats::spectrum::fit::spectrum_fit;

/// `spectrum_fit`.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct SpectrumFitFunction;

fn fields() -> Fields {
    Fields::from(vec![
        Field::new("s", DataType::Float64, true),
        Field::new("lambda1", DataType::Float64, true),
        Field::new("r2", DataType::Float64, true),
        Field::new("kmin", DataType::Int64, true),
        Field::new("kmax", DataType::Int64, true),
    ])
}

/// An optional rank argument's value in `row` (NULL: default).
fn rank_at(args: &[ArrayRef], index: usize, row: usize, name: &str) -> Result<Option<usize>> {
    let Some(a) = args.get(index) else { return Ok(None) };
    let a = a.as_primitive::<Int64Type>();
    if a.is_null(row) {
        return Ok(None);
    }
    match a.value(row) {
        k if k >= 1 => Ok(Some(k as usize)),
        k => exec_err!("spectrum_fit: argument {name} must be a rank >= 1, got {k}"),
    }
}

impl RowFunction for SpectrumFitFunction {
    const NAME: &'static str = "spectrum_fit";
    const USAGE: &'static str = "spectrum_fit(eigs [, kmin [, kmax]])";
    const DOC: FunctionDoc = FunctionDoc {
        section: Section::Spectra,
        description: "Least squares on log eigenvalue_k = log lambda1 - s log k over ranks kmin..kmax (default: every eigenvalue above round-off). Returns {s, lambda1, r2, kmin, kmax}.",
        arguments: &[
            ("eigs", "eigenvalues in descending order, e.g. cov_spectrum(...)"),
            ("kmin", "optional first rank fitted (1-based)"),
            ("kmax", "optional last rank fitted"),
        ],
        example: "SELECT param, spectrum_fit(cov_spectrum(\"values\")) AS fit FROM grad_vectors WHERE kind = 'sample' AND step = 0 GROUP BY param",
    };
    const MIN_ARGS: usize = 1;
    const MAX_ARGS: usize = 3;

    fn coerce(types: &[DataType]) -> Result<Vec<DataType>> {
        let mut out = vec![coerce_vector(Self::NAME, "eigs", &types[0])?];
        out.extend(types[1..].iter().map(|_| DataType::Int64));
        Ok(out)
    }

    fn return_type(_: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(fields()))
    }

    fn invoke(args: &[ArrayRef], rows: usize, return_type: &DataType) -> Result<ArrayRef> {
        let eigs = Vectors::new(Self::NAME, &args[0])?;
        let mut buf = Vec::new();
        let mut out = Vec::with_capacity(rows);
        for row in 0..rows {
            let (kmin, kmax) = (rank_at(args, 1, row, "kmin")?, rank_at(args, 2, row, "kmax")?);
            out.push(match eigs.row(row, &mut buf) {
                Row::Null => ScalarValue::try_from(return_type)?,
                Row::Values { values, .. } => {
                    let f = spectrum_fit(values, kmin, kmax);
                    struct_value(
                        &fields(),
                        vec![
                            f64_value(f.map(|f| f.s)),
                            f64_value(f.map(|f| f.lambda1)),
                            f64_value(f.map(|f| f.r2)),
                            i64_value(f.map(|f| f.kmin as u64)),
                            i64_value(f.map(|f| f.kmax as u64)),
                        ],
                    )?
                }
            });
        }
        ScalarValue::iter_to_array(out)
    }
}
