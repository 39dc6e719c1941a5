//! `.safetensors` files as f32 tensors.
//!
//! The file is memory-mapped and parsed by the `safetensors` crate, which checks the
//! header and that every tensor's byte range lies inside the file; a tensor is
//! decoded only when it is read, so a file larger than memory costs page cache, not
//! heap. Elements are little-endian: F16 and BF16 widen to f32 exactly, F64 rounds.

use std::fs::File;
use std::path::Path;

use half::{bf16, f16};
use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

/// A mapped `.safetensors` file.
pub struct SafetensorsFile {
    map: Mmap,
}

impl SafetensorsFile {
    /// Maps `path`.
    pub fn open(path: &Path) -> Result<Self, String> {
        let file = File::open(path).map_err(|e| e.to_string())?;
        // SAFETY: the map is read-only and private to this process; the importer reads
        // finished dumps, and a file truncated meanwhile would fault, not corrupt memory
        // we own. This is how the `safetensors` crate is meant to be used.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| e.to_string())?;
        SafeTensors::deserialize(&map).map_err(|e| format!("not a safetensors file: {e}"))?;
        Ok(Self { map })
    }

    fn tensors(&self) -> SafeTensors<'_> {
        SafeTensors::deserialize(&self.map).expect("checked in open")
    }

    /// Every tensor's name, shape, dtype and whether [`Self::read_f32`] reads it,
    /// in the order of their data in the file.
    pub fn list(&self) -> Vec<(String, Vec<usize>, String, bool)> {
        let tensors = self.tensors();
        let mut out: Vec<_> = tensors
            .iter()
            .map(|(name, view)| (view.data().as_ptr() as usize, name.to_string(), view.shape().to_vec(), view.dtype()))
            .collect();
        out.sort_by_key(|t| t.0);
        out.into_iter()
            .map(|(_, name, shape, dtype)| {
                let readable = matches!(dtype, Dtype::F16 | Dtype::BF16 | Dtype::F32 | Dtype::F64);
                (name, shape, format!("{dtype:?}"), readable)
            })
            .collect()
    }

    /// Tensor `name` as f32 values, in C order.
    pub fn read_f32(&self, name: &str) -> Result<Vec<f32>, String> {
        let tensors = self.tensors();
        let view = tensors.tensor(name).map_err(|e| e.to_string())?;
        let bytes = view.data();
        Ok(match view.dtype() {
            Dtype::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            Dtype::F16 => bytes.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            Dtype::BF16 => bytes.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            Dtype::F64 => bytes
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32)
                .collect(),
            other => {
                return Err(format!(
                    "dtype {other:?} is not supported (gradients are read from F16, BF16, F32 or F64)"
                ));
            }
        })
    }
}
