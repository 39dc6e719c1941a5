//! gradlake's analysis pipeline: a DataFusion session over a gradient lake.
//!
//! [`LakeSession`] opens a lake (see `gradlake_ingest` for the format) and
//! registers its tables `grads`, `params`, `runs`, `scalars` and the views
//! `grad_values` (one row per gradient element) and `grad_vectors` (one row per
//! flattened tensor). Every function gradlake adds to SQL is registered from
//! one place, [`register_all`], so that a distributed engine can register the
//! same set.

pub mod distributed;
pub mod error;
mod hiding_store;
mod local_reads;
pub mod memory;
pub mod output;
mod plan;
pub mod session;
pub mod store;
mod tables;
pub mod udf;

pub use error::PipelineError;
/// The statistics the SQL functions adapt (re-exported from `gradlake-stats`).
pub use gradlake_stats as stats;
/// Covariance spectra (re-exported from `gradlake-stats`).
pub use gradlake_stats::spectrum;
pub use session::{LakeSession, SessionOptions, register_all};
