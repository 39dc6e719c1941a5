//! Fits raw little-endian f64 files with the `powerlaw` crate (alpha for all
//! xmin candidates, then the minimum-KS pair), timing each, as bench/powerlaw.sh's peer.
//! The crate reports the Pareto exponent; the density exponent printed is that + 1.

use std::time::Instant;

use powerlaw::dist::pareto::estimation::find_alphas_fast;
use powerlaw::dist::pareto::gof::gof;

fn main() {
    for path in std::env::args().skip(1) {
        let bytes = std::fs::read(&path).expect("readable file");
        let mut data: Vec<f64> = bytes.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect();
        let start = Instant::now();
        let (x_mins, alphas) = find_alphas_fast(&mut data);
        let best = gof(&data, &x_mins, &alphas);
        let name = std::path::Path::new(&path).file_name().unwrap().to_string_lossy().into_owned();
        println!(
            "rust-powerlaw {name:28} {:9.3} s  alpha={:.6} xmin={:.6e} D={:.6e}",
            start.elapsed().as_secs_f64(),
            best.alpha + 1.0,
            best.x_min,
            best.d
        );
    }
}
