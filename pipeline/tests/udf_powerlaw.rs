//! `powerlaw_fit` and `powerlaw_ks_test` in SQL: reference values, merging
//! across partitions, skipped inputs, and argument errors.

mod common;

use common::*;
use datafusion::arrow::array::AsArray;
use gradlake_pipeline::{LakeSession, SessionOptions};

#[tokio::test]
async fn powerlaw_fit_per_group_matches_python_powerlaw() {
    let names = ["pareto_2_5_600", "abs_student_t3_1000"];
    let mut groups: Vec<Vec<Option<f64>>> = names.iter().map(|n| fixture(n).into_iter().map(Some).collect()).collect();
    // Inputs a tail statistic cannot use are skipped and counted.
    groups[0].extend([None, Some(f64::NAN), Some(-1.0), Some(0.0), Some(f64::INFINITY)]);
    let s = session(&groups);
    let batches = rows(&s, "SELECT g, powerlaw_fit(x) AS f FROM t GROUP BY g ORDER BY g").await;
    let b = &batches[0];
    for (g, name) in names.iter().enumerate() {
        let want = reference(name);
        let close = |a: f64, w: &serde_json::Value| (a - w.as_f64().unwrap()).abs() <= 1e-9 * a.abs();
        assert!(close(field_f64(b, g, 1, "alpha"), &want["alpha"]), "{name} alpha");
        assert!(close(field_f64(b, g, 1, "ks"), &want["ks"]), "{name} ks");
        assert_eq!(field_f64(b, g, 1, "xmin"), want["xmin"].as_f64().unwrap(), "{name} xmin");
        assert_eq!(field_i64(b, g, 1, "n_tail"), want["n_tail"].as_i64().unwrap());
        assert_eq!(field_i64(b, g, 1, "n"), want["n"].as_i64().unwrap());
    }
    assert_eq!(field_i64(b, 0, 1, "n_skipped"), 5);
    assert_eq!(field_i64(b, 1, 1, "n_skipped"), 0);
}

#[tokio::test]
async fn ks_test_uses_the_papers_critical_value() {
    let s = session(&[fixture("pareto_2_5_600").into_iter().map(Some).collect()]);
    let b = &rows(&s, "SELECT powerlaw_ks_test(x) AS a, powerlaw_ks_test(x32, 0.01) AS b FROM t").await[0];
    let n_tail = field_i64(b, 0, 0, "n_tail") as f64;
    let critical = field_f64(b, 0, 0, "ks_critical");
    assert!((critical * n_tail.sqrt() - 1.358).abs() < 1e-3, "c(0.05) = 1.358");
    let critical_01 = field_f64(b, 0, 1, "ks_critical") * (field_i64(b, 0, 1, "n_tail") as f64).sqrt();
    assert!((critical_01 - 1.628).abs() < 1e-3, "c(0.01) = 1.628, got {critical_01}");
    let pl = b.column(0).as_struct().column_by_name("power_law").unwrap().as_boolean().value(0);
    assert_eq!(pl, field_f64(b, 0, 0, "ks") <= critical);
    assert!(pl, "a sample drawn from a power law is not rejected");

    // |Gaussian| is rejected at the paper's level.
    let s = session(&[fixture("abs_gaussian_800").into_iter().map(Some).collect()]);
    let b = &rows(&s, "SELECT powerlaw_ks_test(x) AS a FROM t").await[0];
    let want = reference("abs_gaussian_800");
    assert!((field_f64(b, 0, 0, "ks") - want["ks"].as_f64().unwrap()).abs() < 1e-12);
}

#[tokio::test]
async fn empty_groups_give_nulls_and_bad_arguments_are_named() {
    let s = session(&[vec![Some(1.0), Some(-2.0), None]]);
    let b = &rows(&s, "SELECT powerlaw_fit(x) AS f FROM t").await[0];
    let f = b.column(0).as_struct();
    assert!(f.column_by_name("alpha").unwrap().is_null(0), "one distinct value: no fit");
    assert_eq!(field_i64(b, 0, 0, "n_skipped"), 2);

    for (sql, needle) in [
        ("SELECT powerlaw_fit(x, 0) FROM t", "max_candidates"),
        ("SELECT powerlaw_fit(x, g) FROM t", "constant"),
        ("SELECT powerlaw_fit('a') FROM t", "Float32 or Float64"),
        ("SELECT powerlaw_fit(x, 1, 2) FROM t", "expected powerlaw_fit(x [, max_candidates] [, options])"),
        ("SELECT powerlaw_ks_test(x, 1.5) FROM t", "significance"),
        ("SELECT powerlaw_ks_test(x, 'xmin=best') FROM t", "unknown xmin rule 'best'"),
        ("SELECT powerlaw_fit(x, 'ks=scipy') FROM t", "argument options 'ks=scipy'"),
        ("SELECT powerlaw_fit(x, 10, 'xmin=top:0.1') FROM t", "max_candidates applies only to xmin=csn"),
        ("SELECT powerlaw_gof(x, 10, 1, 'xmin=top:2') FROM t", "(0, 1]"),
        ("SELECT powerlaw_compare(x, 'exponential', 'tail=1') FROM t", "unknown option 'tail'"),
    ] {
        let e = error(&s, sql).await;
        assert!(e.contains(needle) && e.contains("powerlaw_"), "{sql}: {e}");
    }
}

