//! End-to-end tests of the HTML report: a synthetic lake, every named analysis, `write_report`.

use std::path::Path;

use datafusion::prelude::SessionContext;
use gradlake_ingest::WriterOptions;
use gradlake_ingest::synth::{SynthConfig, generate};
use gradlake_pipeline::{LakeSession, SessionOptions};
use gradlake_queries::analyze::{Outcome, lake_kinds, run_named};
use gradlake_queries::named::{self, NamedQuery};
use gradlake_queries::report::{ReportError, Section, write_report};

/// Runs every named analysis on the lake, as `gradlake analyze` does.
async fn analyse(lake: &Path) -> (LakeSession, Vec<(NamedQuery, Outcome)>) {
    let session = LakeSession::open(lake, &SessionOptions::default()).await.unwrap();
    let kinds = lake_kinds(session.context(), None).await.unwrap();
    let mut outcomes = Vec::new();
    for q in named::ALL {
        let outcome = run_named(session.context(), *q, &[], &kinds).await.unwrap_or_else(|e| panic!("{}: {e}", q.name));
        outcomes.push((*q, outcome));
    }
    (session, outcomes)
}

fn sections(outcomes: &[(NamedQuery, Outcome)]) -> Vec<Section<'_>> {
    outcomes.iter().map(|(query, outcome)| Section { query: *query, outcome }).collect()
}

/// One number from SQL, computed here rather than by the report.
async fn scalar(ctx: &SessionContext, sql: &str) -> f64 {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let col = arrow::compute::cast(batches[0].column(0), &arrow::datatypes::DataType::Float64).unwrap();
    col.as_any().downcast_ref::<arrow::array::Float64Array>().unwrap().value(0)
}

/// The `<tr data-test="key">` row of the page.
fn row<'a>(html: &'a str, key: &str) -> &'a str {
    let start = html.find(&format!("<tr data-test=\"{key}\"")).unwrap_or_else(|| panic!("no row {key}"));
    let len = html[start..].find("</tr>").unwrap();
    &html[start..start + len]
}

/// The page is self-contained: nothing is loaded from elsewhere and nothing runs.
fn assert_self_contained(html: &str) {
    let stripped = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(!stripped.contains("http://") && !stripped.contains("https://"), "a network reference is left");
    assert!(!html.to_ascii_lowercase().contains("<script"));
    assert!(!html.contains("src="), "the page loads something");
    for (i, _) in html.match_indices("href=\"") {
        assert!(html[i + 6..].starts_with('#'), "a link leaves the page: {}", &html[i..i + 40]);
    }
}

/// Every plot file exists, is inlined in the page, and nothing else is an SVG.
fn assert_plots_inlined(html: &str, plots: &[std::path::PathBuf], dir: &Path) {
    assert_eq!(html.matches("<svg").count(), plots.len());
    for p in plots {
        assert!(p.starts_with(dir.join("plots")), "{}", p.display());
        let svg = std::fs::read_to_string(p).unwrap();
        assert!(svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"), "{}", p.display());
        assert!(html.contains(&svg["<svg ".len()..]), "{} is not inlined", p.display());
    }
}

fn plot_names(plots: &[std::path::PathBuf]) -> Vec<String> {
    plots.iter().map(|p| p.file_stem().unwrap().to_string_lossy().into_owned()).collect()
}

#[tokio::test]
async fn report_of_a_synthetic_lake_has_every_plot_and_the_planted_rates() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    generate(&lake, &SynthConfig::small("r", 1, 30), WriterOptions::default(), &mut |_| {}).unwrap();
    let (session, outcomes) = analyse(&lake).await;
    assert!(outcomes.iter().all(|(_, o)| matches!(o, Outcome::Ran(_))));
    let ctx = session.context();
    let dir = tmp.path().join("new").join("report");
    let summary = write_report(ctx, &dir, "Synthetic <run>", &sections(&outcomes), &[]).await.unwrap();

    assert_eq!(summary.index, dir.join("index.html"));
    let html = std::fs::read_to_string(&summary.index).unwrap();
    assert!(html.contains("<title>Synthetic &lt;run&gt;</title>"));
    assert_self_contained(&html);
    assert_plots_inlined(&html, &summary.plots, &dir);

    // The full gradient at the first and last step for each of the 4 params, a spectrum
    // per kind at the last noise point, and the four trends (synth records no accuracy).
    let mut expected: Vec<String> = Vec::new();
    for step in [0, 29] {
        for p in ["fc1.weight", "fc2.weight", "fc1.bias", "fc2.bias"] {
            expected.push(format!("r-ccdf-full-step{step}-{p}"));
        }
    }
    expected.extend(["r-spectrum-sample-step29", "r-spectrum-noise-step29"].map(String::from));
    expected.extend(["r-alpha-minibatch", "r-spectrum-s", "r-loss", "r-grad-norm"].map(String::from));
    assert_eq!(plot_names(&summary.plots), expected);
    let ccdf = std::fs::read_to_string(&summary.plots[0]).unwrap();
    assert!(ccdf.contains("empirical (n = 16384)") && ccdf.contains("fit α = "), "legend of the CCDF");
    assert!(ccdf.len() < 40_000, "the CCDF is thinned: {} bytes", ccdf.len());

    // The paper's table, against rates computed here from the analysis tables.
    let full =
        scalar(ctx, "SELECT avg(CASE WHEN power_law THEN 1.0 ELSE 0.0 END) FROM dimension_wise WHERE kind = 'full'")
            .await;
    assert_eq!(full, 1.0, "synth plants a power law in the full gradient");
    assert!(row(&html, "dimension_wise-full").contains(&format!("<td class=\"num\">{full:.3}</td>")));
    let gaussian = scalar(ctx, "SELECT avg(CASE WHEN gaussian THEN 1.0 ELSE 0.0 END) FROM iteration_wise").await;
    assert!((0.85..=1.0).contains(&gaussian), "iteration-wise Gaussian rate {gaussian}");
    let tests = scalar(ctx, "SELECT count(*) FROM iteration_wise").await;
    assert!(
        row(&html, "iteration_wise")
            .contains(&format!("<td class=\"num\">{gaussian:.3}</td><td class=\"num\">{tests}</td>"))
    );
    let s = scalar(ctx, "SELECT median(s) FROM spectrum WHERE kind = 'sample' AND param = '(model)'").await;
    assert!(s > 0.0);
    assert!(row(&html, "spectrum-sample-(model)").contains("<td class=\"num\">"));
    assert!(row(&html, "noise_across_draws").contains("<td class=\"num\">"));

    for q in named::ALL {
        assert!(html.contains(&format!("<code>{}</code>", q.name)), "{}", q.name);
    }
    assert!(!html.contains("Skipped"));
}

