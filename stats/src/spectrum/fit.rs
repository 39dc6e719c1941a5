//! Power-law fits of a covariance spectrum, λ_k ∝ k^−s.
//!
//! Two views of the same law: [`spectrum_fit`] regresses log λ_k on log k
//! (rank–eigenvalue plot); [`spectrum_ks_test`] treats the eigenvalues as a
//! sample whose density is p(λ) ∝ λ^−β and fits it exactly as
//! `powerlaw_ks_test` does (Xie et al. 2023). If λ_k = λ_1·k^−s, then
//! #{k : λ_k ≥ λ} = (λ/λ_1)^(−1/s), so β = 1 + 1/s and s = 1/(β − 1).

use crate::powerlaw::{FitOptions, fit, ks_test};

/// Least-squares fit of log λ_k = log λ_1 − s·log k.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpectrumFit {
    /// The decay exponent s.
    pub s: f64,
    /// The fitted λ_1 (the intercept), not the largest eigenvalue itself.
    pub lambda1: f64,
    /// Coefficient of determination of the log–log fit.
    pub r2: f64,
    /// First rank used (1-based).
    pub kmin: usize,
    /// Last rank used (1-based, inclusive).
    pub kmax: usize,
}

/// How many leading eigenvalues of `eigs` (descending) count as nonzero:
/// above max|λ| · len · ε, as numpy's `matrix_rank` decides, so that
/// round-off in a rank-deficient covariance is not fitted.
pub fn nonzero_count(eigs: &[f64]) -> usize {
    let largest = eigs.iter().fold(0.0f64, |m, v| if v.is_finite() { m.max(v.abs()) } else { m });
    let tolerance = largest * eigs.len() as f64 * f64::EPSILON;
    eigs.iter().take_while(|&&v| v.is_finite() && v > tolerance).count()
}

/// Fits ranks `kmin..=kmax` (1-based; defaults: 1 and the last nonzero
/// eigenvalue; `kmax` is clamped to it). `eigs` must be descending. `None`
/// with fewer than two usable ranks.
pub fn spectrum_fit(eigs: &[f64], kmin: Option<usize>, kmax: Option<usize>) -> Option<SpectrumFit> {
    let nonzero = nonzero_count(eigs);
    let kmin = kmin.unwrap_or(1).max(1);
    let kmax = kmax.unwrap_or(nonzero).min(nonzero);
    if kmax < kmin + 1 {
        return None;
    }
    let points: Vec<(f64, f64)> = (kmin..=kmax).map(|k| ((k as f64).ln(), eigs[k - 1].ln())).collect();
    let m = points.len() as f64;
    let (mx, my) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x / m, b + y / m));
    let (sxx, sxy, syy) = points.iter().fold((0.0, 0.0, 0.0), |(a, b, c), (x, y)| {
        let (dx, dy) = (x - mx, y - my);
        (a + dx * dx, b + dx * dy, c + dy * dy)
    });
    let slope = sxy / sxx;
    let r2 = if syy > 0.0 { sxy * sxy / (sxx * syy) } else { 1.0 };
    Some(SpectrumFit { s: -slope, lambda1: (my - slope * mx).exp(), r2, kmin, kmax })
}

/// The paper's KS test on a spectrum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpectrumKsTest {
    /// Exponent of the eigenvalue density p(λ) ∝ λ^−β above `xmin`.
    pub beta: f64,
    /// The implied decay exponent s = 1/(β − 1).
    pub s: f64,
    /// KS distance between the tail and the fitted law.
    pub ks: f64,
    /// c(significance)/√n_tail.
    pub ks_critical: f64,
    /// Whether the power law is not rejected (ks ≤ ks_critical).
    pub power_law: bool,
    /// Smallest eigenvalue of the fitted tail.
    pub xmin: f64,
    /// Eigenvalues in the tail.
    pub n_tail: u64,
}

/// Fits the nonzero eigenvalues' density by Clauset–Shalizi–Newman (tail and KS
/// distance as `options` say) and tests it at `significance`. `None` with fewer
/// than two distinct nonzero values.
pub fn spectrum_ks_test(eigs: &[f64], significance: f64, options: &FitOptions) -> Option<SpectrumKsTest> {
    let mut sample: Vec<f64> = eigs[..nonzero_count(eigs)].to_vec();
    sample.sort_unstable_by(f64::total_cmp);
    let f = fit(&sample, options)?;
    let (ks_critical, power_law) = ks_test(&f, significance)?;
    Some(SpectrumKsTest {
        beta: f.alpha,
        s: 1.0 / (f.alpha - 1.0),
        ks: f.ks,
        ks_critical,
        power_law,
        xmin: f.xmin,
        n_tail: f.n_tail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exact_power_law_is_recovered_exactly() {
        let eigs: Vec<f64> = (1..=50).map(|k| 3.0 * f64::powf(k as f64, -1.3)).collect();
        let f = spectrum_fit(&eigs, None, None).unwrap();
        assert!((f.s - 1.3).abs() < 1e-12 && (f.lambda1 - 3.0).abs() < 1e-11 && (f.r2 - 1.0).abs() < 1e-12, "{f:?}");
        assert_eq!((f.kmin, f.kmax), (1, 50));
    }

    #[test]
    fn round_off_zeros_are_not_fitted_and_kmax_is_clamped() {
        let mut eigs: Vec<f64> = (1..=20).map(|k| f64::powf(k as f64, -2.0)).collect();
        eigs.extend([1e-18, -3e-17, 0.0]);
        assert_eq!(nonzero_count(&eigs), 20);
        let f = spectrum_fit(&eigs, Some(5), Some(100)).unwrap();
        assert_eq!((f.kmin, f.kmax), (5, 20));
        assert!((f.s - 2.0).abs() < 1e-12);
        assert_eq!(spectrum_fit(&eigs, Some(20), None), None);
        assert_eq!(spectrum_fit(&[], None, None), None);
    }

    #[test]
    fn the_ks_view_finds_beta_one_plus_one_over_s() {
        // Eigenvalues exactly on λ_k = k^-s: the density of values is λ^-(1+1/s).
        for s in [0.8, 1.0, 1.5] {
            let eigs: Vec<f64> = (1..=5000).map(|k| f64::powf(k as f64, -s)).collect();
            let t = spectrum_ks_test(&eigs, 0.05, &FitOptions::default()).unwrap();
            assert!((t.s - s).abs() < 0.05 * s, "s={s}: {t:?}");
            assert!((t.beta - (1.0 + 1.0 / s)).abs() < 0.05, "s={s}: {t:?}");
            assert!(t.power_law, "s={s}: {t:?}");
        }
    }
}
