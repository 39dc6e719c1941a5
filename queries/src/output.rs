//! Rendering query results: `table`, `csv`, `json` (an array of objects) or `parquet`.

use std::io::Write;
use std::str::FromStr;

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, RecordBatchOptions, StringArray, make_array};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

/// Output formats of `gradlake sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// An aligned text table, for a terminal. Buffers up to a row limit.
    Table,
    /// CSV with a header row. Struct columns are spread into one column per
    /// field (`t.alpha`, `t.xmin`, …); lists and maps are written as text (`[1.0, 2.0]`).
    Csv,
    /// A JSON array of row objects.
    Json,
    /// A Parquet file (ZSTD).
    Parquet,
}

impl FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "table" => Ok(Self::Table),
            "csv" => Ok(Self::Csv),
            "json" => Ok(Self::Json),
            "parquet" => Ok(Self::Parquet),
            _ => Err(format!("unknown format {s:?} (expected table, csv, json or parquet)")),
        }
    }
}

/// Errors while rendering.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// Encoding a batch failed (e.g. a nested column in CSV).
    #[error("cannot write {format:?} output: {source}")]
    Arrow {
        /// The output format.
        format: OutputFormat,
        /// What went wrong.
        source: ArrowError,
    },
    /// The Parquet encoder failed.
    #[error("cannot write Parquet output: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Writing to the destination failed.
    #[error("cannot write output: {0}")]
    Io(#[from] std::io::Error),
}

enum Sink<W: Write + Send> {
    Table { out: W, batches: Vec<RecordBatch>, rows: usize, limit: usize, truncated: bool },
    Csv(Box<arrow::csv::Writer<W>>),
    Json(arrow::json::ArrayWriter<W>),
    Parquet(Box<ArrowWriter<W>>),
}

/// Writes the batches of one result in the chosen format. File formats stream;
/// the table format keeps at most `table_row_limit` rows and reports the rest as truncated.
pub struct ResultWriter<W: Write + Send> {
    format: OutputFormat,
    sink: Sink<W>,
    rows: u64,
}

impl<W: Write + Send> ResultWriter<W> {
    /// Starts a result with `schema` written to `out`.
    pub fn new(format: OutputFormat, schema: SchemaRef, out: W, table_row_limit: usize) -> Result<Self, OutputError> {
        let sink = match format {
            OutputFormat::Table => {
                Sink::Table { out, batches: Vec::new(), rows: 0, limit: table_row_limit, truncated: false }
            }
            OutputFormat::Csv => Sink::Csv(Box::new(arrow::csv::WriterBuilder::new().with_header(true).build(out))),
            OutputFormat::Json => Sink::Json(arrow::json::ArrayWriter::new(out)),
            OutputFormat::Parquet => {
                let props =
                    WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::default())).build();
                Sink::Parquet(Box::new(ArrowWriter::try_new(out, schema, Some(props))?))
            }
        };
        Ok(Self { format, sink, rows: 0 })
    }

    /// Appends a batch. Returns false once the table format has all the rows it will show,
    /// so the caller can stop the query early.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<bool, OutputError> {
        self.rows += batch.num_rows() as u64;
        let format = self.format;
        let arrow_err = |source| OutputError::Arrow { format, source };
        match &mut self.sink {
            Sink::Table { batches, rows, limit, truncated, .. } => {
                let take = batch.num_rows().min(*limit - *rows);
                if take < batch.num_rows() {
                    *truncated = true;
                }
                if take > 0 {
                    batches.push(batch.slice(0, take));
                    *rows += take;
                }
                return Ok(!*truncated);
            }
            Sink::Csv(w) => w.write(&csv_columns(batch).map_err(arrow_err)?).map_err(arrow_err)?,
            Sink::Json(w) => w.write(batch).map_err(arrow_err)?,
            Sink::Parquet(w) => w.write(batch)?,
        }
        Ok(true)
    }

    /// Ends the result. Returns the rows written and whether the table was truncated.
    pub fn finish(self) -> Result<(u64, bool), OutputError> {
        let format = self.format;
        let arrow_err = |source| OutputError::Arrow { format, source };
        match self.sink {
            Sink::Table { mut out, batches, truncated, .. } => {
                let text = arrow::util::pretty::pretty_format_batches(&batches).map_err(arrow_err)?;
                writeln!(out, "{text}")?;
                out.flush()?;
                Ok((self.rows, truncated))
            }
            Sink::Csv(w) => {
                w.into_inner().flush()?;
                Ok((self.rows, false))
            }
            Sink::Json(mut w) => {
                w.finish().map_err(arrow_err)?;
                let mut out = w.into_inner();
                writeln!(out)?;
                out.flush()?;
                Ok((self.rows, false))
            }
            Sink::Parquet(w) => {
                w.into_inner()?.flush()?;
                Ok((self.rows, false))
            }
        }
    }
}

