//! `powerlaw_gof`, `powerlaw_compare`, `gaussian_test`, `hill_index` and
//! `stable_alpha` in SQL, against scipy/statsmodels/powerlaw values and closed forms.

mod common;

use common::*;
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::Float64Type;
use gradlake_stats::tail_index::{canonical_shuffle, stable_alpha};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

fn some(v: Vec<f64>) -> Vec<Option<f64>> {
    v.into_iter().map(Some).collect()
}

/// Simulated Lilliefors p-values of the sets where p > 0.1.
fn lilliefors_mc() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("gaussian/lilliefors_mc.json")).unwrap()).unwrap()
}

#[tokio::test]
async fn gaussian_test_matches_scipy_and_statsmodels() {
    for name in ["normal_500", "student_t5_400", "uniform_300", "normal_80"] {
        let mut values = some(fixture_in("gaussian", name));
        values.extend([None, Some(f64::NAN), Some(f64::NEG_INFINITY)]);
        let s = session(&[values]);
        let b = &rows(&s, "SELECT gaussian_test(x) AS t, gaussian_test(x32) AS t32 FROM t").await[0];
        let want = reference_in("gaussian", name);
        for (field, tol) in [
            ("mean", 1e-12),
            ("std", 1e-12),
            ("skewness", 1e-10),
            ("excess_kurtosis", 1e-10),
            ("jarque_bera", 1e-10),
            ("jb_p_value", 1e-10),
            ("ks", 1e-12),
        ] {
            let (got, w) = (field_f64(b, 0, 0, field), want[field].as_f64().unwrap());
            assert!((got - w).abs() <= tol * w.abs().max(1e-3), "{name}.{field}: {got} vs {w}");
        }
        let (p, wp) = (field_f64(b, 0, 0, "ks_p_value"), want["ks_p_value"].as_f64().unwrap());
        if wp <= 0.1 {
            // Both use Dallal–Wilkinson below 0.1.
            assert!((p - wp).abs() <= 1e-9 * wp.max(1e-12), "{name}: p {p} vs {wp}");
        } else {
            // Above 0.1 statsmodels interpolates its simulated table and gradlake uses
            // nortest's polynomial: two approximations (0.537 and 0.465 on normal_500). The
            // truth, by simulation (make_lilliefors_reference.py, 200,000 samples of the same n):
            // 0.478 ± 0.001. Stephens' polynomial is held to it within 0.02 (measured: 0.013 on
            // normal_500, 0.003 on normal_80; statsmodels' table is 0.06 and 0.05 off), plus 4
            // simulation standard errors.
            let mc = &lilliefors_mc()["sets"][name];
            let (truth, se) = (mc["p_value"].as_f64().unwrap(), mc["standard_error"].as_f64().unwrap());
            eprintln!("{name}: p {p}, simulated {truth} ± {se}, statsmodels {wp}");
            assert!((p - truth).abs() <= 0.02 + 4.0 * se && wp > 0.1, "{name}: p {p} vs simulated {truth} ± {se}");
        }
        assert_eq!(field_i64(b, 0, 0, "n"), want["n"].as_i64().unwrap(), "non-finite inputs are skipped");
        // Float32 input: the same test on the rounded values.
        assert!((field_f64(b, 0, 1, "mean") - want["mean"].as_f64().unwrap()).abs() < 1e-5);
    }
}

