//! `sketch_spectrum(s)` and `sketch_info(s)`: what a stored sketch holds.
//!
//! `sketch_spectrum` gives the eigenvalues of the sketched covariance
//! (descending, `List<Float64>`, as `cov_spectrum` would have); NULL below two
//! rows. `sketch_info` gives `{method, estimator, n, n_skipped, d, rank,
//! error_bound, total_variance}`: each true eigenvalue λ_i lies in
//! [λ̂_i, λ̂_i + error_bound] (0 for exact estimators), and total_variance is
//! the covariance's trace (exact), so 1 − Σλ̂/total_variance bounds the mass
//! the sketch left out. Bytes that are not a sketch are an error.
//!
//! ```sql
//! SELECT sketch_info(s)['error_bound'], spectrum_fit(sketch_spectrum(s)) FROM (SELECT cov_sketch(values) AS s FROM grad_vectors)
//! ```

use super::docs::{FunctionDoc, Section};
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::{Result, ScalarValue, plan_err};

use super::cov_function::spectrum_error;
use super::cov_spectrum::{spectrum_type, spectrum_value};
use super::results::{f64_value, i64_value, struct_value};
use super::row_udf::RowFunction;
use gradlake_stats::spectrum::{CovEstimator, Spectrum, codec};

fn coerce_sketch(function: &str, t: &DataType) -> Result<Vec<DataType>> {
    match t {
        DataType::LargeBinary | DataType::Binary | DataType::BinaryView | DataType::Null => {
            Ok(vec![DataType::LargeBinary])
        }
        t => plan_err!("{function}: argument s must be a sketch (LargeBinary from cov_sketch), got {t}"),
    }
}

/// Decodes each row's sketch and maps it to a scalar (`null` for NULL rows).
fn map_sketches(
    function: &str,
    sketches: &ArrayRef,
    null: ScalarValue,
    mut f: impl FnMut(CovEstimator) -> Result<ScalarValue>,
) -> Result<ArrayRef> {
    let sketches = sketches.as_binary::<i64>();
    let out = (0..sketches.len())
        .map(|row| {
            if sketches.is_null(row) {
                return Ok(null.clone());
            }
            f(codec::decode(sketches.value(row)).map_err(|e| spectrum_error(function, e))?)
        })
        .collect::<Result<Vec<_>>>()?;
    ScalarValue::iter_to_array(out)
}

/// `sketch_spectrum`.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct SketchSpectrum;

impl RowFunction for SketchSpectrum {
    const NAME: &'static str = "sketch_spectrum";
    const USAGE: &'static str = "sketch_spectrum(s)";
    const DOC: FunctionDoc = FunctionDoc {
        section: Section::Spectra,
        description: "The eigenvalues of a stored sketch, as cov_spectrum gives them.",
        arguments: &[("s", "a sketch made by cov_sketch or sketch_merge")],
        example: "SELECT sketch_spectrum(cov_sketch(\"values\", 32)) FROM grad_vectors WHERE kind = 'sample' AND param = 'fc2.bias'",
    };
    const MIN_ARGS: usize = 1;
    const MAX_ARGS: usize = 1;

    fn coerce(types: &[DataType]) -> Result<Vec<DataType>> {
        coerce_sketch(Self::NAME, &types[0])
    }

    fn return_type(_: &[DataType]) -> Result<DataType> {
        Ok(spectrum_type())
    }

    fn invoke(args: &[ArrayRef], _: usize, return_type: &DataType) -> Result<ArrayRef> {
        map_sketches(Self::NAME, &args[0], ScalarValue::try_from(return_type)?, |mut e| {
            let spectrum = e.spectrum().map_err(|e| spectrum_error(Self::NAME, e))?;
            spectrum_value(spectrum.map(|s| s.eigenvalues))
        })
    }
}

/// `sketch_info`.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct SketchInfo;

pub(crate) fn info_fields() -> Fields {
    Fields::from(vec![
        Field::new("method", DataType::Utf8, true),
        Field::new("estimator", DataType::Utf8, true),
        Field::new("n", DataType::Int64, true),
        Field::new("n_skipped", DataType::Int64, true),
        Field::new("d", DataType::Int64, true),
        Field::new("rank", DataType::Int64, true),
        Field::new("error_bound", DataType::Float64, true),
        Field::new("total_variance", DataType::Float64, true),
    ])
}

/// The `sketch_info` fields of an estimator and its spectrum.
pub(crate) fn info_values(e: &CovEstimator, spectrum: Option<&Spectrum>) -> Vec<ScalarValue> {
    let method = e.method();
    vec![
        ScalarValue::Utf8(Some(method.name().to_string())),
        ScalarValue::Utf8(Some(e.current().to_string())),
        i64_value(Some(e.count())),
        i64_value(Some(e.skipped())),
        i64_value(e.dim().map(|d| d as u64)),
        i64_value((method.rank() > 0).then_some(method.rank() as u64)),
        f64_value(spectrum.map(|s| s.error_bound)),
        f64_value(spectrum.map(|s| s.total_variance)),
    ]
}

impl RowFunction for SketchInfo {
    const NAME: &'static str = "sketch_info";
    const USAGE: &'static str = "sketch_info(s)";
    const DOC: FunctionDoc = FunctionDoc {
        section: Section::Spectra,
        description: "What a stored sketch holds: {method, estimator, n, n_skipped, d, rank, error_bound, total_variance}; each true eigenvalue lies in [eigenvalue, eigenvalue + error_bound], the trace is exact.",
        arguments: &[("s", "a sketch made by cov_sketch or sketch_merge")],
        example: "SELECT sketch_info(cov_sketch(\"values\", 32)) FROM grad_vectors WHERE kind = 'sample' AND param = 'fc2.bias'",
    };
    const MIN_ARGS: usize = 1;
    const MAX_ARGS: usize = 1;

    fn coerce(types: &[DataType]) -> Result<Vec<DataType>> {
        coerce_sketch(Self::NAME, &types[0])
    }

    fn return_type(_: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(info_fields()))
    }

    fn invoke(args: &[ArrayRef], _: usize, return_type: &DataType) -> Result<ArrayRef> {
        map_sketches(Self::NAME, &args[0], ScalarValue::try_from(return_type)?, |mut e| {
            let spectrum = e.spectrum().map_err(|e| spectrum_error(Self::NAME, e))?;
            struct_value(&info_fields(), info_values(&e, spectrum.as_ref()))
        })
    }
}
