//! Checkpoints: a model's weights as a safetensors file, one tensor per param,
//! named as the model names its params.
//!
//! Loading is strict — the file must hold exactly the model's params, each with
//! its shape — because a checkpoint that half fits would silently replay
//! gradients of a different network. Every error names the file and the tensor.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use tch::Tensor;

use crate::error::{RecorderError, Result};

/// The safetensors format caps its JSON header at 100 MB; a larger length
/// means the file is something else, and must not make us allocate it.
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// A tensor as a checkpoint declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Its name.
    pub name: String,
    /// safetensors' name of its element type (`F32`, `BF16`, `I64`, ...).
    pub dtype: String,
    /// Its shape.
    pub shape: Vec<i64>,
}

fn error(path: &Path, message: impl Into<String>) -> RecorderError {
    RecorderError::Checkpoint { path: path.display().to_string(), message: message.into() }
}

/// The tensors a safetensors file declares, read from its header only (so
/// that every checkpoint of a replay can be checked before any is loaded),
/// with a check that the file is long enough to hold their data.
pub fn read_header(path: &Path) -> Result<Vec<TensorInfo>> {
    let mut file = std::fs::File::open(path).map_err(|e| error(path, format!("cannot open: {e}")))?;
    let file_len = file.metadata().map_err(|e| error(path, format!("cannot read: {e}")))?.len();
    let not_safetensors = |why: String| error(path, format!("not a safetensors file ({why})"));
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(|_| not_safetensors(format!("{file_len} bytes long")))?;
    let header_len = u64::from_le_bytes(len);
    if header_len > MAX_HEADER_BYTES || 8 + header_len > file_len {
        return Err(not_safetensors(format!("header length {header_len} in a file of {file_len} bytes")));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header).map_err(|e| error(path, format!("cannot read: {e}")))?;
    let header: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|e| not_safetensors(format!("header: {e}")))?;
    let data_len = file_len - 8 - header_len;
    let mut tensors = Vec::with_capacity(header.len());
    for (name, entry) in header {
        if name == "__metadata__" {
            continue;
        }
        let bad = || not_safetensors(format!("bad header entry for tensor {name:?}"));
        let dtype = entry.get("dtype").and_then(|d| d.as_str()).ok_or_else(bad)?.to_string();
        let shape = entry
            .get("shape")
            .and_then(|s| s.as_array())
            .ok_or_else(bad)?
            .iter()
            .map(|d| d.as_u64().and_then(|d| i64::try_from(d).ok()).ok_or_else(bad))
            .collect::<Result<Vec<i64>>>()?;
        let end = entry
            .get("data_offsets")
            .and_then(|o| o.as_array())
            .and_then(|o| o.get(1))
            .and_then(|e| e.as_u64())
            .ok_or_else(bad)?;
        if end > data_len {
            return Err(error(
                path,
                format!("truncated: tensor {name:?} ends at byte {end} of the data, which has {data_len}"),
            ));
        }
        tensors.push(TensorInfo { name, dtype, shape });
    }
    Ok(tensors)
}

/// Whether a safetensors element type is a floating-point one (weights of any
/// precision are converted to the model's on loading; integers are not weights).
fn is_float(dtype: &str) -> bool {
    dtype.starts_with('F') || dtype == "BF16"
}

/// Checks that `found` (a checkpoint's tensors) are exactly the model's params
/// `expected` (name, shape): none missing, none extra, every shape equal,
/// every tensor floating-point.
pub fn check_tensors(path: &Path, expected: &[(String, Vec<i64>)], found: &[TensorInfo]) -> Result<()> {
    let names = || expected.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ");
    let by_name: BTreeMap<&str, &TensorInfo> = found.iter().map(|t| (t.name.as_str(), t)).collect();
    for (name, shape) in expected {
        let Some(t) = by_name.get(name.as_str()) else {
            return Err(error(path, format!("no tensor {name:?}, a param of the model (its params: {})", names())));
        };
        if &t.shape != shape {
            return Err(error(path, format!("tensor {name:?} has shape {:?}, the model's param {shape:?}", t.shape)));
        }
        if !is_float(&t.dtype) {
            return Err(error(path, format!("tensor {name:?} is {}, not floating-point", t.dtype)));
        }
    }
    if let Some(extra) = found.iter().find(|t| !expected.iter().any(|(n, _)| n == &t.name)) {
        return Err(error(
            path,
            format!(
                "tensor {:?} is not a param of the model (its params: {}); buffers such as batch-norm \
                 statistics are not loaded: save only the params",
                extra.name,
                names()
            ),
        ));
    }
    Ok(())
}

/// (name, shape) of each param.
pub fn shapes(params: &[(String, Tensor)]) -> Vec<(String, Vec<i64>)> {
    params.iter().map(|(n, t)| (n.clone(), t.size())).collect()
}

/// Copies the checkpoint at `path` into `params` (converted to each param's
/// element type), after checking it holds exactly those params.
pub fn load_into(params: &[(String, Tensor)], path: &Path) -> Result<()> {
    let tensors = Tensor::read_safetensors(path).map_err(|e| error(path, e.to_string()))?;
    let found: Vec<TensorInfo> = tensors
        .iter()
        .map(|(name, t)| TensorInfo {
            name: name.clone(),
            // Only whether it is floating-point matters to the check.
            dtype: if t.is_floating_point() { "F".into() } else { format!("{:?}", t.kind()) },
            shape: t.size(),
        })
        .collect();
    check_tensors(path, &shapes(params), &found)?;
    let by_name: BTreeMap<&str, &Tensor> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    tch::no_grad(|| -> Result<()> {
        for (name, p) in params {
            let source = by_name.get(name.as_str()).ok_or_else(|| error(path, format!("no tensor {name:?}")))?;
            let mut p = p.shallow_clone();
            p.f_copy_(source).map_err(|e| error(path, format!("tensor {name:?}: {e}")))?;
        }
        Ok(())
    })
}
