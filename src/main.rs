//! `gradlake`: record the gradients of neural-network training as Parquet and analyse them with SQL.
//!
//! A thin shell over the `gradlake-ingest`, `gradlake-pipeline` and
//! `gradlake-queries` libraries. Results go to stdout, errors and progress to
//! stderr. Exit codes: 0 success, 1 failure, 2 bad usage, 3 `check` found damage.

mod analyze_cmd;
mod check_cmd;
mod cluster_args;
mod demo_cmd;
mod import_cmd;
mod lake_out;
mod progress;
#[cfg(feature = "torch")]
mod record_cmd;
mod sql_cmd;
mod synth_cmd;
mod watch_cmd;
mod worker_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Record the gradients of neural-network training as Parquet and analyse them with SQL.
#[derive(Parser)]
#[command(name = "gradlake", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a synthetic lake with known structure (tail index, spectrum exponent).
    Synth(synth_cmd::SynthArgs),
    /// Write gradient dumps of other tools (.npy, .npz, .safetensors) into a lake as a new run.
    Import(import_cmd::ImportArgs),
    /// Run SQL over a lake (or over Parquet files named in the query); a shell without QUERY.
    Sql(sql_cmd::SqlArgs),
    /// Run the paper's analyses (named SQL in queries/sql) on a lake: tables, JSON or an HTML report.
    Analyze(analyze_cmd::AnalyzeArgs),
    /// Follow a run while it is recorded: live tests and spectra, each new file read once.
    Watch(watch_cmd::WatchArgs),
    /// Serve query stages to `sql --workers` and `analyze --workers` (datafusion-distributed).
    Worker(worker_cmd::WorkerArgs),
    /// Verify every file of a lake; name each damaged one.
    Check(check_cmd::CheckArgs),
    /// Write a small lake and analyse it: the quickest way to see gradlake work.
    Demo(demo_cmd::DemoArgs),
    /// Train a model with libtorch and record its gradients into a lake.
    #[cfg(feature = "torch")]
    Record(record_cmd::RecordArgs),
    /// Recompute full, draw, noise and per-sample gradients at an archived run's checkpoints.
    #[cfg(feature = "torch")]
    Replay(record_cmd::ReplayArgs),
}

/// Exit code for "the command ran, and found the lake damaged".
pub const EXIT_DAMAGED: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Synth(args) => synth_cmd::run(args),
        Command::Import(args) => import_cmd::run(args),
        Command::Sql(args) => sql_cmd::run(args),
        Command::Check(args) => check_cmd::run(args),
        Command::Analyze(args) => analyze_cmd::run(args),
        Command::Watch(args) => watch_cmd::run(args),
        Command::Demo(args) => demo_cmd::run(args),
        Command::Worker(args) => worker_cmd::run(args),
        #[cfg(feature = "torch")]
        Command::Record(args) => record_cmd::run_record(args),
        #[cfg(feature = "torch")]
        Command::Replay(args) => record_cmd::run_replay(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, each cause once: DataFusion's and the
/// transport's wrappers often repeat the message of the error they wrap.
fn describe(error: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// A multi-threaded runtime for the query engine.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}
