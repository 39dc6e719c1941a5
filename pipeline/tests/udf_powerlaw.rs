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
        ("SELECT powerlaw_fit(x, 1, 2) FROM t", "expected powerlaw_fit(x [, max_candidates])"),
        ("SELECT powerlaw_ks_test(x, 1.5) FROM t", "significance"),
    ] {
        let e = error(&s, sql).await;
        assert!(e.contains(needle) && e.contains("powerlaw_"), "{sql}: {e}");
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
