//! Manifests: which dump file holds which step, kind and sample.
//!
//! CSV with a header row naming the columns `file`, `step`, `kind` and optionally
//! `sample` (default 0), or JSON: an array of objects with the same keys. Relative
//! file paths are taken from the manifest's own directory.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ImportEntry;
use crate::error::{IngestError, Result};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    file: String,
    step: i64,
    kind: String,
    #[serde(default)]
    sample: i64,
}

/// The entries of the manifest at `path` (`.json`, else CSV), in file order.
pub fn read_manifest(path: &Path) -> Result<Vec<ImportEntry>> {
    let bad = |line: Option<u64>, message: String| {
        let at = line.map_or_else(String::new, |l| format!(" line {l}"));
        IngestError::InvalidArgument(format!("manifest {}{at}: {message}", path.display()))
    };
    let rows: Vec<(Option<u64>, Row)> = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
        let text = std::fs::read_to_string(path).map_err(|e| IngestError::io(path, e))?;
        let rows: Vec<Row> = serde_json::from_str(&text).map_err(|e| bad(None, e.to_string()))?;
        rows.into_iter().map(|r| (None, r)).collect()
    } else {
        let mut reader =
            csv::ReaderBuilder::new().trim(csv::Trim::All).from_path(path).map_err(|e| match e.kind() {
                csv::ErrorKind::Io(_) => IngestError::InvalidArgument(format!("manifest {}: {e}", path.display())),
                _ => bad(None, e.to_string()),
            })?;
        let mut rows = Vec::new();
        for row in reader.deserialize::<Row>() {
            let row = row.map_err(|e| bad(e.position().map(|p| p.line()), e.to_string()))?;
            rows.push((Some(rows.len() as u64 + 2), row));
        }
        rows
    };
    let base = path.parent().unwrap_or(Path::new("."));
    rows.into_iter()
        .map(|(line, row)| {
            let kind = row.kind.parse().map_err(|e| bad(line, e))?;
            let file = PathBuf::from(&row.file);
            let file = if file.is_absolute() { file } else { base.join(file) };
            Ok(ImportEntry { file, step: row.step, kind, sample: row.sample })
        })
        .collect()
}
