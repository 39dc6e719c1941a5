//! The covariance spectrum through the n × n Gram matrix, for n ≪ d.

use super::eigen::{eigenvalues_desc, gram, par_for};
use super::{Spectrum, SpectrumError, norm_sq};

/// Keeps the rows; at the end, the nonzero eigenvalues of the centred Gram
/// matrix X_c X_cᵀ (n × n) are those of the scatter X_cᵀ X_c (d × d). Memory:
/// n·d values while streaming, plus n² at the end. Merging concatenates.
#[derive(Debug, Clone)]
pub struct GramCovariance {
    d: usize,
    rows: Vec<f64>,
}

impl GramCovariance {
    /// An empty estimator for vectors of length `d`.
    pub fn new(d: usize) -> Self {
        Self { d, rows: Vec::new() }
    }

    /// From stored rows (see [`super::codec`]).
    pub(crate) fn from_rows(d: usize, rows: Vec<f64>) -> Self {
        Self { d, rows }
    }

    /// Dimension.
    pub fn dim(&self) -> usize {
        self.d
    }

    /// Rows seen.
    pub fn count(&self) -> u64 {
        (self.rows.len().checked_div(self.d).unwrap_or(0)) as u64
    }

    /// The rows kept, row-major.
    pub fn rows(&self) -> &[f64] {
        &self.rows
    }

    /// Adds one row.
    pub fn push(&mut self, row: &[f64]) -> Result<(), SpectrumError> {
        if row.len() != self.d {
            return Err(SpectrumError::DimensionMismatch { expected: self.d, got: row.len() });
        }
        self.rows.extend_from_slice(row);
        Ok(())
    }

    /// Adds everything `other` has seen.
    pub fn merge(&mut self, other: GramCovariance) -> Result<(), SpectrumError> {
        if other.d != self.d {
            return Err(SpectrumError::DimensionMismatch { expected: self.d, got: other.d });
        }
        if self.rows.is_empty() {
            self.rows = other.rows;
        } else {
            self.rows.extend_from_slice(&other.rows);
        }
        Ok(())
    }

    /// The covariance's possibly nonzero eigenvalues: min(n − 1, d) of them
    /// (centring removes one dimension), or `None` below two rows.
    pub fn spectrum(&self) -> Result<Option<Spectrum>, SpectrumError> {
        let (n, d) = (self.count() as usize, self.d);
        if n < 2 {
            return Ok(None);
        }
        let mut mean = vec![0.0; d];
        for row in self.rows.chunks_exact(d) {
            mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut centred = self.rows.clone();
        for row in centred.chunks_exact_mut(d) {
            row.iter_mut().zip(&mean).for_each(|(v, m)| *v -= m);
        }
        let scale = 1.0 / (n - 1) as f64;
        let total_variance = centred.chunks_exact(d).map(norm_sq).sum::<f64>() * scale;
        let g = gram(&centred, d, par_for(n * n * d));
        drop(centred);
        let mut eigenvalues = eigenvalues_desc(g.as_ref())?;
        eigenvalues.truncate((n - 1).min(d));
        eigenvalues.iter_mut().for_each(|v| *v *= scale);
        Ok(Some(Spectrum { eigenvalues, error_bound: 0.0, total_variance, n: n as u64, d }))
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        size_of::<Self>() + self.rows.capacity() * size_of::<f64>()
    }
}
