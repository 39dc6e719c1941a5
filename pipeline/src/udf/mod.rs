//! The SQL functions gradlake adds: thin adapters from DataFusion to [`crate::stats`].
//!
//! One function per file, as in DataFusion's own `functions-aggregate`. The
//! whole-sample statistics share one generic aggregate ([`sample_udaf`]);
//! each file says only what is particular to its function. Every state is
//! plain Arrow scalars, so partial aggregates merge across partitions (and,
//! later, machines).

mod args;
mod gaussian_test;
mod hill_index;
mod powerlaw_compare;
mod powerlaw_fit;
mod powerlaw_gof;
mod powerlaw_ks_test;
mod sample_groups;
mod sample_state;
mod sample_udaf;
mod stable_alpha;

use datafusion::logical_expr::AggregateUDF;
use datafusion::prelude::SessionContext;

use sample_udaf::SampleUdaf;

/// Every aggregate function, ready to register.
pub fn aggregates() -> Vec<AggregateUDF> {
    vec![
        AggregateUDF::from(SampleUdaf::<powerlaw_fit::PowerLawFit>::new()),
        AggregateUDF::from(SampleUdaf::<powerlaw_ks_test::PowerLawKsTest>::new()),
        AggregateUDF::from(SampleUdaf::<powerlaw_gof::PowerLawGof>::new()),
        AggregateUDF::from(SampleUdaf::<powerlaw_compare::PowerLawCompare>::new()),
        AggregateUDF::from(SampleUdaf::<gaussian_test::GaussianTest>::new()),
        AggregateUDF::from(SampleUdaf::<hill_index::HillIndex>::new()),
        AggregateUDF::from(SampleUdaf::<stable_alpha::StableAlpha>::new()),
    ]
}

/// Registers every gradlake function on `ctx`.
pub fn register(ctx: &SessionContext) {
    for udaf in aggregates() {
        ctx.register_udaf(udaf);
    }
}
