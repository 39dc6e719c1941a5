//! Errors of the recorder.

/// What can go wrong while recording.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    /// A bad option or input, with what is wrong.
    #[error("{0}")]
    InvalidArgument(String),
    /// A dataset file that cannot be read or parsed.
    #[error("{path}: {message}")]
    Dataset {
        /// The file.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// libtorch failed.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// Writing the lake failed.
    #[error(transparent)]
    Lake(#[from] gradlake_ingest::IngestError),
    /// An I/O error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Result with [`RecorderError`].
pub type Result<T> = std::result::Result<T, RecorderError>;
