//! gradlake's training recorder: trains a model with tch (libtorch) and
//! records its gradients into a lake (see `gradlake_ingest` for the format).
//!
//! * [`data`] — datasets: the embedded synthetic default and MNIST IDX files;
//!   [`tabular`] — CSV and Parquet files.
//! * [`model`] — the built-in models (`mlp`, `lenet`), params named as in PyTorch,
//!   and the [`model::Network`] trait they share with [`torchscript`] modules.
//! * [`checkpoint`] — weights as safetensors files, loaded strictly by name.
//! * [`gradients`] — minibatch, full-batch and per-sample gradients.
//! * [`config`] — what to train and record; [`record`] — the training loop and
//!   what it records when (the gradients of one noise point: `noise_point.rs`);
//!   [`replay`] — the noise points of an archived run, from its checkpoints.
//! * [`torchscript`] — modules saved from Python with `torch.jit.script`.
//!
//! Built only with the `torch` feature of the `gradlake` binary, so that
//! analysing lakes never needs libtorch.

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod error;
pub mod gradients;
pub mod model;
mod noise_point;
pub mod record;
pub mod replay;
pub mod tabular;
pub mod torchscript;

pub use error::{RecorderError, Result};
