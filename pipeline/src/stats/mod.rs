//! Statistics of gradient samples, in plain Rust (no DataFusion types).
//!
//! * [`sample`] — cleaning a sample: non-finite and non-positive values are
//!   skipped and counted, the rest sorted once.
//! * [`powerlaw`] — the continuous power-law fit of Clauset, Shalizi & Newman
//!   (2009), exact over every candidate xmin, and the paper's KS test.

pub mod powerlaw;
pub mod sample;