#[tokio::test]
async fn gof_is_deterministic_and_separates_power_laws_from_gaussians() {
    let s = session(&[some(fixture("pareto_2_5_600")), some(fixture("abs_gaussian_800"))]);
    // Separate queries: within one, DataFusion computes two identical calls once.
    let p = |seed: u64, options: &'static str| {
        let s = &s;
        async move {
            let sql = format!("SELECT g, powerlaw_gof(x, 200, {seed}{options}) AS a FROM t GROUP BY g ORDER BY g");
            let b = &rows(s, &sql).await[0];
            for g in 0..2 {
                assert_eq!(field_i64(b, g, 1, "reps"), 200);
            }
            (field_f64(b, 0, 1, "p_value"), field_f64(b, 1, 1, "p_value"), b.clone())
        }
    };
    let (pareto, gauss, b) = p(7, "").await;
    let again = p(7, "").await;
    assert_eq!((again.0, again.1), (pareto, gauss), "same seed, same p");
    let other = p(8, "").await;
    assert_ne!((other.0, other.1), (pareto, gauss), "another seed draws other replicates");
    for g in 0..2 {
        let alpha = reference(["pareto_2_5_600", "abs_gaussian_800"][g])["alpha"].as_f64().unwrap();
        assert!((field_f64(&b, g, 1, "alpha") - alpha).abs() < 1e-9);
    }
    assert!(pareto > 0.1, "Pareto sample: a power law is plausible (p = {pareto})");
    // |Gaussian| with the free xmin: the search settles on its last 51 values, a tail too short
    // for the test to tell a Gaussian from a power law (p = 0.295) — the low power the README
    // discusses; no assertion on it. Over the whole sample it is rejected outright.
    let _ = gauss;
    let (_, gauss_all, _) = p(7, ", 'xmin=all'").await;
    assert!(gauss_all < 0.01, "|Gaussian| over the whole sample is no power law: p = {gauss_all}");
    let e = error(&s, "SELECT powerlaw_gof(x) FROM t").await;
    assert!(e.contains("powerlaw_gof") && e.contains("reps"), "{e}");
    let e = error(&s, "SELECT powerlaw_gof(x, 0) FROM t").await;
    assert!(e.contains("reps") && e.contains(">= 1"), "{e}");
}

#[tokio::test]
async fn compare_in_sql_matches_python_powerlaw() {
    let s = session(&[some(fixture("rounded_lognormal_900"))]);
    // The reference is the Python package's fit, so its KS convention (the set has ties).
    let sql = "SELECT powerlaw_compare(x, 'exponential', 'ks=powerlaw') AS e, \
               powerlaw_compare(x, 'lognormal', 'ks=powerlaw') AS l FROM t";
    let b = &rows(&s, sql).await[0];
    let want = &reference("rounded_lognormal_900")["compare"];
    for (col, alt) in [(0, "exponential"), (1, "lognormal")] {
        let r = field_f64(b, 0, col, "loglik_ratio");
        let w = want[alt]["loglik_ratio"].as_f64().unwrap();
        assert!((r - w).abs() < 1e-6 * w.abs(), "{alt}: {r} vs {w}");
        let label =
            b.column(col).as_struct().column_by_name("alternative").unwrap().as_string::<i32>().value(0).to_string();
        assert_eq!(label, alt);
    }
    let e = error(&s, "SELECT powerlaw_compare(x, 'gamma') FROM t").await;
    assert!(e.contains("powerlaw_compare") && e.contains("alternative") && e.contains("gamma"), "{e}");
}

#[tokio::test]
async fn hill_index_on_exact_pareto_quantiles() {
    // |x| = (i/n)^(-1/2): a Pareto(α = 2) sample without noise; signs alternate, zeros are skipped.
    let n = 20_000;
    let mut v: Vec<Option<f64>> =
        (1..=n).map(|i| Some((i as f64 / n as f64).powf(-0.5) * if i % 2 == 0 { 1.0 } else { -1.0 })).collect();
    v.push(Some(0.0));
    let s = session(&[v]);
    let b = &rows(&s, "SELECT hill_index(x, 500) AS h FROM t").await[0];
    let h = b.column(0).as_primitive::<Float64Type>().value(0);
    // Closed form for these quantiles: H = (1/k) Σ_{i≤k} ln((i/n)^(-1/2) / ((k+1)/n)^(-1/2)).
    let k = 500.0f64;
    let want = 1.0 / ((1..=500).map(|i| 0.5 * ((k + 1.0) / i as f64).ln()).sum::<f64>() / k);
    assert!((h - want).abs() < 1e-9 * want, "{h} vs {want}");
    let e = error(&s, "SELECT hill_index(x) FROM t").await;
    assert!(e.contains("hill_index(x, k)"), "{e}");
}

