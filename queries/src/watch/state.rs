//! What `watch` keeps while a run is recorded: running counts and the
//! mergeable states of the groups still open, nothing per finished step.
//!
//! The computations are those of the named analyses, on the same values in
//! the same way (`dimension_wise.sql`, `spectrum.sql`): the power-law test of
//! |g| per (kind, step, param) and over the whole model per (kind, step), and
//! a Frequent Directions sketch per (kind, step, param) of per-sample
//! gradients and noise. So when the run is finished the numbers equal what
//! `gradlake analyze` computes on the finished lake (tested). Plain Rust: no
//! query engine types.

use std::collections::BTreeMap;

use gradlake_stats::powerlaw::{FitOptions, fit, ks_test};
use gradlake_stats::spectrum::fit::{spectrum_fit, spectrum_ks_test};
use gradlake_stats::spectrum::{CovEstimator, Method, SpectrumError};

/// The analyses' settings `watch` uses; the defaults are the SQL scripts' defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WatchOptions {
    /// Level of the KS tests (`significance`).
    pub significance: f64,
    /// xmin rule and KS convention of the power-law fits (`fit`).
    pub fit: FitOptions,
    /// Rank of the Frequent Directions sketches (`sketch_rank`).
    pub sketch_rank: usize,
    /// Highest rank a spectrum fit uses (`max_rank`).
    pub max_rank: usize,
    /// Fit only ranks whose error bound is below this share of the eigenvalue (`max_relative_error`).
    pub max_relative_error: f64,
    /// Ranks below this share of the largest eigenvalue are round-off (`min_relative_eigenvalue`).
    pub min_relative_eigenvalue: f64,
}

impl Default for WatchOptions {
    fn default() -> Self {
        Self {
            significance: 0.05,
            fit: FitOptions::default(),
            sketch_rank: 128,
            max_rank: 64,
            max_relative_error: 0.1,
            min_relative_eigenvalue: 1e-6,
        }
    }
}

/// One power-law test of |g| across parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct DimensionTest {
    /// Gradient kind (`minibatch` or `full`).
    pub kind: String,
    /// Step.
    pub step: i64,
    /// Param name, or `(model)` for the whole model.
    pub param: String,
    /// Fitted exponent (None: too few positive values to fit).
    pub alpha: Option<f64>,
    /// Start of the fitted tail.
    pub xmin: Option<f64>,
    /// Values in the tail.
    pub n_tail: Option<u64>,
    /// Whether the power law is not rejected (None: no test).
    pub power_law: Option<bool>,
}

/// Tests and passes of the dimension-wise test for one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rate {
    /// Tests run (per param and whole model).
    pub tests: u64,
    /// Tests where a power law is not rejected.
    pub power_law: u64,
}

impl Rate {
    /// The share of tests not rejected (None before the first test).
    pub fn rate(&self) -> Option<f64> {
        (self.tests > 0).then(|| self.power_law as f64 / self.tests as f64)
    }
}

/// A spectrum fit of one (kind, step, param), as `spectrum.sql` computes it.
#[derive(Debug, Clone, PartialEq)]
pub struct SpectrumRow {
    /// `sample` or `noise`.
    pub kind: String,
    /// The noise point.
    pub step: i64,
    /// Param name.
    pub param: String,
    /// Vectors sketched.
    pub n: u64,
    /// Least-squares exponent s over ranks kmin..=kmax.
    pub s: Option<f64>,
    /// R² of that fit.
    pub r2: Option<f64>,
    /// First rank fitted.
    pub kmin: Option<usize>,
    /// Last rank fitted.
    pub kmax: Option<usize>,
    /// s from the KS fit of the eigenvalue density.
    pub ks_s: Option<f64>,
    /// Whether that KS test does not reject a power law.
    pub power_law: Option<bool>,
    /// The sketch's error bound on each eigenvalue.
    pub error_bound: f64,
}

/// The latest scalars of the run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Latest {
    /// Highest step seen in any file.
    pub step: Option<i64>,
    /// Loss at the latest step that logged one.
    pub loss: Option<f64>,
    /// Accuracy likewise.
    pub accuracy: Option<f64>,
    /// Whole-model gradient norm likewise.
    pub grad_norm: Option<f64>,
}

/// Running state of a watched run. Memory: one step's |g| per kind (for the
/// whole-model test) and one sketch of `sketch_rank` rows per open
/// (kind, step, param) — bounded by the model, not by the run's length.
#[derive(Debug)]
pub struct WatchState {
    options: WatchOptions,
    params: Vec<String>,
    rates: BTreeMap<String, Rate>,
    newest: BTreeMap<String, Vec<DimensionTest>>,
    model_values: BTreeMap<String, (i64, Vec<f32>)>,
    sketches: BTreeMap<(String, i64, usize), CovEstimator>,
    spectra: Vec<SpectrumRow>,
    latest: Latest,
}

