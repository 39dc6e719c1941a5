//! Normality of a sample: moments, the Lilliefors KS test and Jarque–Bera.
//!
//! * skewness and excess kurtosis are the moment estimators g1 = m3/m2^(3/2),
//!   g2 = m4/m2² − 3 (population central moments, as scipy's default);
//! * Jarque–Bera: JB = n/6·(g1² + g2²/4), p from χ²₂ (statrs);
//! * KS distance to the normal with the sample's mean and standard deviation,
//!   with the Lilliefors p-value of Dallal & Wilkinson (1986) for p ≤ 0.1 and,
//!   above, Stephens' modified statistic with the polynomial approximation used
//!   by R's `nortest::lillie.test` — the same full-range approximation R users get.

use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};

/// Results of [`gaussian_test`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GaussianTest {
    /// Sample mean.
    pub mean: f64,
    /// Sample standard deviation (n − 1 denominator).
    pub std: f64,
    /// g1.
    pub skewness: f64,
    /// g2 (0 for a normal).
    pub excess_kurtosis: f64,
    /// KS distance to N(mean, std²).
    pub ks: f64,
    /// Lilliefors p-value of `ks`.
    pub ks_p_value: f64,
    /// The Jarque–Bera statistic.
    pub jarque_bera: f64,
    /// Its χ²₂ p-value.
    pub jb_p_value: f64,
    /// Values used.
    pub n: u64,
}

/// Tests `sorted` (ascending, finite) for normality. `None` with fewer than
/// 3 values or zero variance.
pub fn gaussian_test(sorted: &[f64]) -> Option<GaussianTest> {
    let n = sorted.len();
    if n < 3 {
        return None;
    }
    let nf = n as f64;
    let mean = sorted.iter().sum::<f64>() / nf;
    let (mut m2, mut m3, mut m4) = (0.0, 0.0, 0.0);
    for &x in sorted {
        let d = x - mean;
        let d2 = d * d;
        m2 += d2;
        m3 += d2 * d;
        m4 += d2 * d2;
    }
    let (m2, m3, m4) = (m2 / nf, m3 / nf, m4 / nf);
    if m2 <= 0.0 || !m2.is_finite() {
        return None;
    }
    let skewness = m3 / m2.powf(1.5);
    let excess_kurtosis = m4 / (m2 * m2) - 3.0;
    let std = (m2 * nf / (nf - 1.0)).sqrt();
    let jarque_bera = nf / 6.0 * (skewness * skewness + excess_kurtosis * excess_kurtosis / 4.0);
    let jb_p_value = 1.0 - ChiSquared::new(2.0).expect("2 dof").cdf(jarque_bera);
    let normal = Normal::new(mean, std).ok()?;
    let mut ks = 0.0f64;
    for (i, &x) in sorted.iter().enumerate() {
        let p = normal.cdf(x);
        ks = ks.max((i + 1) as f64 / nf - p).max(p - i as f64 / nf);
    }
    Some(GaussianTest {
        mean,
        std,
        skewness,
        excess_kurtosis,
        ks,
        ks_p_value: lilliefors_p_value(ks, n),
        jarque_bera,
        jb_p_value,
        n: n as u64,
    })
}

/// The Lilliefors p-value of KS distance `d` for a sample of `n` (see the module docs).
pub fn lilliefors_p_value(d: f64, n: usize) -> f64 {
    let nf = n as f64;
    let (kd, nd) = if n > 100 { (d * (nf / 100.0).powf(0.49), 100.0) } else { (d, nf) };
    let p = (-7.01256 * kd * kd * (nd + 2.78019) + 2.99587 * kd * (nd + 2.78019).sqrt() - 0.122119
        + 0.974598 / nd.sqrt()
        + 1.67997 / nd)
        .exp();
    if p <= 0.1 {
        return p;
    }
    let kk = (nf.sqrt() - 0.01 + 0.85 / nf.sqrt()) * d;
    let p = if kk <= 0.302 {
        1.0
    } else if kk <= 0.5 {
        2.76773 - 19.828315 * kk + 80.709644 * kk.powi(2) - 138.55152 * kk.powi(3) + 81.218052 * kk.powi(4)
    } else if kk <= 0.9 {
        -4.901232 + 40.662806 * kk - 97.490286 * kk.powi(2) + 94.029866 * kk.powi(3) - 32.355711 * kk.powi(4)
    } else if kk <= 1.31 {
        6.198765 - 19.558097 * kk + 23.186922 * kk.powi(2) - 12.234627 * kk.powi(3) + 2.423045 * kk.powi(4)
    } else {
        0.0
    };
    p.clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    fn sorted(mut v: Vec<f64>) -> Vec<f64> {
        v.sort_by(f64::total_cmp);
        v
    }

    #[test]
    fn moments_match_closed_forms() {
        // 1, 2, 3, 4: mean 2.5, m2 = 1.25, m3 = 0, m4 = 2.5625 → g2 = 2.5625/1.5625 − 3 = −1.36.
        let t = gaussian_test(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(t.mean, 2.5);
        assert!((t.std - (5.0f64 / 3.0).sqrt()).abs() < 1e-15);
        assert_eq!(t.skewness, 0.0);
        assert!((t.excess_kurtosis + 1.36).abs() < 1e-12);
        // JB = 4/6 · (1.36²/4) = 0.30827, p = exp(−JB/2) for χ²₂.
        let jb = 4.0 / 6.0 * (1.36 * 1.36 / 4.0);
        assert!((t.jarque_bera - jb).abs() < 1e-12);
        assert!((t.jb_p_value - (-jb / 2.0).exp()).abs() < 1e-12);
        assert!(gaussian_test(&[1.0, 1.0, 1.0]).is_none());
    }

    #[test]
    fn lilliefors_is_calibrated_on_normal_samples_and_rejects_uniform_ones() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let trials = 600;
        let mut rejected = 0;
        for _ in 0..trials {
            let v = sorted((0..100).map(|_| StandardNormal.sample(&mut rng)).collect());
            rejected += usize::from(gaussian_test(&v).unwrap().ks_p_value < 0.05);
        }
        let rate = rejected as f64 / trials as f64;
        // Binomial(600, 0.05): sd 0.009; a miscalibrated p-value lands far outside.
        assert!((0.02..=0.08).contains(&rate), "rejection rate {rate}");
        let uniform = sorted((0..500).map(|i| i as f64 / 500.0).collect());
        assert!(gaussian_test(&uniform).unwrap().ks_p_value < 0.01);
    }
}
