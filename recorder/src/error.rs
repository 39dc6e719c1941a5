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
    /// A checkpoint that cannot be read or does not fit the model.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The file.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// A model file (TorchScript) that cannot be loaded or run.
    #[error("model {path}: {message}")]
    ModelFile {
        /// The file.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// libtorch failed.
    #[error("libtorch: {}", torch_message(.0))]
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

/// The message of a libtorch error without its C++ backtrace or boilerplate,
/// reduced to the interpreter's own error where TorchScript adds a traceback
/// of the scripted code (that line names the failing operation and shapes).
pub(crate) fn torch_message(e: &tch::TchError) -> String {
    let text = e.to_string();
    let text = text.split("\nException raised from").next().unwrap_or(&text);
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let from_interpreter = lines.iter().rposition(|l| l.contains("Error: ")).map(|i| lines[i]);
    let line = from_interpreter.or_else(|| lines.first().copied()).unwrap_or("unknown error");
    let line = line.strip_prefix("Internal torch error: ").unwrap_or(line);
    // libtorch follows some messages with paragraphs of advice ("This is an internal miniz error. ...").
    match line.find(". ") {
        Some(end) => line[..=end].to_string(),
        None => line.to_string(),
    }
}
