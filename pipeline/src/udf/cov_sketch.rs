//! `cov_sketch(v [, rank])`: a mergeable Frequent Directions sketch of a
//! group's covariance, as LargeBinary.
//!
//! The sketch (layout: `gradlake_stats::spectrum::codec`, versioned) can be stored in
//! a table and merged later with `sketch_merge`; `sketch_spectrum` gives its
//! eigenvalues and `sketch_info` its size and error bound. `rank` is a
//! constant, default 128. NULL when the group has no row.
//!
//! ```sql
//! SELECT step, cov_sketch(values, 64) AS sketch FROM grad_vectors
//! WHERE kind = 'sample' AND param = 'fc1.weight' GROUP BY step
//! ```

use super::docs::{FunctionDoc, Section};
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::physical_expr::PhysicalExpr;

use super::cov_function::{CovFunction, Input};
use super::cov_spectrum::rank_argument;
use gradlake_stats::spectrum::{CovEstimator, DEFAULT_RANK, Method, codec};

/// `cov_sketch`.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct CovSketch;

impl CovFunction for CovSketch {
    const NAME: &'static str = "cov_sketch";
    const USAGE: &'static str = "cov_sketch(v [, rank])";
    const DOC: FunctionDoc = FunctionDoc {
        section: Section::Spectra,
        description: "A Frequent Directions sketch of the group's vectors as LargeBinary (a versioned layout), to store and merge later with sketch_merge and read with sketch_spectrum and sketch_info.",
        arguments: &[
            ("v", "the vectors, as for cov_spectrum"),
            ("rank", "optional constant rows of the sketch, default 128"),
        ],
        example: "SELECT step, param, cov_sketch(\"values\", 64) AS s FROM grad_vectors WHERE kind = 'sample' GROUP BY step, param",
    };
    const INPUT: Input = Input::Vectors;
    const CONSTANTS: &'static [DataType] = &[DataType::Int64];
    const REQUIRED: usize = 0;

    fn method(exprs: &[Arc<dyn PhysicalExpr>]) -> Result<Option<Method>> {
        Ok(Some(Method::Fd { rank: rank_argument(Self::NAME, exprs, 1)?.unwrap_or(DEFAULT_RANK) }))
    }

    fn return_type() -> DataType {
        DataType::LargeBinary
    }

    fn evaluate(estimator: Option<&mut CovEstimator>) -> Result<ScalarValue> {
        Ok(ScalarValue::LargeBinary(estimator.map(codec::encode)))
    }
}
