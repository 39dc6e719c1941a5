//! One CSN fit per sample, however many aggregates of a query ask for it.
//!
//! `dimension_wise.sql` asks two questions of every group — the KS test
//! (`powerlaw_ks_test`) and the likelihood ratio against an exponential
//! (`powerlaw_compare`) — and both start from the same exact fit of the same
//! sorted sample. DataFusion evaluates the two aggregates separately (all
//! groups of one, then all of the other), so without this the search, most
//! of the query's time, ran twice.
//!
//! The memo is keyed by the fit's options and by a fingerprint of the sample:
//! its length, first, middle and last values, exact sum, and a 64-bit SipHash
//! of every value's bits. Two different samples would need equal lengths,
//! equal ends and sums and a 64-bit hash collision to be confused. It holds
//! results only (a few dozen bytes each), at most [`CAPACITY`] of them, and
//! starts afresh when full; small samples, cheaper to fit than to look up,
//! skip it.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hasher};
use std::sync::Mutex;

use gradlake_stats::powerlaw::{FitOptions, PowerLawFit, fit};

/// Results kept (each under 100 bytes with its key).
const CAPACITY: usize = 1 << 14;

/// Samples shorter than this are fitted directly.
const MIN_LEN: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Fingerprint {
    options: String,
    len: usize,
    ends: [u64; 3],
    sum: u64,
    hash: u64,
}

impl Fingerprint {
    fn of(sorted: &[f64], options: &FitOptions) -> Self {
        let mut hasher = DefaultHasher::new();
        let mut sum = 0.0;
        for v in sorted {
            hasher.write_u64(v.to_bits());
            sum += v;
        }
        let at = |i: usize| sorted[i].to_bits();
        Self {
            options: format!("{options:?}"),
            len: sorted.len(),
            ends: [at(0), at(sorted.len() / 2), at(sorted.len() - 1)],
            sum: sum.to_bits(),
            hash: hasher.finish(),
        }
    }
}

static MEMO: Mutex<Option<HashMap<Fingerprint, Option<PowerLawFit>>>> = Mutex::new(None);

/// [`fit`]`(sorted, options)`, computed once for a sample that several aggregates evaluate.
pub(crate) fn fit_once(sorted: &[f64], options: &FitOptions) -> Option<PowerLawFit> {
    if sorted.len() < MIN_LEN {
        return fit(sorted, options);
    }
    let key = Fingerprint::of(sorted, options);
    if let Some(hit) = MEMO.lock().ok().and_then(|memo| memo.as_ref()?.get(&key).copied()) {
        return hit;
    }
    let result = fit(sorted, options);
    if let Ok(mut memo) = MEMO.lock() {
        let memo = memo.get_or_insert_with(HashMap::new);
        if memo.len() >= CAPACITY {
            memo.clear();
        }
        memo.insert(key, result);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradlake_stats::powerlaw::KsConvention;

    #[test]
    fn a_repeated_sample_gets_the_same_fit_and_a_changed_one_its_own() {
        let sample: Vec<f64> = (1..=4000).map(|i| (4000.0 / i as f64).powf(0.8)).rev().collect();
        let options = FitOptions::default();
        let direct = fit(&sample, &options);
        assert_eq!(fit_once(&sample, &options), direct);
        assert_eq!(fit_once(&sample, &options), direct, "from the memo");
        // Another convention, and one value nudged by an ulp: fitted afresh, not confused.
        let powerlaw = options.with_ks(KsConvention::Powerlaw);
        assert_eq!(fit_once(&sample, &powerlaw), fit(&sample, &powerlaw));
        let mut nudged = sample.clone();
        nudged[2000] = f64::from_bits(nudged[2000].to_bits() + 1);
        assert_ne!(Fingerprint::of(&nudged, &options), Fingerprint::of(&sample, &options));
        assert_eq!(fit_once(&nudged, &options), fit(&nudged, &options));
    }
}
