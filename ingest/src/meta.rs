//! Run metadata and the param table: what is known about a run before its first gradient.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Array, Int32Array, Int64Array, ListArray, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::Int64Type;

use crate::chunk::chunk_count;
use crate::error::{IngestError, Result};
use crate::schema::{FORMAT_VERSION, Table};

/// One row of the `runs` table.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    /// Run id: the `run=<id>` directory name.
    pub run: String,
    /// Model name (`mlp`, `lenet`, `synthetic`, ...).
    pub model: String,
    /// Dataset name.
    pub dataset: String,
    /// Optimizer name.
    pub optimizer: String,
    /// Learning rate.
    pub lr: f64,
    /// Minibatch size.
    pub batch_size: i64,
    /// Random seed.
    pub seed: i64,
    /// Start time, microseconds since the Unix epoch (UTC).
    pub start_time_us: i64,
    /// The full configuration as JSON, so a run can be reproduced from its lake alone.
    pub config: serde_json::Value,
}

impl RunInfo {
    /// The current time in microseconds since the epoch, for [`RunInfo::start_time_us`].
    pub fn now_us() -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
    }

    pub(crate) fn to_batch(&self) -> RecordBatch {
        let s = |v: &str| Arc::new(StringArray::from(vec![v])) as ArrayRef;
        let columns: Vec<ArrayRef> = vec![
            s(&self.model),
            s(&self.dataset),
            s(&self.optimizer),
            Arc::new(Float64Array::from(vec![self.lr])),
            Arc::new(Int64Array::from(vec![self.batch_size])),
            Arc::new(Int64Array::from(vec![self.seed])),
            Arc::new(Int32Array::from(vec![FORMAT_VERSION])),
            Arc::new(TimestampMicrosecondArray::from(vec![self.start_time_us]).with_timezone("UTC")),
            s(&self.config.to_string()),
        ];
        RecordBatch::try_new(Table::Runs.schema(), columns).expect("columns follow the runs schema")
    }
}

/// A tensor of the model, as declared before any gradient of it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSpec {
    /// Name, e.g. `fc1.weight`.
    pub name: String,
    /// Shape; the flattened length is its product.
    pub shape: Vec<usize>,
}

impl ParamSpec {
    /// A param named `name` with `shape`.
    pub fn new(name: impl Into<String>, shape: impl Into<Vec<usize>>) -> Self {
        Self { name: name.into(), shape: shape.into() }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// The params of a run with their ids (their position in the declaration).
#[derive(Debug, Clone)]
pub(crate) struct ParamTable {
    pub specs: Vec<ParamSpec>,
    by_name: HashMap<String, usize>,
}

impl ParamTable {
    pub fn new(specs: Vec<ParamSpec>) -> Result<Self> {
        if specs.len() > i32::MAX as usize {
            return Err(IngestError::InvalidParams("too many params".into()));
        }
        let mut by_name = HashMap::with_capacity(specs.len());
        for (i, p) in specs.iter().enumerate() {
            if p.name.is_empty() {
                return Err(IngestError::InvalidParams(format!("param {i} has an empty name")));
            }
            if p.numel() == 0 || p.numel() > i32::MAX as usize {
                return Err(IngestError::InvalidParams(format!(
                    "param {:?} has shape {:?}: it must have between 1 and 2^31-1 elements",
                    p.name, p.shape
                )));
            }
            if by_name.insert(p.name.clone(), i).is_some() {
                return Err(IngestError::InvalidParams(format!("param {:?} is declared twice", p.name)));
            }
        }
        Ok(Self { specs, by_name })
    }

    pub fn id_of(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    pub fn to_batch(&self) -> RecordBatch {
        let shapes = ListArray::from_iter_primitive::<Int64Type, _, _>(
            self.specs.iter().map(|p| Some(p.shape.iter().map(|&d| Some(d as i64)).collect::<Vec<_>>())),
        );
        let item = Arc::new(arrow::datatypes::Field::new("item", arrow::datatypes::DataType::Int64, true));
        let (_, offsets, values, nulls) = shapes.into_parts();
        let shapes = ListArray::new(item, offsets, values, nulls);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from_iter_values(0..self.specs.len() as i32)),
            Arc::new(StringArray::from_iter_values(self.specs.iter().map(|p| p.name.as_str()))),
            Arc::new(shapes),
            Arc::new(Int64Array::from_iter_values(self.specs.iter().map(|p| p.numel() as i64))),
            Arc::new(Int32Array::from_iter_values(self.specs.iter().map(|p| chunk_count(p.numel()) as i32))),
        ];
        RecordBatch::try_new(Table::Params.schema(), columns).expect("columns follow the params schema")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_table_rejects_duplicates_and_empty_shapes() {
        let dup = ParamTable::new(vec![ParamSpec::new("a", [2]), ParamSpec::new("a", [3])]);
        assert!(dup.unwrap_err().to_string().contains("declared twice"));
        let empty = ParamTable::new(vec![ParamSpec::new("a", [0, 3])]);
        assert!(empty.unwrap_err().to_string().contains("\"a\""));
        let t = ParamTable::new(vec![ParamSpec::new("w", [3, 4]), ParamSpec::new("b", [4097])]).unwrap();
        assert_eq!(t.id_of("b"), Some(1));
        let batch = t.to_batch();
        assert_eq!(batch.num_rows(), 2);
    }
}
