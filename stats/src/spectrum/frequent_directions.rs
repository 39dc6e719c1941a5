//! Frequent Directions: a covariance sketch in O(rank·d) memory.

use std::borrow::Cow;

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef};

use super::eigen::{eigen_desc, eigenvalues_desc, par_for};
use super::{Spectrum, SpectrumError, norm_sq};

/// The Frequent Directions sketch (Liberty 2013; Ghashami, Liberty, Phillips
/// and Woodruff 2016, the "fast" variant with a buffer of 2ℓ rows) of the
/// *centred* scatter matrix S = Σ (x_i − x̄)(x_i − x̄)ᵀ.
///
/// **Centring.** The mean is not known until the stream ends, so the sketch
/// is fed Welford's increments instead of the raw rows:
/// r_n = √((n−1)/n)·(x_n − x̄_{n−1}), for which Σ r_n r_nᵀ = S exactly (the
/// first row gives r_1 = 0). Two sketches merge by Chan's formula, which adds
/// one more row √(n_a·n_b/n)·(x̄_b − x̄_a). Both are rank-one, positive
/// semi-definite terms, so the sketch approximates S itself; the mean
/// direction never takes a row and the error bound is that of the centred data.
///
/// **Shrinking.** When the buffer B holds 2ℓ rows, the eigendecomposition of
/// the small Gram matrix BBᵀ = UΛUᵀ (f64) gives B's singular values and right
/// singular vectors; with δ = λ_ℓ (the ℓ-th largest), B becomes
/// diag(√((λ_i − δ)/λ_i))·U_ℓᵀ·B: at most ℓ − 1 orthogonal rows, whose Gram
/// matrix is known (λ_i − δ) and is not recomputed at the next shrink.
///
/// **Guarantee.** With Δ the sum of every δ (kept exactly, merges add theirs):
/// 0 ≼ S − BᵀB ≼ Δ·I, so each eigenvalue obeys λ_i − Δ ≤ λ̂_i ≤ λ_i, and
/// Δ ≤ ‖A − A_k‖_F²/(ℓ − k) for every k < ℓ, ‖A − A_k‖_F² being the sum of
/// S's eigenvalues beyond the k-th. The covariance is S/(n − 1); its trace
/// is tracked exactly.
///
/// **Precision.** Mean, trace, Δ and every eigendecomposition are f64; the
/// sketch rows and their products are f32, as the gradients they summarise:
/// twice the speed and half the memory of f64, at a rounding error (~1e-7 of
/// λ_1) far below the sketch's own error Δ. Memory: 2ℓ·d f32 for the
/// buffer, ℓ·1024 f32 of scratch and 2d f64 values, whatever n.
#[derive(Debug, Clone)]
pub struct FrequentDirections {
    d: usize,
    rank: usize,
    n: u64,
    mean: Vec<f64>,
    /// 2ℓ rows of length d, row-major, in f32; the first `filled` are live.
    buffer: Vec<f32>,
    filled: usize,
    /// The first `orthogonal` rows are mutually orthogonal, with squared norms `norms`.
    orthogonal: usize,
    norms: Vec<f64>,
    /// One block of [`COLUMN_BLOCK`] columns of the rows a shrink produces.
    scratch: Vec<f32>,
    shrinkage: f64,
    total: f64,
}

/// The products of a shrink run over blocks of this many columns. The matrix
/// kernel packs its whole right-hand operand into a per-thread workspace that
/// stays resident: over all d = 10,000 columns of 2ℓ = 256 rows that is 10 MB
/// per thread, over one block 1 MB, at the same speed (each block is still
/// 2ℓ²·1024 ≈ 67 Mflop). Blocks also let a shrink write its result over the
/// buffer in place, with one block of scratch instead of ℓ·d.
const COLUMN_BLOCK: usize = 1024;

/// What [`super::codec`] stores of a sketch.
pub(crate) struct FdParts<'a> {
    pub d: usize,
    pub rank: usize,
    pub n: u64,
    pub shrinkage: f64,
    pub total: f64,
    pub mean: &'a [f64],
    pub norms: &'a [f64],
    /// Borrowed when encoding; owned when decoding, so that the decoded rows
    /// become the sketch's buffer without a copy.
    pub rows: Cow<'a, [f32]>,
}

impl FrequentDirections {
    /// An empty sketch with `rank` ≥ 1 rows for vectors of length `d`.
    pub fn new(d: usize, rank: usize) -> Self {
        let rank = rank.max(1);
        Self {
            d,
            rank,
            n: 0,
            mean: vec![0.0; d],
            buffer: Vec::new(),
            filled: 0,
            orthogonal: 0,
            norms: Vec::new(),
            scratch: Vec::new(),
            shrinkage: 0.0,
            total: 0.0,
        }
    }