#[tokio::test]
async fn stable_alpha_ignores_row_order_and_needs_a_block_size() {
    let mut values = fixture_in("gaussian", "normal_500");
    let forward = session(&[some(values.clone())]);
    values.reverse();
    let backward = session(&[some(values)]);
    let sql = "SELECT stable_alpha(x) AS a FROM t";
    let a = rows(&forward, sql).await[0].column(0).as_primitive::<Float64Type>().value(0);
    let b = rows(&backward, sql).await[0].column(0).as_primitive::<Float64Type>().value(0);
    assert_eq!(a, b);
    // The SQL value is the estimator on the values in their canonical order.
    let mut canonical = fixture_in("gaussian", "normal_500");
    canonical_shuffle(&mut canonical);
    assert_eq!(Some(a), stable_alpha(&canonical));
    // A Gaussian is 2-stable, but at n = 500 (blocks of 20) the estimator is spread widely:
    // its mean and spread over 400 simulated normal samples of the same size bound it.
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let sims: Vec<f64> = (0..400)
        .map(|_| {
            let mut v: Vec<f64> = (0..500).map(|_| StandardNormal.sample(&mut rng)).collect();
            canonical_shuffle(&mut v);
            stable_alpha(&v).unwrap()
        })
        .collect();
    let mean = sims.iter().sum::<f64>() / 400.0;
    let sd = (sims.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 399.0).sqrt();
    eprintln!("stable_alpha at n = 500: {a}; simulated {mean:.3} ± {sd:.3}");
    assert!((mean - 2.0).abs() < 0.1, "the estimator is nearly unbiased: {mean}");
    assert!((a - mean).abs() <= 4.0 * sd, "{a} vs {mean} ± {sd}");
    let prime = session(&[some(vec![1.0, -2.0, 3.0, -1.5, 0.5, 2.5, -0.7])]);
    let b = &rows(&prime, sql).await[0];
    assert!(b.column(0).is_null(0), "7 values: no block size");
}

#[tokio::test]
async fn iteration_wise_gaussianity_over_many_groups() {
    use gradlake_ingest::synth::{SynthConfig, generate};
    use gradlake_pipeline::{LakeSession, SessionOptions};
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SynthConfig::small("s", 9, 100);
    cfg.samples = 0;
    cfg.draws = 0;
    generate(dir.path(), &cfg, Default::default(), &mut |_| {}).unwrap();
    let s = LakeSession::open(dir.path(), &SessionOptions { target_partitions: Some(2), ..Default::default() })
        .await
        .unwrap();
    // Every coordinate of fc1.bias is Gaussian across steps by construction: one group per coordinate.
    let sql = "SELECT idx, gaussian_test(value) AS t FROM grad_values \
               WHERE kind = 'minibatch' AND param = 'fc1.bias' GROUP BY idx ORDER BY idx";
    let batches = rows(&s, sql).await;
    let (mut groups, mut rejected) = (0, 0);
    let mut p5 = None;
    for b in &batches {
        for row in 0..b.num_rows() {
            let p = field_f64(b, row, 1, "ks_p_value");
            assert_eq!(field_i64(b, row, 1, "n"), 100);
            rejected += usize::from(p < 0.05);
            if b.column(0).as_primitive::<datafusion::arrow::datatypes::Int64Type>().value(row) == 5 {
                p5 = Some(p);
            }
            groups += 1;
        }
    }
    assert_eq!(groups, 256);
    let rate = rejected as f64 / groups as f64;
    assert!((0.005..=0.12).contains(&rate), "rejection rate at 5%: {rate}");
    // The same group through the single-group accumulator.
    let one = &rows(
        &s,
        "SELECT gaussian_test(value) AS t FROM grad_values WHERE kind = 'minibatch' AND param = 'fc1.bias' AND idx = 5",
    )
    .await[0];
    assert_eq!(Some(field_f64(one, 0, 0, "ks_p_value")), p5);
    // FILTER clauses go through the groups accumulator's filter.
    let f = &rows(
        &s,
        "SELECT param, gaussian_test(value) FILTER (WHERE idx < 10) AS t FROM grad_values \
                       WHERE kind = 'minibatch' AND param = 'fc1.bias' GROUP BY param",
    )
    .await[0];
    assert_eq!(field_i64(f, 0, 1, "n"), 1000);
}
