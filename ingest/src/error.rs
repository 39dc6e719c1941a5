//! Errors of the ingest layer. Each names the file, run, param or argument at fault.

use std::path::PathBuf;

/// Everything that can go wrong while writing or checking a lake.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// An operating-system error on a named file or directory.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A Parquet encoding or decoding error on a named file.
    #[error("{path}: {source}")]
    Parquet {
        /// The file being written or read.
        path: PathBuf,
        /// The underlying error.
        source: parquet::errors::ParquetError,
    },
    /// An Arrow error while building a batch for a named file.
    #[error("{path}: {source}")]
    Arrow {
        /// The file the batch was destined for.
        path: PathBuf,
        /// The underlying error.
        source: arrow::error::ArrowError,
    },
    /// A run id that cannot be used as a `run=<id>` directory.
    #[error(
        "invalid run id {0:?}: use letters, digits, '.', '_' or '-' (at most 128 characters, not starting with '.')"
    )]
    InvalidRunId(String),
    /// The run is already present in the lake; gradlake never overwrites a run.
    #[error("run {run:?} already exists in {lake}")]
    RunExists {
        /// The run id.
        run: String,
        /// The lake directory.
        lake: PathBuf,
    },
    /// A gradient for a param that was not declared when the writer was created.
    #[error("unknown param {0:?}: it was not declared in the run's param table")]
    UnknownParam(String),
    /// A param table with two tensors of one name, or an empty shape.
    #[error("invalid param table: {0}")]
    InvalidParams(String),
    /// A tensor whose element count disagrees with its declared shape.
    #[error("param {param:?}: tensor has {got} elements but its shape {shape:?} has {expected}")]
    ShapeMismatch {
        /// Param name.
        param: String,
        /// Declared shape.
        shape: Vec<usize>,
        /// Elements the shape implies.
        expected: usize,
        /// Elements supplied.
        got: usize,
    },
    /// A step lower than one already written for the same kind.
    #[error("kind {kind}: step {step} is lower than step {last} already written")]
    StepBackwards {
        /// The gradient kind.
        kind: crate::Kind,
        /// The offending step.
        step: i64,
        /// The highest step written so far for this kind.
        last: i64,
    },
    /// A negative step or sample index.
    #[error("{what} must be non-negative, got {value}")]
    Negative {
        /// Which field.
        what: &'static str,
        /// The value given.
        value: i64,
    },
    /// A bad option or argument, named in the message.
    #[error("{0}")]
    InvalidArgument(String),
    /// The background writer stopped earlier because of the error in the message.
    #[error("the lake writer stopped earlier: {0}")]
    WriterStopped(String),
}

impl IngestError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
    pub(crate) fn parquet(path: impl Into<PathBuf>, source: parquet::errors::ParquetError) -> Self {
        Self::Parquet { path: path.into(), source }
    }
}

/// Result alias for the ingest layer.
pub type Result<T, E = IngestError> = std::result::Result<T, E>;
