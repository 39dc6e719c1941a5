//! Likelihood-ratio tests of a fitted power-law tail against alternatives
//! (Clauset, Shalizi & Newman 2009, §5; Vuong 1989).
//!
//! Every alternative is fitted by maximum likelihood to the same tail (values
//! ≥ xmin), *conditional* on x ≥ xmin, with the data scaled to u = x/xmin (the
//! ratio of two densities does not change under scaling). All likelihoods are
//! evaluated in log space — no floors — and through sufficient statistics, so
//! fitting costs O(1) per evaluation (O(m) for the stretched exponential).
//!
//! * `exponential`: λe^{−λ(u−1)}, closed-form MLE.
//! * `stretched_exponential` (Weibull): βλu^{β−1}e^{−λ(u^β−1)}; λ is profiled out
//!   (λ = m/Σ(u^β−1)) and β found by golden section on ln β.
//! * `lognormal`: N(μ, σ²) on ln u, truncated to ln u ≥ 0; Nelder–Mead on (μ, ln σ).
//!   On a pure power law the optimum runs off to μ → −∞, σ → ∞ (the lognormal
//!   approaches the power law); the search then stops at its best finite point,
//!   the ratio is ≈ 0 and p is ≈ 1: "cannot tell them apart", which is the right answer.
//! * `truncated_power_law`: u^{−a}e^{−λu}/I(a, λ), I by quadrature in ln u; Nelder–Mead
//!   on (a, ln λ). It nests the power law (λ → 0), so p is from χ²₁ on 2|R|.
//!
//! R = Σ ln p_powerlaw(u_i) − ln p_alt(u_i): positive favours the power law.
//! For non-nested alternatives p = erfc(|R|/√(2nσ²)) (Vuong, two-sided) and the
//! normalized ratio is R/√(nσ²), σ² the variance of the pointwise differences —
//! the conventions of the Python `powerlaw` package.

use std::fmt;
use std::str::FromStr;

use statrs::distribution::{ChiSquared, ContinuousCDF};
use statrs::function::erf::erfc;

use super::optimize::{golden_section, nelder_mead};
use super::powerlaw::PowerLawFit;

/// A distribution compared with the power law.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alternative {
    /// Exponential tail.
    Exponential,
    /// Lognormal tail.
    Lognormal,
    /// Stretched exponential (Weibull) tail.
    StretchedExponential,
    /// Power law with exponential cut-off (nests the power law).
    TruncatedPowerLaw,
}

impl Alternative {
    /// The SQL name.
    pub fn as_str(self) -> &'static str {
        match self {
            Alternative::Exponential => "exponential",
            Alternative::Lognormal => "lognormal",
            Alternative::StretchedExponential => "stretched_exponential",
            Alternative::TruncatedPowerLaw => "truncated_power_law",
        }
    }
}

impl fmt::Display for Alternative {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Alternative {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [Self::Exponential, Self::Lognormal, Self::StretchedExponential, Self::TruncatedPowerLaw]
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                format!("unknown alternative {s:?} (expected exponential, lognormal, stretched_exponential or truncated_power_law)")
            })
    }
}

/// Result of [`compare`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    /// The alternative.
    pub alternative: Alternative,
    /// R: positive favours the power law.
    pub loglik_ratio: f64,
    /// R/√(nσ²).
    pub normalized_ratio: f64,
    /// Significance of the sign of R (nested: of R being non-zero).
    pub p_value: f64,
}

