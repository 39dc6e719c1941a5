//! `gradlake demo`: write a small synthetic lake, verify it and analyse it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use gradlake_ingest::WriterOptions;
use gradlake_ingest::check::{CheckOptions, check_lake};
use gradlake_ingest::synth::{SynthConfig, generate};
use gradlake_pipeline::{LakeSession, SessionOptions};
use gradlake_queries::{OutputFormat, named, run_statements};

use crate::progress;

/// Arguments of `gradlake demo`.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Where to write the demo lake (must not exist yet).
    #[arg(long, default_value = "gradlake-demo")]
    out: PathBuf,
    /// Steps of the synthetic run.
    #[arg(long, default_value_t = 60)]
    steps: u64,
}

const QUERIES: &[(&str, &str)] = &[
    (
        "What the lake holds: gradient tensors per kind",
        "SELECT kind, count(DISTINCT step) AS steps, count(DISTINCT sample) AS samples, count(*) AS chunk_rows,
                sum(numel) AS values FROM grads GROUP BY kind ORDER BY kind",
    ),
    (
        "Dimension-wise: the full gradient's |values| per layer, fitted and tested as a power law \
         (the generator used alpha = 2.5 above xmin = 1e-3)",
        "SELECT param, t.alpha, t.xmin, t.ks, t.ks_critical, t.n_tail, t.power_law FROM
           (SELECT param, powerlaw_ks_test(abs(value)) AS t FROM grad_values
            WHERE kind = 'full' AND step = 0 GROUP BY param) ORDER BY param",
    ),
    (
        "Iteration-wise: each coordinate of fc1.bias across steps, tested for normality \
         (Gaussian by construction: about 5% rejected at the 5% level)",
        "SELECT count(*) AS coordinates, avg(CASE WHEN t.ks_p_value < 0.05 THEN 1.0 ELSE 0.0 END) AS share_rejected
         FROM (SELECT idx, gaussian_test(value) AS t FROM grad_values
               WHERE kind = 'minibatch' AND param = 'fc1.bias' GROUP BY idx)",
    ),
    (
        "Noise = draw - full, checked element by element",
        "SELECT count(*) AS elements, max(abs(n.value - (d.value - f.value))) AS max_abs_difference
         FROM grad_values n
         JOIN grad_values d ON d.kind = 'draw' AND d.step = n.step AND d.sample = n.sample AND d.param_id = n.param_id AND d.idx = n.idx
         JOIN grad_values f ON f.kind = 'full' AND f.step = n.step AND f.param_id = n.param_id AND f.idx = n.idx
         WHERE n.kind = 'noise' AND n.param_id = 3",
    ),
];

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    if args.out.exists() {
        bail!("{} already exists: choose another --out or remove it", args.out.display());
    }
    let cfg = SynthConfig::small("demo", 42, args.steps);
    eprintln!("writing a synthetic lake to {} ...", args.out.display());
    let bar = progress::bar(cfg.steps, "steps");
    let stats = generate(&args.out, &cfg, WriterOptions::default(), &mut |d| bar.set_position(d))?;
    bar.finish_and_clear();
    println!(
        "wrote {} gradient tensors ({} values) in {} files, {:.1} MB",
        stats.tensors,
        stats.values,
        stats.files,
        stats.bytes as f64 / 1e6
    );
    let report = check_lake(&args.out, CheckOptions { deep: true })?;
    println!("gradlake check --deep: {} files, {}", report.files, if report.is_ok() { "ok" } else { "DAMAGED" });

    let rt = crate::runtime()?;
    rt.block_on(async {
        let session = LakeSession::open(&args.out, &SessionOptions::default()).await?;
        let mut out = std::io::BufWriter::new(std::io::stdout());
        for (title, sql) in QUERIES {
            println!("\n== {title}");
            run_statements(session.context(), sql, OutputFormat::Table, &mut out, 50).await?;
        }
        println!("\n== Named analysis `summary` (first rows)");
        let summary = named::find("summary").context("summary query")?;
        run_statements(session.context(), summary.sql, OutputFormat::Table, &mut out, 12).await?;
        println!("\nThe lake stays in {}: try `gradlake sql --lake {}`", args.out.display(), args.out.display());
        anyhow::Ok(ExitCode::SUCCESS)
    })
}
