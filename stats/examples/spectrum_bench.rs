//! Benchmark: covariance spectra of raw f64 row-major matrices, the same files
//! numpy reads (bench/spectrum.sh).
//!
//! `cargo run --release -p gradlake-pipeline --example spectrum_bench -- N D FILE [METHOD...]`
//!
//! METHOD is exact (default), gram, or fd:RANK. Prints one line per method:
//! seconds to stream the rows in, seconds for the eigenvalues, and the first
//! three eigenvalues (to check agreement with the peer).

use std::time::Instant;

use gradlake_stats::spectrum::{CovEstimator, Method};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: spectrum_bench N D FILE [exact|gram|fd:RANK ...]";
    let n: usize = args.first().and_then(|a| a.parse().ok()).expect(usage);
    let d: usize = args.get(1).and_then(|a| a.parse().ok()).expect(usage);
    let bytes = std::fs::read(args.get(2).expect(usage)).expect("readable file");
    assert_eq!(bytes.len(), n * d * 8, "file holds {} bytes, not N·D·8", bytes.len());
    let rows: Vec<f64> = bytes.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes"))).collect();
    let methods: Vec<String> = if args.len() > 3 { args[3..].to_vec() } else { vec!["exact".into()] };
    for m in methods {
        let method = match m.split_once(':') {
            Some(("fd", rank)) => Method::Fd { rank: rank.parse().expect("fd:RANK") },
            _ => Method::parse(&m, None).expect(usage),
        };
        let start = Instant::now();
        let mut estimator = CovEstimator::new(method);
        for row in rows.chunks_exact(d) {
            estimator.push(row).expect("rows of length D");
        }
        let streamed = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let spectrum = estimator.spectrum().expect("eigensolver converges").expect("two rows");
        let solved = start.elapsed().as_secs_f64();
        let top: Vec<String> = spectrum.eigenvalues.iter().take(3).map(|v| format!("{v:.10e}")).collect();
        println!(
            "gradlake {m:8} n={n} d={d}  stream {streamed:7.3} s  eig {solved:7.3} s  total {:7.3} s  top {}  bound {:.3e}",
            streamed + solved,
            top.join(" "),
            spectrum.error_bound
        );
    }
}