/// Compares the power law `fit` of `sorted` (ascending, the sample it was fitted to) with `alternative`.
/// `None` when the tail is degenerate for the alternative (e.g. all values equal xmin).
pub fn compare(sorted: &[f64], fit: &PowerLawFit, alternative: Alternative) -> Option<Comparison> {
    let tail = &sorted[sorted.len() - fit.n_tail as usize..];
    let ln_u: Vec<f64> = tail.iter().map(|x| (x / fit.xmin).ln()).collect();
    let u: Vec<f64> = tail.iter().map(|x| x / fit.xmin).collect();
    let m = tail.len() as f64;
    let sum_ln_u: f64 = ln_u.iter().sum();
    let alpha = fit.alpha;
    let pl = |lu: f64| (alpha - 1.0).ln() - alpha * lu;
    let alt: Box<dyn Fn(usize) -> f64> = match alternative {
        Alternative::Exponential => {
            let mean_excess = u.iter().map(|v| v - 1.0).sum::<f64>() / m;
            if mean_excess <= 0.0 {
                return None;
            }
            let lambda = 1.0 / mean_excess;
            Box::new(move |i| lambda.ln() - lambda * (u[i] - 1.0))
        }
        Alternative::StretchedExponential => {
            let max_ln_u = ln_u.iter().copied().fold(0.0, f64::max);
            if max_ln_u <= 0.0 {
                return None;
            }
            let excess = |beta: f64| ln_u.iter().map(|&l| (beta * l).exp_m1()).sum::<f64>();
            let neg_profile = |ln_beta: f64| {
                let beta = ln_beta.exp();
                -(m * beta.ln() + m * (m / excess(beta)).ln() + (beta - 1.0) * sum_ln_u - m)
            };
            // β·max ln u must stay below the overflow of exp.
            let hi = (700.0 / max_ln_u).ln().min(5.0);
            let (ln_beta, _) = golden_section(neg_profile, -12.0, hi, 120);
            let beta = ln_beta.exp();
            let lambda = m / excess(beta);
            let ln_u = ln_u.clone();
            Box::new(move |i| beta.ln() + lambda.ln() + (beta - 1.0) * ln_u[i] - lambda * (beta * ln_u[i]).exp_m1())
        }
        Alternative::Lognormal => {
            let mean = sum_ln_u / m;
            let sq: f64 = ln_u.iter().map(|l| l * l).sum();
            let sd = (sq / m - mean * mean).max(0.0).sqrt();
            if sd <= 0.0 {
                return None;
            }
            let half_ln_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
            let neg_ll = |p: &[f64; 2]| {
                let (mu, sigma) = (p[0], p[1].exp());
                let ss = sq - 2.0 * mu * sum_ln_u + m * mu * mu;
                -(-sum_ln_u
                    - m * (sigma.ln() + half_ln_2pi)
                    - ss / (2.0 * sigma * sigma)
                    - m * ln_upper_tail(-mu / sigma))
            };
            let (p, _) = nelder_mead(neg_ll, [mean, sd.ln()], [sd.max(0.1), 0.5], 4000);
            let (mu, sigma) = (p[0], p[1].exp());
            let tail_norm = ln_upper_tail(-mu / sigma);
            let ln_u = ln_u.clone();
            Box::new(move |i| {
                let z = (ln_u[i] - mu) / sigma;
                -ln_u[i] - sigma.ln() - half_ln_2pi - 0.5 * z * z - tail_norm
            })
        }
        Alternative::TruncatedPowerLaw => {
            let sum_u: f64 = u.iter().sum();
            let neg_ll = |p: &[f64; 2]| {
                let (a, lambda) = (p[0], p[1].exp());
                -(-a * sum_ln_u - lambda * sum_u - m * ln_tpl_norm(a, lambda))
            };
            let mean_u = sum_u / m;
            let (p, _) = nelder_mead(neg_ll, [alpha, (0.01 / mean_u).ln()], [0.1, 1.0], 4000);
            let (a, lambda) = (p[0], p[1].exp());
            let norm = ln_tpl_norm(a, lambda);
            let ln_u = ln_u.clone();
            let u = u.clone();
            Box::new(move |i| -a * ln_u[i] - lambda * u[i] - norm)
        }
    };
    let diffs: Vec<f64> = (0..ln_u.len()).map(|i| pl(ln_u[i]) - alt(i)).collect();
    let r: f64 = diffs.iter().sum();
    let mean = r / m;
    let variance = diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / m;
    let spread = (m * variance).sqrt();
    let normalized_ratio = if spread > 0.0 { r / spread } else { 0.0 };
    let p_value = if alternative == Alternative::TruncatedPowerLaw {
        1.0 - ChiSquared::new(1.0).expect("1 dof").cdf((2.0 * r).abs())
    } else if spread > 0.0 {
        erfc(r.abs() / (2.0f64.sqrt() * spread))
    } else {
        1.0
    };
    Some(Comparison { alternative, loglik_ratio: r, normalized_ratio, p_value })
}

/// ln P(Z > z) for a standard normal Z, accurate far into the tail.
fn ln_upper_tail(z: f64) -> f64 {
    if z < 30.0 { (0.5 * erfc(z / std::f64::consts::SQRT_2)).ln() } else { ln_upper_tail_asymptotic(z) }
}

