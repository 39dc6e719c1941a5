//! Running a report query and reading its columns as plain Rust values.
//!
//! The analysis tables mix string encodings (dictionary, Utf8, Utf8View) and
//! number widths depending on how DataFusion planned them, so every column is
//! cast to one type before it is read: a type the cast cannot handle is an
//! error naming the table and column, never a panic.

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type};
use datafusion::prelude::SessionContext;

use super::error::ReportError;

/// The rows of one query, and the table it read (for error messages).
pub(super) struct Frame {
    table: String,
    batches: Vec<RecordBatch>,
}

/// Runs `sql`, which reads `table`.
pub(super) async fn query(ctx: &SessionContext, table: &str, sql: &str) -> Result<Frame, ReportError> {
    let err = |e| ReportError::Query { table: table.to_string(), source: Box::new(e) };
    let batches = ctx.sql(sql).await.map_err(err)?.collect().await.map_err(err)?;
    Ok(Frame { table: table.to_string(), batches })
}

/// `s` as an SQL string literal.
pub(super) fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl Frame {
    /// Number of rows.
    pub(super) fn len(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// The column `name` of every batch, cast to `to`.
    fn column(&self, name: &str, to: &DataType) -> Result<Vec<ArrayRef>, ReportError> {
        let err = |detail: String| ReportError::Column { table: self.table.clone(), column: name.into(), detail };
        self.batches
            .iter()
            .map(|b| {
                let col = b.column_by_name(name).ok_or_else(|| err("not in the result".into()))?;
                cast(col, to).map_err(|e| err(format!("cannot read {} as {to}: {e}", col.data_type())))
            })
            .collect()
    }

    /// A text column (NULL is `None`).
    pub(super) fn strings(&self, name: &str) -> Result<Vec<Option<String>>, ReportError> {
        let mut out = Vec::with_capacity(self.len());
        for c in self.column(name, &DataType::Utf8)? {
            let a = c.as_string_opt::<i32>().ok_or_else(|| self.not_cast(name))?;
            out.extend(a.iter().map(|v| v.map(str::to_string)));
        }
        Ok(out)
    }

    /// A numeric column as f64.
    pub(super) fn f64s(&self, name: &str) -> Result<Vec<Option<f64>>, ReportError> {
        let mut out = Vec::with_capacity(self.len());
        for c in self.column(name, &DataType::Float64)? {
            out.extend(c.as_primitive_opt::<Float64Type>().ok_or_else(|| self.not_cast(name))?.iter());
        }
        Ok(out)
    }

    /// An integer column as i64.
    pub(super) fn i64s(&self, name: &str) -> Result<Vec<Option<i64>>, ReportError> {
        let mut out = Vec::with_capacity(self.len());
        for c in self.column(name, &DataType::Int64)? {
            out.extend(c.as_primitive_opt::<Int64Type>().ok_or_else(|| self.not_cast(name))?.iter());
        }
        Ok(out)
    }

    /// A list-of-numbers column, each list as f64 (NULL elements dropped).
    pub(super) fn f64_lists(&self, name: &str) -> Result<Vec<Option<Vec<f64>>>, ReportError> {
        let to = DataType::List(std::sync::Arc::new(Field::new("item", DataType::Float64, true)));
        let cols = self.column(name, &to)?;
        let mut out = Vec::with_capacity(self.len());
        for c in &cols {
            let list = c.as_list_opt::<i32>().ok_or_else(|| self.not_cast(name))?;
            for i in 0..list.len() {
                if list.is_null(i) {
                    out.push(None);
                    continue;
                }
                let values = list.value(i);
                let values = values.as_primitive_opt::<Float64Type>().ok_or_else(|| self.not_cast(name))?;
                out.push(Some(values.iter().flatten().collect()));
            }
        }
        Ok(out)
    }

    /// The error for a cast that did not give the type asked for (arrow's cast promises it does).
    fn not_cast(&self, name: &str) -> ReportError {
        ReportError::Column {
            table: self.table.clone(),
            column: name.into(),
            detail: "the cast gave an unexpected array type".into(),
        }
    }
}
