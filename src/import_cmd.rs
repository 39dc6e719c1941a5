//! `gradlake import`: gradient dumps of other tools into a lake.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use gradlake_ingest::import::{ImportEntry, ImportOptions, import, read_manifest};
use gradlake_ingest::{Kind, WriterOptions};

use crate::lake_out;
use crate::progress;

/// Arguments of `gradlake import`.
#[derive(clap::Args)]
pub struct ImportArgs {
    /// Dump files: .npy (one tensor, named by the file's stem), .npz or .safetensors (one tensor
    /// per param, named as in the model). All hold the gradient given by --step, --kind, --sample.
    files: Vec<PathBuf>,
    /// A CSV (columns file, step, kind[, sample]) or JSON (array of such objects) naming each
    /// file's step, kind and sample, instead of FILES and flags.
    #[arg(long, conflicts_with_all = ["files", "step", "kind", "sample"])]
    manifest: Option<PathBuf>,
    /// Lake to write into: a directory (created if missing) or a URL (s3://, gs://, az://).
    #[arg(long)]
    out: String,
    /// Run id of the new run.
    #[arg(long)]
    run: String,
    /// The model's name, kept in the run's metadata.
    #[arg(long, default_value = "imported")]
    model: String,
    /// Step of FILES.
    #[arg(long)]
    step: Option<i64>,
    /// Gradient kind of FILES: minibatch, full, sample, draw or noise.
    #[arg(long, default_value = "minibatch", value_parser = |s: &str| s.parse::<Kind>())]
    kind: Kind,
    /// Example (or draw) index of FILES.
    #[arg(long, default_value_t = 0)]
    sample: i64,
}

pub fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let entries = match &args.manifest {
        Some(path) => read_manifest(path)?,
        None => {
            if args.files.is_empty() {
                bail!("nothing to import: give dump FILES with --step, or --manifest");
            }
            let step = args.step.context("--step: which step the FILES hold (or give a --manifest)")?;
            let (kind, sample) = (args.kind, args.sample);
            args.files.iter().map(|file| ImportEntry { file: file.clone(), step, kind, sample }).collect()
        }
    };
    let mut writer = WriterOptions::default();
    let out = lake_out::prepare(&args.out, &args.run, &mut writer)?;
    let options = ImportOptions { run: args.run.clone(), model: args.model.clone(), writer };
    let bar = progress::bar(entries.len() as u64, "files");
    let summary = import(out.dir(), &entries, &options, &mut |done, _| bar.set_position(done as u64))
        .with_context(|| format!("importing into run {:?} of {}", args.run, args.out))?;
    bar.finish_and_clear();
    println!(
        "imported {} files into run {:?} of {}: {} params, {} tensors, {} values",
        entries.len(),
        args.run,
        args.out,
        summary.params.len(),
        summary.stats.tensors,
        summary.stats.values
    );
    Ok(ExitCode::SUCCESS)
}