/// Asymptotic series of Mills' ratio; at z ≥ 30 the terms beyond z^-6 are below 1e-10.
fn ln_upper_tail_asymptotic(z: f64) -> f64 {
    let z2 = z * z;
    -0.5 * z2 - (z * (2.0 * std::f64::consts::PI).sqrt()).ln()
        + (1.0 - 1.0 / z2 + 3.0 / (z2 * z2) - 15.0 / (z2 * z2 * z2)).ln()
}

/// ln ∫_1^∞ u^{−a} e^{−λu} du = ln ∫_0^∞ exp(−(a−1)t − λe^t) dt, by Simpson's rule
/// around the integrand's peak (the exponent is concave in t).
fn ln_tpl_norm(a: f64, lambda: f64) -> f64 {
    if lambda.is_nan() || lambda <= 0.0 || !a.is_finite() {
        return f64::NAN;
    }
    let g = |t: f64| -(a - 1.0) * t - lambda * t.exp();
    let peak = if 1.0 - a > lambda { ((1.0 - a) / lambda).ln() } else { 0.0 };
    let top = g(peak);
    let mut hi = peak + 1.0;
    while g(hi) > top - 45.0 {
        hi = peak + 2.0 * (hi - peak);
        if hi > 1e4 {
            return f64::NAN;
        }
    }
    let mut lo = peak;
    while lo > 0.0 && g(lo) > top - 45.0 {
        lo = (peak - 2.0 * (peak - lo).max(1.0)).max(0.0);
    }
    let n = 4096;
    let h = (hi - lo) / n as f64;
    let mut sum = 0.0;
    for k in 0..=n {
        let w = if k == 0 || k == n {
            1.0
        } else if k % 2 == 1 {
            4.0
        } else {
            2.0
        };
        sum += w * (g(lo + k as f64 * h) - top).exp();
    }
    top + (sum * h / 3.0).ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::powerlaw::{FitOptions, KsConvention, fit};

    #[test]
    fn tpl_normalizer_matches_closed_forms() {
        // a = 0: ∫_1^∞ e^{−λu} du = e^{−λ}/λ.
        for lambda in [0.01f64, 0.5, 3.0] {
            let want = -lambda - lambda.ln();
            assert!((ln_tpl_norm(0.0, lambda) - want).abs() < 1e-9, "λ={lambda}");
        }
        // a = 2, λ → 0: ∫_1^∞ u^{-2} du = 1.
        assert!(ln_tpl_norm(2.0, 1e-12).abs() < 1e-6);
    }

    #[test]
    fn upper_tail_is_continuous_at_the_switch() {
        for z in [10.0, 20.0, 29.9] {
            let (exact, series) = (ln_upper_tail(z), ln_upper_tail_asymptotic(z));
            assert!((exact - series).abs() < 1e-7 * exact.abs(), "z={z}: {exact} {series}");
        }
        assert!((ln_upper_tail(0.0) - 0.5f64.ln()).abs() < 1e-15);
    }

    #[test]
    fn favours_the_law_that_generated_the_data() {
        let mut s = 1u64;
        let mut u = move || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        // Exponential data above 1: the exponential wins (R < 0, significant).
        let mut exp: Vec<f64> = (0..3000).map(|_| 1.0 - u().ln()).collect();
        exp.sort_by(f64::total_cmp);
        let f = crate::powerlaw::fit_at(&exp, 1.0, KsConvention::Csn).unwrap();
        let c = compare(&exp, &f, Alternative::Exponential).unwrap();
        assert!(c.loglik_ratio < 0.0 && c.p_value < 0.05, "{c:?}");
        // Pure power law: no alternative is significantly better; the nested test sees no cut-off.
        let mut pl: Vec<f64> = (0..3000).map(|_| u().powf(-1.0 / 1.5)).collect();
        pl.sort_by(f64::total_cmp);
        let f = fit(&pl, &FitOptions::default()).unwrap();
        for alt in [
            Alternative::Exponential,
            Alternative::StretchedExponential,
            Alternative::Lognormal,
            Alternative::TruncatedPowerLaw,
        ] {
            let c = compare(&pl, &f, alt).unwrap();
            assert!(c.p_value.is_finite() && c.loglik_ratio.is_finite(), "{c:?}");
            assert!(c.loglik_ratio > 0.0 || c.p_value > 0.05, "{alt}: {c:?}");
        }
    }
}
