//! The named analyses recover the ground truth that `gradlake_ingest::synth` plants.
//!
//! Each test writes a small synthetic lake, runs analyses through `run_named` as
//! `gradlake analyze` does, and reads the tables the scripts leave in the session.
//! Every expectation is computed here from the synthetic configuration (closed forms,
//! binomial and moment bounds), never from the code under test. The seeds are fixed, so
//! the outcomes are deterministic; the bounds (4–5 standard errors) are there so that
//! the expectations are honest statements about the planted distributions, not fitted
//! to one draw.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Float64Type};
use datafusion::prelude::SessionContext;
use gradlake_ingest::synth::{SynthConfig, generate};
use gradlake_ingest::{ParamSpec, WriterOptions};
use gradlake_pipeline::{LakeSession, SessionOptions};
use gradlake_queries::analyze::{
    AnalyzeError, Meter, Outcome, Passes, RunOptions, lake_kinds, run_named, run_named_with,
};
use gradlake_queries::named::{self, NamedQuery};
use gradlake_queries::params::ParamError;

// ---------------------------------------------------------------------------------------------
// Lakes, sessions and results
// ---------------------------------------------------------------------------------------------

/// A synthetic run with only what a test asks for: one step, the full gradient at step 0,
/// no draws and no per-sample gradients.
fn config(run: &str, seed: u64, params: Vec<ParamSpec>) -> SynthConfig {
    let mut cfg = SynthConfig::small(run, seed, 1);
    cfg.params = params;
    cfg.samples = 0;
    cfg.draws = 0;
    cfg.noise_points = vec![0];
    cfg
}

/// A lake holding every run of `cfgs`, and a session on it.
struct Lake {
    dir: Arc<tempfile::TempDir>,
    session: LakeSession,
}

impl Lake {
    async fn new(cfgs: Vec<SynthConfig>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path: PathBuf = dir.path().join("lake");
        // `generate` blocks while the writer thread works: keep that off the runtime's workers.
        let writer_path = path.clone();
        std::thread::spawn(move || {
            for cfg in &cfgs {
                generate(&writer_path, cfg, WriterOptions::default(), &mut |_| {}).unwrap();
            }
        })
        .join()
        .unwrap();
        Self { session: open(&path).await, dir: Arc::new(dir) }
    }

    /// The same lake in a new session.
    async fn reopen(&self) -> Self {
        Self { session: open(&self.dir.path().join("lake")).await, dir: Arc::clone(&self.dir) }
    }

    fn ctx(&self) -> &SessionContext {
        self.session.context()
    }

    /// Runs one analysis with `params`, as `gradlake analyze --param NAME=VALUE` would.
    async fn analyse(&self, query: NamedQuery, params: &[(&str, &str)]) -> Result<Outcome, AnalyzeError> {
        let kinds = lake_kinds(self.ctx(), None).await.unwrap();
        run_named(self.ctx(), query, &owned(params), &kinds).await
    }

    /// The rows of the analysis's closing summary SELECT; panics if it was skipped or failed.
    async fn ran(&self, query: NamedQuery, params: &[(&str, &str)]) -> Rows {
        match self.analyse(query, params).await {
            Ok(Outcome::Ran(batches)) => Rows(batches),
            Ok(Outcome::Skipped { reason }) => panic!("{} was skipped: {reason}", query.name),
            Err(e) => panic!("{}: {e}", query.name),
        }
    }

