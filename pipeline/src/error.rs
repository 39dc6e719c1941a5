//! Errors of the pipeline layer.

use std::path::PathBuf;

/// What can go wrong while opening a lake or running a query.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The lake has files that queries cannot read; each is named.
    #[error("{lake}: {} damaged file(s) would break queries:\n{}\nrun `gradlake check {lake}` for details, or pass --skip-bad-files to query without them", .files.len(), .files.iter().map(|(p, m)| format!("  {}: {m}", p.display())).collect::<Vec<_>>().join("\n"))]
    DamagedFiles {
        /// The lake directory.
        lake: String,
        /// Each damaged file and what is wrong with it.
        files: Vec<(PathBuf, String)>,
    },
    /// The lake could not be read at all.
    #[error(transparent)]
    Ingest(#[from] gradlake_ingest::IngestError),
    /// A query or registration error from DataFusion.
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// A bad option, named in the message.
    #[error("{0}")]
    InvalidArgument(String),
}

/// Result alias for the pipeline layer.
pub type Result<T, E = PipelineError> = std::result::Result<T, E>;
