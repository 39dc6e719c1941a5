//! `gradlake watch`: follow a run while it is recorded.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use gradlake_pipeline::store::LakeLocation;
use gradlake_queries::watch::{Latest, WatchOptions, WatchState, Watcher};

use crate::analyze_cmd::AnalyzeFormat;

/// Arguments of `gradlake watch`.
#[derive(clap::Args)]
pub struct WatchArgs {
    /// The lake being written: a directory, or a URL (s3://, gs://, az://, file://).
    pub lake: String,
    /// The run to follow.
    #[arg(long)]
    pub run: String,
    /// Seconds between looks for new files.
    #[arg(long, default_value_t = 1.0)]
    pub interval: f64,
    /// Stop after this many seconds without a new file, even if the run is not marked finished.
    #[arg(long)]
    pub idle_timeout: Option<f64>,
    /// Final output: table or json.
    #[arg(long, default_value = "table", value_parser = |s: &str| s.parse::<AnalyzeFormat>())]
    pub format: AnalyzeFormat,
    /// Level of the KS tests (as the analyses' `significance`).
    #[arg(long, default_value_t = 0.05)]
    pub significance: f64,
    /// Rank of the covariance sketches (as `spectrum`'s `sketch_rank`).
    #[arg(long, default_value_t = 128)]
    pub sketch_rank: usize,
}

