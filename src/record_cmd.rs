//! `gradlake record` (feature `torch`): train a model with tch and record its gradients.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use gradlake_ingest::WriterOptions;
use gradlake_pipeline::memory::parse_size;
use gradlake_recorder::data::Dataset;
use gradlake_recorder::model::{Architecture, Model};
use gradlake_recorder::record::{Optimizer, RecordConfig, record};

use crate::progress;

/// Arguments of `gradlake record`.
#[derive(clap::Args)]
pub struct RecordArgs {
    /// Lake directory to write into (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Run id (default: model, dataset and start time).
    #[arg(long)]
    run: Option<String>,
    /// Model: mlp or lenet.
    #[arg(long, default_value = "mlp")]
    model: String,
    /// Hidden widths of the mlp, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "128,64")]
    hidden: Vec<i64>,
    /// Dataset: synthetic (embedded default) or idx:DIR (MNIST IDX files, uncompressed).
    #[arg(long, default_value = "synthetic")]
    dataset: String,
    /// Examples of the synthetic dataset.
    #[arg(long, default_value_t = 2048)]
    synthetic_examples: usize,
    /// Optimizer steps.
    #[arg(long, default_value_t = 200)]
    steps: u64,
    /// Minibatch size.
    #[arg(long, default_value_t = 64)]
    batch_size: i64,
    /// Learning rate.
    #[arg(long, default_value_t = 0.05)]
    lr: f64,
    /// Optimizer: sgd or adam.
    #[arg(long, default_value = "sgd")]
    optimizer: String,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    momentum: f64,
    /// Weight decay (L2).
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// Seed of initialisation, batch order, draws and sampled examples.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Record the minibatch gradient every N steps (0: never).
    #[arg(long, default_value_t = 1)]
    every: u64,
    /// Steps with full/draw/noise/sample gradients (default: start, middle, end).
    #[arg(long, value_delimiter = ',')]
    at: Option<Vec<i64>>,
    /// Extra minibatch draws (and their noise) at each of those steps.
    #[arg(long, default_value_t = 16)]
    draws: u64,
    /// Examples whose per-sample gradients are recorded at each of those steps.
    #[arg(long, default_value_t = 64)]
    samples: u64,
    /// Record only params whose name matches this glob (e.g. 'fc1.*').
    #[arg(long)]
    params: Option<String>,
    /// libtorch threads (default: libtorch's choice).
    #[arg(long)]
    threads: Option<i32>,
    /// Gradient payload per Parquet row group.
    #[arg(long, default_value = "4M")]
    row_group_size: String,
    /// Start a new grads file once one reaches this size (files become visible when closed).
    #[arg(long, default_value = "512M")]
    file_size: String,
}

fn dataset(spec: &str, examples: usize, seed: u64) -> anyhow::Result<Dataset> {
    match spec.split_once(':') {
        None if spec == "synthetic" => Ok(Dataset::synthetic(examples, 10, seed)?),
        Some(("idx", dir)) => Ok(Dataset::idx(std::path::Path::new(dir), "train")?),
        _ => anyhow::bail!("--dataset {spec:?}: expected synthetic or idx:DIR"),
    }
}

pub fn run(args: RecordArgs) -> anyhow::Result<ExitCode> {
    if let Some(t) = args.threads {
        tch::set_num_threads(t);
    }
    let arch = match args.model.as_str() {
        "mlp" => Architecture::Mlp { hidden: args.hidden.clone() },
        "lenet" => Architecture::Lenet,
        m => anyhow::bail!("--model {m:?}: expected mlp or lenet"),
    };
    let optimizer = match args.optimizer.as_str() {
        "sgd" => Optimizer::Sgd { momentum: args.momentum, weight_decay: args.weight_decay },
        "adam" => Optimizer::Adam { weight_decay: args.weight_decay },
        o => anyhow::bail!("--optimizer {o:?}: expected sgd or adam"),
    };
    let data = dataset(&args.dataset, args.synthetic_examples, args.seed)?;
    let run = args.run.clone().unwrap_or_else(|| {
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        format!("{}-{}-s{}-{secs}", arch.name(), data.name.split(':').next().unwrap_or("data"), args.seed)
    });
    let mut cfg = RecordConfig::new(run, arch.clone(), data.name.clone(), args.steps);
    cfg.batch_size = args.batch_size;
    cfg.lr = args.lr;
    cfg.optimizer = optimizer;
    cfg.seed = args.seed;
    cfg.minibatch_every = args.every;
    if let Some(at) = args.at {
        cfg.noise_points = at;
    }
    cfg.draws = args.draws;
    cfg.samples = args.samples;
    cfg.params = args.params;
    let model = Model::new(arch, data.feature_count(), data.image_side, data.classes, args.seed)?;
    let bar = progress::bar(cfg.steps, "steps");
    let options = WriterOptions {
        row_group_bytes: parse_size(&args.row_group_size).context("--row-group-size")?,
        file_bytes: parse_size(&args.file_size).context("--file-size")?,
        ..WriterOptions::default()
    };
    let stats = record(&args.out, &data, &model, &cfg, options, &mut |r| {
        bar.set_position(r.step + 1);
        bar.set_message(format!("loss {:.4}", r.loss));
    })
    .with_context(|| format!("recording run {:?} into {}", cfg.run, args.out.display()))?;
    bar.finish_and_clear();
    println!(
        "recorded run {:?} into {}: {} steps, {} tensors, {} values, {} files, {:.1} MB on disk",
        cfg.run,
        args.out.display(),
        cfg.steps,
        stats.tensors,
        stats.values,
        stats.files,
        stats.bytes as f64 / 1e6
    );
    Ok(ExitCode::SUCCESS)
}
