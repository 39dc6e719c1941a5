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
use parquet::arrow::arrow_writer::{ArrowColumnChunk, ArrowRowGroupWriterFactory};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;

use crate::error::{IngestError, Result};
use crate::layout;
use crate::schema::{FORMAT_VERSION, META_FORMAT_VERSION, META_TABLE, Table, VALUES_CRC32};

/// An open Parquet file under its temporary name.
pub(crate) struct AtomicParquetFile {
    final_path: PathBuf,
    temp_path: PathBuf,
    writer: Option<Writer>,
}

/// Batches in ([`AtomicParquetFile::write`]) or row groups encoded elsewhere
/// ([`AtomicParquetFile::append_row_group`]).
enum Writer {
    Arrow(ArrowWriter<BufWriter<File>>),
    Encoded(SerializedFileWriter<BufWriter<File>>),
}

impl AtomicParquetFile {
    /// Starts `final_path` (its directory is created) with the table's schema and properties.
    pub fn create(final_path: PathBuf, table: Table, compression: Compression) -> Result<Self> {
        let (temp_path, writer) = Self::start(&final_path, table, compression)?;
        Ok(Self { final_path, temp_path, writer: Some(Writer::Arrow(writer)) })
    }

    /// Like [`AtomicParquetFile::create`], for row groups encoded by column
    /// writers of [`encoder_factory`] with the same `table` and `compression`.
    pub fn create_for_encoded(final_path: PathBuf, table: Table, compression: Compression) -> Result<Self> {
        let (temp_path, writer) = Self::start(&final_path, table, compression)?;
        let (writer, _) = writer.into_serialized_writer().map_err(|e| IngestError::parquet(&temp_path, e))?;
        Ok(Self { final_path, temp_path, writer: Some(Writer::Encoded(writer)) })
    }

    fn start(
        final_path: &Path,
        table: Table,
        compression: Compression,
    ) -> Result<(PathBuf, ArrowWriter<BufWriter<File>>)> {
        let dir = final_path.parent().expect("lake files live in a directory");
        std::fs::create_dir_all(dir).map_err(|e| IngestError::io(dir, e))?;
        let temp_path = layout::in_progress_path(final_path);
        let file = File::create(&temp_path).map_err(|e| IngestError::io(&temp_path, e))?;
        let props = writer_properties(table, compression);
        let writer = ArrowWriter::try_new(BufWriter::with_capacity(1 << 20, file), table.schema(), Some(props))
            .map_err(|e| IngestError::parquet(&temp_path, e))?;
        Ok((temp_path, writer))
    }

    /// Appends a batch to the current row group.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self.writer.as_mut().expect("not finished") {
            Writer::Arrow(w) => w.write(batch).map_err(|e| IngestError::parquet(&self.temp_path, e)),
            Writer::Encoded(_) => unreachable!("files for encoded row groups take no batches"),
        }
    }

    /// Appends a row group whose column chunks were encoded elsewhere.
    pub fn append_row_group(&mut self, chunks: Vec<ArrowColumnChunk>) -> Result<()> {
        let Writer::Encoded(w) = self.writer.as_mut().expect("not finished") else {
            unreachable!("only files made by create_for_encoded take encoded row groups")
        };
        let err = |e| IngestError::parquet(&self.temp_path, e);
        let mut row_group = w.next_row_group().map_err(err)?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut row_group).map_err(err)?;
        }
        row_group.close().map_err(err)?;
        Ok(())
    }

    /// Bytes written so far plus the encoded size of the open row group.
    pub fn size_estimate(&self) -> usize {
        match &self.writer {
            Some(Writer::Arrow(w)) => w.bytes_written() + w.in_progress_size(),
            Some(Writer::Encoded(w)) => w.bytes_written(),
            None => 0,
        }
    }

    /// Writes the footer, fsyncs, and renames the file into place. Returns its final path and size.
    pub fn finish(mut self) -> Result<(PathBuf, u64)> {
        let buf = match self.writer.take().expect("finish is called once") {
            Writer::Arrow(w) => w.into_inner(),
            Writer::Encoded(w) => w.into_inner(),
        };
        let buf = buf.map_err(|e| IngestError::parquet(&self.temp_path, e))?;
        let file = buf.into_inner().map_err(|e| IngestError::io(&self.temp_path, e.into_error()))?;
        file.sync_all().map_err(|e| IngestError::io(&self.temp_path, e))?;
        let size = file.metadata().map_err(|e| IngestError::io(&self.temp_path, e))?.len();
        drop(file);
        std::fs::rename(&self.temp_path, &self.final_path).map_err(|e| IngestError::io(&self.final_path, e))?;
        sync_dir(self.final_path.parent().expect("has a parent"))?;
        Ok((std::mem::take(&mut self.final_path), size))
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
    let mut f = AtomicParquetFile::create(path, table, zstd(3)?)?;
    f.write(batch)?;
    Ok(f.finish()?.1)
}