    async fn rows(&self, sql: &str) -> Rows {
        let batches = self.ctx().sql(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        Rows(batches.collect().await.unwrap_or_else(|e| panic!("{sql}: {e}")))
    }
}

async fn open(lake: &Path) -> LakeSession {
    LakeSession::open(lake, &SessionOptions::default()).await.unwrap()
}

fn owned(params: &[(&str, &str)]) -> Vec<(String, String)> {
    params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Query results, read column by column (each cast to the type asked for).
struct Rows(Vec<RecordBatch>);

impl Rows {
    fn len(&self) -> usize {
        self.0.iter().map(RecordBatch::num_rows).sum()
    }

    fn cast(&self, name: &str, to: &DataType) -> Vec<ArrayRef> {
        self.0
            .iter()
            .map(|b| {
                let col = b.column_by_name(name).unwrap_or_else(|| panic!("no column {name} in {}", b.schema()));
                arrow::compute::cast(col, to).unwrap()
            })
            .collect()
    }

    fn opt_f64(&self, name: &str) -> Vec<Option<f64>> {
        self.cast(name, &DataType::Float64).iter().flat_map(|a| a.as_primitive::<Float64Type>().iter()).collect()
    }

    fn f64(&self, name: &str) -> Vec<f64> {
        self.opt_f64(name).into_iter().map(|v| v.unwrap_or_else(|| panic!("{name} is NULL"))).collect()
    }

    fn str(&self, name: &str) -> Vec<String> {
        self.cast(name, &DataType::Utf8)
            .iter()
            .flat_map(|a| {
                a.as_string::<i32>().iter().map(|s| s.unwrap_or_else(|| panic!("{name} is NULL")).to_string())
            })
            .collect()
    }

    fn bool(&self, name: &str) -> Vec<bool> {
        self.cast(name, &DataType::Boolean)
            .iter()
            .flat_map(|a| a.as_boolean().iter().map(|b| b.unwrap_or_else(|| panic!("{name} is NULL"))))
            .collect()
    }

    fn f64_lists(&self, name: &str) -> Vec<Vec<f64>> {
        let list = DataType::List(Arc::new(Field::new_list_field(DataType::Float64, true)));
        self.cast(name, &list)
            .iter()
            .flat_map(|a| {
                a.as_list::<i32>()
                    .iter()
                    .map(|v| {
                        let v = v.unwrap_or_else(|| panic!("{name} is NULL"));
                        v.as_primitive::<Float64Type>().values().to_vec()
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Closed forms
// ---------------------------------------------------------------------------------------------

/// P(|full_j| ≥ x) as synth plants it: |full| is Pareto(alpha) above xmin with probability
/// tail_fraction, else uniform on (0, xmin).
fn full_ccdf(cfg: &SynthConfig, x: f64) -> f64 {
    if x >= cfg.xmin {
        cfg.tail_fraction * (x / cfg.xmin).powf(1.0 - cfg.alpha)
    } else {
        cfg.tail_fraction + (1.0 - cfg.tail_fraction) * (1.0 - x / cfg.xmin)
    }
}

/// Σ_{k=1..d} k^−p: with p = s the trace of the planted covariance over lambda1.
fn zeta(d: usize, p: f64) -> f64 {
    (1..=d).map(|k| (k as f64).powf(-p)).sum()
}

/// The smallest count a Binomial(n, p) reaches within `z` standard deviations of its mean.
fn binomial_floor(n: usize, p: f64, z: f64) -> f64 {
    n as f64 * p - z * (n as f64 * p * (1.0 - p)).sqrt()
}

/// Mean and variance of the moment estimator g2 = m4/m2² − 3 of excess kurtosis for n
/// normal values (Fisher's exact moments).
fn g2_moments(n: usize) -> (f64, f64) {
    let n = n as f64;
    (-6.0 / (n + 1.0), 24.0 * n * (n - 2.0) * (n - 3.0) / ((n + 1.0).powi(2) * (n + 3.0) * (n + 5.0)))
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

fn count_true(v: &[bool]) -> usize {
    v.iter().filter(|&&b| b).count()
}

// ---------------------------------------------------------------------------------------------
// 1. dimension_wise
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn dimension_wise_recovers_the_planted_alpha_and_xmin_of_the_full_gradient() {
    let params = || vec![ParamSpec::new("w", [64, 64]), ParamSpec::new("v", [32, 64])];
    let mut runs = BTreeMap::new();
    for (run, alpha, seed) in [("a22", 2.2, 1), ("a30", 3.0, 2)] {
        let mut cfg = config(run, seed, params());
        cfg.alpha = alpha;
        runs.insert(run.to_string(), cfg);
    }
    let lake = Lake::new(runs.values().cloned().collect()).await;
    let summary = lake.ran(named::DIMENSION_WISE, &[]).await;

    // The summary: the full gradient is tested once (step 0) per param and for the whole
    // model, and the tail above xmin is an exact Pareto, so no test rejects it.
    let (srun, skind) = (summary.str("run"), summary.str("kind"));
    let (tests, rate) = (summary.f64("tests"), summary.f64("power_law_rate"));
    let full: Vec<usize> = (0..summary.len()).filter(|&i| skind[i] == "full").collect();
    assert_eq!(full.iter().map(|&i| srun[i].as_str()).collect::<Vec<_>>(), ["a22", "a30"]);
    for &i in &full {
        assert_eq!((tests[i], rate[i]), (3.0, 1.0), "run {}", srun[i]);
    }

    let t = lake
        .rows(
            "SELECT run, param, alpha, xmin, n_tail, power_law, heavier_than_exponential FROM dimension_wise \
             WHERE kind = 'full' ORDER BY run, param",
        )
        .await;
    let (run, param, alpha, xmin, n_tail) =
        (t.str("run"), t.str("param"), t.f64("alpha"), t.f64("xmin"), t.f64("n_tail"));
    assert_eq!(t.len(), 6);
    assert!(t.bool("power_law").iter().all(|&b| b));
    // Hundreds of Pareto values above xmin: the likelihood ratio against an exponential tail
    // favours the power law significantly in every test.
    assert!(t.bool("heavier_than_exponential").iter().all(|&b| b), "{:?}", t.bool("heavier_than_exponential"));
    for i in 0..t.len() {
        let cfg = &runs[&run[i]];
        let d: usize = match param[i].as_str() {
            "(model)" => cfg.params.iter().map(ParamSpec::numel).sum(),
            name => cfg.params.iter().find(|p| p.name == name).unwrap().numel(),
        };
        let what =
            format!("run {} param {}: alpha {} xmin {} n_tail {}", run[i], param[i], alpha[i], xmin[i], n_tail[i]);
        // The MLE's standard error at the planted exponent, (alpha − 1)/√n_tail.
        let sigma = (cfg.alpha - 1.0) / n_tail[i].sqrt();
        assert!((alpha[i] - cfg.alpha).abs() <= 4.0 * sigma, "{what}: more than 4 sigma ({sigma}) off");
        // Below the planted xmin |full| is uniform (a density 0.8/xmin, well above the tail's
        // 0.2·(alpha−1)/xmin), so the KS-optimal xmin cannot reach far below it; above it any
        // start fits a Pareto, and the search may pick a later one, but not past the point
        // where the tail has thinned to a fraction of its planted size.
        assert!((0.9 * cfg.xmin..=2.0 * cfg.xmin).contains(&xmin[i]), "{what}: xmin vs planted {}", cfg.xmin);
        // However xmin was chosen, the count above it is what the planted law says:
        // Binomial(d, P(|full| ≥ xmin)), within 5 sd.
        let p = full_ccdf(cfg, xmin[i]);
        let (expected, sd) = (d as f64 * p, (d as f64 * p * (1.0 - p)).sqrt());
        assert!((n_tail[i] - expected).abs() <= 5.0 * sd + 1.0, "{what}: expected {expected} ± {sd} in the tail");
    }
}

// ---------------------------------------------------------------------------------------------
// 2. iteration_wise and noise across draws
// ---------------------------------------------------------------------------------------------

const STEPS: u64 = 40;
const DRAWS: u64 = 40;

/// Each coordinate of the minibatch gradient is full + N(0, σ_j²/B) drawn afresh at every step,
/// and of the noise N(0, σ_j²/B) drawn afresh at every draw: Gaussian across steps and draws.
fn gaussian_run() -> SynthConfig {
    let mut cfg = SynthConfig::small("g", 11, STEPS);
    cfg.params = vec![ParamSpec::new("w", [32, 32]), ParamSpec::new("b", [32])];
    cfg.samples = 0;
    cfg.draws = DRAWS;
    cfg.noise_points = vec![20];
    cfg
}

/// The per-coordinate Gaussian tests of an analysis table over `n` values each: the share
/// not rejected by Lilliefors at 0.05 is Binomial(coordinates, 0.95)/coordinates, and the
/// sample excess kurtosis has Fisher's moments.
fn assert_gaussian_coordinates(t: &Rows, n: usize, what: &str) {
    let coordinates = t.len();
    let accepted = count_true(&t.bool("gaussian"));
    let floor = binomial_floor(coordinates, 0.95, 4.0);
    assert!(accepted as f64 >= floor, "{what}: {accepted}/{coordinates} Gaussian, expected at least {floor}");
    // Under the null some coordinate is rejected but for a chance of 0.95^200 ≈ 3e-5: a
    // p-value column stuck at 1 would not pass.
    assert!(accepted < coordinates, "{what}: not one coordinate rejected");
    // The power-law column is not checked: with n = 40 values and xmin free, the paper's KS
    // test keeps a handful of extreme values as the "tail" and does not reject a power law
    // for any of these Gaussian coordinates (power_law_rate 1.0 here) — it has no power at
    // this size, so its rate says nothing about the planted Gaussianity.
    // The likelihood ratio against an exponential tail does have power: a Gaussian tail is
    // lighter than exponential, so a significant preference for the power law (p < 0.1,
    // two-sided) is rare; allow up to a tenth.
    let heavy = count_true(&t.bool("heavier_than_exponential"));
    assert!(heavy * 10 <= coordinates, "{what}: {heavy}/{coordinates} called heavier than exponential");

    let kurtosis = t.f64("excess_kurtosis");
    let (g2_mean, g2_var) = g2_moments(n);
    let se = (g2_var / coordinates as f64).sqrt();
    let m = mean(&kurtosis);
    assert!((m - g2_mean).abs() <= 4.0 * se, "{what}: mean excess kurtosis {m}, expected {g2_mean} ± {se}");
    // g2 is skewed to the right, so its median sits below its mean: about −0.27 for n = 40
    // (simulated); heavy-tailed coordinates would push it above 0.
    let med = median(&kurtosis);
    assert!((-0.5..0.1).contains(&med), "{what}: median excess kurtosis {med}");
}

#[tokio::test]
async fn iteration_wise_finds_each_minibatch_coordinate_gaussian_across_steps() {
    let lake = Lake::new(vec![gaussian_run()]).await;
    let summary = lake.ran(named::ITERATION_WISE, &[("coordinates", "200")]).await;
    let t = lake.rows("SELECT steps, gaussian, excess_kurtosis, heavier_than_exponential FROM iteration_wise").await;
    assert_eq!(t.len(), 200);
    assert!(t.f64("steps").iter().all(|&s| s == STEPS as f64), "every coordinate is seen at every step");
    assert_gaussian_coordinates(&t, STEPS as usize, "iteration_wise");

    // One phase by default; the summary's rate is the table's.
    assert_eq!(summary.len(), 1);
    assert_eq!((summary.f64("coordinates")[0], summary.f64("min_steps")[0]), (200.0, STEPS as f64));
    let rate = count_true(&t.bool("gaussian")) as f64 / 200.0;
    assert!((summary.f64("gaussian_rate")[0] - rate).abs() < 1e-12);
}

#[tokio::test]
async fn noise_is_gaussian_across_draws_for_each_sampled_coordinate() {
    let lake = Lake::new(vec![gaussian_run()]).await;
    let summary = lake.ran(named::NOISE, &[("coordinates", "200")]).await;
    let t =
        lake.rows("SELECT step, n, gaussian, excess_kurtosis, heavier_than_exponential FROM noise_across_draws").await;
    assert_eq!(t.len(), 200);
    assert!(t.f64("step").iter().all(|&s| s == 20.0));
    assert!(t.f64("n").iter().all(|&n| n == DRAWS as f64), "every coordinate has every draw");
    assert_gaussian_coordinates(&t, DRAWS as usize, "noise across draws");

    let view = summary.str("view");
    let i = view.iter().position(|v| v == "across draws").expect("an across-draws row");
    assert_eq!(summary.f64("tests")[i], 200.0);
}

/// The (param, idx) pairs a coordinate-sampling table holds.
async fn sampled(lake: &Lake, table: &str) -> BTreeSet<(String, i64)> {
    let t = lake.rows(&format!("SELECT param, idx FROM {table}")).await;
    let set: BTreeSet<(String, i64)> =
        t.str("param").into_iter().zip(t.f64("idx").into_iter().map(|i| i as i64)).collect();
    assert_eq!(set.len(), t.len(), "{table}: a coordinate is tested twice");
    set
}

#[tokio::test]
async fn coordinates_param_sets_a_deterministic_sample_shared_by_iteration_wise_and_noise() {
    let lake = Lake::new(vec![gaussian_run()]).await;
    lake.ran(named::ITERATION_WISE, &[("coordinates", "200")]).await;
    let first = sampled(&lake, "iteration_wise").await;
    assert_eq!(first.len(), 200);
    assert!(first.iter().all(|(p, i)| (p == "w" && *i < 1024) || (p == "b" && *i < 32)), "only real coordinates");

    // The sample is a function of the model, not of the run of the query...
    lake.ran(named::ITERATION_WISE, &[("coordinates", "200")]).await;
    assert_eq!(sampled(&lake, "iteration_wise").await, first);
    // ...nor of the session.
    let again = lake.reopen().await;
    again.ran(named::ITERATION_WISE, &[("coordinates", "200")]).await;
    assert_eq!(sampled(&again, "iteration_wise").await, first);

    // Another count gives another sample: the first 100 of the same hash order.
    lake.ran(named::ITERATION_WISE, &[("coordinates", "100")]).await;
    let fewer = sampled(&lake, "iteration_wise").await;
    assert_eq!(fewer.len(), 100);
    assert!(fewer.is_subset(&first));

    // noise.sql uses the same hash, so the two analyses follow the same coordinates.
    lake.ran(named::NOISE, &[("coordinates", "200")]).await;
    assert_eq!(sampled(&lake, "noise_across_draws").await, first);
}

#[tokio::test]
async fn summary_reports_the_planted_noise_norm_and_the_synthetic_loss() {
    let cfg = gaussian_run();
    let lake = Lake::new(vec![cfg.clone()]).await;
    lake.ran(named::SUMMARY, &[]).await;
    let t = lake.rows("SELECT step, kind, gradients, rms_model_norm, loss FROM summary ORDER BY step, kind").await;
    let (step, kind, gradients, norm, loss) =
        (t.f64("step"), t.str("kind"), t.f64("gradients"), t.f64("rms_model_norm"), t.f64("loss"));
    // A minibatch row per step, and full, draw and noise at the noise point.
    assert_eq!(t.len(), STEPS as usize + 3);
    for i in 0..t.len() {
        // synth's loss curve: 0.1 + 2.2·exp(−step/(steps/3)).
        let want = 0.1 + 2.2 * (-step[i] / (STEPS as f64 / 3.0)).exp();
        assert!((loss[i] - want).abs() < 1e-12, "step {}: loss {} vs {want}", step[i], loss[i]);
        let expected_gradients = if matches!(kind[i].as_str(), "draw" | "noise") { DRAWS as f64 } else { 1.0 };
        assert_eq!(gradients[i], expected_gradients, "step {} {}", step[i], kind[i]);
    }
    // ‖noise‖² of one draw sums independent N(0, λ_k/B)² over the model's coordinates:
    // mean Σλ_k/B, variance 2·Σ(λ_k/B)². The RMS over the draws squares to their mean.
    let b = cfg.batch_size as f64;
    let (mut mu, mut var) = (0.0, 0.0);
    for p in &cfg.params {
        mu += cfg.lambda1 * zeta(p.numel(), cfg.spectrum_s) / b;
        var += 2.0 * (cfg.lambda1 / b).powi(2) * zeta(p.numel(), 2.0 * cfg.spectrum_s);
    }
    let se = (var / DRAWS as f64).sqrt();
    let i = kind.iter().position(|k| k == "noise").unwrap();
    let got = norm[i] * norm[i];
    assert!((got - mu).abs() <= 4.0 * se, "rms noise norm² {got}, expected {mu} ± {se}");
}

// ---------------------------------------------------------------------------------------------
// 3. noise across parameters
// ---------------------------------------------------------------------------------------------
//
// Within one param, noise_j = σ_j·z_j with z_j standard normal and σ_j² = c·k_j^−s
// (c = lambda1/B), the ranks k_j a permutation of 1..d: across coordinates, a Gaussian scale
// mixture whose variance is c·k^−s for k uniform on 1..d. Treating k as continuous on (0, d),
//
//   P(|x| > t) = (1/d) ∫_0^d P(|Z| > t·k^{s/2}/√c) dk,
//
// and substituting u = t·k^{s/2}/√c (k = (u√c/t)^{2/s}, dk = (2/s)(√c/t)^{2/s} u^{2/s−1} du),
//
//   P(|x| > t) = (2/(s·d)) · (c/t²)^{1/s} · ∫_{0}^{t·d^{s/2}/√c} P(|Z| > u) u^{2/s−1} du.
//
// For √(c/d^s) ≪ t ≪ √c (between the smallest and the largest standard deviation) the
// integral is a constant, so the CCDF falls as t^{−2/s}: a power law whose density exponent
// is alpha = 1 + 2/s, i.e. 3 for s = 1 (with s = 1 the CCDF is ≈ c/(d·t²), one coordinate
// left at t = √c, so the law holds over nearly the whole range). With s = 0 every σ_j is the
// same and the noise is plain Gaussian across parameters.

#[tokio::test]
async fn noise_across_parameters_with_a_power_law_spectrum_has_tail_exponent_one_plus_two_over_s() {
    let mut cfg = config("s1", 12, vec![ParamSpec::new("w", [64, 64])]);
    cfg.spectrum_s = 1.0;
    cfg.draws = 12;
    let lake = Lake::new(vec![cfg.clone()]).await;
    lake.ran(named::NOISE, &[("coordinates", "8")]).await;
    let t = lake
        .rows(
            "SELECT draw, n, alpha, ks_critical, power_law, gaussian, gaussian_p_value, excess_kurtosis, \
             heavier_than_exponential FROM noise_across_params WHERE param = 'w' ORDER BY draw",
        )
        .await;
    assert_eq!(t.len(), cfg.draws as usize);
    assert!(t.f64("n").iter().all(|&n| n == 4096.0));

    // A mixture of variances spanning a factor d = 4096 is far from one Gaussian.
    assert_eq!(count_true(&t.bool("gaussian")), 0);
    assert!(t.f64("gaussian_p_value").iter().all(|&p| p < 1e-6));
    // Its population excess kurtosis is 3·d·Σλ²/(Σλ)² − 3 ≈ 252; the sample value is ruled by
    // the few largest variances and varies a lot, so only its order is checked.
    let d = 4096;
    let kurtosis = 3.0 * d as f64 * zeta(d, 2.0) / zeta(d, 1.0).powi(2) - 3.0;
    assert!(kurtosis > 200.0);
    assert!(median(&t.f64("excess_kurtosis")) > 10.0);

    // The fitted tail exponent is 1 + 2/s = 3 within the MLE's standard error
    // (alpha − 1)/√n_tail; n_tail is read back from ks_critical = 1.358/√n_tail.
    let want = 1.0 + 2.0 / cfg.spectrum_s;
    let (alpha, critical) = (t.f64("alpha"), t.f64("ks_critical"));
    for (i, (&a, &c)) in alpha.iter().zip(&critical).enumerate() {
        let sigma = (want - 1.0) * c / 1.358;
        assert!((a - want).abs() <= 4.0 * sigma, "draw {i}: alpha {a}, expected {want} ± {sigma}");
    }
    let m = mean(&alpha);
    assert!((m - want).abs() < 0.1, "mean alpha over the draws {m}");
    assert!(t.bool("power_law").iter().all(|&b| b), "the paper's test does not reject the planted power law");
    let heavy = count_true(&t.bool("heavier_than_exponential"));
    assert!(heavy * 2 >= t.len(), "a power-law tail is heavier than exponential in most draws: {heavy}/{}", t.len());
}

#[tokio::test]
async fn noise_across_parameters_with_a_flat_spectrum_is_gaussian() {
    let mut cfg = config("s0", 14, vec![ParamSpec::new("w", [32, 32]), ParamSpec::new("b", [32])]);
    cfg.spectrum_s = 0.0;
    cfg.draws = DRAWS;
    let lake = Lake::new(vec![cfg]).await;
    lake.ran(named::NOISE, &[("coordinates", "8")]).await;
    let t = lake
        .rows(
            "SELECT param, n, alpha, gaussian, excess_kurtosis, stable, heavier_than_exponential \
             FROM noise_across_params WHERE param IN ('w', 'b')",
        )
        .await;
    // w and b are independent, and so are the draws: 80 independent tests.
    assert_eq!(t.len(), 2 * DRAWS as usize);
    let accepted = count_true(&t.bool("gaussian"));
    let floor = binomial_floor(t.len(), 0.95, 4.0);
    assert!(accepted as f64 >= floor, "{accepted}/{} Gaussian, expected at least {floor}", t.len());

    let param = t.str("param");
    let w: Vec<usize> = (0..t.len()).filter(|&i| param[i] == "w").collect();
    let pick = |v: Vec<f64>| w.iter().map(|&i| v[i]).collect::<Vec<_>>();
    let (kurtosis, alpha, stable) = (pick(t.f64("excess_kurtosis")), pick(t.f64("alpha")), pick(t.f64("stable")));
    let (g2_mean, g2_var) = g2_moments(1024);
    let se = (g2_var / w.len() as f64).sqrt();
    let m = mean(&kurtosis);
    assert!((m - g2_mean).abs() <= 4.0 * se, "mean excess kurtosis {m}, expected {g2_mean} ± {se}");
    // A Gaussian is α-stable with α = 2.
    let st = median(&stable);
    assert!((st - 2.0).abs() < 0.2, "median stable alpha {st}");
    // A Gaussian tail is lighter than any power law: the exponent fitted to its extreme
    // values is large. (The paper's KS test, with xmin free, still does not reject those
    // few extreme values as a power law: it has no power against a Gaussian at this size.)
    let a = median(&alpha);
    assert!(a > 4.0, "median fitted alpha {a} of Gaussian noise");
    let heavy = count_true(&t.bool("heavier_than_exponential"));
    assert!(heavy * 10 <= t.len(), "{heavy}/{} Gaussian tests called heavier than exponential", t.len());
}

// ---------------------------------------------------------------------------------------------
// 4. spectrum
// ---------------------------------------------------------------------------------------------

const SAMPLES: u64 = 600;

/// Per-sample gradients of one param of d = 512 with spectrum exponent `s`.
fn spectrum_run(run: &str, seed: u64, s: f64) -> SynthConfig {
    let mut cfg = config(run, seed, vec![ParamSpec::new("w", [16, 32])]);
    cfg.spectrum_s = s;
    cfg.samples = SAMPLES;
    cfg
}

/// One row of the `spectrum` table.
struct Spectrum {
    run: String,
    param: String,
    n: f64,
    eigenvalues: Vec<f64>,
    error_bound: f64,
    total_variance: f64,
    s: Option<f64>,
    r2: Option<f64>,
    kmin: Option<f64>,
    kmax: Option<f64>,
}

async fn spectra(lake: &Lake) -> Vec<Spectrum> {
    let t = lake
        .rows(
            "SELECT run, param, n, eigenvalues, error_bound, total_variance, s, r2, kmin, kmax \
             FROM spectrum WHERE kind = 'sample' ORDER BY run, param",
        )
        .await;
    let (run, param, n, eig) = (t.str("run"), t.str("param"), t.f64("n"), t.f64_lists("eigenvalues"));
    let (eb, tv) = (t.f64("error_bound"), t.f64("total_variance"));
    let (s, r2, kmin, kmax) = (t.opt_f64("s"), t.opt_f64("r2"), t.opt_f64("kmin"), t.opt_f64("kmax"));
    (0..t.len())
        .map(|i| Spectrum {
            run: run[i].clone(),
            param: param[i].clone(),
            n: n[i],
            eigenvalues: eig[i].clone(),
            error_bound: eb[i],
            total_variance: tv[i],
            s: s[i],
            r2: r2[i],
            kmin: kmin[i],
            kmax: kmax[i],
        })
        .collect()
}

/// The fit range spectrum.sql promises: ranks 1..kmax with kmax at most max_rank (64), at most
/// n/4, and only ranks whose eigenvalue is positive with error_bound ≤ max_relative_error·λ̂;
/// None when fewer than two ranks qualify. Counted here from the eigenvalues column.
fn promised_kmax(sp: &Spectrum, max_relative_error: f64) -> Option<f64> {
    let accurate =
        sp.eigenvalues.iter().filter(|&&l| l > 0.0 && sp.error_bound <= max_relative_error * l).count() as f64;
    let kmax = accurate.min(64.0).min((sp.n / 4.0).floor());
    (kmax >= 2.0).then_some(kmax)
}

#[tokio::test]
async fn spectrum_recovers_the_planted_exponent_of_per_sample_gradients() {
    let planted = BTreeMap::from([("s1".to_string(), 1.0), ("s2".to_string(), 2.0)]);
    let cfgs = vec![spectrum_run("s1", 13, 1.0), spectrum_run("s2", 15, 2.0)];
    let lake = Lake::new(cfgs.clone()).await;
    let summary = lake.ran(named::SPECTRUM, &[]).await;
    assert_eq!(summary.str("run"), ["s1", "s1", "s2", "s2"]);

    let rows = spectra(&lake).await;
    assert_eq!(rows.len(), 4, "w and the whole model (the same vector here), per run");
    for sp in &rows {
        let (cfg, s) = (cfgs.iter().find(|c| c.run == sp.run).unwrap(), planted[&sp.run]);
        let what = format!("run {} param {}", sp.run, sp.param);
        assert_eq!(sp.n, SAMPLES as f64, "{what}");
        // The default rank-128 sketch holds the top 128 eigenvalues, descending; 600 vectors are
        // more than the 2·128 it keeps exactly, so it has shrunk.
        assert_eq!(sp.eigenvalues.len(), 128, "{what}");
        assert!(sp.eigenvalues.windows(2).all(|w| w[0] >= w[1]), "{what}: eigenvalues not descending");
        assert!(sp.error_bound > 0.0, "{what}");
        // The trace is exact: the sample variances of the d coordinates, each with mean λ_k
        // and variance 2λ_k²/(n − 1).
        let d = 512;
        let (tv, sd) = (cfg.lambda1 * zeta(d, s), cfg.lambda1 * (2.0 * zeta(d, 2.0 * s) / (SAMPLES - 1) as f64).sqrt());
        assert!(
            (sp.total_variance - tv).abs() <= 4.0 * sd,
            "{what}: total variance {} vs {tv} ± {sd}",
            sp.total_variance
        );

        let kmax = promised_kmax(sp, 0.1).unwrap_or_else(|| panic!("{what}: no rank accurate enough"));
        assert_eq!((sp.kmin, sp.kmax), (Some(1.0), Some(kmax)), "{what}");
        let (fit, r2) = (sp.s.unwrap(), sp.r2.unwrap());
        assert!((fit - s).abs() < 0.1, "{what}: s = {fit} over ranks 1..{kmax}, planted {s}");
        assert!(r2 > 0.95, "{what}: r2 {r2}");
    }
}

#[tokio::test]
async fn spectrum_with_a_small_sketch_fits_only_ranks_within_the_error_bound() {
    let lake = Lake::new(vec![spectrum_run("s1", 13, 1.0), spectrum_run("s2", 15, 2.0)]).await;
    let mut fitted = 0;
    let mut unfitted = 0;
    for max_relative_error in ["0.1", "1"] {
        lake.ran(named::SPECTRUM, &[("sketch_rank", "16"), ("max_relative_error", max_relative_error)]).await;
        for sp in spectra(&lake).await {
            let what = format!("run {} param {} max_relative_error {max_relative_error}", sp.run, sp.param);
            // 600 vectors through 16 rows: Frequent Directions shrinks, and says by how much.
            assert_eq!(sp.eigenvalues.len(), 16, "{what}");
            assert!(sp.error_bound > 0.0, "{what}");
            match promised_kmax(&sp, max_relative_error.parse().unwrap()) {
                Some(kmax) => {
                    fitted += 1;
                    assert_eq!((sp.kmin, sp.kmax), (Some(1.0), Some(kmax)), "{what}");
                    assert!(sp.s.is_some(), "{what}");
                }
                // Fewer than two accurate ranks: no fit rather than a line through shrunk ones.
                None => {
                    unfitted += 1;
                    assert_eq!((sp.s, sp.kmax), (None, None), "{what}");
                }
            }
        }
    }
    // The steep spectrum (s = 2) keeps a few accurate ranks at 10%, the flat one (s = 1)
    // none: both branches are exercised.
    assert!(fitted > 0 && unfitted > 0, "fitted {fitted}, unfitted {unfitted}");
}

// ---------------------------------------------------------------------------------------------
// 5. What a lake lacks, and runs
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_lake_without_noise_points_skips_noise_and_spectrum_naming_the_missing_kinds() {
    let mut cfg = config("m", 3, vec![ParamSpec::new("w", [16, 16])]);
    cfg.steps = 8;
    cfg.noise_points = vec![];
    let lake = Lake::new(vec![cfg]).await;
    assert_eq!(lake_kinds(lake.ctx(), None).await.unwrap(), BTreeSet::from(["minibatch".to_string()]));

    for q in [named::SUMMARY, named::DIMENSION_WISE, named::ITERATION_WISE] {
        let rows = lake.ran(q, &[]).await;
        assert!(rows.len() > 0, "{}: no rows", q.name);
    }
    for (q, missing) in [(named::NOISE, "no noise gradients"), (named::SPECTRUM, "no sample or noise gradients")] {
        match lake.analyse(q, &[]).await.unwrap() {
            Outcome::Skipped { reason } => {
                assert!(reason.contains(missing), "{}: {reason}", q.name);
                assert!(reason.contains("it has: minibatch"), "{}: {reason}", q.name);
            }
            Outcome::Ran(_) => panic!("{} ran on a lake without its kinds", q.name),
        }
    }
}

#[tokio::test]
async fn run_param_restricts_every_analysis_to_that_run() {
    let two = |run: &str, seed| {
        let mut cfg = config(run, seed, vec![ParamSpec::new("w", [16, 16])]);
        cfg.steps = 4;
        cfg.noise_points = vec![1];
        cfg.draws = 4;
        cfg.samples = 8;
        cfg
    };
    let lake = Lake::new(vec![two("a", 1), two("b", 2)]).await;
    let everything = lake.ran(named::SUMMARY, &[]).await;
    assert_eq!(everything.str("run").into_iter().collect::<BTreeSet<_>>(), BTreeSet::from(["a".into(), "b".into()]));

    for q in named::ALL {
        let rows = lake.ran(*q, &[("run", "b")]).await;
        assert!(rows.len() > 0, "{}: no rows", q.name);
        assert!(rows.str("run").iter().all(|r| r == "b"), "{}: {:?}", q.name, rows.str("run"));
        for table in q.tables {
            let t = lake.rows(&format!("SELECT run FROM {table}")).await;
            assert!(t.len() > 0, "{table} is empty");
            assert!(t.str("run").iter().all(|r| r == "b"), "{table} holds another run");
        }
    }

    // The value is one quoted literal, not SQL: a run named like an injection matches nothing.
    let rows = lake.ran(named::SUMMARY, &[("run", "b' OR run = 'a")]).await;
    assert_eq!(rows.len(), 0);
}

// ---------------------------------------------------------------------------------------------
// 6. Bad parameters
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_non_numeric_value_for_a_numeric_param_is_an_error_naming_analysis_and_param() {
    // Binding happens before any SQL runs, so no lake is needed, only the kinds to not skip.
    let ctx = SessionContext::new();
    let kinds = BTreeSet::from(["minibatch".to_string(), "noise".to_string()]);
    for q in [named::ITERATION_WISE, named::NOISE] {
        let err = run_named(&ctx, q, &owned(&[("coordinates", "x")]), &kinds).await.unwrap_err();
        match &err {
            AnalyzeError::Param { analysis, source } => {
                assert_eq!(*analysis, q.name);
                assert_eq!(*source, ParamError::NotANumber { name: "coordinates".into(), value: "x".into() });
            }
            other => panic!("{}: expected a parameter error, got {other}", q.name),
        }
        let message = err.to_string();
        assert!(
            message.starts_with(q.name) && message.contains("coordinates") && message.contains("\"x\""),
            "{message}"
        );
    }
}

/// `gradlake analyze` runs the per-step analyses a window of steps at a time so that memory
/// does not grow with the run; the windows must add up to exactly the one-pass tables.
#[tokio::test]
async fn analyses_in_step_windows_give_the_tables_of_one_pass() {
    let mut cfg = SynthConfig::small("w", 5, 10);
    cfg.params = vec![ParamSpec::new("w", [32, 16]), ParamSpec::new("b", [16])];
    cfg.samples = 12;
    cfg.draws = 6;
    cfg.noise_points = vec![0, 4, 9];
    let lake = Lake::new(vec![cfg]).await;
    let kinds = lake_kinds(lake.ctx(), None).await.unwrap();
    // Windows hold 2 of the steps that have the analysis's kinds: 10 minibatch steps, 3 noise points.
    for (query, table, order, windows) in [
        (named::DIMENSION_WISE, "dimension_wise", "kind, step, param", 5),
        (named::NOISE, "noise_across_params", "step, draw, param", 2),
        (named::NOISE, "noise_across_draws", "step, param, idx", 2),
    ] {
        // (spectrum is windowed too: compared below, to float tolerance.)
        let sql = format!("SELECT * FROM {table} ORDER BY {order}");
        let one = run_named(lake.ctx(), query, &[], &kinds).await.unwrap();
        let one_table = dump(&lake, &sql).await;
        let mut passes = Vec::new();
        let options =
            RunOptions { passes: Passes::Fixed(2), pool: None, meter: Meter::Pool, cluster: false, xmin_rules: &[] };
        let windowed =
            run_named_with(lake.ctx(), query, &[], &kinds, &options, &mut |p| passes.push(p.windows)).await.unwrap();
        assert_eq!(passes.last(), Some(&windows), "{table}: {passes:?}");
        assert_eq!(dump(&lake, &sql).await, one_table, "{table}");
        let pretty = |o: &Outcome| match o {
            Outcome::Ran(b) => arrow::util::pretty::pretty_format_batches(b).unwrap().to_string(),
            Outcome::Skipped { reason } => panic!("{reason}"),
        };
        assert_eq!(pretty(&windowed), pretty(&one), "{table} summary");
    }

    // The spectrum's sketches merge partial states in an order that depends on how the scan
    // is split, and their rows are f32: the same spectra to f32 round-off of λ₁.
    run_named(lake.ctx(), named::SPECTRUM, &[], &kinds).await.unwrap();
    let one = spectra(&lake).await;
    let mut passes = Vec::new();
    let options =
        RunOptions { passes: Passes::Fixed(2), pool: None, meter: Meter::Pool, cluster: false, xmin_rules: &[] };
    run_named_with(lake.ctx(), named::SPECTRUM, &[], &kinds, &options, &mut |p| passes.push(p.windows)).await.unwrap();
    assert_eq!(passes.last(), Some(&2), "spectrum: {passes:?}");
    let windowed = spectra(&lake).await;
    assert!(!one.is_empty());
    assert_eq!(one.len(), windowed.len());
    for (a, b) in one.iter().zip(&windowed) {
        let what = format!("spectrum of run {} param {}", a.run, a.param);
        assert_eq!((&a.run, &a.param, a.n, a.kmin, a.kmax), (&b.run, &b.param, b.n, b.kmin, b.kmax), "{what}");
        let scale = a.eigenvalues[0];
        assert_eq!(a.eigenvalues.len(), b.eigenvalues.len(), "{what}");
        for (x, y) in a.eigenvalues.iter().zip(&b.eigenvalues) {
            assert!((x - y).abs() <= 1e-6 * scale, "{what}: eigenvalue {x} vs {y}");
        }
        assert!((a.error_bound - b.error_bound).abs() <= 1e-6 * scale, "{what}: error bound");
        assert!((a.total_variance - b.total_variance).abs() <= 1e-9 * a.total_variance, "{what}: trace");
        let close = |x: Option<f64>, y: Option<f64>| match (x, y) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-6 * (1.0 + x.abs()),
            (x, y) => x == y,
        };
        assert!(close(a.s, b.s) && close(a.r2, b.r2), "{what}: fit {:?} {:?} vs {:?} {:?}", a.s, a.r2, b.s, b.r2);
    }
}

async fn dump(lake: &Lake, sql: &str) -> String {
    arrow::util::pretty::pretty_format_batches(&lake.rows(sql).await.0).unwrap().to_string()
}

/// Windows sized to a memory budget, measured as they run, and windows of coordinates
/// (iteration_wise): several windows, the tables of one pass, and the pool's peak within
/// the budget after the first window.
#[tokio::test]
async fn budget_windows_give_the_tables_of_one_pass_and_stay_within_the_budget() {
    let mut cfg = SynthConfig::small("m", 7, 12);
    cfg.params = vec![ParamSpec::new("w", [256, 64]), ParamSpec::new("b", [64])];
    cfg.samples = 8;
    cfg.draws = 6;
    cfg.noise_points = vec![0, 5, 11];
    let lake = Lake::new(vec![cfg]).await;
    let kinds = lake_kinds(lake.ctx(), None).await.unwrap();
    let limited = LakeSession::open(
        &lake.dir.path().join("lake"),
        &SessionOptions { memory_limit: Some(256 << 20), ..SessionOptions::default() },
    )
    .await
    .unwrap();
    // A budget of a few steps: a dimension-wise step holds up to 2 × 2 × 2 × 16448 f32
    // values (two kinds, two tests, two grouping sets), and fitting its largest group
    // (16448 values) takes ~28 bytes a value per thread: 4–6 MB reserved in all. The
    // iteration-wise groups (256 coordinates × 12 steps) are too small for a budget to
    // split, so they go in fixed windows of 100 coordinates. A noise point holds 6 draws ×
    // 16448 values in four tests and two grouping sets: ~17 MB, a window of its own.
    for (query, table, order, passes) in [
        (named::DIMENSION_WISE, "dimension_wise", "kind, step, param", Passes::Budget { target: 16 << 20 }),
        (named::ITERATION_WISE, "iteration_wise", "param, idx", Passes::Fixed(100)),
        (named::NOISE, "noise_across_params", "step, draw, param", Passes::Budget { target: 40 << 20 }),
    ] {
        let sql = format!("SELECT * FROM {table} ORDER BY {order}");
        run_named(lake.ctx(), query, &[], &kinds).await.unwrap();
        let one_table = dump(&lake, &sql).await;
        let pool = limited.memory_pool();
        let options = RunOptions { passes, pool: Some(pool), meter: Meter::Pool, cluster: false, xmin_rules: &[] };
        let mut windows = Vec::new();
        run_named_with(limited.context(), query, &[], &kinds, &options, &mut |p| {
            windows.push(p.windows);
            if let Passes::Budget { target } = passes
                && p.windows > 1
            {
                assert!(pool.peak() <= target, "{table}: window {} reserved {} bytes", p.windows, pool.peak());
            }
        })
        .await
        .unwrap();
        assert!(windows.last().copied().unwrap_or(0) > 1, "{table}: {windows:?}");
        let got = arrow::util::pretty::pretty_format_batches(
            &limited.context().sql(&sql).await.unwrap().collect().await.unwrap(),
        )
        .unwrap()
        .to_string();
        assert_eq!(got, one_table, "{table}");
    }
}

/// A memory limit below what one step needs is a clear error, not an abort.
#[tokio::test]
async fn a_step_larger_than_the_memory_limit_is_a_clear_error() {
    let mut cfg = config("big", 3, vec![ParamSpec::new("w", [256, 256])]);
    cfg.steps = 3;
    let lake = Lake::new(vec![cfg]).await;
    let kinds = lake_kinds(lake.ctx(), None).await.unwrap();
    let tight = LakeSession::open(
        &lake.dir.path().join("lake"),
        &SessionOptions { memory_limit: Some(256 << 10), ..SessionOptions::default() },
    )
    .await
    .unwrap();
    let options = RunOptions {
        passes: Passes::Budget { target: 128 << 10 },
        pool: Some(tight.memory_pool()),
        meter: Meter::Pool,
        cluster: false,
        xmin_rules: &[],
    };
    let e = run_named_with(tight.context(), named::DIMENSION_WISE, &[], &kinds, &options, &mut |_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("dimension_wise:") && e.contains("memory limit") && e.contains("--memory-limit"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// xmin rules side by side
// ---------------------------------------------------------------------------------------------

/// `analyze --xmin csn,top:0.1,all`: every test runs under each rule, its rows told apart
/// by `xmin_rule`; the `csn` rows are those of a run without rules, and the fixed rules'
/// fits are their closed forms over the values read back: `all` is the MLE over the whole
/// sample, alpha = 1 + n / Σ ln(x_i / min x), and `top:0.1` keeps the ⌈0.1·n⌉ largest.
#[tokio::test]
async fn xmin_rules_run_side_by_side_and_fixed_rules_give_their_closed_forms() {
    let lake = Lake::new(vec![config("x", 13, vec![ParamSpec::new("w", [64, 64])])]).await;
    let kinds = lake_kinds(lake.ctx(), None).await.unwrap();
    let order = "SELECT kind, step, param, alpha, xmin, n_tail, power_law FROM dimension_wise";
    run_named(lake.ctx(), named::DIMENSION_WISE, &[], &kinds).await.unwrap();
    let plain = dump(&lake, &format!("{order} ORDER BY kind, step, param")).await;

    let rules = ["csn".to_string(), "top:0.1".to_string(), "all".to_string()];
    let options = RunOptions { xmin_rules: &rules, ..RunOptions::default() };
    let Outcome::Ran(summary) =
        run_named_with(lake.ctx(), named::DIMENSION_WISE, &[], &kinds, &options, &mut |_| {}).await.unwrap()
    else {
        panic!("skipped")
    };
    let summary = Rows(summary);
    let mut seen: Vec<(String, String)> =
        summary.str("kind").into_iter().zip(summary.str("xmin_rule")).collect::<Vec<_>>();
    seen.sort();
    let mut expected: Vec<(String, String)> =
        ["full", "minibatch"].iter().flat_map(|k| rules.iter().map(move |r| (k.to_string(), r.clone()))).collect();
    expected.sort();
    assert_eq!(seen, expected, "one summary row per kind and rule");
    let csn = dump(&lake, &format!("{order} WHERE xmin_rule = 'csn' ORDER BY kind, step, param")).await;
    assert_eq!(csn, plain, "the csn rows are those of a run without rules");

    let values = lake.rows("SELECT abs(CAST(value AS DOUBLE)) AS a FROM grad_values WHERE kind = 'full'").await;
    let mut x: Vec<f64> = values.f64("a").into_iter().filter(|a| *a > 0.0).collect();
    x.sort_by(f64::total_cmp);
    let n = x.len();
    let fitted = |rule: &'static str| {
        let sql = format!(
            "SELECT alpha, xmin, n_tail FROM dimension_wise WHERE kind = 'full' AND param = 'w' AND xmin_rule = '{rule}'"
        );
        let lake = &lake;
        async move {
            let r = lake.rows(&sql).await;
            assert_eq!(r.len(), 1, "{rule}");
            (r.f64("alpha")[0], r.f64("xmin")[0], r.f64("n_tail")[0])
        }
    };
    let mle = |tail: &[f64]| 1.0 + tail.len() as f64 / tail.iter().map(|v| (v / tail[0]).ln()).sum::<f64>();
    let (alpha, xmin, n_tail) = fitted("all").await;
    assert_eq!((xmin, n_tail), (x[0], n as f64));
    assert!((alpha - mle(&x)).abs() <= 1e-9 * alpha, "all: {alpha} vs {}", mle(&x));
    let k = (0.1 * n as f64).ceil() as usize;
    let (alpha, xmin, n_tail) = fitted("top:0.1").await;
    assert_eq!((xmin, n_tail), (x[n - k], k as f64), "top:0.1 of {n} values");
    assert!((alpha - mle(&x[n - k..])).abs() <= 1e-9 * alpha, "top:0.1: {alpha} vs {}", mle(&x[n - k..]));
}
