//! Verifying a lake: every file's footer, schema and format version, the
//! layout of directories, and (deep mode) every value.
//!
//! The same per-file check guards query sessions: a damaged file is named
//! before a query can trip over it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float32Type, Int32Type, UInt32Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::metadata::ParquetMetaData;

use crate::chunk::{summarize, values_crc32};
use crate::error::{IngestError, Result};
use crate::layout::{self, IN_PROGRESS_SUFFIX};
use crate::schema::{
    CHUNK_LEN, FORMAT_VERSION, META_FORMAT_VERSION, META_TABLE, OLDEST_READABLE_VERSION, Table, schema_matches_version,
};

/// What a finding says of a `grads` file of format v1, whose chunks carry no checksum.
pub const UNVERIFIED: &str = "no checksums, its gradient values cannot be verified";

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Harmless for readers (e.g. the hidden leftover of a killed writer).
    Warning,
    /// A file readers would open but cannot use, or a run that is incomplete.
    Error,
}

/// One problem, with the path it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// How serious it is.
    pub severity: Severity,
    /// The file or directory.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(f, "{level}: {}: {}", self.path.display(), self.message)
    }
}

/// What [`check_lake`] found.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// Parquet files verified.
    pub files: usize,
    /// Rows in the verified files, by table.
    pub rows: BTreeMap<&'static str, u64>,
    /// Runs present.
    pub runs: BTreeSet<String>,
    /// Problems, in the order found.
    pub findings: Vec<Finding>,
}

impl CheckReport {
    /// True when nothing of severity [`Severity::Error`] was found.
    pub fn is_ok(&self) -> bool {
        self.findings.iter().all(|f| f.severity < Severity::Error)
    }

    fn push(&mut self, severity: Severity, path: &Path, message: impl Into<String>) {
        self.findings.push(Finding { severity, path: path.to_path_buf(), message: message.into() });
    }
}

/// Options of [`check_lake`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckOptions {
    /// Decode every page and recompute each chunk's `l2`/`max_abs` (reads all data).
    pub deep: bool,
}

/// Verifies every file of `lake`. Fails only if the lake itself cannot be read;
/// damaged files are reported in the [`CheckReport`].
pub fn check_lake(lake: &Path, options: CheckOptions) -> Result<CheckReport> {
    let meta = std::fs::metadata(lake).map_err(|e| IngestError::io(lake, e))?;
    if !meta.is_dir() {
        return Err(IngestError::InvalidArgument(format!("{} is not a lake directory", lake.display())));
    }
    let mut report = CheckReport::default();
    let mut runs_with: BTreeMap<Table, BTreeSet<String>> = BTreeMap::new();
    for entry in read_dir_sorted(lake)? {
        let name = entry.file_name().unwrap_or_default().to_string_lossy().into_owned();
        match Table::from_name(&name) {
            Some(table) if entry.is_dir() => {
                let runs = check_table_dir(&entry, table, options, &mut report)?;
                runs_with.insert(table, runs);
            }
            _ if name.starts_with('.') => {}
            _ => report.push(Severity::Warning, &entry, "not part of the lake layout (ignored by readers)"),
        }
    }
    let all_runs: BTreeSet<String> = runs_with.values().flatten().cloned().collect();
    for run in &all_runs {
        for table in [Table::Runs, Table::Params] {
            if !runs_with.get(&table).is_some_and(|r| r.contains(run)) {
                let path = layout::single_file(lake, table, run);
                report.push(Severity::Error, &path, format!("run {run:?} has no {} file", table.name()));
            }
        }
    }
    report.runs = all_runs;
    Ok(report)
}

/// Checks `LAKE/<table>/`; returns the runs that have a valid file there.
fn check_table_dir(
    dir: &Path,
    table: Table,
    options: CheckOptions,
    report: &mut CheckReport,
) -> Result<BTreeSet<String>> {
    let mut runs = BTreeSet::new();
    for run_dir in read_dir_sorted(dir)? {
        let name = run_dir.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let Some(run) = layout::parse_run_dir(&name).filter(|_| run_dir.is_dir()) else {
            if name.ends_with(".parquet") {
                report.push(
                    Severity::Error,
                    &run_dir,
                    "Parquet file outside a run=<id> directory: readers would include it",
                );
            } else if !name.starts_with('.') {
                report.push(Severity::Warning, &run_dir, "not a run=<id> directory (ignored by readers)");
            }
            continue;
        };
        for file in read_dir_sorted(&run_dir)? {
            let fname = file.file_name().unwrap_or_default().to_string_lossy().into_owned();
            if fname.ends_with(IN_PROGRESS_SUFFIX) {
                report.push(
                    Severity::Warning,
                    &file,
                    "incomplete file left by an interrupted writer (readers never open it; safe to delete)",
                );
                continue;
            }
            if !fname.ends_with(".parquet") {
                report.push(Severity::Warning, &file, "not a Parquet file (ignored by readers)");
                continue;
            }
            let expected_name = match table {
                Table::Runs | Table::Params => {
                    fname == layout::single_file(Path::new(""), table, run).file_name().unwrap().to_string_lossy()
                }
                Table::Scalars | Table::Grads => layout::parse_part_name(&fname).is_some(),
            };
            if !expected_name {
                report.push(
                    Severity::Error,
                    &file,
                    format!("unexpected file name in {}: readers would include it", table.name()),
                );
            }
            report.files += 1;
            match check_file(&file, table, options.deep) {
                Ok(FileCheck { rows, version }) => {
                    *report.rows.entry(table.name()).or_default() += rows;
                    runs.insert(run.to_string());
                    if table == Table::Grads && version < 2 {
                        report.push(Severity::Warning, &file, format!("format version {version}: {UNVERIFIED}"));
                    }
                }
                Err(message) => report.push(Severity::Error, &file, message),
            }
        }
    }
    Ok(runs)
}