/// ZSTD at `level`, or an error naming the level.
pub(crate) fn zstd(level: i32) -> Result<Compression> {
    ZstdLevel::try_new(level)
        .map(Compression::ZSTD)
        .map_err(|e| IngestError::InvalidArgument(format!("zstd level {level}: {e}")))
}

/// Makes the column writers of one row group of `table` files with `compression`,
/// for [`AtomicParquetFile::create_for_encoded`] files; `Send + Sync`, so encoder
/// threads can share it.
pub(crate) fn encoder_factory(table: Table, compression: Compression) -> Result<ArrowRowGroupWriterFactory> {
    let writer = ArrowWriter::try_new(Vec::new(), table.schema(), Some(writer_properties(table, compression)))
        .map_err(|e| IngestError::InvalidArgument(format!("parquet writer: {e}")))?;
    let (_, factory) = writer.into_serialized_writer().map_err(|e| IngestError::InvalidArgument(e.to_string()))?;
    Ok(factory)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| IngestError::io(dir, e))
}

/// The writer settings of `docs/FORMAT.md` §4: gradient values byte-stream-split, no
/// dictionary, no statistics, ZSTD (or, when asked, no compression); `grads`'
/// key columns uncompressed, with page statistics; the other tables ZSTD.
///
/// Sort order: readers (DataFusion among them) take a row group's
/// `sorting_columns` as the order of the whole *file*. Rows are sorted by
/// (step, param_id, chunk, kind, sample) within each row group, but across row
/// groups only `step` is in order (the writer starts a new file rather than let
/// it go back), so `step` is all that is declared.
fn writer_properties(table: Table, compression: Compression) -> WriterProperties {
    let metadata = vec![
        KeyValue::new(META_FORMAT_VERSION.to_string(), FORMAT_VERSION.to_string()),
        KeyValue::new(META_TABLE.to_string(), table.name().to_string()),
    ];
    let mut b = WriterProperties::builder()
        .set_compression(compression)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_key_value_metadata(Some(metadata))
        .set_created_by(format!("gradlake {}", env!("CARGO_PKG_VERSION")))
        // Row groups are cut by the caller in bytes, never by the row-count default.
        .set_max_row_group_row_count(None)
        .set_max_row_group_bytes(None);
    if table == Table::Grads {
        // Key and summary columns are a few bytes a row and barely compress, while
        // parquet-rs makes a ZSTD compressor and decompressor for every compressed
        // column chunk it reads: a third of a key-column query's CPU (`bench/query.sh` Q1).
        for key in ["step", "kind", "sample", "param_id", "chunk", "numel", "l2", "max_abs"] {
            b = b.set_column_compression(ColumnPath::from(key), Compression::UNCOMPRESSED);
        }
        // Checksums are random bits: no compression, dictionary or statistics helps.
        let crc = ColumnPath::from(VALUES_CRC32);
        b = b
            .set_column_compression(crc.clone(), Compression::UNCOMPRESSED)
            .set_column_dictionary_enabled(crc.clone(), false)
            .set_column_statistics_enabled(crc, EnabledStatistics::None);
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
    b.build()
}

fn sorting(column_idx: i32) -> SortingColumn {
    SortingColumn { column_idx, descending: false, nulls_first: false }
}
