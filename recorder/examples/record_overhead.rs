//! Benchmark: what recording costs training. Steps per second of an MLP on
//! 784-dimensional inputs (the embedded synthetic set), trained by a plain tch
//! loop and by `record` writing scalars only, every minibatch gradient, and
//! every minibatch gradient plus three noise points; and the write throughput.
//!
//! `cargo run --release -p gradlake-recorder --example record_overhead -- DIR [STEPS] [HIDDEN,...] [--threads N] [--uncompressed] [--tch-threads N]`
//!
//! `--threads` sets the writer's `encoder_threads`, `--uncompressed` writes gradients without ZSTD,
//! `--tch-threads` sets libtorch's threads (default: libtorch's choice; with 2 on a loaded 2-core
//! machine its spinning threads make the rates swing tenfold, 1 is steady).

use std::time::Instant;

use gradlake_ingest::{GradCompression, WriterOptions};
use gradlake_recorder::data::Dataset;
use gradlake_recorder::gradients::batch_loss;
use gradlake_recorder::model::{Architecture, Model};
use gradlake_recorder::record::{RecordConfig, record};
use tch::nn::{self, OptimizerConfig};
use tch::{Kind, Tensor};

fn main() {
    let mut options = WriterOptions::default();
    let mut args: Vec<String> = Vec::new();
    let mut all = std::env::args().skip(1);
    while let Some(a) = all.next() {
        match a.as_str() {
            "--threads" => options.encoder_threads = all.next().and_then(|n| n.parse().ok()).expect("--threads N"),
            "--uncompressed" => options.compression = GradCompression::Uncompressed,
            "--tch-threads" => tch::set_num_threads(all.next().and_then(|n| n.parse().ok()).expect("--tch-threads N")),
            _ => args.push(a),
        }
    }
    let dir = std::path::PathBuf::from(args.first().expect("usage: record_overhead DIR [STEPS] [HIDDEN,...]"));
    let steps: u64 = args.get(1).map_or(2000, |s| s.parse().expect("STEPS"));
    let hidden: Vec<i64> =
        args.get(2).map_or(vec![128, 64], |h| h.split(',').map(|w| w.parse().expect("HIDDEN")).collect());
    let data = Dataset::synthetic(8192, 10, 0).expect("synthetic data");
    let arch = Architecture::Mlp { hidden: hidden.clone() };
    let fresh = || Model::new(arch.clone(), data.feature_count(), data.image_side, data.classes, 0).expect("model");
    let params: i64 = fresh().params().iter().map(|(_, t)| t.numel() as i64).sum();
    println!(
        "MLP 784-{}-10: {params} params ({:.2} MB of f32 per gradient), {steps} steps, batch 64, SGD; \
         writer: {} encoder threads, {:?}",
        hidden.iter().map(i64::to_string).collect::<Vec<_>>().join("-"),
        params as f64 * 4e-6,
        options.encoder_threads,
        options.compression
    );

    // The peer: the same training with nothing recorded.
    let model = fresh();
    let mut opt = nn::Sgd { momentum: 0.9, ..Default::default() }.build(&model.vs, 0.05).expect("optimizer");
    let start = Instant::now();
    for _ in 0..steps {
        let index = Tensor::randint(data.len(), [64], (Kind::Int64, tch::Device::Cpu));
        let (x, y) = data.select(&index);
        opt.zero_grad();
        let (loss, _) = batch_loss(&model, &x, &y);
        loss.backward();
        opt.step();
    }
    let plain = steps as f64 / start.elapsed().as_secs_f64();
    println!("plain tch loop                         {plain:8.0} steps/s");

    for (label, every, noise) in [
        ("record: scalars only", 0, false),
        ("record: every minibatch gradient", 1, false),
        ("record: every minibatch + 3 noise points", 1, true),
    ] {
        let lake = dir.join(format!("overhead-{every}-{noise}"));
        let _ = std::fs::remove_dir_all(&lake);
        let model = fresh();
        let mut cfg = RecordConfig::new("bench", arch.clone(), "synthetic", steps);
        cfg.minibatch_every = every;
        if !noise {
            cfg.noise_points.clear();
        }
        let start = Instant::now();
        let stats = record(&lake, &data, &model, &cfg, options.clone(), &mut |_| {}).expect("record");
        let seconds = start.elapsed().as_secs_f64();
        let rate = steps as f64 / seconds;
        println!(
            "{label:40} {rate:8.0} steps/s ({:+.1}% vs plain)  {:.0} MB/s of gradients written ({:.0} MB on disk)",
            (rate / plain - 1.0) * 100.0,
            stats.values as f64 * 4e-6 / seconds,
            stats.bytes as f64 * 1e-6
        );
    }
}
