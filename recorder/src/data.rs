//! Datasets: features and integer labels in memory, as tensors.
//!
//! * [`Dataset::synthetic`] — the embedded default: a deterministic Gaussian
//!   mixture (one mean per class), 28 × 28 features so every model accepts it.
//! * [`Dataset::idx`] — MNIST's IDX files (`*images-idx3-ubyte`,
//!   `*labels-idx1-ubyte`) from a directory, pixels scaled to [0, 1].

use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use tch::{Kind, Tensor};

use crate::error::{RecorderError, Result};

/// A classification dataset.
#[derive(Debug)]
pub struct Dataset {
    /// Name recorded in `runs`.
    pub name: String,
    /// Features, [n, features], f32.
    pub features: Tensor,
    /// Labels in 0..classes, `[n]`, i64.
    pub labels: Tensor,
    /// Number of classes.
    pub classes: i64,
    /// Side of the square image the features form, if they do.
    pub image_side: Option<i64>,
}

impl Dataset {
    /// Examples.
    pub fn len(&self) -> i64 {
        self.labels.size()[0]
    }

    /// Whether there is no example.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Features per example.
    pub fn feature_count(&self) -> i64 {
        self.features.size()[1]
    }

    /// Examples `index` (an i64 tensor of positions).
    pub fn select(&self, index: &Tensor) -> (Tensor, Tensor) {
        (self.features.index_select(0, index), self.labels.index_select(0, index))
    }

    /// `n` examples of a Gaussian mixture: class c has mean 0.3·m_c with
    /// m_c ~ N(0, I), examples add N(0, I) noise; labels cycle through the classes.
    pub fn synthetic(n: usize, classes: usize, seed: u64) -> Result<Self> {
        const SIDE: usize = 28;
        let features = SIDE * SIDE;
        if n == 0 || classes < 2 {
            return Err(RecorderError::InvalidArgument(format!(
                "a synthetic dataset needs at least one example and two classes, got {n} and {classes}"
            )));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_DA7A);
        let means: Vec<f32> = (0..classes * features).map(|_| StandardNormal.sample(&mut rng)).collect();
        let mut x = Vec::with_capacity(n * features);
        let mut y = Vec::with_capacity(n);
        for i in 0..n {
            let c = i % classes;
            y.push(c as i64);
            for j in 0..features {
                let noise: f32 = StandardNormal.sample(&mut rng);
                x.push(0.3 * means[c * features + j] + noise);
            }
        }
        Ok(Self {
            name: "synthetic".into(),
            features: Tensor::from_slice(&x).reshape([n as i64, features as i64]),
            labels: Tensor::from_slice(&y),
            classes: classes as i64,
            image_side: Some(SIDE as i64),
        })
    }

    /// MNIST-format IDX files in `dir`: the first `*images*idx3*` and
    /// `*labels*idx1*` (uncompressed) whose name starts with `prefix` (`train`, `t10k`).
    pub fn idx(dir: &Path, prefix: &str) -> Result<Self> {
        let find = |needle: &str| -> Result<std::path::PathBuf> {
            let mut names: Vec<_> = std::fs::read_dir(dir)
                .map_err(|e| dataset_error(dir, e.to_string()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                    name.starts_with(prefix) && name.contains(needle) && !name.ends_with(".gz")
                })
                .collect();
            names.sort();
            names.into_iter().next().ok_or_else(|| {
                dataset_error(dir, format!("no uncompressed {prefix}*{needle}* file (gunzip MNIST's .gz files first)"))
            })
        };
        let images_path = find("idx3")?;
        let labels_path = find("idx1")?;
        let (dims, pixels) = read_idx(&images_path)?;
        let (label_dims, labels) = read_idx(&labels_path)?;
        if dims.len() != 3 || label_dims.len() != 1 || dims[0] != label_dims[0] {
            return Err(dataset_error(
                &images_path,
                format!("expected n×rows×cols images and n labels, got {dims:?} and {label_dims:?}"),
            ));
        }
        let (n, rows, cols) = (dims[0], dims[1], dims[2]);
        let classes = labels.iter().copied().max().map_or(0, |m| i64::from(m) + 1).max(2);
        let x: Vec<f32> = pixels.iter().map(|&p| f32::from(p) / 255.0).collect();
        let y: Vec<i64> = labels.iter().map(|&l| i64::from(l)).collect();
        Ok(Self {
            name: format!("idx:{}", dir.display()),
            features: Tensor::from_slice(&x).reshape([n as i64, (rows * cols) as i64]),
            labels: Tensor::from_slice(&y),
            classes,
            image_side: (rows == cols).then_some(rows as i64),
        })
    }

    /// Moves features to f32 and labels to i64 (for data built elsewhere).
    pub fn normalised(self) -> Self {
        Self { features: self.features.to_kind(Kind::Float), labels: self.labels.to_kind(Kind::Int64), ..self }
    }
}

fn dataset_error(path: &Path, message: String) -> RecorderError {
    RecorderError::Dataset { path: path.display().to_string(), message }
}

/// Reads an IDX file of unsigned bytes: its dimensions and data.
pub fn read_idx(path: &Path) -> Result<(Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(path).map_err(|e| dataset_error(path, e.to_string()))?;
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(dataset_error(path, "not an IDX file (bad magic)".into()));
    }
    if bytes[2] != 0x08 {
        return Err(dataset_error(path, format!("IDX element type 0x{:02x}; only unsigned bytes (0x08)", bytes[2])));
    }
    let ndims = usize::from(bytes[3]);
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(dataset_error(path, "truncated IDX header".into()));
    }
    let dims: Vec<usize> = (0..ndims)
        .map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize)
        .collect();
    let count = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if count != Some(bytes.len() - header) {
        return Err(dataset_error(
            path,
            format!("IDX dimensions {dims:?} need {count:?} bytes of data, the file has {}", bytes.len() - header),
        ));
    }
    Ok((dims, bytes[header..].to_vec()))
}
