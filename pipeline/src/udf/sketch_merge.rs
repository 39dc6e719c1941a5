//! `sketch_merge(s)`: merges a group's sketches (from `cov_sketch`, or an
//! earlier `sketch_merge`) into one, as LargeBinary.
//!
//! Sketches of different ranks or dimensions do not merge: an error says
//! which. NULL sketches are ignored; NULL when none is left.
//!
//! ```sql
//! SELECT sketch_spectrum(sketch_merge(sketch)) FROM stored_sketches
//! ```

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::physical_expr::PhysicalExpr;

use super::cov_udaf::{CovFunction, Input};
use crate::spectrum::{CovEstimator, Method, codec};

/// `sketch_merge`.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct SketchMerge;

impl CovFunction for SketchMerge {
    const NAME: &'static str = "sketch_merge";
    const USAGE: &'static str = "sketch_merge(s)";
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
