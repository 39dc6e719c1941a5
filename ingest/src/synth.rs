//! Synthetic lakes with known structure, for tests, benchmarks and the demo.
//!
//! The generator models a network at a fixed point with a known full-batch
//! gradient and known gradient noise, so every analysis has a ground truth:
//!
//! * **`full`** — per param, a fixed vector *m*. Its magnitudes |m_j| are, with
//!   probability `tail_fraction`, Pareto: density ∝ x^−`alpha` above `xmin`;
//!   otherwise uniform on (0, `xmin`). Signs are random. So the dimension-wise
//!   distribution of |full| is a power law above `xmin` with exponent `alpha`.
//! * **`sample`** — per-example gradients m + ξ with ξ ~ N(0, Σ), Σ diagonal with
//!   eigenvalues λ_k = `lambda1`·k^−`spectrum_s` (k = 1..numel) assigned to the
//!   coordinates of each param by a random permutation. So the covariance
//!   spectrum of every param is exactly the power law k^−s.
//! * **`minibatch`** (every step) and **`draw`** — m + ξ̄ with ξ̄ ~ N(0, Σ/B), B the
//!   batch size: each coordinate is Gaussian across steps (iteration-wise Gaussian).
//! * **`noise`** — `draw` − `full`, computed in f32 from the stored values, so the
//!   identity holds exactly in the lake.
//!
//! Everything is a pure function of the seed: each (purpose, param, step, index)
//! has its own random stream, so output does not depend on write order. Memory is
//! O(model size) (the cached *m* and standard deviations), whatever the number of steps.

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;

use crate::error::{IngestError, Result};
use crate::meta::{ParamSpec, RunInfo};
use crate::schema::{CHUNK_LEN, Kind};
use crate::writer::{GradKey, LakeWriter, WriteStats, WriterOptions};

/// Ground truth and shape of a synthetic run. Stored as the run's `config`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SynthConfig {
    /// Run id.
    pub run: String,
    /// Seed of every random stream.
    pub seed: u64,
    /// Number of optimizer steps (a `minibatch` gradient each).
    pub steps: u64,
    /// The model's tensors.
    #[serde(serialize_with = "serialize_params")]
    pub params: Vec<ParamSpec>,
    /// Power-law exponent of |full gradient| above `xmin` (density ∝ x^−alpha), > 1.
    pub alpha: f64,
    /// Where the power-law tail of |full gradient| starts, > 0.
    pub xmin: f64,
    /// Share of coordinates in the power-law tail, in (0, 1].
    pub tail_fraction: f64,
    /// Exponent s of the per-param covariance spectrum λ_k = lambda1·k^−s.
    pub spectrum_s: f64,
    /// Largest covariance eigenvalue of per-sample gradients.
    pub lambda1: f64,
    /// Minibatch size B: minibatch and draw noise has covariance Σ/B.
    pub batch_size: u64,
    /// Per-sample gradients written at each noise point.
    pub samples: u64,
    /// Extra minibatch draws (and their noise) at each noise point.
    pub draws: u64,
    /// Steps at which `full`, `draw`, `noise` and `sample` gradients are written.
    pub noise_points: Vec<i64>,
    /// Learning rate recorded in `runs` and `scalars` (no training happens).
    pub lr: f64,
}

fn serialize_params<S: serde::Serializer>(params: &[ParamSpec], s: S) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(params.len()))?;
    for p in params {
        seq.serialize_element(&serde_json::json!({"name": p.name, "shape": p.shape}))?;
    }
    seq.end()
}

impl SynthConfig {
    /// A small two-layer model with every kind at the start, middle and end: the
    /// defaults of `gradlake synth`.
    pub fn small(run: impl Into<String>, seed: u64, steps: u64) -> Self {
        Self {
            run: run.into(),
            seed,
            steps,
            params: default_params(),
            alpha: 2.5,
            xmin: 1e-3,
            tail_fraction: 0.2,
            spectrum_s: 1.0,
            lambda1: 1e-4,
            batch_size: 32,
            samples: 64,
            draws: 16,
            noise_points: default_noise_points(steps),
            lr: 0.1,
        }
    }

