//! `cov_spectrum(v [, method [, rank]])`: the eigenvalues of a group's sample covariance.
//!
//! Each row is one observation (a vector: List, LargeList or FixedSizeList of
//! Float32/Float64); every row of a group must have the same length d. Returns
//! the eigenvalues of (1/(n−1)) Σ (v_i − v̄)(v_i − v̄)ᵀ, descending, as
//! `List<Float64>`; NULL below two usable rows. Rows that are NULL or hold a
//! non-finite value are skipped.
//!
//! `method` (a constant, default `auto`):
//! * `exact` — d × d scatter matrix in f64: all d eigenvalues. d ≤ 16384.
//! * `gram` — the n × n Gram matrix: the min(n − 1, d) possibly nonzero ones.
//! * `fd` — a Frequent Directions sketch with `rank` rows (default 128): the
//!   top min(rank, d) eigenvalues, each at most Δ/(n−1) below the truth
//!   (`sketch_info(cov_sketch(v, rank))` reports the bound). Memory O(rank·d).
//! * `auto` — Gram while n ≤ d and the rows fit in 64 MiB, then exact for
//!   d ≤ 2048 and `fd` with `rank` rows beyond.
//!
//! ```sql
//! SELECT param, spectrum_fit(cov_spectrum(values)) FROM grad_vectors
//! WHERE kind = 'sample' AND step = 0 GROUP BY param
//! ```

use super::docs::{FunctionDoc, Section};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::physical_expr::PhysicalExpr;

use super::args::{constant_int, constant_str};
use super::cov_function::{CovFunction, Input, spectrum_error};
use crate::udf::sample_state::list_array;
use gradlake_stats::spectrum::{CovEstimator, MAX_RANK, Method};

/// `cov_spectrum`.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct CovSpectrum;

/// `List<Float64>`, the type of a spectrum.
pub(crate) fn spectrum_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Float64, true)))
}

/// A spectrum as a scalar (NULL for `None`).
pub(crate) fn spectrum_value(eigenvalues: Option<Vec<f64>>) -> Result<ScalarValue> {
    match eigenvalues {
        Some(v) => Ok(ScalarValue::List(Arc::new(list_array([v])))),
        None => ScalarValue::try_from(&spectrum_type()),
    }
}

/// The `rank` argument at `index`: an integer in [1, MAX_RANK].
pub(crate) fn rank_argument(function: &str, exprs: &[Arc<dyn PhysicalExpr>], index: usize) -> Result<Option<usize>> {
    match constant_int(function, "rank", exprs, index, 1)? {
        Some(r) if r as u64 > MAX_RANK as u64 => {
            plan_err!("{function}: argument rank must be at most {MAX_RANK}, got {r}")
        }
        r => Ok(r.map(|r| r as usize)),
    }
}

impl CovFunction for CovSpectrum {
    const NAME: &'static str = "cov_spectrum";
    const USAGE: &'static str = "cov_spectrum(v [, method [, rank]])";
    const DOC: FunctionDoc = FunctionDoc {
        section: Section::Spectra,
        description: "Eigenvalues (descending, List<Float64>) of the sample covariance of the group's vectors. method exact: the d x d scatter, all d eigenvalues (d <= 16384); gram: the n x n centred Gram matrix, for n much smaller than d; fd: a Frequent Directions sketch of rank rows, memory O(rank d), the top eigenvalues each at most error_bound below the truth; auto (default) picks one.",
        arguments: &[
            ("v", "the vectors: List, LargeList or FixedSizeList of Float32/Float64, all of one length d"),
            ("method", "optional constant: auto, exact, gram or fd"),
            ("rank", "optional constant rows of the fd sketch, default 128"),
        ],
        example: "SELECT param, cov_spectrum(\"values\") AS eigenvalues FROM grad_vectors WHERE kind = 'sample' AND step = 0 GROUP BY param",
    };
    const INPUT: Input = Input::Vectors;
    const CONSTANTS: &'static [DataType] = &[DataType::Utf8, DataType::Int64];
    const REQUIRED: usize = 0;

    fn method(exprs: &[Arc<dyn PhysicalExpr>]) -> Result<Option<Method>> {
        let name = constant_str(Self::NAME, "method", exprs, 1)?.unwrap_or_else(|| "auto".into());
        let rank = rank_argument(Self::NAME, exprs, 2)?;
        match Method::parse(&name, rank) {
            Some(m) => Ok(Some(m)),
            None => plan_err!("{}: unknown method '{name}' (expected exact, gram, fd or auto)", Self::NAME),
        }
    }

    fn return_type() -> DataType {
        spectrum_type()
    }

    fn evaluate(estimator: Option<&mut CovEstimator>) -> Result<ScalarValue> {
        let spectrum = match estimator {
            Some(e) => e.spectrum().map_err(|e| spectrum_error(Self::NAME, e))?,
            None => None,
        };
        spectrum_value(spectrum.map(|s| s.eigenvalues))
    }
}
