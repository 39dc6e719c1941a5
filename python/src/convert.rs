//! Values between Python and the core: JSON for run descriptions, Arrow for results.

use std::sync::Arc;

use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;
use arrow_pyarrow::{IntoPyArrow, Table};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

/// A Python value of JSON's kinds (dict with string keys, list, tuple, str,
/// int, float, bool, None) as JSON; the error names the first other value.
pub fn json_of(value: &Bound<'_, PyAny>) -> Result<serde_json::Value, String> {
    use serde_json::Value;
    if value.is_none() {
        Ok(Value::Null)
    } else if value.is_instance_of::<PyBool>() {
        Ok(Value::Bool(value.extract().map_err(|e: PyErr| e.to_string())?))
    } else if value.is_instance_of::<PyInt>() {
        let n: i64 = value.extract().map_err(|_| format!("{value} does not fit in 64 bits"))?;
        Ok(Value::from(n))
    } else if value.is_instance_of::<PyFloat>() {
        let x: f64 = value.extract().map_err(|e: PyErr| e.to_string())?;
        Ok(serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number))
    } else if value.is_instance_of::<PyString>() {
        Ok(Value::String(value.extract().map_err(|e: PyErr| e.to_string())?))
    } else if let Ok(d) = value.cast::<PyDict>() {
        let mut map = serde_json::Map::with_capacity(d.len());
        for (k, v) in d.iter() {
            let key: String = k.extract().map_err(|_| format!("key {k} is not a string"))?;
            let v = json_of(&v).map_err(|e| format!("{key}: {e}"))?;
            map.insert(key, v);
        }
        Ok(Value::Object(map))
    } else if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        let items: Vec<Bound<'_, PyAny>> = value.extract().map_err(|e: PyErr| e.to_string())?;
        items.iter().map(json_of).collect::<Result<Vec<_>, _>>().map(Value::Array)
    } else {
        Err(format!(
            "{} is not a JSON value (str, int, float, bool, None, list or dict)",
            value.repr().map_or_else(|_| "a value".into(), |r| r.to_string())
        ))
    }
}

/// Batches as one `pyarrow.Table` (through the C data interface: no copy).
/// Without batches the table has no columns.
pub fn table<'py>(py: Python<'py>, batches: Vec<RecordBatch>) -> PyResult<Bound<'py, PyAny>> {
    let schema = batches.first().map_or_else(|| Arc::new(Schema::empty()), RecordBatch::schema);
    let table = Table::try_new(batches, schema).map_err(|e| crate::GradlakeError::new_err(e.to_string()))?;
    table.into_pyarrow(py)
}
