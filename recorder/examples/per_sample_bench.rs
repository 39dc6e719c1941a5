//! Benchmark: per-sample gradients of LeNet-5 (61,706 params) on 28 × 28 inputs, by one
//! backward pass per example (the general path, what TorchScript modules use) and by the
//! vectorised path (one backward pass per group of examples; convolution weights from the
//! unfolded input). Best of 3 each, and the largest difference between the two.
//!
//! `cargo run --release -p gradlake-recorder --example per_sample_bench -- [SAMPLES] [--tch-threads N]`

use std::time::Instant;

use gradlake_recorder::data::Dataset;
use gradlake_recorder::gradients::{per_sample_loop, per_sample_vectorised};
use gradlake_recorder::model::{Architecture, Model};

fn main() {
    let mut samples: i64 = 1024;
    let mut all = std::env::args().skip(1);
    while let Some(a) = all.next() {
        match a.as_str() {
            "--tch-threads" => tch::set_num_threads(all.next().and_then(|n| n.parse().ok()).expect("--tch-threads N")),
            n => samples = n.parse().expect("SAMPLES"),
        }
    }
    let data = Dataset::synthetic(samples as usize, 10, 0).expect("synthetic data");
    let model = Model::new(Architecture::Lenet, data.feature_count(), data.image_side, 10, 0).expect("model");
    let index: Vec<i64> = (0..samples).collect();
    let params = model.params().len();
    let time = |vectorised: bool| {
        let mut best = f64::INFINITY;
        let mut out = vec![Vec::new(); index.len() * params];
        for _ in 0..3 {
            let start = Instant::now();
            let mut emit = |pos: usize, param: usize, v: Vec<f32>| {
                out[pos * params + param] = v;
                Ok(())
            };
            if vectorised {
                per_sample_vectorised(&model, &data, &index, &mut emit).expect("vectorised");
            } else {
                per_sample_loop(&model, &data, &index, &mut emit).expect("loop");
            }
            best = best.min(start.elapsed().as_secs_f64());
        }
        (best, out)
    };
    let (looped, a) = time(false);
    let (vectorised, b) = time(true);
    // Difference relative to each tensor's largest entry.
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| {
            let scale = x.iter().fold(0f32, |m, v| m.max(v.abs())).max(f32::MIN_POSITIVE);
            x.iter().zip(y).fold(0f32, |m, (p, q)| m.max((p - q).abs() / scale))
        })
        .fold(0f32, f32::max);
    println!("LeNet-5, {samples} per-sample gradients, {} libtorch threads", tch::get_num_threads());
    println!("  per-example loop: {looped:.3} s");
    println!("  vectorised:       {vectorised:.3} s  ({:.1}x faster)", looped / vectorised);
    println!("  largest difference: {worst:.2e} of the tensor's largest entry");
}