#[tokio::test]
async fn report_of_a_minibatch_only_lake_explains_the_skipped_analyses() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    for run in ["a", "b"] {
        let cfg = SynthConfig { noise_points: vec![], samples: 0, draws: 0, ..SynthConfig::small(run, 2, 30) };
        generate(&lake, &cfg, WriterOptions::default(), &mut |_| {}).unwrap();
    }
    let (session, outcomes) = analyse(&lake).await;
    let skipped: Vec<&str> =
        outcomes.iter().filter(|(_, o)| matches!(o, Outcome::Skipped { .. })).map(|(q, _)| q.name).collect();
    assert_eq!(skipped, ["noise", "spectrum"]);
    let dir = tmp.path().join("report");
    let summary = write_report(session.context(), &dir, "minibatch only", &sections(&outcomes), &[]).await.unwrap();
    let html = std::fs::read_to_string(&summary.index).unwrap();
    assert_self_contained(&html);
    assert_plots_inlined(&html, &summary.plots, &dir);

    for (q, o) in &outcomes {
        if let Outcome::Skipped { reason } = o {
            assert!(html.contains(&format!("Skipped: {reason}.")), "{}", q.name);
        }
    }
    assert!(html.contains("Skipped: the lake has no noise gradients"));
    for run in ["a", "b"] {
        assert!(html.contains(&format!("<h2>Run {run}</h2>")));
    }
    assert!(row(&html, "noise_across_params").contains("not analysed"));
    assert!(row(&html, "dimension_wise-full").contains("—"), "no full gradient, no rate");
    assert!(!html.contains("data-test=\"spectrum-"));

    // Without full gradients the CCDFs are of the minibatch gradient; no spectrum plots.
    let names = plot_names(&summary.plots);
    assert_eq!(names.len(), 2 * (2 * 4 + 3), "{names:?}");
    assert!(names.contains(&"a-ccdf-minibatch-step29-fc2.bias".to_string()), "{names:?}");
    assert!(names.contains(&"b-alpha-minibatch".to_string()), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("spectrum")), "{names:?}");
}

#[tokio::test]
async fn a_report_directory_that_cannot_be_made_is_named_in_the_error() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    let cfg = SynthConfig { noise_points: vec![], samples: 0, draws: 0, ..SynthConfig::small("r", 3, 3) };
    generate(&lake, &cfg, WriterOptions::default(), &mut |_| {}).unwrap();
    let session = LakeSession::open(&lake, &SessionOptions::default()).await.unwrap();
    let blocker = tmp.path().join("file");
    std::fs::write(&blocker, "not a directory").unwrap();
    let err = write_report(session.context(), &blocker.join("report"), "t", &[], &[]).await.unwrap_err();
    assert!(matches!(err, ReportError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains(&blocker.display().to_string()), "{err}");
}