/// `batch` as CSV can hold it: each struct column spread into its fields, named
/// `column.field` (recursively; a NULL struct makes its fields NULL), and every other
/// nested column (lists, maps) as its display text, as the table format shows it.
fn csv_columns(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    fn flat(
        name: &str,
        array: &ArrayRef,
        fields: &mut Vec<Field>,
        columns: &mut Vec<ArrayRef>,
    ) -> Result<(), ArrowError> {
        match array.data_type() {
            DataType::Struct(children) => {
                let parent = array.as_struct();
                for (child, values) in children.iter().zip(parent.columns()) {
                    let nulls = NullBuffer::union(parent.nulls(), values.nulls());
                    let values = make_array(values.to_data().into_builder().nulls(nulls).build()?);
                    flat(&format!("{name}.{}", child.name()), &values, fields, columns)?;
                }
            }
            DataType::List(_)
            | DataType::LargeList(_)
            | DataType::ListView(_)
            | DataType::LargeListView(_)
            | DataType::FixedSizeList(..)
            | DataType::Map(..)
            | DataType::Union(..) => {
                let formatter = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())?;
                let text: StringArray =
                    (0..array.len()).map(|i| array.is_valid(i).then(|| formatter.value(i).to_string())).collect();
                fields.push(Field::new(name, DataType::Utf8, true));
                columns.push(Arc::new(text));
            }
            other => {
                fields.push(Field::new(name, other.clone(), true));
                columns.push(Arc::clone(array));
            }
        }
        Ok(())
    }
    let nested = |t: &DataType| t.is_nested() || matches!(t, DataType::Map(..) | DataType::Union(..));
    if !batch.schema().fields().iter().any(|f| nested(f.data_type())) {
        return Ok(batch.clone());
    }
    let (mut fields, mut columns) = (Vec::new(), Vec::new());
    for (field, array) in batch.schema().fields().iter().zip(batch.columns()) {
        flat(field.name(), array, &mut fields, &mut columns)?;
    }
    RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
}

/// Rows of `batches` as JSON objects (an array), as `--format json` writes them.
pub fn batches_to_json(batches: &[RecordBatch]) -> Result<serde_json::Value, OutputError> {
    let mut buf = Vec::new();
    let mut w = arrow::json::ArrayWriter::new(&mut buf);
    let arrow_err = |source| OutputError::Arrow { format: OutputFormat::Json, source };
    for b in batches {
        w.write(b).map_err(arrow_err)?;
    }
    w.finish().map_err(arrow_err)?;
    if buf.is_empty() {
        return Ok(serde_json::Value::Array(Vec::new()));
    }
    serde_json::from_slice(&buf).map_err(|e| OutputError::Io(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("step", DataType::Int64, false),
            Field::new("value", DataType::Float64, false),
        ]));
        let cols: Vec<arrow::array::ArrayRef> =
            vec![Arc::new(Int64Array::from(vec![1, 2])), Arc::new(Float64Array::from(vec![0.5, 1.5]))];
        RecordBatch::try_new(schema, cols).unwrap()
    }

    fn render(format: OutputFormat, limit: usize) -> (String, bool) {
        let b = batch();
        let mut out = Vec::new();
        let mut w = ResultWriter::new(format, b.schema(), &mut out, limit).unwrap();
        w.write(&b).unwrap();
        let (rows, truncated) = w.finish().unwrap();
        assert_eq!(rows, 2);
        (String::from_utf8(out).unwrap(), truncated)
    }

    #[test]
    fn csv_and_json_are_what_other_tools_read() {
        assert_eq!(render(OutputFormat::Csv, 0).0, "step,value\n1,0.5\n2,1.5\n");
        let json = render(OutputFormat::Json, 0).0;
        assert_eq!(json, "[{\"step\":1,\"value\":0.5},{\"step\":2,\"value\":1.5}]\n");
    }

    /// What `SELECT powerlaw_fit(x) AS t, eigenvalues` gives: a struct (NULL in one row) and a list.
    #[test]
    fn csv_spreads_structs_into_fields_and_writes_lists_as_text() {
        use arrow::array::{Float64Builder, ListBuilder, StructArray};
        let alpha = Arc::new(Float64Array::from(vec![2.5, 9.0])) as ArrayRef;
        let n = Arc::new(Int64Array::from(vec![10, 20])) as ArrayRef;
        let t = StructArray::try_new(
            vec![Field::new("alpha", DataType::Float64, true), Field::new("n", DataType::Int64, true)].into(),
            vec![alpha, n],
            Some(NullBuffer::from(vec![true, false])),
        )
        .unwrap();
        let mut eig = ListBuilder::new(Float64Builder::new());
        eig.values().append_slice(&[3.0, 1.5]);
        eig.append(true);
        eig.append(false);
        let eig = eig.finish();
        let schema = Arc::new(Schema::new(vec![
            Field::new("t", t.data_type().clone(), true),
            Field::new("eig", eig.data_type().clone(), true),
        ]));
        let b = RecordBatch::try_new(schema, vec![Arc::new(t), Arc::new(eig)]).unwrap();
        let mut out = Vec::new();
        let mut w = ResultWriter::new(OutputFormat::Csv, b.schema(), &mut out, 0).unwrap();
        w.write(&b).unwrap();
        w.finish().unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "t.alpha,t.n,eig\n2.5,10,\"[3.0, 1.5]\"\n,,\n");
    }

    #[test]
    fn table_truncates_at_the_limit() {
        let (text, truncated) = render(OutputFormat::Table, 1);
        assert!(truncated);
        assert!(text.contains("| 1    | 0.5   |"), "{text}");
        assert!(!text.contains("1.5"));
    }
}
