//! The symmetric eigensolver and the Gram products every estimator needs.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par, Side};

use super::SpectrumError;

/// Eigenvalues of the symmetric matrix `a` (lower triangle read), descending.
pub(crate) fn eigenvalues_desc(a: MatRef<'_, f64>) -> Result<Vec<f64>, SpectrumError> {
    let mut values = a.self_adjoint_eigenvalues(Side::Lower).map_err(|_| SpectrumError::NoConvergence(a.nrows()))?;
    values.reverse();
    Ok(values)
}

/// Eigenvalues (descending) and eigenvectors (columns, same order) of the symmetric `a`.
pub(crate) fn eigen_desc(a: MatRef<'_, f64>) -> Result<(Vec<f64>, Mat<f64>), SpectrumError> {
    let evd = a.self_adjoint_eigen(Side::Lower).map_err(|_| SpectrumError::NoConvergence(a.nrows()))?;
    let m = a.nrows();
    let s = evd.S().column_vector();
    let values = (0..m).rev().map(|i| s[i]).collect();
    let u = evd.U();
    let vectors = Mat::from_fn(m, m, |r, c| u[(r, m - 1 - c)]);
    Ok((values, vectors))
}

/// The Gram matrix X Xᵀ of `rows` row-major rows of length `d`.
pub(crate) fn gram(rows: &[f64], d: usize, par: Par) -> Mat<f64> {
    let n = rows.len().checked_div(d).unwrap_or(0);
    let x = MatRef::from_row_major_slice(rows, n, d);
    let mut g = Mat::zeros(n, n);
    matmul(g.as_mut(), Accum::Replace, x, x.transpose(), 1.0, par);
    g
}

/// The parallelism for one large product: every core when the work is big
/// enough to pay for it.
pub(crate) fn par_for(flops: usize) -> Par {
    if flops >= 1 << 24 { Par::rayon(0) } else { Par::Seq }
}
