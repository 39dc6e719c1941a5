//! Errors of the spectrum estimators.

/// What can go wrong when feeding, merging or decoding an estimator.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpectrumError {
    /// A row's length differs from the dimension fixed by the first row.
    #[error("vectors of different lengths in one group: {expected} then {got}")]
    DimensionMismatch {
        /// Dimension of the group.
        expected: usize,
        /// Length of the offending row.
        got: usize,
    },
    /// Two estimators that cannot be merged.
    #[error("cannot merge: {0}")]
    Incompatible(String),
    /// The requested method cannot hold vectors this long.
    #[error("{method} needs a {d}×{d} matrix, more than {max_d}×{max_d}; use 'fd' (or 'auto')")]
    TooLarge {
        /// The method.
        method: &'static str,
        /// The dimension.
        d: usize,
        /// The largest dimension the method accepts.
        max_d: usize,
    },
    /// A stored sketch that is not one, or of a version this build cannot read.
    #[error("bad sketch: {0}")]
    Codec(String),
    /// The eigensolver did not converge.
    #[error("the eigensolver did not converge on a {0}×{0} matrix")]
    NoConvergence(usize),
}
