//! Benchmark: exact `powerlaw_fit` time against n, on the samples of the statistics issue.
//!
//! `cargo run --release -p gradlake-pipeline --example powerlaw_scaling -- [n ...]`
//!
//! Prints, for |Gaussian|, |Student-t(3)| and a pure power law (alpha 2.5), the
//! seconds of an exact fit (every distinct value a candidate) and the fitted values.
//! The same samples can be written as .npy by `bench/powerlaw_peers.py` for the Python peers.

use std::time::Instant;

use gradlake_pipeline::stats::powerlaw::{Candidates, fit};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal, StudentT};

fn main() {
    let ns: Vec<usize> = {
        let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("n")).collect();
        if args.is_empty() { vec![10_000, 100_000, 1_000_000, 2_000_000] } else { args }
    };
    for &n in &ns {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(n as u64);
        let t3 = StudentT::new(3.0).unwrap();
        let samples: [(&str, Vec<f64>); 3] = [
            ("|gaussian|", (0..n).map(|_| f64::abs(StandardNormal.sample(&mut rng))).collect()),
            ("|student-t3|", (0..n).map(|_| f64::abs(t3.sample(&mut rng))).collect()),
            ("power-law-2.5", (0..n).map(|_| (1.0 - rand::Rng::random::<f64>(&mut rng)).powf(-1.0 / 1.5)).collect()),
        ];
        for (name, mut v) in samples {
            let t = Instant::now();
            v.sort_unstable_by(f64::total_cmp);
            let f = fit(&v, Candidates::All).unwrap();
            println!(
                "n={n:>8} {name:<14} {:>8.3} s  alpha={:.6} xmin={:.6e} ks={:.6e} n_tail={}",
                t.elapsed().as_secs_f64(),
                f.alpha,
                f.xmin,
                f.ks,
                f.n_tail
            );
        }
    }
}