pub fn run(args: WatchArgs) -> anyhow::Result<ExitCode> {
    if !(args.interval > 0.0 && args.interval.is_finite()) {
        bail!("--interval must be a positive number of seconds, got {}", args.interval);
    }
    if !(args.significance > 0.0 && args.significance < 1.0) {
        bail!("--significance must be in (0, 1), got {}", args.significance);
    }
    if args.sketch_rank == 0 {
        bail!("--sketch-rank must be at least 1");
    }
    let lake = LakeLocation::parse(&args.lake)?;
    if let LakeLocation::Local(dir) = &lake
        && dir.exists()
        && !dir.is_dir()
    {
        bail!("{}: not a lake directory", dir.display());
    }
    let options = WatchOptions { significance: args.significance, sketch_rank: args.sketch_rank, ..Default::default() };
    let mut watcher = Watcher::open(lake, &args.run, options)?;
    let rt = crate::runtime()?;
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")?);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))?;
    let interrupted = rt.block_on(async {
        let mut last_news = Instant::now();
        let mut drawn = Instant::now();
        loop {
            // Redrawn as tensors come in too, not only between files: one file can take seconds.
            let mut redraw = |w: &Watcher| {
                if drawn.elapsed() >= Duration::from_millis(200) {
                    bar.set_message(live_view(&args.run, w));
                    bar.tick();
                    drawn = Instant::now();
                }
            };
            let polled = watcher.poll_with(&mut redraw).await?;
            if polled.grads_files + polled.scalars_files > 0 {
                last_news = Instant::now();
            }
            bar.set_message(live_view(&args.run, &watcher));
            bar.tick();
            if watcher.finished() {
                return anyhow::Ok(false);
            }
            if args.idle_timeout.is_some_and(|t| last_news.elapsed().as_secs_f64() > t) {
                eprintln!(
                    "no new file for {} s: stopping before the run is marked finished",
                    args.idle_timeout.unwrap_or(0.0)
                );
                return Ok(true);
            }
            let wake = Instant::now() + Duration::from_secs_f64(args.interval);
            while Instant::now() < wake {
                if stop.load(Ordering::SeqCst) {
                    return Ok(true);
                }
                tokio::time::sleep(Duration::from_millis(50).min(wake - Instant::now())).await;
            }
        }
    })?;
    bar.finish_and_clear();
    if interrupted {
        watcher.close()?;
    }
    let Some(state) = watcher.state() else {
        bail!("{}: run {:?} never appeared (no runs/params files)", args.lake, args.run);
    };
    match args.format {
        AnalyzeFormat::Table => print_table(&args.run, &watcher, state, interrupted)?,
        AnalyzeFormat::Json => print_json(&args.run, &watcher, state, interrupted)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn fmt(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_string(), |v| format!("{v:.4}"))
}

/// Lines of the live view: what was read, the latest scalars, the newest
/// dimension-wise tests, and the spectra of the latest noise point.
fn live_view(run: &str, watcher: &Watcher) -> String {
    let (files, bytes) = watcher.files_read();
    let Some(state) = watcher.state() else {
        return format!("waiting for run {run:?} to appear ...");
    };
    let Latest { step, loss, accuracy, grad_norm } = state.latest();
    let mut out = format!(
        "run {run}: {files} files ({:.1} MB), {} tensors read, step {}, loss {}, accuracy {}, |g| {}, open state {:.1} MB",
        bytes as f64 / 1e6,
        watcher.tensors_read(),
        step.map_or_else(|| "—".to_string(), |s| s.to_string()),
        fmt(loss),
        fmt(accuracy),
        fmt(grad_norm),
        state.open_bytes() as f64 / 1e6
    );
    for (kind, rate) in state.rates() {
        let newest = &state.newest()[kind];
        let model = newest.iter().find(|t| t.param == gradlake_queries::watch::MODEL);
        out.push_str(&format!(
            "\n  dimension-wise {kind}: power-law rate {} of {} tests; step {}: whole-model alpha {}",
            fmt(rate.rate()),
            rate.tests,
            newest.first().map_or(0, |t| t.step),
            fmt(model.and_then(|t| t.alpha))
        ));
    }
    if let Some(last) = state.spectra().last() {
        let at: Vec<_> = state.spectra().iter().filter(|r| r.step == last.step && r.kind == last.kind).collect();
        let s: Vec<String> = at.iter().map(|r| format!("{} {}", r.param, fmt(r.s))).collect();
        out.push_str(&format!("\n  spectrum s ({} gradients, step {}): {}", last.kind, last.step, s.join(", ")));
    }
    out
}

fn print_table(run: &str, watcher: &Watcher, state: &WatchState, interrupted: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let (files, bytes) = watcher.files_read();
    let status = if interrupted { "stopped before the run finished" } else { "finished" };
    writeln!(out, "run {run}: {status}; {files} files ({:.1} MB) read", bytes as f64 / 1e6)?;
    writeln!(out, "\ndimension-wise power-law test of |g| (per param and whole model, every step):")?;
    writeln!(out, "  {:<10} {:>7} {:>10}", "kind", "tests", "rate")?;
    for (kind, rate) in state.rates() {
        writeln!(out, "  {:<10} {:>7} {:>10}", kind, rate.tests, fmt(rate.rate()))?;
    }
    writeln!(out, "\ncovariance spectra (per param, at each noise point):")?;
    writeln!(
        out,
        "  {:<7} {:>6} {:<24} {:>6} {:>9} {:>8} {:>8} {:>6}",
        "kind", "step", "param", "n", "ranks", "s", "r2", "KS pl"
    )?;
    for r in state.spectra() {
        let ranks = match (r.kmin, r.kmax) {
            (Some(a), Some(b)) => format!("{a}..{b}"),
            _ => "—".into(),
        };
        writeln!(
            out,
            "  {:<7} {:>6} {:<24} {:>6} {:>9} {:>8} {:>8} {:>6}",
            r.kind,
            r.step,
            r.param,
            r.n,
            ranks,
            fmt(r.s),
            fmt(r.r2),
            r.power_law.map_or("—", |p| if p { "yes" } else { "no" })
        )?;
    }
    if std::io::stdout().is_terminal() {
        writeln!(out, "\n(iteration-wise and noise tests need the whole run: `gradlake analyze`)")?;
    }
    Ok(())
}

fn print_json(run: &str, watcher: &Watcher, state: &WatchState, interrupted: bool) -> anyhow::Result<()> {
    let (files, bytes) = watcher.files_read();
    let rates: serde_json::Map<String, serde_json::Value> = state
        .rates()
        .iter()
        .map(|(k, r)| (k.clone(), serde_json::json!({ "tests": r.tests, "power_law": r.power_law, "rate": r.rate() })))
        .collect();
    let spectra: Vec<_> = state
        .spectra()
        .iter()
        .map(|r| {
            serde_json::json!({
                "kind": r.kind, "step": r.step, "param": r.param, "n": r.n, "s": r.s, "r2": r.r2,
                "kmin": r.kmin, "kmax": r.kmax, "ks_s": r.ks_s, "power_law": r.power_law, "error_bound": r.error_bound,
            })
        })
        .collect();
    let latest = state.latest();
    let doc = serde_json::json!({
        "run": run,
        "finished": !interrupted,
        "files": files,
        "bytes": bytes,
        "latest": { "step": latest.step, "loss": latest.loss, "accuracy": latest.accuracy, "grad_norm": latest.grad_norm },
        "dimension_wise": rates,
        "spectrum": spectra,
    });
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &doc)?;
    writeln!(out)?;
    Ok(())
}
