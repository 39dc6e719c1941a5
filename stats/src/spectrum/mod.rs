//! Covariance spectra of streams of vectors, in plain Rust (no DataFusion types).
//!
//! Each estimator takes rows (observations of dimension d) one at a time,
//! merges with another estimator of the same kind (partial aggregates of a
//! query, or sketches stored earlier) and gives the eigenvalues of the sample
//! covariance (1/(n−1)) Σ (x_i − x̄)(x_i − x̄)ᵀ, descending:
//!
//! * [`ExactCovariance`] — mean and scatter matrix (d × d, f64), updated a block
//!   of rows at a time and merged with Chan et al.'s formula. For d up to a few
//!   thousand.
//! * [`GramCovariance`] — keeps the rows; the n × n centred Gram matrix has the
//!   same nonzero eigenvalues. For n ≪ d.
//! * [`FrequentDirections`] — the sketch of Liberty (2013) and Ghashami et al.
//!   (2016) in O(rank·d) memory whatever n, with a known one-sided error bound.
//! * [`CovEstimator`] — one of the three chosen by a [`Method`] (`auto` switches
//!   as n grows), and its versioned binary encoding ([`codec`]).
//!
//! [`fit`] fits the power law λ_k ∝ k^−s to a spectrum.

pub mod codec;
mod eigen;
mod error;
mod estimator;
mod exact;
pub mod fit;
mod frequent_directions;
mod gram;

pub use error::SpectrumError;
pub use estimator::{CovEstimator, DEFAULT_RANK, MAX_RANK, Method};
pub use exact::ExactCovariance;
pub use frequent_directions::FrequentDirections;
pub use gram::GramCovariance;

/// The eigenvalues of a sample covariance, and how far each may be off.
#[derive(Debug, Clone, PartialEq)]
pub struct Spectrum {
    /// Eigenvalues, descending.
    pub eigenvalues: Vec<f64>,
    /// Each true eigenvalue λ_i lies in [eigenvalues[i], eigenvalues[i] + error_bound];
    /// 0 for the exact methods.
    pub error_bound: f64,
    /// Trace of the covariance (its total variance), exact for every method.
    pub total_variance: f64,
    /// Observations.
    pub n: u64,
    /// Dimension.
    pub d: usize,
}

/// Sum of squares of a row, in f64.
fn norm_sq(row: &[f64]) -> f64 {
    row.iter().map(|v| v * v).sum()
}
