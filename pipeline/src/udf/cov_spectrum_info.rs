//! `cov_spectrum_info(v [, method [, rank]])`: a group's covariance spectrum with
//! its error bars, in one aggregate.
//!
//! Returns `{eigenvalues, method, estimator, n, n_skipped, d, rank,
//! error_bound, total_variance}`: the eigenvalues of `cov_spectrum(v, method,
//! rank)` and the fields of `sketch_info(cov_sketch(v, rank))` — each true
//! eigenvalue lies in [λ̂_i, λ̂_i + error_bound], and total_variance is the
//! exact trace. Arguments as `cov_spectrum`.
//!
//! It is what `sketch_spectrum(s)` and `sketch_info(s)` of a `cov_sketch` give,
//! without encoding the sketch into bytes and decoding it again for each: a
//! sketch of per-sample gradients of a large model holds its rows (16 samples
//! of a 1.3M-parameter model: 84 MB), and every copy of it counts.
//!
//! ```sql
//! SELECT param, info['error_bound'], spectrum_fit(info['eigenvalues'])
//! FROM (SELECT param, cov_spectrum_info("values", 'fd', 64) AS info FROM grad_vectors WHERE kind = 'sample' GROUP BY param)
//! ```

use super::docs::{FunctionDoc, Section};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::{Result, ScalarValue};
use datafusion::physical_expr::PhysicalExpr;

use super::cov_function::{CovFunction, Input, spectrum_error};
use super::cov_spectrum::{CovSpectrum, spectrum_type, spectrum_value};
use super::results::struct_value;
use super::sketch_spectrum::{info_fields, info_values};
use gradlake_stats::spectrum::{CovEstimator, Method};

/// `cov_spectrum_info`.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct CovSpectrumInfo;

fn fields() -> Fields {
    let mut fields = vec![Arc::new(Field::new("eigenvalues", spectrum_type(), true))];
    fields.extend(info_fields().iter().cloned());
    Fields::from(fields)
}

impl CovFunction for CovSpectrumInfo {
    const NAME: &'static str = "cov_spectrum_info";
    const USAGE: &'static str = "cov_spectrum_info(v [, method [, rank]])";
    const DOC: FunctionDoc = FunctionDoc {
        section: Section::Spectra,
        description: "cov_spectrum's eigenvalues with their error bars in one aggregate: {eigenvalues, method, estimator, n, n_skipped, d, rank, error_bound, total_variance}; each true eigenvalue lies in [eigenvalue, eigenvalue + error_bound] and total_variance is the exact trace.",
        arguments: &[
            ("v", "the vectors, as for cov_spectrum"),
            ("method", "optional constant: auto, exact, gram or fd"),
            ("rank", "optional constant rows of the fd sketch, default 128"),
        ],
        example: "SELECT param, cov_spectrum_info(\"values\", 'fd', 64) AS s FROM grad_vectors WHERE kind = 'sample' GROUP BY param",
    };
    const INPUT: Input = Input::Vectors;
    const CONSTANTS: &'static [DataType] = CovSpectrum::CONSTANTS;
    const REQUIRED: usize = 0;

    fn method(exprs: &[Arc<dyn PhysicalExpr>]) -> Result<Option<Method>> {
        CovSpectrum::method(exprs).map_err(|e| match e {
            datafusion::error::DataFusionError::Plan(m) => {
                datafusion::error::DataFusionError::Plan(m.replacen(CovSpectrum::NAME, Self::NAME, 1))
            }
            e => e,
        })
    }

    fn return_type() -> DataType {
        DataType::Struct(fields())
    }

    fn evaluate(estimator: Option<&mut CovEstimator>) -> Result<ScalarValue> {
        let Some(e) = estimator else { return ScalarValue::try_from(&Self::return_type()) };
        let spectrum = e.spectrum().map_err(|err| spectrum_error(Self::NAME, err))?;
        let mut values = vec![spectrum_value(spectrum.as_ref().map(|s| s.eigenvalues.clone()))?];
        values.extend(info_values(e, spectrum.as_ref()));
        struct_value(&fields(), values)
    }
}
