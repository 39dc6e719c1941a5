//! `gradlake analyze`: the named analyses on a lake, as tables, JSON or an HTML report.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::{Context, bail};
use gradlake_pipeline::memory::{default_memory_limit, parse_size};
use gradlake_pipeline::store::LakeLocation;
use gradlake_pipeline::{LakeSession, SessionOptions};
use gradlake_queries::analyze::{
    Meter, Outcome, Passes, RunOptions, XminRulesError, check_params, lake_kinds, run_named_with, window_target,
    xmin_rules,
};
use gradlake_queries::named::{self, NamedQuery};
use gradlake_queries::output::batches_to_json;
use gradlake_queries::params;
use gradlake_queries::report::{Section, write_report as write_report_to};
use gradlake_queries::windows::Axis;

use crate::progress;

/// Output formats of `gradlake analyze`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnalyzeFormat {
    /// Titles and aligned tables, for people.
    Table,
    /// One JSON document: every analysis's summary rows and tables.
    Json,
}

impl FromStr for AnalyzeFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "table" => Ok(Self::Table),
            "json" => Ok(Self::Json),
            _ => Err(format!("unknown format {s:?} (expected table or json)")),
        }
    }
}

/// Arguments of `gradlake analyze`.
#[derive(clap::Args)]
pub struct AnalyzeArgs {
    /// The lake to analyse: a directory or a URL (s3://, gs://, az://, file://).
    pub lake: String,
    /// Analyse only this run (default: every run, each reported separately).
    #[arg(long)]
    pub run: Option<String>,
    /// Also write an HTML report with plots into DIR (created if missing).
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Output: table or json.
    #[arg(long, default_value = "table", value_parser = |s: &str| s.parse::<AnalyzeFormat>())]
    pub format: AnalyzeFormat,
    /// Run only these analyses (comma-separated): summary, dimension_wise, iteration_wise, noise, spectrum.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Set an analysis parameter, e.g. `coordinates=512` (repeatable; `--list-params` shows them).
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// Run the power-law tests of dimension_wise, iteration_wise and noise under each of these
    /// xmin rules (comma-separated; the first is plotted), and show their verdicts side by side:
    /// csn (CSN's free xmin), csn:K, top:F (the largest fraction F of |g|), value:X, all.
    #[arg(long, value_delimiter = ',', value_name = "RULE,...")]
    pub xmin: Vec<String>,
    /// List every analysis's parameters with their defaults, and exit.
    #[arg(long)]
    pub list_params: bool,
    /// Memory the queries may use (e.g. 2G; default: half the machine's memory). The analyses
    /// run in windows of steps (or of coordinates) sized to stay within it.
    #[arg(long)]
    pub memory_limit: Option<String>,
    /// Fixed windows instead of windows sized to the memory limit: this many steps per pass
    /// for the analyses whose tests stay within a step (dimension_wise, noise, spectrum), this
    /// many coordinates for iteration_wise. 0: everything in one pass.
    #[arg(long)]
    pub steps_per_pass: Option<u64>,
    /// Workers for the analyses' stages. Each worker bounds its own memory (`gradlake worker
    /// --memory-limit`); with workers the analyses run in one pass unless --steps-per-pass is given.
    #[command(flatten)]
    pub cluster: crate::cluster_args::ClusterArgs,
    /// Report each analysis's time, windows and peak memory reservation on stderr.
    #[arg(long, short)]
    pub verbose: bool,
    /// Rows of each summary table shown on the terminal.
    #[arg(long, default_value_t = 40)]
    pub max_rows: usize,
}

fn parse_param(s: &str) -> Result<(String, String), String> {
    params::parse_assignment(s).map_err(|e| e.to_string())
}