    /// Checks the ground-truth parameters; names the bad one.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(IngestError::InvalidArgument(m));
        if self.steps == 0 {
            return bad("steps must be at least 1".into());
        }
        if !(self.alpha > 1.0 && self.alpha.is_finite()) {
            return bad(format!("alpha must be a finite number > 1, got {}", self.alpha));
        }
        if !(self.xmin > 0.0 && self.xmin.is_finite()) {
            return bad(format!("xmin must be positive, got {}", self.xmin));
        }
        if !(self.tail_fraction > 0.0 && self.tail_fraction <= 1.0) {
            return bad(format!("tail fraction must be in (0, 1], got {}", self.tail_fraction));
        }
        if !(self.spectrum_s >= 0.0 && self.spectrum_s.is_finite()) {
            return bad(format!("spectrum exponent s must be >= 0, got {}", self.spectrum_s));
        }
        if !(self.lambda1 > 0.0 && self.lambda1.is_finite()) {
            return bad(format!("lambda1 must be positive, got {}", self.lambda1));
        }
        if self.batch_size == 0 {
            return bad("batch size must be at least 1".into());
        }
        if let Some(p) = self.noise_points.iter().find(|&&p| p < 0 || p as u64 >= self.steps) {
            return bad(format!("noise point {p} is outside the steps 0..{}", self.steps));
        }
        if self.params.is_empty() {
            return bad("a synthetic model needs at least one param".into());
        }
        Ok(())
    }

    /// Bytes of gradient payload (f32, chunk padding included) one step writes, on average.
    pub fn bytes_per_step(&self) -> f64 {
        let model: usize = self.params.iter().map(|p| p.numel().div_ceil(CHUNK_LEN) * CHUNK_LEN * 4).sum();
        let per_point = (1 + 2 * self.draws + self.samples) as f64;
        model as f64 * (1.0 + per_point * self.noise_points.len() as f64 / self.steps as f64)
    }
}

/// The default synthetic model: an MLP 64 → 256 → 10.
pub fn default_params() -> Vec<ParamSpec> {
    vec![
        ParamSpec::new("fc1.weight", [256, 64]),
        ParamSpec::new("fc1.bias", [256]),
        ParamSpec::new("fc2.weight", [10, 256]),
        ParamSpec::new("fc2.bias", [10]),
    ]
}

/// Start, middle and end of a run of `steps` steps.
pub fn default_noise_points(steps: u64) -> Vec<i64> {
    let last = steps.saturating_sub(1) as i64;
    let mut p = vec![0, last / 2, last];
    p.dedup();
    p
}

/// Distinguishes the random streams of the generator.
#[derive(Clone, Copy)]
#[repr(u64)]
enum Stream {
    Mean = 1,
    Permutation = 2,
    Minibatch = 3,
    Draw = 4,
    Sample = 5,
}

