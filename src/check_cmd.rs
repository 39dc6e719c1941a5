//! `gradlake check`.

use std::process::ExitCode;

use anyhow::bail;
use gradlake_ingest::check::{CheckOptions, check_lake};
use gradlake_pipeline::store::{LakeLocation, StoreLake, scan_store_lake};

/// Arguments of `gradlake check`.
#[derive(clap::Args)]
pub struct CheckArgs {
    /// The lake: a directory or a URL (s3://, gs://, az://, file://).
    lake: String,
    /// Also decode every value and verify each chunk's l2/max_abs (reads all data; local lakes).
    #[arg(long)]
    deep: bool,
}

pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let dir = match LakeLocation::parse(&args.lake)? {
        LakeLocation::Local(dir) => dir,
        LakeLocation::Store(lake) if !args.deep => return check_store(&args.lake, &lake),
        LakeLocation::Store(_) => bail!("{}: --deep reads local lakes only", args.lake),
    };
    let report = check_lake(&dir, CheckOptions { deep: args.deep })?;
    for finding in &report.findings {
        eprintln!("{finding}");
    }
    let rows: Vec<String> = report.rows.iter().map(|(t, n)| format!("{t} {n}")).collect();
    summary(&args.lake, report.files, report.runs.len(), &rows, report.is_ok());
    Ok(if report.is_ok() { ExitCode::SUCCESS } else { ExitCode::from(crate::EXIT_DAMAGED) })
}

/// A lake in an object store: every footer verified, fetched concurrently.
fn check_store(name: &str, lake: &StoreLake) -> anyhow::Result<ExitCode> {
    let scan = crate::runtime()?.block_on(scan_store_lake(lake, None))?;
    for warning in &scan.warnings {
        eprintln!("warning: {warning}");
    }
    for (url, message) in &scan.damaged {
        eprintln!("error: {url}: {message}");
    }
    let rows: Vec<String> = scan.rows.iter().map(|(t, n)| format!("{t} {n}")).collect();
    let ok = scan.damaged.is_empty();
    summary(name, scan.files, scan.runs.len(), &rows, ok);
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(crate::EXIT_DAMAGED) })
}

fn summary(lake: &str, files: usize, runs: usize, rows: &[String], ok: bool) {
    println!(
        "{lake}: {files} files, {runs} runs, rows: {}; {}",
        if rows.is_empty() { "none".to_string() } else { rows.join(", ") },
        if ok { "ok" } else { "DAMAGED" }
    );
}
