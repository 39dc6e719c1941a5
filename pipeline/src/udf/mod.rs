//! The SQL functions gradlake adds: thin adapters from DataFusion to
//! [`gradlake_stats`] and [`gradlake_stats::spectrum`].
//!
//! One function per file, as in DataFusion's own `functions-aggregate`. The
//! whole-sample statistics share one generic aggregate ([`sample_udaf`]);
//! each file says only what is particular to its function. The covariance
//! aggregates share [`cov_udaf`] (state: one versioned LargeBinary sketch), the
//! row-wise scalar functions [`row_udf`]. Every state is
//! plain Arrow scalars, so partial aggregates merge across partitions (and,
//! later, machines).

mod args;
mod cov_function;
mod cov_groups;
mod cov_sketch;
mod cov_spectrum;
mod cov_spectrum_info;
mod cov_udaf;
mod docs;
mod fit_memo;
mod gaussian_test;
mod hill_index;
mod powerlaw_compare;
mod powerlaw_fit;
mod powerlaw_gof;
mod powerlaw_ks_test;
mod results;
mod row_udf;
mod sample_function;
mod sample_groups;
mod sample_state;
mod sample_udaf;
mod single_group;
mod sketch_merge;
mod sketch_spectrum;
mod spectrum_fit;
mod spectrum_ks_test;
mod stable_alpha;
mod vec_agg;
mod vec_concat;
mod vec_helpers;
mod vectors;

use datafusion::logical_expr::{AggregateUDF, ScalarUDF};
use datafusion::prelude::SessionContext;

use cov_udaf::CovUdaf;
use row_udf::RowUdf;
use sample_udaf::SampleUdaf;

/// Whether `udaf` is a covariance aggregate, whose state is a sketch: merging
/// sketches in another order gives another (equally valid) answer, so the
/// final stage merges them in a fixed order (`plan::OrderedSketchMerge`).
pub(crate) fn is_covariance_aggregate(udaf: &AggregateUDF) -> bool {
    let f = udaf.inner();
    f.is::<CovUdaf<cov_spectrum::CovSpectrum>>()
        || f.is::<CovUdaf<cov_spectrum_info::CovSpectrumInfo>>()
        || f.is::<CovUdaf<cov_sketch::CovSketch>>()
        || f.is::<CovUdaf<sketch_merge::SketchMerge>>()
}

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
        AggregateUDF::from(CovUdaf::<cov_spectrum::CovSpectrum>::new()),
        AggregateUDF::from(CovUdaf::<cov_spectrum_info::CovSpectrumInfo>::new()),
        AggregateUDF::from(CovUdaf::<cov_sketch::CovSketch>::new()),
        AggregateUDF::from(CovUdaf::<sketch_merge::SketchMerge>::new()),
        AggregateUDF::from(vec_concat::VecConcat::default()),
        AggregateUDF::from(vec_agg::VecAgg::default()),
    ]
}

/// Every scalar function, ready to register.
pub fn scalars() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::from(RowUdf::<sketch_spectrum::SketchSpectrum>::new()),
        ScalarUDF::from(RowUdf::<sketch_spectrum::SketchInfo>::new()),
        ScalarUDF::from(RowUdf::<spectrum_fit::SpectrumFitFunction>::new()),
        ScalarUDF::from(RowUdf::<spectrum_ks_test::SpectrumKsTestFunction>::new()),
        ScalarUDF::from(RowUdf::<vec_helpers::VecSub>::new()),
        ScalarUDF::from(RowUdf::<vec_helpers::VecNorm>::new()),
        ScalarUDF::from(RowUdf::<vec_helpers::VecDot>::new()),
    ]
}

/// Registers every gradlake function on `ctx`.
pub fn register(ctx: &SessionContext) {
    for udaf in aggregates() {
        ctx.register_udaf(udaf);
    }
    for udf in scalars() {
        ctx.register_udf(udf);
    }
}