/// A random stream for (purpose, param, step, index): splitmix64 over the tuple.
fn stream(seed: u64, purpose: Stream, param: usize, step: i64, index: u64) -> ChaCha8Rng {
    let mut h = seed;
    for x in [purpose as u64, param as u64, step as u64, index] {
        h = splitmix64(h ^ x.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    }
    ChaCha8Rng::seed_from_u64(h)
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Per-param fixed quantities: the full gradient and the noise standard deviations.
struct ParamModel {
    mean: Vec<f32>,
    sd: Vec<f32>,
}

impl ParamModel {
    fn new(cfg: &SynthConfig, id: usize, numel: usize) -> Self {
        let mut rng = stream(cfg.seed, Stream::Mean, id, 0, 0);
        let tail_exp = -1.0 / (cfg.alpha - 1.0);
        let mean = (0..numel)
            .map(|_| {
                let u: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
                let magnitude = if rng.random::<f64>() < cfg.tail_fraction {
                    cfg.xmin * u.powf(tail_exp)
                } else {
                    cfg.xmin * (1.0 - u)
                };
                let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
                (sign * magnitude) as f32
            })
            .collect();
        // A random permutation of ranks 1..=numel (Fisher–Yates).
        let mut rank: Vec<u32> = (1..=numel as u32).collect();
        let mut rng = stream(cfg.seed, Stream::Permutation, id, 0, 0);
        for i in (1..numel).rev() {
            rank.swap(i, rng.random_range(0..=i));
        }
        let sd = rank.iter().map(|&k| (cfg.lambda1 * f64::from(k).powf(-cfg.spectrum_s)).sqrt() as f32).collect();
        Self { mean, sd }
    }

    /// m + scale·sd ⊙ z, z standard normal from `rng`.
    fn perturbed(&self, rng: &mut ChaCha8Rng, scale: f32) -> Vec<f32> {
        self.mean
            .iter()
            .zip(&self.sd)
            .map(|(&m, &sd)| {
                let z: f32 = StandardNormal.sample(rng);
                m + scale * sd * z
            })
            .collect()
    }
}

/// Writes the synthetic run described by `cfg` into `lake`. `progress` is
/// called with the number of steps done after each step.
pub fn generate(
    lake: &Path,
    cfg: &SynthConfig,
    options: WriterOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<WriteStats> {
    cfg.validate()?;
    let info = RunInfo {
        run: cfg.run.clone(),
        model: "synthetic".into(),
        dataset: "synthetic".into(),
        optimizer: "none".into(),
        lr: cfg.lr,
        batch_size: cfg.batch_size as i64,
        seed: cfg.seed as i64,
        start_time_us: RunInfo::now_us(),
        config: serde_json::json!({ "synth": cfg }),
    };
    let mut writer = LakeWriter::create(lake, &info, cfg.params.clone(), options)?;
    let models: Vec<ParamModel> =
        cfg.params.iter().enumerate().map(|(i, p)| ParamModel::new(cfg, i, p.numel())).collect();
    let batch_scale = 1.0 / (cfg.batch_size as f32).sqrt();
    let mut noise_points = cfg.noise_points.clone();
    noise_points.sort_unstable();
    noise_points.dedup();

    for step in 0..cfg.steps as i64 {
        let mut norm_sq = 0.0f64;
        for (id, (spec, model)) in cfg.params.iter().zip(&models).enumerate() {
            let g = model.perturbed(&mut stream(cfg.seed, Stream::Minibatch, id, step, 0), batch_scale);
            norm_sq += g.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>();
            writer.write_grad_blocking(key(step, Kind::Minibatch, 0, spec), g)?;
        }
        if noise_points.binary_search(&step).is_ok() {
            write_noise_point(&mut writer, cfg, &models, step, batch_scale)?;
        }
        // A synthetic loss curve: the generator does not train, but a lake without
        // a loss would leave the summary analysis with nothing to show.
        let loss = 0.1 + 2.2 * (-(step as f64) / (cfg.steps as f64 / 3.0)).exp();
        writer.write_scalar(step, "loss", loss)?;
        writer.write_scalar(step, "lr", cfg.lr)?;
        writer.write_scalar(step, "grad_norm", norm_sq.sqrt())?;
        progress(step as u64 + 1);
    }
    writer.finish()
}

fn key(step: i64, kind: Kind, sample: u64, spec: &ParamSpec) -> GradKey<'_> {
    GradKey { step, kind, sample: sample as i64, param: &spec.name }
}

fn write_noise_point(
    writer: &mut LakeWriter,
    cfg: &SynthConfig,
    models: &[ParamModel],
    step: i64,
    batch_scale: f32,
) -> Result<()> {
    for (spec, model) in cfg.params.iter().zip(models) {
        writer.write_grad_blocking(key(step, Kind::Full, 0, spec), model.mean.clone())?;
    }
    for r in 0..cfg.draws {
        for (id, (spec, model)) in cfg.params.iter().zip(models).enumerate() {
            let draw = model.perturbed(&mut stream(cfg.seed, Stream::Draw, id, step, r), batch_scale);
            let noise: Vec<f32> = draw.iter().zip(&model.mean).map(|(&d, &m)| d - m).collect();
            writer.write_grad_blocking(key(step, Kind::Draw, r, spec), draw)?;
            writer.write_grad_blocking(key(step, Kind::Noise, r, spec), noise)?;
        }
    }
    for i in 0..cfg.samples {
        for (id, (spec, model)) in cfg.params.iter().zip(models).enumerate() {
            let g = model.perturbed(&mut stream(cfg.seed, Stream::Sample, id, step, i), 1.0);
            writer.write_grad_blocking(key(step, Kind::Sample, i, spec), g)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn means_follow_the_configured_power_law() {
        // Closed form: P(|m| >= x) = tail_fraction * (x/xmin)^(1-alpha) for x >= xmin.
        let mut cfg = SynthConfig::small("t", 7, 1);
        cfg.alpha = 3.0;
        let m = ParamModel::new(&cfg, 0, 200_000);
        let n = m.mean.len() as f64;
        for x in [1e-3, 2e-3, 5e-3] {
            let share = m.mean.iter().filter(|v| f64::from(v.abs()) >= x).count() as f64 / n;
            let want = cfg.tail_fraction * (x / cfg.xmin).powf(1.0 - cfg.alpha);
            let se = (want * (1.0 - want) / n).sqrt();
            assert!((share - want).abs() < 5.0 * se + 1e-9, "x={x}: {share} vs {want}");
        }
    }

    #[test]
    fn noise_sd_is_a_permutation_of_the_spectrum() {
        let cfg = SynthConfig::small("t", 3, 1);
        let m = ParamModel::new(&cfg, 1, 1000);
        let mut var: Vec<f64> = m.sd.iter().map(|&s| f64::from(s) * f64::from(s)).collect();
        var.sort_by(|a, b| b.total_cmp(a));
        for (k, v) in var.iter().enumerate() {
            let want = cfg.lambda1 * ((k + 1) as f64).powf(-cfg.spectrum_s);
            assert!((v - want).abs() <= 1e-6 * want, "rank {k}");
        }
    }

    #[test]
    fn streams_are_independent_of_order_and_seeded() {
        let a: u64 = stream(1, Stream::Draw, 2, 3, 4).random();
        let b: u64 = stream(1, Stream::Draw, 2, 3, 4).random();
        let c: u64 = stream(2, Stream::Draw, 2, 3, 4).random();
        let d: u64 = stream(1, Stream::Draw, 2, 4, 3).random();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn bad_ground_truth_is_named() {
        let mut cfg = SynthConfig::small("t", 1, 10);
        cfg.alpha = 0.5;
        assert!(cfg.validate().unwrap_err().to_string().contains("alpha"));
        cfg.alpha = 2.0;
        cfg.noise_points = vec![10];
        assert!(cfg.validate().unwrap_err().to_string().contains("noise point 10"));
    }
}
