//! What can go wrong while writing a report; every error names the file or table.

use std::path::PathBuf;

use datafusion::error::DataFusionError;

/// Errors of [`write_report`](super::write_report).
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file or directory could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A query the report makes failed.
    #[error("report query on {table} failed: {source}")]
    Query {
        /// The table the query reads.
        table: String,
        /// What went wrong (boxed: DataFusion's error is large).
        source: Box<DataFusionError>,
    },
    /// A column is missing or has a type the report cannot read.
    #[error("report query on {table}: column {column}: {detail}")]
    Column {
        /// The table the query reads.
        table: String,
        /// The column.
        column: String,
        /// What is wrong with it.
        detail: String,
    },
    /// plotters failed to draw a plot.
    #[error("cannot draw plot {file}: {detail}")]
    Plot {
        /// The plot's file name.
        file: String,
        /// plotters' message.
        detail: String,
    },
}

impl ReportError {
    /// An I/O error on `path`.
    pub(super) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
