//! `gradlake synth`.

use std::process::ExitCode;

use anyhow::{Context, bail};
use gradlake_ingest::synth::{SynthConfig, default_noise_points, generate};
use gradlake_ingest::{GradCompression, ParamSpec, WriterOptions};
use gradlake_pipeline::memory::parse_size;

use crate::lake_out;
use crate::progress;

/// Arguments of `gradlake synth`.
#[derive(clap::Args)]
pub struct SynthArgs {
    /// Lake to write into: a directory (created if missing) or a URL (s3://, gs://, az://).
    #[arg(long)]
    out: String,
    /// Run id.
    #[arg(long, default_value = "synth")]
    run: String,
    /// Seed: the same seed writes the same values.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Number of steps (one minibatch gradient each).
    #[arg(long, default_value_t = 100, conflicts_with = "size")]
    steps: u64,
    /// Target payload size (e.g. 1G): sets the number of steps.
    #[arg(long)]
    size: Option<String>,
    /// Model tensors as NAME:DIMxDIM,... (default: an MLP 64-256-10).
    #[arg(long, value_parser = parse_params)]
    params: Option<ParamList>,
    /// Tail exponent of |full gradient| (density ∝ x^-alpha above xmin).
    #[arg(long, default_value_t = 2.5)]
    alpha: f64,
    /// Start of the power-law tail.
    #[arg(long, default_value_t = 1e-3)]
    xmin: f64,
    /// Share of coordinates in the power-law tail.
    #[arg(long, default_value_t = 0.2)]
    tail_fraction: f64,
    /// Exponent s of the covariance spectrum λ_k = lambda1·k^-s.
    #[arg(long, default_value_t = 1.0)]
    spectrum_s: f64,
    /// Largest covariance eigenvalue of per-sample gradients.
    #[arg(long, default_value_t = 1e-4)]
    lambda1: f64,
    /// Minibatch size (minibatch noise covariance is Σ/B).
    #[arg(long, default_value_t = 32)]
    batch_size: u64,
    /// Per-sample gradients at each noise point.
    #[arg(long, default_value_t = 64)]
    samples: u64,
    /// Extra minibatch draws at each noise point.
    #[arg(long, default_value_t = 16)]
    draws: u64,
    /// Steps with full/draw/noise/sample gradients (default: start, middle, end).
    #[arg(long, value_delimiter = ',')]
    noise_points: Option<Vec<i64>>,
    /// Gradient payload per Parquet row group.
    #[arg(long, default_value = "4M")]
    row_group_size: String,
    /// Start a new grads file once one reaches this size.
    #[arg(long, default_value = "512M")]
    file_size: String,
    /// ZSTD level of gradient files.
    #[arg(long, default_value_t = 1)]
    zstd_level: i32,
    /// Write gradient files without ZSTD: larger (about 1.2× on random-mantissa
    /// gradients), cheaper to write.
    #[arg(long)]
    uncompressed: bool,
    /// Print the ground truth as JSON only (no summary line).
    #[arg(long)]
    json: bool,
}

/// The value of `--params` (a newtype so clap takes it as one value).
#[derive(Clone)]
struct ParamList(Vec<ParamSpec>);

fn parse_params(text: &str) -> Result<ParamList, String> {
    text.split(',')
        .map(|item| {
            let (name, dims) = item
                .split_once(':')
                .ok_or_else(|| format!("param {item:?}: expected NAME:DIMxDIM (e.g. fc1.weight:256x64)"))?;
            let shape = dims
                .split('x')
                .map(|d| d.trim().parse::<usize>().map_err(|_| format!("param {name:?}: bad dimension {d:?}")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ParamSpec::new(name.trim(), shape))
        })
        .collect::<Result<_, _>>()
        .map(ParamList)
}

pub fn run(args: SynthArgs) -> anyhow::Result<ExitCode> {
    let mut cfg = SynthConfig::small(&args.run, args.seed, args.steps);
    if let Some(ParamList(params)) = args.params {
        cfg.params = params;
    }
    cfg.alpha = args.alpha;
    cfg.xmin = args.xmin;
    cfg.tail_fraction = args.tail_fraction;
    cfg.spectrum_s = args.spectrum_s;
    cfg.lambda1 = args.lambda1;
    cfg.batch_size = args.batch_size;
    cfg.samples = args.samples;
    cfg.draws = args.draws;
    if let Some(size) = &args.size {
        let bytes = parse_size(size).with_context(|| "--size")?;
        // Noise points add a fixed amount per point; solve for the steps that fill the target.
        let probe = SynthConfig { steps: 1, noise_points: vec![0, 0, 0], ..cfg.clone() };
        let extra = probe.bytes_per_step() - SynthConfig { noise_points: vec![], ..probe }.bytes_per_step();
        let model = SynthConfig { steps: 1, noise_points: vec![], ..cfg.clone() }.bytes_per_step();
        let steps = ((bytes as f64 - extra) / model).ceil();
        if steps < 1.0 {
            bail!("--size {size} is smaller than one step with its noise points; lower --samples/--draws");
        }
        cfg.steps = steps as u64;
    }
    cfg.noise_points = args.noise_points.unwrap_or_else(|| default_noise_points(cfg.steps));
    cfg.validate()?;
    let mut options = WriterOptions {
        zstd_level: args.zstd_level,
        row_group_bytes: parse_size(&args.row_group_size).context("--row-group-size")?,
        file_bytes: parse_size(&args.file_size).context("--file-size")?,
        compression: if args.uncompressed { GradCompression::Uncompressed } else { GradCompression::Zstd },
        ..WriterOptions::default()
    };
    let out = lake_out::prepare(&args.out, &cfg.run, &mut options)?;
    let bar = progress::bar(cfg.steps, "steps");
    let stats = generate(out.dir(), &cfg, options, &mut |done| bar.set_position(done))
        .with_context(|| format!("writing synthetic run {:?} into {}", cfg.run, args.out))?;
    bar.finish_and_clear();
    let truth = serde_json::to_string_pretty(&cfg)?;
    if args.json {
        println!("{truth}");
    } else {
        println!("ground truth (also stored in runs.config):\n{truth}");
        println!(
            "wrote run {:?} to {}: {} steps, {} tensors, {} values ({} non-finite), {} files, {:.1} MB on disk",
            cfg.run,
            args.out,
            cfg.steps,
            stats.tensors,
            stats.values,
            stats.non_finite,
            stats.files,
            stats.bytes as f64 / 1e6
        );
    }
    Ok(ExitCode::SUCCESS)
}
