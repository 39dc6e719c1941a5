//! A Parquet file that becomes visible only when it is complete.
//!
//! The file is written under a hidden temporary name (see
//! [`layout::in_progress_path`]), fsynced, renamed to its final name, and the
//! directory is fsynced so the rename survives a power loss. Dropping an
//! unfinished file removes the temporary; a killed process leaves only a hidden
//! `.inprogress` file, which no reader opens.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::error::{IngestError, Result};
use crate::layout;
use crate::schema::{FORMAT_VERSION, META_FORMAT_VERSION, META_TABLE, Table};

/// An open Parquet file under its temporary name.
pub(crate) struct AtomicParquetFile {
    final_path: PathBuf,
    temp_path: PathBuf,
    writer: Option<ArrowWriter<BufWriter<File>>>,
}

impl AtomicParquetFile {
    /// Starts `final_path` (its directory is created) with the table's schema and properties.
    pub fn create(final_path: PathBuf, table: Table, zstd_level: i32) -> Result<Self> {
        let dir = final_path.parent().expect("lake files live in a directory");
        std::fs::create_dir_all(dir).map_err(|e| IngestError::io(dir, e))?;
        let temp_path = layout::in_progress_path(&final_path);
        let file = File::create(&temp_path).map_err(|e| IngestError::io(&temp_path, e))?;
        let props = writer_properties(table, zstd_level)?;
        let writer = ArrowWriter::try_new(BufWriter::with_capacity(1 << 20, file), table.schema(), Some(props))
            .map_err(|e| IngestError::parquet(&temp_path, e))?;
        Ok(Self { final_path, temp_path, writer: Some(writer) })
    }

    /// Appends a batch to the current row group.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.writer_mut().write(batch).map_err(|e| IngestError::parquet(&self.temp_path, e))
    }

    /// Ends the current row group.
    pub fn flush_row_group(&mut self) -> Result<()> {
        self.writer_mut().flush().map_err(|e| IngestError::parquet(&self.temp_path, e))
    }

    /// Bytes written so far plus the encoded size of the open row group.
    pub fn size_estimate(&self) -> usize {
        self.writer.as_ref().map_or(0, |w| w.bytes_written() + w.in_progress_size())
    }

    /// Writes the footer, fsyncs, and renames the file into place. Returns its final path and size.
    pub fn finish(mut self) -> Result<(PathBuf, u64)> {
        let writer = self.writer.take().expect("finish is called once");
        let buf = writer.into_inner().map_err(|e| IngestError::parquet(&self.temp_path, e))?;
        let file = buf.into_inner().map_err(|e| IngestError::io(&self.temp_path, e.into_error()))?;
        file.sync_all().map_err(|e| IngestError::io(&self.temp_path, e))?;
        let size = file.metadata().map_err(|e| IngestError::io(&self.temp_path, e))?.len();
        drop(file);
        std::fs::rename(&self.temp_path, &self.final_path).map_err(|e| IngestError::io(&self.final_path, e))?;
        sync_dir(self.final_path.parent().expect("has a parent"))?;
        Ok((std::mem::take(&mut self.final_path), size))
    }

    fn writer_mut(&mut self) -> &mut ArrowWriter<BufWriter<File>> {
        self.writer.as_mut().expect("not finished")
    }
}

impl Drop for AtomicParquetFile {
    fn drop(&mut self) {
        if self.writer.is_some() {
            // Unfinished: never let the half-written temporary linger.
            let _ = std::fs::remove_file(&self.temp_path);
        }
    }
}

/// Writes a whole single-batch file atomically.
pub(crate) fn write_whole_file(path: PathBuf, table: Table, batch: &RecordBatch) -> Result<u64> {
    let mut f = AtomicParquetFile::create(path, table, 3)?;
    f.write(batch)?;
    Ok(f.finish()?.1)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| IngestError::io(dir, e))
}

/// The writer settings of DESIGN §2: gradient values byte-stream-split, no
/// dictionary, no statistics; key columns with page statistics; ZSTD.
///
/// Sort order: readers (DataFusion among them) take a row group's
/// `sorting_columns` as the order of the whole *file*. Rows are sorted by
/// (step, param_id, chunk, kind, sample) within each row group, but across row
/// groups only `step` is in order (the writer starts a new file rather than let
/// it go back), so `step` is all that is declared.
fn writer_properties(table: Table, zstd_level: i32) -> Result<WriterProperties> {
    let level = ZstdLevel::try_new(zstd_level)
        .map_err(|e| IngestError::InvalidArgument(format!("zstd level {zstd_level}: {e}")))?;
    let metadata = vec![
        KeyValue::new(META_FORMAT_VERSION.to_string(), FORMAT_VERSION.to_string()),
        KeyValue::new(META_TABLE.to_string(), table.name().to_string()),
    ];
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_key_value_metadata(Some(metadata))
        .set_created_by(format!("gradlake {}", env!("CARGO_PKG_VERSION")))
        // Row groups are cut by the caller in bytes, never by the row-count default.
        .set_max_row_group_row_count(None)
        .set_max_row_group_bytes(None);
    if table == Table::Grads {
        let values = ColumnPath::from(vec!["values".to_string(), "list".to_string(), "item".to_string()]);
        b = b
            .set_column_encoding(values.clone(), Encoding::BYTE_STREAM_SPLIT)
            .set_column_dictionary_enabled(values.clone(), false)
            .set_column_statistics_enabled(values, EnabledStatistics::None)
            .set_sorting_columns(Some(vec![sorting(0)]));
    }
    if table == Table::Scalars {
        b = b.set_sorting_columns(Some(vec![sorting(0)]));
    }
    Ok(b.build())
}

fn sorting(column_idx: i32) -> SortingColumn {
    SortingColumn { column_idx, descending: false, nulls_first: false }
}
