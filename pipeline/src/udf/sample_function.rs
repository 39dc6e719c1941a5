//! The contract of a whole-sample statistic: what [`super::sample_udaf`]
//! (the aggregate) and [`super::sample_groups`] (its groups accumulator)
//! both need to know of it.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::physical_expr::PhysicalExpr;

use super::docs::FunctionDoc;
use super::sample_state::Keep;

/// A statistic of a whole sample, exposed as an aggregate `NAME(x, constants...)`.
pub(crate) trait SampleFunction: Debug + Default + PartialEq + Eq + Hash + Send + Sync + 'static {
    /// SQL name.
    const NAME: &'static str;
    /// Call syntax, for error messages.
    const USAGE: &'static str;
    /// What `SHOW FUNCTIONS` and `information_schema` tell of it.
    const DOC: FunctionDoc;
    /// Which inputs are used.
    const KEEP: Keep;
    /// Types of the constant arguments after `x`.
    const CONSTANTS: &'static [DataType];
    /// How many of them are required.
    const REQUIRED: usize;
    /// Whether a power-law options string may follow the constants (see `stats::powerlaw_options`).
    const OPTIONS: bool = false;
    /// The parsed constant arguments.
    type Params: Debug + Send + Sync + 'static;

    /// Reads and validates the constant arguments (`exprs[1..]`).
    fn params(exprs: &[Arc<dyn PhysicalExpr>]) -> Result<Self::Params>;
    /// The result type.
    fn return_type() -> DataType;
    /// The result for a sample (sorted ascending; mutable for statistics that reorder it).
    fn evaluate(params: &Self::Params, sorted: &mut [f64], skipped: u64) -> Result<ScalarValue>;
}