fn list_params(queries: &[NamedQuery]) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    for q in queries {
        writeln!(out, "{} — {}", q.name, q.title)?;
        for p in params::declared(q.sql)? {
            writeln!(out, "  {} = {}    {}", p.name, p.default.to_sql(), p.doc)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run(args: AnalyzeArgs) -> anyhow::Result<ExitCode> {
    let queries = named::select(&args.only).map_err(|e| anyhow::anyhow!("--only: {e}"))?;
    if args.list_params {
        return list_params(&queries);
    }
    let location = LakeLocation::parse(&args.lake)?;
    if let LakeLocation::Local(dir) = &location
        && !dir.is_dir()
    {
        bail!("{}: not a lake directory", args.lake);
    }
    let mut values = args.params.clone();
    if let Some(run) = &args.run {
        if values.iter().any(|(n, _)| n == "run") {
            bail!("give the run either as --run or as --param run=..., not both");
        }
        values.push(("run".to_string(), run.clone()));
    }
    // AnalyzeError's message already holds its source: keep anyhow from printing it twice.
    check_params(&queries, &values).map_err(|e| anyhow::anyhow!("--param: {e}"))?;
    let xmin_rules = xmin_rules(&args.xmin, &values).map_err(|e| match e {
        XminRulesError::Twice => {
            anyhow::anyhow!("give the xmin rule either as --xmin or as --param xmin=..., not both")
        }
        XminRulesError::Bad { .. } => anyhow::anyhow!("--xmin {e}"),
    })?;
    let limit = match args.memory_limit.as_deref() {
        Some(text) => parse_size(text).context("--memory-limit")?,
        None => default_memory_limit(),
    };
    let cluster = args.cluster.cluster()?;
    let passes = match args.steps_per_pass {
        Some(0) => Passes::One,
        Some(n) => Passes::Fixed(n),
        // This process's memory says nothing about the workers'.
        None if cluster.is_some() => Passes::One,
        None => Passes::Budget { target: window_target(limit) },
    };
    let distributed = cluster.is_some();
    let options = SessionOptions { memory_limit: Some(limit), cluster, ..SessionOptions::default() };
    let rt = crate::runtime()?;
    rt.block_on(async {
        let session = LakeSession::open_location(&location, &options).await?;
        for w in session.warnings() {
            eprintln!("{w}");
        }
        let ctx = session.context();
        let kinds = lake_kinds(ctx, args.run.as_deref()).await?;
        if kinds.is_empty() {
            match &args.run {
                Some(run) => bail!("{}: no gradients of run {run:?} (see `SELECT run FROM runs`)", args.lake),
                None => bail!("{}: the lake holds no gradients", args.lake),
            }
        }
        let mut outcomes = Vec::with_capacity(queries.len());
        let run_options = RunOptions {
            passes,
            pool: Some(session.memory_pool()),
            meter: Meter::Process,
            cluster: distributed,
            xmin_rules: &xmin_rules,
        };
        for q in &queries {
            let bar = progress::spinner(format!("{}: {}", q.name, q.title));
            let started = std::time::Instant::now();
            let (mut windows, mut peak) = (0, 0);
            let outcome = run_named_with(ctx, *q, &values, &kinds, &run_options, &mut |p| {
                (windows, peak) = (p.windows, peak.max(p.peak));
                if let Some(axis) = p.axis.filter(|_| p.total > 0) {
                    let what = match axis {
                        Axis::Steps => "steps",
                        Axis::Coordinates => "coordinates",
                    };
                    let share = 100.0 * p.done as f64 / p.total as f64;
                    bar.set_message(format!("{}: {} ({what} {share:.0}%, {} windows)", q.name, q.title, p.windows));
                }
            })
            .await;
            if args.verbose {
                bar.suspend(|| {
                    eprintln!(
                        "{}: {:.2} s, {windows} window(s), resident memory up to {} MiB above its start (limit {} MiB)",
                        q.name,
                        started.elapsed().as_secs_f64(),
                        peak >> 20,
                        limit >> 20
                    )
                });
            }
            bar.finish_and_clear();
            outcomes.push(outcome.map_err(|e| anyhow::anyhow!("{e}"))?);
        }
        match args.format {
            AnalyzeFormat::Table => print_tables(&queries, &outcomes, args.max_rows)?,
            AnalyzeFormat::Json => print_json(ctx, &args, &xmin_rules, &queries, &outcomes).await?,
        }
        if let Some(dir) = &args.report {
            write_report(ctx, &args, &xmin_rules, dir, &queries, &outcomes).await?;
        }
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

fn print_tables(queries: &[NamedQuery], outcomes: &[Outcome], max_rows: usize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for (q, outcome) in queries.iter().zip(outcomes) {
        writeln!(out, "\n== {} ({})", q.title, q.name)?;
        match outcome {
            Outcome::Skipped { reason } => writeln!(out, "skipped: {reason}")?,
            Outcome::Ran(batches) => {
                let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
                let mut shown = Vec::new();
                let mut left = max_rows;
                for b in batches {
                    let take = b.num_rows().min(left);
                    if take > 0 {
                        shown.push(b.slice(0, take));
                    }
                    left -= take;
                }
                writeln!(out, "{}", arrow::util::pretty::pretty_format_batches(&shown)?)?;
                if rows > max_rows {
                    writeln!(
                        out,
                        "... {} more rows (--max-rows, --format json or --report show all)",
                        rows - max_rows
                    )?;
                }
            }
        }
    }
    out.flush()?;
    Ok(())
}

async fn print_json(
    ctx: &datafusion::prelude::SessionContext,
    args: &AnalyzeArgs,
    xmin_rules: &[String],
    queries: &[NamedQuery],
    outcomes: &[Outcome],
) -> anyhow::Result<()> {
    let mut analyses = Vec::with_capacity(queries.len());
    for (q, outcome) in queries.iter().zip(outcomes) {
        let mut entry = serde_json::json!({ "name": q.name, "title": q.title });
        match outcome {
            Outcome::Skipped { reason } => {
                entry["status"] = "skipped".into();
                entry["reason"] = reason.as_str().into();
            }
            Outcome::Ran(batches) => {
                entry["status"] = "ran".into();
                entry["summary"] = batches_to_json(batches)?;
                let mut tables = serde_json::Map::new();
                for table in q.tables {
                    let rows = ctx.table(*table).await?.collect().await?;
                    tables.insert(table.to_string(), batches_to_json(&rows)?);
                }
                entry["tables"] = tables.into();
            }
        }
        analyses.push(entry);
    }
    let doc = serde_json::json!({
        "lake": args.lake.clone(),
        "run": args.run,
        "parameters": args.params.iter().map(|(n, v)| (n.clone(), serde_json::Value::from(v.as_str()))).collect::<serde_json::Map<_, _>>(),
        "xmin_rules": xmin_rules,
        "analyses": analyses,
    });
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &doc)?;
    writeln!(out)?;
    Ok(())
}

async fn write_report(
    ctx: &datafusion::prelude::SessionContext,
    args: &AnalyzeArgs,
    xmin_rules: &[String],
    dir: &std::path::Path,
    queries: &[NamedQuery],
    outcomes: &[Outcome],
) -> anyhow::Result<()> {
    let sections: Vec<Section<'_>> =
        queries.iter().zip(outcomes).map(|(q, outcome)| Section { query: *q, outcome }).collect();
    let title = match &args.run {
        Some(run) => format!("gradlake analyze {} --run {run}", args.lake),
        None => format!("gradlake analyze {}", args.lake),
    };
    let bar = progress::spinner("writing the report");
    let summary = write_report_to(ctx, dir, &title, &sections, xmin_rules).await;
    bar.finish_and_clear();
    let summary = summary?;
    eprintln!("report: {} ({} plots)", summary.index.display(), summary.plots.len());
    Ok(())
}