/// On tied data the default is Clauset's KS convention and `'ks=powerlaw'` the
/// Python package's; fixed xmin rules go through every power-law function.
#[tokio::test]
async fn options_choose_the_ks_convention_and_the_xmin_rule() {
    let names = ["rounded_pareto_2000", "zipf_counts_3000"];
    let groups: Vec<Vec<Option<f64>>> = names.iter().map(|n| tied_fixture(n).into_iter().map(Some).collect()).collect();
    let s = session(&groups);
    let sql = "SELECT g, powerlaw_fit(x) AS csn, powerlaw_fit(x, 'ks=powerlaw') AS pl, \
               powerlaw_ks_test(x, 0.05, 'xmin=top:0.1') AS top, powerlaw_fit(x, 'xmin=top:0.1 ks=powerlaw') AS top_pl, \
               powerlaw_gof(x, 20, 3, 'xmin=top:0.1') AS gof, powerlaw_fit(x, 'xmin=all') AS whole \
               FROM t GROUP BY g ORDER BY g";
    let b = &rows(&s, sql).await[0];
    for (g, name) in names.iter().enumerate() {
        let want = tied_reference(name);
        let rel = |a: f64, w: &serde_json::Value| (a - w.as_f64().unwrap()).abs() <= 1e-9 * a.abs();
        for (col, conv) in [(1, "csn"), (2, "powerlaw")] {
            let w = &want[conv];
            assert_eq!(field_f64(b, g, col, "xmin"), w["xmin"].as_f64().unwrap(), "{name} {conv}");
            assert_eq!(field_i64(b, g, col, "n_tail"), w["n_tail"].as_i64().unwrap(), "{name} {conv}");
            assert!(rel(field_f64(b, g, col, "alpha"), &w["alpha"]), "{name} {conv} alpha");
            assert!(rel(field_f64(b, g, col, "ks"), &w["ks"]), "{name} {conv} ks");
        }
        let top = &want["top10"];
        assert_eq!(field_f64(b, g, 3, "xmin"), top["xmin"].as_f64().unwrap(), "{name} top");
        assert!(rel(field_f64(b, g, 3, "ks"), &top["ks_csn_igraph"]), "{name}: top ks vs igraph");
        assert!(rel(field_f64(b, g, 4, "ks"), &top["ks_powerlaw"]), "{name}: top ks vs powerlaw");
        let crit = field_f64(b, g, 3, "ks_critical") * (top["n_tail"].as_f64().unwrap()).sqrt();
        assert!((crit - 1.358).abs() < 1e-3);
        // The bootstrap keeps the rule: its observed fit is the top-10% fit.
        assert_eq!(field_f64(b, g, 5, "xmin"), top["xmin"].as_f64().unwrap(), "{name} gof");
        assert!(rel(field_f64(b, g, 5, "ks"), &top["ks_csn_igraph"]), "{name} gof ks");
        // xmin=all: the whole sample is the tail.
        assert_eq!(field_i64(b, g, 6, "n_tail"), want["n"].as_i64().unwrap(), "{name} all");
    }
}

#[tokio::test]
async fn recovers_the_synthetic_lakes_tail_exponent_from_sql() {
    use gradlake_ingest::synth::{SynthConfig, generate};
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SynthConfig::small("s", 5, 2);
    cfg.samples = 0;
    cfg.draws = 0;
    generate(dir.path(), &cfg, Default::default(), &mut |_| {}).unwrap();
    let s = LakeSession::open(dir.path(), &SessionOptions::default()).await.unwrap();
    let b =
        &rows(&s, "SELECT powerlaw_fit(abs(value)) AS f FROM grad_values WHERE kind = 'full' AND step = 0").await[0];
    let (alpha, sigma, xmin) = (field_f64(b, 0, 0, "alpha"), field_f64(b, 0, 0, "sigma"), field_f64(b, 0, 0, "xmin"));
    // The full gradient is exactly Pareto(alpha) above xmin; the fitted xmin may sit higher in the tail.
    assert!((alpha - cfg.alpha).abs() < 3.0 * sigma, "alpha {alpha} ± {sigma} vs {}", cfg.alpha);
    assert!(xmin >= cfg.xmin * 0.9, "xmin {xmin}");
}
