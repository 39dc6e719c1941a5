//! `gradlake demo`: record a small run (or, without the `torch` feature, write a
//! synthetic lake), verify it, run every analysis and write the HTML report.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use gradlake_ingest::check::{CheckOptions, check_lake};

use crate::analyze_cmd::{AnalyzeArgs, AnalyzeFormat};

/// Arguments of `gradlake demo`.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Where to write the demo lake (must not exist yet).
    #[arg(long, default_value = "gradlake-demo")]
    out: PathBuf,
    /// Where to write the HTML report (default: the lake's path with `-report` appended).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Training steps (default: 300 when recording, 60 for a synthetic lake).
    #[arg(long)]
    steps: Option<u64>,
    /// Write a synthetic lake with known ground truth instead of training a model.
    #[arg(long)]
    synthetic: bool,
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    if args.out.exists() {
        bail!("{} already exists: choose another --out or remove it", args.out.display());
    }
    let report = args.report.clone().unwrap_or_else(|| sibling(&args.out, "-report"));
    if args.synthetic || !cfg!(feature = "torch") {
        if !args.synthetic {
            eprintln!(
                "this gradlake was built without the `torch` feature: writing a synthetic lake instead of \
                 training (scripts/demo builds with it)"
            );
        }
        synthetic(&args.out, args.steps.unwrap_or(60))?;
    } else {
        #[cfg(feature = "torch")]
        record(&args.out, args.steps.unwrap_or(300))?;
    }
    let check = check_lake(&args.out, CheckOptions { deep: true })?;
    println!("gradlake check --deep: {} files, {}", check.files, if check.is_ok() { "ok" } else { "DAMAGED" });
    if !check.is_ok() {
        return Ok(ExitCode::from(crate::EXIT_DAMAGED));
    }
    crate::analyze_cmd::run(AnalyzeArgs {
        lake: args.out.display().to_string(),
        run: None,
        report: Some(report.clone()),
        format: AnalyzeFormat::Table,
        only: Vec::new(),
        params: Vec::new(),
        xmin: Vec::new(),
        list_params: false,
        memory_limit: None,
        steps_per_pass: None,
        cluster: Default::default(),
        verbose: false,
        max_rows: 12,
    })?;
    println!("\nThe report is {}", report.join("index.html").display());
    println!("The lake stays in {}: try `gradlake sql --lake {}`", args.out.display(), args.out.display());
    Ok(ExitCode::SUCCESS)
}

/// `path` with `suffix` appended to its last component.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "gradlake-demo".into());
    name.push(suffix);
    path.with_file_name(name)
}

fn synthetic(out: &Path, steps: u64) -> anyhow::Result<()> {
    use gradlake_ingest::WriterOptions;
    use gradlake_ingest::synth::{SynthConfig, generate};
    let cfg = SynthConfig::small("demo", 42, steps);
    eprintln!("writing a synthetic lake to {} ...", out.display());
    let bar = crate::progress::bar(cfg.steps, "steps");
    let stats = generate(out, &cfg, WriterOptions::default(), &mut |d| bar.set_position(d))?;
    bar.finish_and_clear();
    println!(
        "wrote {} gradient tensors ({} values) in {} files, {:.1} MB; planted: |full| power law alpha = {} above \
         {}, Gaussian minibatch noise, covariance spectrum s = {}",
        stats.tensors,
        stats.values,
        stats.files,
        stats.bytes as f64 / 1e6,
        cfg.alpha,
        cfg.xmin,
        cfg.spectrum_s
    );
    Ok(())
}

#[cfg(feature = "torch")]
fn record(out: &Path, steps: u64) -> anyhow::Result<()> {
    let dataset = if crate::record_cmd::digits_available() { "digits" } else { "synthetic" };
    eprintln!("training an MLP on {dataset} for {steps} steps and recording its gradients into {} ...", out.display());
    // 256 per-sample gradients and 64 draws give the spectra and the noise tests
    // enough vectors; a narrower MLP on 784-pixel synthetic images keeps the lake small.
    let steps = steps.to_string();
    let out = out.to_string_lossy();
    let mut argv = vec![
        "--out",
        &out,
        "--run",
        "demo",
        "--dataset",
        dataset,
        "--steps",
        &steps,
        "--samples",
        "256",
        "--draws",
        "64",
    ];
    if dataset == "synthetic" {
        argv.extend(["--hidden", "32"]);
    }
    let args = crate::record_cmd::record_args(&argv)?;
    crate::record_cmd::run_record(args)?;
    Ok(())
}
