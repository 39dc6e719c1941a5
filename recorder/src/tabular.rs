//! Tabular datasets: a CSV file (with a header) or a Parquet file, one example
//! per row, numeric feature columns and one label column.
//!
//! The label column is `label` if there is one, else the last column. Labels
//! may be integers or strings; their distinct values, sorted, become the
//! classes 0..k. Features are read as f32; a NULL or non-numeric feature is
//! an error naming the file, column and row.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float32Type};
use tch::Tensor;

use crate::data::Dataset;
use crate::error::{RecorderError, Result};

fn error(path: &Path, message: impl Into<String>) -> RecorderError {
    RecorderError::Dataset { path: path.display().to_string(), message: message.into() }
}

/// Reads `path` (`.csv` or `.parquet`).
pub fn read_tabular(path: &Path) -> Result<Dataset> {
    let file = File::open(path).map_err(|e| error(path, e.to_string()))?;
    let batches: Vec<RecordBatch> = match path.extension().and_then(|e| e.to_str()) {
        Some("csv") => {
            let format = arrow::csv::reader::Format::default().with_header(true);
            let (schema, _) =
                format.infer_schema(File::open(path)?, Some(1000)).map_err(|e| error(path, e.to_string()))?;
            arrow::csv::ReaderBuilder::new(Arc::new(schema))
                .with_format(format)
                .build(file)
                .map_err(|e| error(path, e.to_string()))?
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| error(path, e.to_string()))?
        }
        Some("parquet") => parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.build())
            .map_err(|e| error(path, e.to_string()))?
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| error(path, e.to_string()))?,
        _ => return Err(error(path, "expected a .csv or .parquet file")),
    };
    let Some(first) = batches.first() else { return Err(error(path, "no rows")) };
    let schema = first.schema();
    if schema.fields().len() < 2 {
        return Err(error(path, "need at least one feature column and a label column"));
    }
    let label = schema.index_of("label").unwrap_or(schema.fields().len() - 1);
    let features: Vec<usize> = (0..schema.fields().len()).filter(|&c| c != label).collect();

    let mut x = Vec::new();
    let mut raw_labels: Vec<String> = Vec::new();
    let mut row0 = 0;
    for b in &batches {
        let columns = features
            .iter()
            .map(|&c| {
                let name = schema.field(c).name();
                if !schema.field(c).data_type().is_numeric() {
                    return Err(error(path, format!("feature column '{name}' is not numeric")));
                }
                cast(b.column(c), &DataType::Float32).map_err(|e| error(path, format!("column '{name}': {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let labels = cast(b.column(label), &DataType::Utf8).map_err(|e| error(path, e.to_string()))?;
        let labels = labels.as_string::<i32>();
        for r in 0..b.num_rows() {
            for (column, &c) in columns.iter().zip(&features) {
                if column.is_null(r) {
                    return Err(error(path, format!("NULL in column '{}', row {}", schema.field(c).name(), row0 + r)));
                }
                x.push(column.as_primitive::<Float32Type>().value(r));
            }
            if labels.is_null(r) {
                return Err(error(path, format!("NULL label in row {}", row0 + r)));
            }
            raw_labels.push(labels.value(r).to_string());
        }
        row0 += b.num_rows();
    }
    // Distinct labels in order: numerically if all are integers, else as strings.
    let numeric: Option<Vec<i64>> = raw_labels.iter().map(|l| l.parse::<i64>().ok()).collect();
    let classes: BTreeMap<String, i64> = match &numeric {
        Some(values) => {
            let mut distinct: Vec<i64> = values.clone();
            distinct.sort_unstable();
            distinct.dedup();
            distinct.iter().enumerate().map(|(i, v)| (v.to_string(), i as i64)).collect()
        }
        None => {
            let mut distinct: Vec<&String> = raw_labels.iter().collect();
            distinct.sort();
            distinct.dedup();
            distinct.into_iter().enumerate().map(|(i, v)| (v.clone(), i as i64)).collect()
        }
    };
    let y: Vec<i64> = raw_labels.iter().map(|l| classes[l]).collect();
    let n = y.len() as i64;
    let f = features.len() as i64;
    let side = (f as f64).sqrt().round() as i64;
    Ok(Dataset {
        name: format!("tabular:{}", path.display()),
        features: Tensor::from_slice(&x).reshape([n, f]),
        labels: Tensor::from_slice(&y),
        classes: (classes.len() as i64).max(2),
        image_side: (side * side == f).then_some(side),
    })
}