/// Name of the whole-model group, as in the SQL scripts.
pub const MODEL: &str = "(model)";

impl WatchState {
    /// An empty state for a model whose params, by param_id, are `params`.
    pub fn new(options: WatchOptions, params: Vec<String>) -> Self {
        Self {
            options,
            params,
            rates: BTreeMap::new(),
            newest: BTreeMap::new(),
            model_values: BTreeMap::new(),
            sketches: BTreeMap::new(),
            spectra: Vec::new(),
            latest: Latest::default(),
        }
    }

    /// Folds in one whole gradient tensor. Per kind, steps must come in
    /// non-decreasing order (as a lake's files hold them); a higher step closes
    /// the kind's open groups.
    pub fn tensor(&mut self, kind: &str, step: i64, param_id: usize, values: &[f32]) -> Result<(), SpectrumError> {
        self.latest.step = Some(self.latest.step.map_or(step, |s| s.max(step)));
        let param = self.params.get(param_id).cloned().unwrap_or_else(|| format!("param {param_id}"));
        match kind {
            "minibatch" | "full" => {
                if self.model_values.get(kind).is_some_and(|(open, _)| *open != step) {
                    self.close_model_test(kind);
                }
                let mut positive: Vec<f32> =
                    values.iter().map(|v| v.abs()).filter(|v| v.is_finite() && *v > 0.0).collect();
                let model = &mut self.model_values.entry(kind.to_string()).or_insert_with(|| (step, Vec::new())).1;
                model.extend_from_slice(&positive);
                let test = self.test(kind, step, param, &mut positive);
                self.record(test);
            }
            "sample" | "noise" => {
                let done: Vec<_> = self.sketches.keys().filter(|(k, s, _)| k == kind && *s < step).cloned().collect();
                for key in done {
                    self.close_sketch(key)?;
                }
                let rank = self.options.sketch_rank;
                let sketch = self
                    .sketches
                    .entry((kind.to_string(), step, param_id))
                    .or_insert_with(|| CovEstimator::new(Method::Fd { rank }));
                if values.iter().all(|v| v.is_finite()) {
                    let row: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
                    sketch.push(&row)?;
                } else {
                    sketch.skip();
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Notes a scalar (`loss`, `accuracy`, `grad_norm` are shown).
    pub fn scalar(&mut self, step: i64, name: &str, value: f64) {
        let slot = match name {
            "loss" => &mut self.latest.loss,
            "accuracy" => &mut self.latest.accuracy,
            "grad_norm" => &mut self.latest.grad_norm,
            _ => return,
        };
        *slot = Some(value);
        self.latest.step = Some(self.latest.step.map_or(step, |s| s.max(step)));
    }

    /// Closes every open group: the run is finished.
    pub fn close(&mut self) -> Result<(), SpectrumError> {
        let kinds: Vec<String> = self.model_values.keys().cloned().collect();
        for kind in kinds {
            self.close_model_test(&kind);
        }
        let keys: Vec<_> = self.sketches.keys().cloned().collect();
        for key in keys {
            self.close_sketch(key)?;
        }
        Ok(())
    }

    /// Dimension-wise tests and passes per kind.
    pub fn rates(&self) -> &BTreeMap<String, Rate> {
        &self.rates
    }

    /// The tests of the newest step of each kind.
    pub fn newest(&self) -> &BTreeMap<String, Vec<DimensionTest>> {
        &self.newest
    }

    /// Spectrum fits of the closed (kind, step, param) groups, in closing order.
    pub fn spectra(&self) -> &[SpectrumRow] {
        &self.spectra
    }

    /// The latest scalars.
    pub fn latest(&self) -> Latest {
        self.latest
    }

    /// Bytes held by open groups (sketches and whole-model values).
    pub fn open_bytes(&self) -> usize {
        self.sketches.values().map(CovEstimator::bytes).sum::<usize>()
            + self.model_values.values().map(|(_, v)| v.capacity() * 4).sum::<usize>()
    }

    /// The powerlaw_ks_test aggregate on `positive` (finite values > 0, |g| of
    /// f32 gradients): sorted in f32, as the aggregate's state does, then fitted in f64.
    fn test(&self, kind: &str, step: i64, param: String, positive: &mut [f32]) -> DimensionTest {
        radsort::sort(positive);
        let sorted: Vec<f64> = positive.iter().map(|&v| f64::from(v)).collect();
        let f = fit(&sorted, &self.options.fit);
        let t = f.as_ref().and_then(|f| ks_test(f, self.options.significance));
        DimensionTest {
            kind: kind.to_string(),
            step,
            param,
            alpha: f.map(|f| f.alpha),
            xmin: f.map(|f| f.xmin),
            n_tail: f.map(|f| f.n_tail),
            power_law: t.map(|t| t.1),
        }
    }

    fn record(&mut self, test: DimensionTest) {
        let rate = self.rates.entry(test.kind.clone()).or_default();
        rate.tests += 1;
        rate.power_law += u64::from(test.power_law == Some(true));
        let newest = self.newest.entry(test.kind.clone()).or_default();
        if newest.first().is_some_and(|t| t.step != test.step) {
            newest.clear();
        }
        newest.push(test);
    }

    fn close_model_test(&mut self, kind: &str) {
        if let Some((step, mut values)) = self.model_values.remove(kind) {
            let test = self.test(kind, step, MODEL.to_string(), &mut values);
            self.record(test);
        }
    }

    /// The fit of `spectrum.sql`: ranks 1..=max(1, min(max_rank, n/4, accurate ranks)) (no fit below two).
    fn close_sketch(&mut self, key: (String, i64, usize)) -> Result<(), SpectrumError> {
        let Some(mut sketch) = self.sketches.remove(&key) else { return Ok(()) };
        let (kind, step, param_id) = key;
        let param = self.params.get(param_id).cloned().unwrap_or_else(|| format!("param {param_id}"));
        let n = sketch.count() + sketch.skipped();
        let spectrum = sketch.spectrum()?;
        let o = self.options;
        let (fit, ks, error_bound) = match &spectrum {
            Some(sp) => {
                // As spectrum.sql: the ranks above f32 round-off are the KS test's sample,
                // and those among them the sketch holds accurately bound the fit.
                let largest = sp.eigenvalues.first().copied().unwrap_or(0.0);
                let above: Vec<f64> = sp
                    .eigenvalues
                    .iter()
                    .copied()
                    .filter(|&e| e > 0.0 && e >= o.min_relative_eigenvalue * largest)
                    .collect();
                let accurate = above.iter().filter(|&&e| sp.error_bound <= o.max_relative_error * e).count();
                let kmax = (o.max_rank.min(n as usize / 4).min(accurate)).max(1);
                (
                    spectrum_fit(&sp.eigenvalues, Some(1), Some(kmax)),
                    spectrum_ks_test(&above, o.significance, &o.fit),
                    sp.error_bound,
                )
            }
            None => (None, None, 0.0),
        };
        self.spectra.push(SpectrumRow {
            kind,
            step,
            param,
            n,
            s: fit.map(|f| f.s),
            r2: fit.map(|f| f.r2),
            kmin: fit.map(|f| f.kmin),
            kmax: fit.map(|f| f.kmax),
            ks_s: ks.map(|k| k.s),
            power_law: ks.map(|k| k.power_law),
            error_bound,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_higher_step_closes_the_previous_steps_groups_per_kind() {
        let mut s = WatchState::new(WatchOptions::default(), vec!["a".into(), "b".into()]);
        let pareto: Vec<f32> = (1..=400).map(|i| (400.0 / i as f32).powf(1.5)).collect();
        s.tensor("minibatch", 0, 0, &pareto).unwrap();
        s.tensor("minibatch", 0, 1, &pareto).unwrap();
        assert_eq!(s.rates()["minibatch"].tests, 2, "the whole-model test waits for the step to end");
        s.tensor("full", 0, 0, &pareto).unwrap();
        s.tensor("minibatch", 1, 0, &pareto).unwrap();
        assert_eq!(s.rates()["minibatch"].tests, 4, "step 0 closed: a, b, (model), then step 1's a");
        assert_eq!(s.rates()["full"].tests, 1, "another kind's step does not close full");
        s.close().unwrap();
        assert_eq!(s.rates()["minibatch"].tests, 5);
        assert_eq!(s.rates()["full"].tests, 2);
        // x_i = (400/i)^1.5 has P(X ≥ x) ∝ x^(−2/3): density exponent 1 + 2/3.
        let alpha = s.newest()["minibatch"][0].alpha.unwrap();
        assert!((alpha - 5.0 / 3.0).abs() < 0.1, "{alpha}");
    }

    #[test]
    fn sketches_close_when_the_next_noise_point_starts() {
        let mut s = WatchState::new(WatchOptions::default(), vec!["w".into()]);
        for i in 0..12 {
            let v: Vec<f32> = (0..6).map(|j| ((i * 7 + j * 3) % 5) as f32 - 2.0).collect();
            s.tensor("sample", 3, 0, &v).unwrap();
        }
        s.tensor("sample", 3, 0, &[f32::NAN; 6]).unwrap();
        assert!(s.spectra().is_empty());
        s.tensor("sample", 9, 0, &[1.0; 6]).unwrap();
        assert_eq!(s.spectra().len(), 1);
        assert_eq!((s.spectra()[0].step, s.spectra()[0].n), (3, 13), "NaN rows are counted as the SQL count(*) does");
        assert!(s.open_bytes() > 0);
        s.close().unwrap();
        assert_eq!(s.spectra().len(), 2);
        assert_eq!(s.open_bytes(), 0);
    }
}
