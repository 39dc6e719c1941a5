//! `sketch_merge(s)`: merges a group's sketches (from `cov_sketch`, or an
//! earlier `sketch_merge`) into one, as LargeBinary.
//!
//! Sketches of different ranks or dimensions do not merge: an error says
//! which. NULL sketches are ignored; NULL when none is left.
//!
//! ```sql
//! SELECT sketch_spectrum(sketch_merge(sketch)) FROM stored_sketches
//! ```

use super::docs::{FunctionDoc, Section};
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::physical_expr::PhysicalExpr;

use super::cov_function::{CovFunction, Input};
use gradlake_stats::spectrum::{CovEstimator, Method, codec};

/// `sketch_merge`.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct SketchMerge;

impl CovFunction for SketchMerge {
    const NAME: &'static str = "sketch_merge";
    const USAGE: &'static str = "sketch_merge(s)";
    const DOC: FunctionDoc = FunctionDoc {
        section: Section::Spectra,
        description: "Aggregate: the merge of a group's covariance sketches (of one rank and length), as if one sketch had seen every vector.",
        arguments: &[("s", "sketches made by cov_sketch")],
        example: "SELECT sketch_info(sketch_merge(s)) FROM (SELECT step, cov_sketch(\"values\", 32) AS s FROM grad_vectors WHERE kind = 'sample' AND param = 'fc2.bias' GROUP BY step)",
    };
    const INPUT: Input = Input::Sketches;
    const CONSTANTS: &'static [DataType] = &[];
    const REQUIRED: usize = 0;

    fn method(_: &[Arc<dyn PhysicalExpr>]) -> Result<Option<Method>> {
        Ok(None)
    }

    fn return_type() -> DataType {
        DataType::LargeBinary
    }

    fn evaluate(estimator: Option<&mut CovEstimator>) -> Result<ScalarValue> {
        Ok(ScalarValue::LargeBinary(estimator.map(codec::encode)))
    }
}
