//! Benchmark: LakeWriter throughput against writing the same bytes raw.
//!
//! `cargo run --release -p gradlake-ingest --example writer_throughput -- DIR [GiB] [--threads N] [--uncompressed]`
//!
//! `--threads` sets `WriterOptions::encoder_threads` (default: the writer's default),
//! `--uncompressed` writes the gradient files without ZSTD.
//!
//! Writes GiB (default 1) of f32 gradient payload — synthetic gradients drawn once
//! (heavy-tailed magnitudes times Gaussian noise, like `gradlake synth`) and cycled — through a
//! `LakeWriter`, then the same bytes with plain `write` + fsync, and prints both rates,
//! their ratio, and the compression ratio of the lake.

use std::io::Write;
use std::time::Instant;

use gradlake_ingest::synth::SynthConfig;
use gradlake_ingest::writer::GradKey;
use gradlake_ingest::{GradCompression, Kind, LakeWriter, ParamSpec, RunInfo, WriterOptions};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

const TENSOR: usize = 1 << 20; // a 1024×1024 layer

fn main() {
    let usage = "usage: writer_throughput DIR [GiB] [--threads N] [--uncompressed]";
    let mut options = WriterOptions::default();
    let mut positional = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--threads" => options.encoder_threads = args.next().and_then(|n| n.parse().ok()).expect(usage),
            "--uncompressed" => options.compression = GradCompression::Uncompressed,
            _ => positional.push(a),
        }
    }
    let mut positional = positional.into_iter();
    let dir = std::path::PathBuf::from(positional.next().expect(usage));
    let gib: f64 = positional.next().map_or(1.0, |s| s.parse().expect("GiB must be a number"));
    let tensors = ((gib * (1u64 << 30) as f64) / (TENSOR * 4) as f64).ceil() as usize;
    let payload = (tensors * TENSOR * 4) as f64;

    // A pool of 8 distinct tensors, so compression sees realistic, non-repeating data.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let cfg = SynthConfig::small("bench", 1, 1);
    let pool: Vec<Vec<f32>> = (0..8)
        .map(|_| {
            (0..TENSOR)
                .map(|_| {
                    let z: f32 = StandardNormal.sample(&mut rng);
                    let u: f64 = rand::Rng::random::<f64>(&mut rng).max(1e-12);
                    (cfg.xmin * u.powf(-1.0 / (cfg.alpha - 1.0))) as f32 * z
                })
                .collect()
        })
        .collect();

    let lake = dir.join("lake");
    let info = RunInfo {
        run: "bench".into(),
        model: "bench".into(),
        dataset: "none".into(),
        optimizer: "none".into(),
        lr: 0.0,
        batch_size: 1,
        seed: 1,
        start_time_us: RunInfo::now_us(),
        config: serde_json::json!({}),
    };
    let (threads, compression) = (options.encoder_threads, options.compression);
    let t = Instant::now();
    let mut w = LakeWriter::create(&lake, &info, vec![ParamSpec::new("w", [1024, 1024])], options).unwrap();
    for i in 0..tensors {
        let key = GradKey { step: i as i64, kind: Kind::Minibatch, sample: 0, param: "w" };
        w.write_grad_blocking(key, pool[i % pool.len()].clone()).unwrap();
    }
    let stats = w.finish().unwrap();
    let lake_secs = t.elapsed().as_secs_f64();

    let raw_path = dir.join("raw.bin");
    let t = Instant::now();
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&raw_path).unwrap());
    let mut bytes = Vec::with_capacity(TENSOR * 4);
    for i in 0..tensors {
        // The same copy the LakeWriter path makes (it takes ownership of a clone).
        let v = pool[i % pool.len()].clone();
        bytes.clear();
        bytes.extend(v.iter().flat_map(|x| x.to_le_bytes()));
        f.write_all(&bytes).unwrap();
    }
    let f = f.into_inner().unwrap();
    f.sync_all().unwrap();
    let raw_secs = t.elapsed().as_secs_f64();
    std::fs::remove_file(&raw_path).unwrap();

    let mb = payload / 1e6;
    println!("payload: {mb:.0} MB in {tensors} tensors of {TENSOR} f32");
    println!(
        "LakeWriter ({threads} encoder threads, {compression:?}): {lake_secs:.2} s = {:.0} MB/s (files {}, {:.0} MB on disk)",
        mb / lake_secs,
        stats.files,
        stats.bytes as f64 / 1e6
    );
    println!("raw write + fsync: {raw_secs:.2} s = {:.0} MB/s", mb / raw_secs);
    println!("throughput ratio LakeWriter/raw: {:.2}", raw_secs / lake_secs);
    println!("compression ratio (payload / file bytes): {:.3}", payload / stats.bytes as f64);
}
