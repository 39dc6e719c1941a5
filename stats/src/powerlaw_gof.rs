//! The semi-parametric bootstrap goodness-of-fit test of Clauset, Shalizi &
//! Newman (2009, §4.1).
//!
//! Each synthetic set has the sample's size n; each value is, with probability
//! n_tail/n, a draw from the fitted power law above xmin, and otherwise a value
//! drawn uniformly from the observed values below xmin. Every set is refitted
//! *with its own xmin search*, and p is the share of sets whose KS distance is at
//! least the observed one (p > 0.1: a power law is plausible). With a fixed
//! xmin rule each set is refitted by the same rule, and every distance is
//! measured in the same KS convention as the observed one. Replicate r uses
//! its own random stream derived from (seed, r), so the result is the same for a
//! seed whatever the number of threads.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::powerlaw::{FitOptions, PowerLawFit, fit, fits_better_than};

/// Result of [`gof`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GofResult {
    /// The fit to the observed sample.
    pub fit: PowerLawFit,
    /// Share of synthetic sets at least as far from their fit as the sample.
    pub p_value: f64,
    /// Replicates run.
    pub reps: u64,
}

/// Runs the bootstrap with `reps` replicates on `sorted` (ascending, finite, positive).
pub fn gof(sorted: &[f64], reps: u64, seed: u64, options: &FitOptions) -> Option<GofResult> {
    let observed = fit(sorted, options)?;
    if reps == 0 {
        return None;
    }
    let n = sorted.len();
    let body = &sorted[..n - observed.n_tail as usize];
    let tail_share = observed.n_tail as f64 / n as f64;
    let exponent = -1.0 / (observed.alpha - 1.0);
    let at_least = (0..reps)
        .into_par_iter()
        .filter(|&r| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ r.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut synthetic: Vec<f64> = (0..n)
                .map(|_| {
                    if body.is_empty() || rng.random::<f64>() < tail_share {
                        observed.xmin * (1.0 - rng.random::<f64>()).powf(exponent)
                    } else {
                        body[rng.random_range(0..body.len())]
                    }
                })
                .collect();
            synthetic.sort_unstable_by(f64::total_cmp);
            // A degenerate synthetic set (one distinct value) cannot be fitted: it counts as worse.
            fits_better_than(&synthetic, options, observed.ks).is_none_or(|better| !better)
        })
        .count();
    Some(GofResult { fit: observed, p_value: at_least as f64 / reps as f64, reps })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(seed: u64, n: usize, f: impl Fn(f64) -> f64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut v: Vec<f64> = (0..n).map(|_| f(1.0 - rng.random::<f64>())).collect();
        v.sort_by(f64::total_cmp);
        v
    }

    #[test]
    fn power_law_data_is_plausible_and_exponential_data_is_not() {
        let pl = sample(1, 2000, |u| u.powf(-1.0 / 1.5));
        let g = gof(&pl, 200, 7, &FitOptions::default()).unwrap();
        assert!(g.p_value > 0.1, "p = {}", g.p_value);
        // Exponential: a power law is rejected (p near 0) — CSN's standard counter-example.
        let exp = sample(2, 2000, |u| -u.ln());
        let g = gof(&exp, 200, 7, &FitOptions::default()).unwrap();
        assert!(g.p_value < 0.1, "p = {}", g.p_value);
    }

    /// The KS distance between the p-values and the uniform law on [0, 1].
    fn distance_to_uniform(mut p: Vec<f64>) -> f64 {
        p.sort_by(f64::total_cmp);
        let t = p.len() as f64;
        p.iter().enumerate().fold(0.0f64, |d, (i, &x)| d.max((i as f64 + 1.0) / t - x).max(x - i as f64 / t))
    }

    /// CSN's promise (§4.1): on data that are a power law above the fitted xmin,
    /// p is uniform on [0, 1] — the test rejects a true power law at p < 0.1 one
    /// time in ten, no more, no less. Over `trials` independent Pareto samples
    /// the p-values' KS distance to U(0, 1) must stay below the 1% critical
    /// value 1.63/√trials, widened by the p-values' own grid (1/reps). Both
    /// with the xmin search and with a fixed rule (the whole sample).
    #[test]
    fn p_values_are_uniform_on_power_law_data() {
        let (trials, reps, n) = (100u64, 100u64, 200usize);
        let limit = 1.63 / (trials as f64).sqrt() + 1.0 / reps as f64;
        for options in [FitOptions::default(), "xmin=all".parse().unwrap()] {
            let p: Vec<f64> = (0..trials)
                .map(|t| gof(&sample(1000 + t, n, |u| u.powf(-1.0 / 1.5)), reps, t, &options).unwrap().p_value)
                .collect();
            let rejected = p.iter().filter(|&&x| x < 0.1).count();
            let d = distance_to_uniform(p);
            eprintln!("{options:?}: D = {d:.3} (limit {limit:.3}), {rejected} of {trials} p-values below 0.1");
            assert!(
                d <= limit,
                "{options:?}: KS distance of the p-values to U(0,1) {d} > {limit}; {rejected} of {trials} below 0.1"
            );
        }
        // The check has power: p-values of exponential data are far from uniform.
        let p: Vec<f64> = (0..20u64)
            .map(|t| gof(&sample(5000 + t, n, |u| -u.ln()), reps, t, &"xmin=all".parse().unwrap()).unwrap().p_value)
            .collect();
        assert!(distance_to_uniform(p) > 1.63 / 20f64.sqrt());
    }

    #[test]
    fn deterministic_for_a_seed() {
        let v = sample(3, 500, |u| u.powf(-1.0 / 1.2));
        let a = gof(&v, 50, 42, &FitOptions::default()).unwrap();
        let b = gof(&v, 50, 42, &FitOptions::default()).unwrap();
        assert_eq!(a, b);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let c = pool.install(|| gof(&v, 50, 42, &FitOptions::default()).unwrap());
        assert_eq!(a, c, "same answer on one thread");
    }
}
