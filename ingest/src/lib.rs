//! The gradlake lake format (version 1) and everything that writes or verifies it.
//!
//! A *lake* is a directory of plain Parquet files, readable by any Parquet tool:
//!
//! ```text
//! LAKE/
//!   runs/run=<id>/run.parquet          one row of run metadata
//!   params/run=<id>/params.parquet     one row per tensor
//!   scalars/run=<id>/part-<n>.parquet  (step, name, value)
//!   grads/run=<id>/part-<n>.parquet    gradient chunks of 4096 values
//! ```
//!
//! * [`schema`] fixes the columns of each table and the format version.
//! * [`LakeWriter`] streams whole gradient tensors into a lake on a background
//!   thread, chunking, sorting and compressing them, and makes every file appear
//!   atomically.
//! * [`check`] verifies every file of a lake and names each damaged one.
//! * [`synth`] writes lakes with known statistical structure, for tests and benchmarks.
//! * [`sampling`] makes the random choices of a noise point for every recorder.
//! * [`import`] writes the gradient dumps of other tools (`.npy`, `.npz`, `.safetensors`).

pub mod check;
pub mod chunk;
pub mod error;
mod grads_buffer;
pub mod import;
pub mod layout;
pub mod meta;
mod parquet_file;
pub mod publish_lag;
pub mod sampling;
pub mod schema;
pub mod synth;
pub mod writer;

pub use error::IngestError;
pub use meta::{ParamSpec, RunInfo};
pub use publish_lag::PublishLag;
pub use schema::{CHUNK_LEN, FORMAT_VERSION, Kind, RUN_FINISHED_SCALAR, Table};
pub use writer::{FilePublisher, GradCompression, LakeWriter, WriteStats, WriterOptions};
