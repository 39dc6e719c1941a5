//! The SQL functions gradlake adds: thin adapters from DataFusion to [`crate::stats`].
//!
//! One function per file, as in DataFusion's own `functions-aggregate`. Each
//! accumulator's state is plain Arrow scalars, so partial aggregates merge
//! across partitions (and, later, machines).

mod args;
pub mod powerlaw_fit;
pub mod powerlaw_ks_test;
mod sample_state;

use datafusion::logical_expr::AggregateUDF;
use datafusion::prelude::SessionContext;

/// Every aggregate function, ready to register.
pub fn aggregates() -> Vec<AggregateUDF> {
    vec![
        AggregateUDF::from(powerlaw_fit::PowerLawFitUdaf::new()),
        AggregateUDF::from(powerlaw_ks_test::PowerLawKsTestUdaf::new()),
    ]
}

/// Registers every gradlake function on `ctx`.
pub fn register(ctx: &SessionContext) {
    for udaf in aggregates() {
        ctx.register_udaf(udaf);
    }
}
