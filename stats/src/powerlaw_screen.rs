//! Dismissing many xmin candidates of the CSN search at once.
//!
//! Almost every candidate of a search is dismissed by one deviation: the
//! point where its neighbour's D was reached (the *hint*) already deviates
//! more than the best D found so far. On gradients (LeNet on MNIST, ~48,000
//! values) 99.7% of candidates go that way, so the search's cost is one
//! `expm1` and one division per candidate, evaluated one at a time.
//!
//! This module evaluates that deviation for a run of candidates that share the
//! hint, several lanes at a time, with an exponential that is accurate to
//! ~1e-14 relative instead of libm's `expm1` — and only to *decide*. A
//! candidate is dismissed here only when its approximate deviation exceeds the
//! cutoff by a margin five orders of magnitude above the approximation's
//! error; every other candidate goes to the exact evaluation. So the search
//! visits the same candidates with the same exact numbers and its result is
//! bit-identical; only the dismissals are cheaper.

/// Candidates evaluated together (two AVX2 registers of f64).
const LANES: usize = 8;

/// How far above the cutoff an approximate deviation must be to dismiss a
/// candidate: the approximation is within ~1e-14 of the exact deviation.
const MARGIN: f64 = 1e-9;

/// The per-sample arrays the deviations are computed from.
#[derive(Clone, Copy)]
pub(super) struct ScreenTail<'a> {
    /// ln x of the sorted sample.
    pub ln_x: &'a [f64],
    /// suffix_log[i] = Σ_{j ≥ i} ln x_j.
    pub suffix_log: &'a [f64],
}

/// How many leading `starts` surely have a deviation above `cutoff` at point
/// `at`, whose empirical rank (before subtracting the start) is `rank_at`.
/// Every start must be ≤ `at`. The count stops at the first start that is not
/// surely dismissed: that one needs the exact evaluation.
pub(super) fn dismissed_prefix(
    tail: ScreenTail<'_>,
    starts: &[usize],
    at: usize,
    rank_at: usize,
    cutoff: f64,
) -> usize {
    debug_assert!(starts.iter().all(|&s| s <= at));
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports AVX2 and FMA (checked just above).
        return unsafe { dismissed_prefix_avx2(tail, starts, at, rank_at, cutoff) };
    }
    dismissed_prefix_lanes(tail, starts, at, rank_at, cutoff)
}

/// The same code compiled with AVX2 and FMA enabled, so the lane loops vectorise.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dismissed_prefix_avx2(tail: ScreenTail<'_>, starts: &[usize], at: usize, rank_at: usize, cutoff: f64) -> usize {
    dismissed_prefix_lanes(tail, starts, at, rank_at, cutoff)
}

#[inline(always)]
fn dismissed_prefix_lanes(tail: ScreenTail<'_>, starts: &[usize], at: usize, rank_at: usize, cutoff: f64) -> usize {
    let n = tail.ln_x.len() as f64;
    let ln_at = tail.ln_x[at];
    let rank_at = rank_at as f64;
    let mut done = 0;
    for block in starts.chunks(LANES) {
        // Spare lanes repeat the first start; their answers are ignored.
        let mut start = [block[0] as f64; LANES];
        let mut ln_xmin = [tail.ln_x[block[0]]; LANES];
        let mut suffix = [tail.suffix_log[block[0]]; LANES];
        for (k, &s) in block.iter().enumerate() {
            start[k] = s as f64;
            ln_xmin[k] = tail.ln_x[s];
            suffix[k] = tail.suffix_log[s];
        }
        let mut gone = [false; LANES];
        for k in 0..LANES {
            let m = n - start[k];
            let alpha = 1.0 + m / (suffix[k] - m * ln_xmin[k]);
            let e = exp_approx((1.0 - alpha) * (ln_at - ln_xmin[k]));
            let deviation = ((1.0 - e) - (rank_at - start[k]) / m).abs();
            // NaN (a degenerate tail) compares false: left to the exact path.
            gone[k] = deviation - MARGIN * (1.0 + e) > cutoff;
        }
        if let Some(first) = gone[..block.len()].iter().position(|&g| !g) {
            return done + first;
        }
        done += block.len();
    }
    done
}

/// e^t to ~1e-14 relative for t in [−708, 709] (clamped outside), without
/// branches so that it vectorises: t = k·ln 2 + r with |r| ≤ ln 2 / 2, e^r by
/// its Taylor series to r¹¹ (remainder < 6e-15), 2^k from the exponent bits.
#[inline(always)]
fn exp_approx(t: f64) -> f64 {
    const LOG2_E: f64 = std::f64::consts::LOG2_E;
    // ln 2 split (fdlibm's constants) so that k·LN2_HI is exact for |k| < 2^11.
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    // Adding 1.5·2^52 rounds to an integer held in the low mantissa bits.
    const SHIFTER: f64 = 6_755_399_441_055_744.0;
    let t = t.clamp(-708.0, 709.0);
    let shifted = t * LOG2_E + SHIFTER;
    let k = shifted - SHIFTER;
    let r = (t - k * LN2_HI) - k * LN2_LO;
    let mut p = 1.0 / 39_916_800.0;
    for c in [
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = p * r + c;
    }
    let k_bits = shifted.to_bits().wrapping_sub(SHIFTER.to_bits());
    p * f64::from_bits(k_bits.wrapping_add(1023) << 52)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exponential_is_within_its_stated_error_over_the_range() {
        let mut worst = 0.0f64;
        let mut t = -708.0;
        while t <= 709.0 {
            let (got, want) = (exp_approx(t), t.exp());
            worst = worst.max(((got - want) / want).abs());
            t += 0.013_7;
        }
        assert!(worst < 1e-14, "relative error {worst:e}");
        assert_eq!(exp_approx(0.0), 1.0);
        assert!(exp_approx(-1e4) > 0.0 && exp_approx(-1e4) < 1e-307, "clamped, not wrapped");
    }

    /// The screen against the exact deviation the search computes, on a sample
    /// with ties: never dismisses what is not above the cutoff, and dismisses
    /// what clearly is.
    #[test]
    fn dismisses_exactly_the_candidates_well_above_the_cutoff() {
        let x: Vec<f64> = (1..=400).map(|i| (1.0 + (i / 3) as f64).powf(1.3)).collect();
        let ln_x: Vec<f64> = x.iter().map(|v| v.ln()).collect();
        let mut suffix_log = vec![0.0; x.len() + 1];
        for i in (0..x.len()).rev() {
            suffix_log[i] = suffix_log[i + 1] + ln_x[i];
        }
        let tail = ScreenTail { ln_x: &ln_x, suffix_log: &suffix_log };
        let n = x.len();
        let exact = |s: usize, at: usize| {
            let m = (n - s) as f64;
            let alpha = 1.0 + m / (suffix_log[s] - m * ln_x[s]);
            let p = -((1.0 - alpha) * (ln_x[at] - ln_x[s])).exp_m1();
            (p - (at - s) as f64 / m).abs()
        };
        let at = 300;
        let starts: Vec<usize> = (0..=at).collect();
        for cutoff in [0.0, 0.01, 0.05, 0.1, 0.3, 1.0] {
            let gone = dismissed_prefix(tail, &starts, at, at, cutoff);
            assert!(starts[..gone].iter().all(|&s| exact(s, at) > cutoff), "cutoff {cutoff}");
            if gone < starts.len() {
                assert!(exact(starts[gone], at) <= cutoff + 3.0 * MARGIN, "cutoff {cutoff}: stopped early at {gone}");
            }
        }
    }
}
