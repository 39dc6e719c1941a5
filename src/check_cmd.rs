//! `gradlake check`.

use std::path::PathBuf;
use std::process::ExitCode;

use gradlake_ingest::check::{CheckOptions, check_lake};

/// Arguments of `gradlake check`.
#[derive(clap::Args)]
pub struct CheckArgs {
    /// The lake directory.
    lake: PathBuf,
    /// Also decode every value and verify each chunk's l2/max_abs (reads all data).
    #[arg(long)]
    deep: bool,
}

pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let report = check_lake(&args.lake, CheckOptions { deep: args.deep })?;
    for finding in &report.findings {
        eprintln!("{finding}");
    }
    let rows: Vec<String> = report.rows.iter().map(|(t, n)| format!("{t} {n}")).collect();
    println!(
        "{}: {} files, {} runs, rows: {}; {}",
        args.lake.display(),
        report.files,
        report.runs.len(),
        if rows.is_empty() { "none".to_string() } else { rows.join(", ") },
        if report.is_ok() { "ok" } else { "DAMAGED" }
    );
    Ok(if report.is_ok() { ExitCode::SUCCESS } else { ExitCode::from(crate::EXIT_DAMAGED) })
}
