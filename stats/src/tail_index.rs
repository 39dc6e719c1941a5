//! Tail-index estimators: Hill's, and the α-stable estimator of Mohammadi,
//! Mohammadpour & Ogata (2015) as used by Şimşekli, Sagun & Gürbüzbalaban (2019).

/// Hill's estimator of the tail index α (P(|X| > x) ~ x^−α) from the `k` largest
/// values of `magnitudes` (|x|, sorted ascending, all > 0): 1/H with
/// H = (1/k) Σ_{i≤k} ln(X_(i)/X_(k+1)), X_(1) the largest. `None` unless there
/// are more than k values.
pub fn hill(magnitudes: &[f64], k: usize) -> Option<f64> {
    let n = magnitudes.len();
    if k == 0 || n <= k {
        return None;
    }
    let threshold = magnitudes[n - k - 1].ln();
    let h = magnitudes[n - k..].iter().map(|x| x.ln() - threshold).sum::<f64>() / k as f64;
    (h > 0.0).then(|| 1.0 / h)
}

/// The α-stable tail-index estimator: with K1 the largest divisor of n not above
/// √n and Y_i the sums of K1 consecutive values,
/// 1/α̂ = (mean ln|Y| − mean ln|X|) / ln K1  (ln of |·| + machine epsilon, as in Şimşekli's code).
///
/// It assumes centred, symmetric data (an α-stable law has no mean to
/// subtract when α ≤ 1). The value depends on how values are grouped into
/// blocks; `values` are taken in the given order. `None` when n has no divisor
/// K1 ≥ 2 (n < 4 or prime).
pub fn stable_alpha(values: &[f64]) -> Option<f64> {
    let n = values.len();
    let k1 = (2..=n.isqrt()).rev().find(|&d| n.is_multiple_of(d))?;
    let eps = f64::EPSILON;
    let mean_log_x = values.iter().map(|x| (x.abs() + eps).ln()).sum::<f64>() / n as f64;
    let blocks = values.chunks_exact(k1);
    let k2 = blocks.len() as f64;
    let mean_log_y = blocks.map(|b| (b.iter().sum::<f64>().abs() + eps).ln()).sum::<f64>() / k2;
    let inv = (mean_log_y - mean_log_x) / (k1 as f64).ln();
    (inv > 0.0).then(|| 1.0 / inv)
}

/// A fixed pseudo-random order of `values` (sorted first), so that
/// [`stable_alpha`] gives the same answer whatever order rows arrive in, and its
/// blocks are random groupings rather than runs of neighbouring values.
pub fn canonical_shuffle(values: &mut [f64]) {
    values.sort_unstable_by(f64::total_cmp);
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for i in (1..values.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        values.swap(i, (state % (i as u64 + 1)) as usize);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_distr::{Distribution, StandardNormal};

    /// Symmetric α-stable draws by Chambers, Mallows & Stuck (1976).
    fn stable(alpha: f64, n: usize, seed: u64) -> Vec<f64> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let v = std::f64::consts::PI * (rng.random::<f64>() - 0.5);
                let w = -(1.0 - rng.random::<f64>()).ln();
                (alpha * v).sin() / v.cos().powf(1.0 / alpha) * ((v - alpha * v).cos() / w).powf((1.0 - alpha) / alpha)
            })
            .collect()
    }

    #[test]
    fn hill_on_exact_pareto_quantiles() {
        // Pareto(α = 2) quantiles: x_i = (i/n)^(−1/2), so ln(x_i/x_{k+1}) sums exactly.
        let n = 100_000;
        let v: Vec<f64> = (1..=n).rev().map(|i| (i as f64 / n as f64).powf(-0.5)).collect();
        let est = hill(&v, 1000).unwrap();
        assert!((est - 2.0).abs() < 0.02, "{est}");
        assert!(hill(&v[..5], 5).is_none());
    }

    #[test]
    fn stable_alpha_recovers_known_indices() {
        for (alpha, tol) in [(1.2, 0.12), (1.7, 0.12)] {
            let mut v = stable(alpha, 200_000, 3);
            canonical_shuffle(&mut v);
            let est = stable_alpha(&v).unwrap();
            assert!((est - alpha).abs() < tol, "alpha {alpha}: {est}");
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let gauss: Vec<f64> = (0..200_000).map(|_| StandardNormal.sample(&mut rng)).collect();
        let est = stable_alpha(&gauss).unwrap();
        assert!((est - 2.0).abs() < 0.1, "gaussian: {est}");
        assert!(stable_alpha(&[1.0, 2.0, 3.0]).is_none(), "prime n has no block size");
    }

    #[test]
    fn canonical_order_ignores_input_order() {
        let a: Vec<f64> = (0..1000).map(|i| (i as f64).sin()).collect();
        let mut b = a.clone();
        b.reverse();
        let (mut a, mut b) = (a, b);
        canonical_shuffle(&mut a);
        canonical_shuffle(&mut b);
        assert_eq!(a, b);
        assert_eq!(stable_alpha(&a), stable_alpha(&b));
    }
}
