//! Benchmark: exact `powerlaw_fit` (and optionally `powerlaw_gof`) on raw f64 files,
//! the same files the peers read (bench/powerlaw.sh).
//!
//! `cargo run --release -p gradlake-pipeline --example powerlaw_bench -- [--gof REPS] FILE...`
//!
//! Prints one line per file: seconds (sort included), alpha, xmin, D — and the
//! bootstrap p-value with its seconds when `--gof` is given.

use std::time::Instant;

use gradlake_stats::powerlaw::{FitOptions, fit};
use gradlake_stats::powerlaw_gof::gof;
use gradlake_stats::sample::PositiveSample;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let reps = match args.iter().position(|a| a == "--gof") {
        Some(i) => {
            let r = args.get(i + 1).and_then(|r| r.parse::<u64>().ok()).expect("--gof REPS");
            args.drain(i..=i + 1);
            Some(r)
        }
        None => None,
    };
    for path in args {
        let bytes = std::fs::read(&path).expect("readable file");
        let values = bytes.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")));
        let name = std::path::Path::new(&path).file_name().unwrap().to_string_lossy().into_owned();
        let start = Instant::now();
        let sample = PositiveSample::new(values);
        let f = fit(&sample.sorted, &FitOptions::default()).expect("at least two distinct values");
        println!(
            "gradlake  {name:28} {:9.3} s  alpha={:.6} xmin={:.6e} D={:.6e}",
            start.elapsed().as_secs_f64(),
            f.alpha,
            f.xmin,
            f.ks
        );
        if let Some(reps) = reps {
            let start = Instant::now();
            let g = gof(&sample.sorted, reps, 1, &FitOptions::default()).expect("fit");
            println!("gradlake  {name:28} {:9.3} s  gof reps={reps} p={:.3}", start.elapsed().as_secs_f64(), g.p_value);
        }
    }
}