/// What [`check_file`] learnt of a sound file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileCheck {
    /// Rows in the file.
    pub rows: u64,
    /// Its format version.
    pub version: i32,
}

/// Verifies one file of `table`: readable footer, gradlake format version,
/// schema; with `deep`, decodes all data and checks every chunk's summaries
/// and (format v2) checksum. Returns what it found, or a message saying what is wrong.
pub fn check_file(path: &Path, table: Table, deep: bool) -> std::result::Result<FileCheck, String> {
    let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| format!("unreadable Parquet file (truncated, or not Parquet): {e}"))?;
    let version = check_metadata(builder.metadata(), table)?;
    let rows = builder.metadata().file_metadata().num_rows() as u64;
    if deep {
        let reader = builder.with_batch_size(1024).build().map_err(|e| e.to_string())?;
        let mut row = 0u64;
        for batch in reader {
            let batch = batch.map_err(|e| format!("corrupt data after row {row}: {e}"))?;
            if table == Table::Grads {
                check_grads_batch(&batch, row, version >= 2)?;
            }
            row += batch.num_rows() as u64;
        }
        if row != rows {
            return Err(format!("footer says {rows} rows but {row} were read"));
        }
    }
    Ok(FileCheck { rows, version })
}

/// Verifies a file's footer as [`check_file`] does without `deep`: gradlake format version,
/// the table it was written for, and the table's schema in that version. For footers read
/// from anywhere (an object store, a cache). Returns the format version.
pub fn check_metadata(metadata: &ParquetMetaData, table: Table) -> std::result::Result<i32, String> {
    let file_meta = metadata.file_metadata();
    let kv = |key: &str| {
        file_meta
            .key_value_metadata()
            .and_then(|kvs| kvs.iter().find(|kv| kv.key == key))
            .and_then(|kv| kv.value.clone())
    };
    let version = match kv(META_FORMAT_VERSION).map(|v| v.parse::<i32>()) {
        None => return Err(format!("no {META_FORMAT_VERSION} metadata: not written by gradlake")),
        Some(Ok(v)) if (OLDEST_READABLE_VERSION..=FORMAT_VERSION).contains(&v) => v,
        Some(Ok(v)) if v > FORMAT_VERSION => {
            return Err(format!("format version {v} is newer than this gradlake reads ({FORMAT_VERSION})"));
        }
        Some(v) => return Err(format!("unsupported format version {v:?}")),
    };
    if let Some(t) = kv(META_TABLE)
        && t != table.name()
    {
        return Err(format!("a {t} file in the {} table", table.name()));
    }
    let schema = parquet::arrow::parquet_to_arrow_schema(file_meta.schema_descr(), file_meta.key_value_metadata())
        .map_err(|e| format!("unreadable schema: {e}"))?;
    schema_matches_version(table, &schema, version)?;
    Ok(version)
}

fn check_grads_batch(batch: &arrow::array::RecordBatch, first_row: u64, crc: bool) -> std::result::Result<(), String> {
    let crcs = crc.then(|| batch.column(9).as_primitive::<UInt32Type>());
    let numel = batch.column(5).as_primitive::<Int32Type>();
    let l2 = batch.column(6).as_primitive::<Float32Type>();
    let max_abs = batch.column(7).as_primitive::<Float32Type>();
    let values = batch.column(8).as_fixed_size_list();
    let flat = values.values().as_primitive::<Float32Type>();
    for i in 0..batch.num_rows() {
        let row = first_row + i as u64;
        let n = numel.value(i);
        if !(1..=CHUNK_LEN as i32).contains(&n) {
            return Err(format!("row {row}: numel {n} outside 1..={CHUNK_LEN}"));
        }
        let chunk = &flat.values()[i * CHUNK_LEN..(i + 1) * CHUNK_LEN];
        if let Some(crcs) = crcs
            && crcs.value(i) != values_crc32(chunk)
        {
            return Err(format!("row {row}: values do not match their checksum (corrupt data)"));
        }
        let (valid, padding) = chunk.split_at(n as usize);
        if padding.iter().any(|&v| v != 0.0) {
            return Err(format!("row {row}: padding after element {n} is not zero"));
        }
        // The writer computed these with the same function: any difference is corruption.
        let s = summarize(valid);
        let same = |a: f32, b: f32| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
        if !same(s.l2, l2.value(i)) || !same(s.max_abs, max_abs.value(i)) || values.is_null(i) {
            return Err(format!("row {row}: values disagree with the stored l2/max_abs (corrupt data)"));
        }
    }
    Ok(())
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| IngestError::io(dir, e))? {
        out.push(entry.map_err(|e| IngestError::io(dir, e))?.path());
    }
    out.sort();
    Ok(out)
}
