//! gradlake's mathematics, in plain Rust: no DataFusion, no Arrow. The SQL
//! functions of `gradlake-pipeline` adapt it; `watch` and the benches call it
//! directly.
//!
//! Statistics of gradient samples:
//!
//! * [`sample`] — cleaning a sample: non-finite and non-positive values are
//!   skipped and counted, the rest sorted once.
//! * [`powerlaw`] — the continuous power-law fit of Clauset, Shalizi & Newman
//!   (2009), exact over every candidate xmin, and the paper's KS test.
//! * [`powerlaw_options`] — the xmin rule and the KS convention under ties.
//! * [`powerlaw_gof`] — CSN's bootstrap goodness-of-fit p-value.
//! * [`powerlaw_compare`] — likelihood-ratio tests against other heavy tails.
//! * [`gaussian`] — moments, Lilliefors KS and Jarque–Bera tests of normality.
//! * [`tail_index`] — Hill's estimator and the α-stable index estimator.
//!
//! Covariance spectra: [`spectrum`] — exact, Gram and Frequent Directions
//! estimators, their mergeable encoding, and power-law fits of eigenvalues.

pub mod gaussian;
mod optimize;
pub mod powerlaw;
pub mod powerlaw_compare;
pub mod powerlaw_gof;
pub mod powerlaw_options;
mod powerlaw_screen;
pub mod sample;
pub mod spectrum;
pub mod tail_index;
