//! The exact sample covariance: streaming mean and scatter matrix.

use faer::linalg::matmul::triangular::{BlockStructure, matmul};
use faer::{Accum, Mat, MatRef};

use super::eigen::{eigenvalues_desc, par_for};
use super::{Spectrum, SpectrumError};

/// Rows gathered before one rank-`BLOCK` update of the scatter matrix: a
/// matrix product instead of `BLOCK` rank-1 updates (memory-bound) keeps the
/// update near the machine's peak.
const BLOCK: usize = 128;

/// The largest dimension accepted: a 16384² f64 scatter matrix is 2 GiB.
pub const MAX_DIM: usize = 16_384;

/// Mean and scatter Σ (x_i − x̄)(x_i − x̄)ᵀ of a stream of rows, in f64
/// (lower triangle only; the matrix is symmetric).
///
/// Rows are gathered in blocks of [`BLOCK`]; each block is centred on its own
/// mean and added with Chan, Golub and LeVeque's pairwise formula
/// S = S_a + S_b + (n_a·n_b/n)·δδᵀ, δ = x̄_b − x̄_a, which is also how two
/// estimators merge. Memory: d² + (BLOCK + 1)·d values.
#[derive(Debug, Clone)]
pub struct ExactCovariance {
    d: usize,
    n: u64,
    mean: Vec<f64>,
    scatter: Mat<f64>,
    pending: Vec<f64>,
}

impl ExactCovariance {
    /// An empty estimator for vectors of length `d`.
    pub fn new(d: usize) -> Result<Self, SpectrumError> {
        if d > MAX_DIM {
            return Err(SpectrumError::TooLarge { method: "exact", d, max_d: MAX_DIM });
        }
        Ok(Self { d, n: 0, mean: vec![0.0; d], scatter: Mat::zeros(d, d), pending: Vec::new() })
    }

    /// From stored parts (see [`super::codec`]).
    pub(crate) fn from_parts(d: usize, n: u64, mean: Vec<f64>, scatter: Mat<f64>) -> Self {
        Self { d, n, mean, scatter, pending: Vec::new() }
    }

    /// Dimension.
    pub fn dim(&self) -> usize {
        self.d
    }

    /// Rows seen.
    pub fn count(&self) -> u64 {
        self.n + (self.pending.len() / self.d.max(1)) as u64
    }

    /// Adds one row.
    pub fn push(&mut self, row: &[f64]) -> Result<(), SpectrumError> {
        if row.len() != self.d {
            return Err(SpectrumError::DimensionMismatch { expected: self.d, got: row.len() });
        }
        if self.pending.capacity() == 0 {
            self.pending.reserve_exact(BLOCK * self.d);
        }
        self.pending.extend_from_slice(row);
        if self.pending.len() >= BLOCK * self.d {
            self.flush();
        }
        Ok(())
    }

    /// Folds the pending rows into mean and scatter.
    fn flush(&mut self) {
        let d = self.d;
        if d == 0 || self.pending.is_empty() {
            self.n += (self.pending.len() / d.max(1)) as u64;
            self.pending.clear();
            return;
        }
        let b = self.pending.len() / d;
        let mut block_mean = vec![0.0; d];
        for row in self.pending.chunks_exact(d) {
            block_mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
        }
        block_mean.iter_mut().for_each(|m| *m /= b as f64);
        for row in self.pending.chunks_exact_mut(d) {
            row.iter_mut().zip(&block_mean).for_each(|(v, m)| *v -= m);
        }
        let centred = MatRef::from_row_major_slice(&self.pending, b, d);
        // Only the lower triangle is kept (the eigensolver reads no more): half the flops.
        matmul(
            self.scatter.as_mut(),
            BlockStructure::TriangularLower,
            Accum::Add,
            centred.transpose(),
            BlockStructure::Rectangular,
            centred,
            BlockStructure::Rectangular,
            1.0,
            par_for(b * d * d),
        );
        self.combine(b as u64, &block_mean);
        self.pending.clear();
    }

    /// Chan's update for a part of `count` rows with mean `mean` whose scatter
    /// has already been added.
    fn combine(&mut self, count: u64, mean: &[f64]) {
        let (na, nb) = (self.n as f64, count as f64);
        let n = na + nb;
        let delta: Vec<f64> = mean.iter().zip(&self.mean).map(|(b, a)| b - a).collect();
        let weight = na * nb / n;
        if weight > 0.0 {
            let d = self.d;
            for j in 0..d {
                let wj = weight * delta[j];
                let col = self.scatter.col_mut(j);
                col.iter_mut().skip(j).zip(&delta[j..]).for_each(|(s, di)| *s += wj * di);
            }
        }
        self.mean.iter_mut().zip(&delta).for_each(|(m, dl)| *m += dl * nb / n);
        self.n += count;
    }

    /// Adds everything `other` has seen.
    pub fn merge(&mut self, mut other: ExactCovariance) -> Result<(), SpectrumError> {
        if other.d != self.d {
            return Err(SpectrumError::DimensionMismatch { expected: self.d, got: other.d });
        }
        self.flush();
        other.flush();
        if other.n == 0 {
            return Ok(());
        }
        self.scatter += &other.scatter;
        self.combine(other.n, &other.mean);
        Ok(())
    }

    /// Mean, count and scatter with nothing pending (for encoding).
    pub(crate) fn parts(&mut self) -> (u64, &[f64], MatRef<'_, f64>) {
        self.flush();
        (self.n, &self.mean, self.scatter.as_ref())
    }

    /// The covariance's eigenvalues (all d of them), or `None` below two rows.
    pub fn spectrum(&mut self) -> Result<Option<Spectrum>, SpectrumError> {
        self.flush();
        if self.n < 2 {
            return Ok(None);
        }
        let scale = 1.0 / (self.n - 1) as f64;
        let total_variance = (0..self.d).map(|i| self.scatter[(i, i)]).sum::<f64>() * scale;
        let mut eigenvalues = eigenvalues_desc(self.scatter.as_ref())?;
        eigenvalues.iter_mut().for_each(|v| *v *= scale);
        Ok(Some(Spectrum { eigenvalues, error_bound: 0.0, total_variance, n: self.n, d: self.d }))
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        size_of::<Self>() + (self.d * self.d + self.mean.capacity() + self.pending.capacity()) * size_of::<f64>()
    }
}