    /// From stored parts; `norms` are those of the leading orthogonal rows.
    pub(crate) fn from_parts(parts: FdParts<'_>) -> Self {
        let mut fd = Self::new(parts.d, parts.rank);
        fd.n = parts.n;
        fd.shrinkage = parts.shrinkage;
        fd.total = parts.total;
        fd.mean.copy_from_slice(parts.mean);
        fd.buffer = parts.rows.into_owned();
        fd.filled = fd.buffer.len() / parts.d.max(1);
        fd.orthogonal = parts.norms.len();
        fd.norms = parts.norms.to_vec();
        fd
    }

    /// What the codec stores.
    pub(crate) fn parts(&self) -> FdParts<'_> {
        FdParts {
            d: self.d,
            rank: self.rank,
            n: self.n,
            shrinkage: self.shrinkage,
            total: self.total,
            mean: &self.mean,
            norms: &self.norms[..self.orthogonal],
            rows: Cow::Borrowed(&self.buffer[..self.filled * self.d]),
        }
    }

    /// Dimension.
    pub fn dim(&self) -> usize {
        self.d
    }

    /// Sketch rows ℓ.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Rows seen.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// Δ: the total shrinkage, in units of the scatter matrix.
    pub fn shrinkage(&self) -> f64 {
        self.shrinkage
    }

    /// Makes room for `rows` rows. The buffer grows with the rows held (doubling,
    /// up to its 2ℓ rows), so a group of a few vectors of a large tensor holds
    /// those vectors, not 2ℓ·d floats.
    fn reserve_rows(&mut self, rows: usize) {
        let have = self.buffer.len() / self.d.max(1);
        if rows > have {
            let grow = rows.max(2 * have).max(4).min(2 * self.rank);
            self.buffer.resize(grow * self.d, 0.0);
        }
    }

    /// Adds one observation.
    pub fn push(&mut self, x: &[f64]) -> Result<(), SpectrumError> {
        if x.len() != self.d {
            return Err(SpectrumError::DimensionMismatch { expected: self.d, got: x.len() });
        }
        let before = self.n as f64;
        self.n += 1;
        if before == 0.0 {
            self.mean.copy_from_slice(x);
            return Ok(());
        }
        self.reserve_rows(self.filled + 1);
        let factor = (before / (before + 1.0)).sqrt();
        let d = self.d;
        let slot = &mut self.buffer[self.filled * d..(self.filled + 1) * d];
        let mut sq = 0.0;
        for ((r, m), &v) in slot.iter_mut().zip(self.mean.iter_mut()).zip(x) {
            let diff = v - *m;
            let increment = factor * diff;
            sq += increment * increment;
            *r = increment as f32;
            *m += diff / (before + 1.0);
        }
        self.total += sq;
        self.filled += 1;
        if self.filled == 2 * self.rank {
            self.shrink()?;
        }
        Ok(())
    }

    /// Appends a row of the scatter's square root (its norm already counted in `total`).
    fn append_row(&mut self, row: impl ExactSizeIterator<Item = f32>) -> Result<(), SpectrumError> {
        self.reserve_rows(self.filled + 1);
        let d = self.d;
        self.buffer[self.filled * d..(self.filled + 1) * d].iter_mut().zip(row).for_each(|(b, v)| *b = v);
        self.filled += 1;
        if self.filled == 2 * self.rank {
            self.shrink()?;
        }
        Ok(())
    }

    /// Adds everything `other` has seen (Chan's mean correction plus its rows).
    pub fn merge(&mut self, other: FrequentDirections) -> Result<(), SpectrumError> {
        if other.d != self.d {
            return Err(SpectrumError::DimensionMismatch { expected: self.d, got: other.d });
        }
        if other.rank != self.rank {
            return Err(SpectrumError::Incompatible(format!(
                "Frequent Directions sketches of rank {} and {}",
                self.rank, other.rank
            )));
        }
        if other.n == 0 {
            return Ok(());
        }
        if self.n == 0 {
            *self = other;
            return Ok(());
        }
        let (na, nb) = (self.n as f64, other.n as f64);
        let n = na + nb;
        let weight = (na * nb / n).sqrt();
        let cross: Vec<f64> = other.mean.iter().zip(&self.mean).map(|(b, a)| weight * (b - a)).collect();
        self.mean.iter_mut().zip(&other.mean).for_each(|(a, b)| *a += (b - *a) * nb / n);
        self.n += other.n;
        self.total += other.total + norm_sq(&cross);
        self.shrinkage += other.shrinkage;
        for row in other.buffer[..other.filled * other.d].chunks_exact(self.d.max(1)) {
            self.append_row(row.iter().copied())?;
        }
        self.append_row(cross.iter().map(|&v| v as f32))
    }

    /// BBᵀ of the live rows in f64, using the known norms of the orthogonal ones.
    /// The new rows' products are summed over column blocks in f64.
    fn buffer_gram(&self) -> Mat<f64> {
        let (m, k, d) = (self.filled, self.orthogonal, self.d);
        let mut g = Mat::zeros(m, m);
        for (i, &v) in self.norms[..k].iter().enumerate() {
            g[(i, i)] = v;
        }
        if m > k {
            let fresh = MatRef::from_row_major_slice(&self.buffer[k * d..m * d], m - k, d);
            let live = MatRef::from_row_major_slice(&self.buffer[..m * d], m, d);
            let mut block = Mat::<f32>::zeros(m - k, m);
            for start in (0..d).step_by(COLUMN_BLOCK) {
                let width = COLUMN_BLOCK.min(d - start);
                let (a, b) = (fresh.subcols(start, width), live.subcols(start, width));
                matmul(block.as_mut(), Accum::Replace, a, b.transpose(), 1.0, par_for((m - k) * m * width));
                for j in 0..m {
                    for i in 0..m - k {
                        g[(k + i, j)] += f64::from(block[(i, j)]);
                    }
                }
            }
        }
        g
    }

    /// The sketch's step when the buffer is full: δ = λ_ℓ, at most ℓ − 1 rows stay.
    fn shrink(&mut self) -> Result<(), SpectrumError> {
        self.shrink_to(self.rank - 1)
    }

    /// Subtracts δ = λ_{rows+1} (the largest eigenvalue that must go) from
    /// every eigenvalue of BᵀB and keeps the at most `rows` rows left positive.
    /// Any such δ keeps 0 ≼ S − BᵀB ≼ Δ·I, and the smaller `rows`, the more
    /// Frobenius mass each unit of δ removes, so the bound on Δ holds for
    /// `rows` ≥ ℓ − 1.
    fn shrink_to(&mut self, rows: usize) -> Result<(), SpectrumError> {
        let (m, d, rank) = (self.filled, self.d, self.rank);
        let (values, u) = eigen_desc(self.buffer_gram().as_ref())?;
        let delta = if m > rows { values[rows].max(0.0) } else { 0.0 };
        let keep = values.iter().take(rows).take_while(|&&v| v - delta > 0.0).count();
        let weights = Mat::from_fn(keep, m, |i, j| (((values[i] - delta) / values[i]).sqrt() * u[(j, i)]) as f32);
        // Each column block of the result depends on the same block of the
        // input only, so it can overwrite that block once computed.
        let width = COLUMN_BLOCK.min(d);
        if self.scratch.len() < keep * width {
            self.scratch.resize(rank * width, 0.0);
        }
        for start in (0..d).step_by(COLUMN_BLOCK) {
            let width = COLUMN_BLOCK.min(d - start);
            let live = MatRef::from_row_major_slice(&self.buffer[..m * d], m, d).subcols(start, width);
            let out = faer::MatMut::from_row_major_slice_mut(&mut self.scratch[..keep * width], keep, width);
            matmul(out, Accum::Replace, weights.as_ref(), live, 1.0f32, par_for(keep * m * width));
            for (row, block) in self.scratch[..keep * width].chunks_exact(width).enumerate() {
                self.buffer[row * d + start..row * d + start + width].copy_from_slice(block);
            }
        }
        self.norms.clear();
        self.norms.extend(values[..keep].iter().map(|v| v - delta));
        self.filled = keep;
        self.orthogonal = keep;
        self.shrinkage += delta;
        Ok(())
    }

    /// Shrinks to ℓ rows if the buffer holds more, so that the sketch travels
    /// (a partial aggregate's state) in ℓ rows rather than up to 2ℓ − 1,
    /// and still answers with ℓ eigenvalues. A shrink is the sketch's own
    /// step: the guarantee holds as before, Δ grows by the shrink's δ.
    pub fn compact(&mut self) -> Result<(), SpectrumError> {
        if self.filled > self.rank { self.shrink_to(self.rank) } else { Ok(()) }
    }

    /// The covariance's top min(ℓ, d, rows held) eigenvalues, each at most
    /// `error_bound` below the truth, or `None` below two observations.
    pub fn spectrum(&self) -> Result<Option<Spectrum>, SpectrumError> {
        if self.n < 2 {
            return Ok(None);
        }
        let scale = 1.0 / (self.n - 1) as f64;
        let mut eigenvalues = eigenvalues_desc(self.buffer_gram().as_ref())?;
        eigenvalues.truncate(self.rank.min(self.d));
        eigenvalues.iter_mut().for_each(|v| *v = v.max(0.0) * scale);
        Ok(Some(Spectrum {
            eigenvalues,
            error_bound: self.shrinkage * scale,
            total_variance: self.total * scale,
            n: self.n,
            d: self.d,
        }))
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        size_of::<Self>()
            + (self.buffer.capacity() + self.scratch.capacity()) * size_of::<f32>()
            + (self.mean.capacity() + self.norms.capacity()) * size_of::<f64>()
    }
}
