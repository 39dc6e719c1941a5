//! NumPy `.npy` arrays (alone, or as the entries of an `.npz` archive) as f32 tensors.
//!
//! The header and the element decoding are `npyz`'s; this module picks the element
//! type from the header's dtype (f2, f4, f8 in either byte order), widens or rounds
//! to f32, and puts Fortran-ordered arrays into C order, the order gradlake stores.

use std::io::Read;

use half::f16;
use npyz::{DType, NpyFile, Order, TypeChar};

/// Shape and element type of an array, from its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrayInfo {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// The dtype as numpy writes it (`<f4`, `>f8`, …).
    pub dtype: String,
    /// Whether [`read_f32`] reads it: floating point of 2, 4 or 8 bytes.
    pub readable: bool,
}

/// Reads an array's header; the reader is left at its first element.
pub fn open<R: Read>(reader: R) -> Result<(ArrayInfo, NpyFile<R>), String> {
    let file = NpyFile::new(reader).map_err(|e| format!("not a NumPy array: {e}"))?;
    let (dtype, readable) = match file.dtype() {
        DType::Plain(t) => (t.to_string(), t.type_char() == TypeChar::Float && matches!(t.size_field(), 2 | 4 | 8)),
        other => return Err(format!("structured dtype {} is not a gradient", other.descr())),
    };
    let shape = file.shape().iter().map(|&d| d as usize).collect();
    Ok((ArrayInfo { shape, dtype, readable }, file))
}

/// The elements of `file` as f32 in C order. Half precision widens exactly;
/// double precision rounds to the nearest f32.
pub fn read_f32<R: Read>(file: NpyFile<R>) -> Result<Vec<f32>, String> {
    let DType::Plain(t) = file.dtype() else { return Err("structured dtype".into()) };
    if t.type_char() != TypeChar::Float {
        return Err(format!("dtype {t} is not floating point (gradients are read from f2, f4 or f8)"));
    }
    let order = file.order();
    let shape: Vec<usize> = file.shape().iter().map(|&d| d as usize).collect();
    let bad = |e: std::io::Error| format!("cannot read its elements: {e}");
    let values: Vec<f32> = match t.size_field() {
        2 => file.data::<f16>().map_err(|e| e.to_string())?.map(|v| v.map(f32::from)).collect::<Result<_, _>>(),
        4 => file.data::<f32>().map_err(|e| e.to_string())?.collect::<Result<_, _>>(),
        8 => file.data::<f64>().map_err(|e| e.to_string())?.map(|v| v.map(|x| x as f32)).collect::<Result<_, _>>(),
        _ => return Err(format!("dtype {t} is not supported (gradients are read from f2, f4 or f8)")),
    }
    .map_err(bad)?;
    Ok(match order {
        Order::C => values,
        Order::Fortran => fortran_to_c(&values, &shape),
    })
}

/// `values` laid out with the first index fastest, rearranged with the last index fastest.
fn fortran_to_c(values: &[f32], shape: &[usize]) -> Vec<f32> {
    if shape.len() < 2 {
        return values.to_vec();
    }
    // C strides of each dimension.
    let mut strides = vec![1usize; shape.len()];
    for d in (0..shape.len() - 1).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    let mut out = vec![0.0f32; values.len()];
    let mut index = vec![0usize; shape.len()];
    let mut at = 0usize;
    for &v in values {
        out[at] = v;
        // Advance the multi-index with dimension 0 fastest, keeping the C offset in step.
        for d in 0..shape.len() {
            index[d] += 1;
            at += strides[d];
            if index[d] < shape[d] {
                break;
            }
            at -= strides[d] * shape[d];
            index[d] = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fortran_order_is_transposed_into_c_order() {
        // A 2x3 matrix [[0, 1, 2], [3, 4, 5]] stored column by column: 0 3 1 4 2 5.
        assert_eq!(fortran_to_c(&[0.0, 3.0, 1.0, 4.0, 2.0, 5.0], &[2, 3]), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        // 2x2x2: element (i, j, k) = 4i + 2j + k; in Fortran order i is fastest.
        let f: Vec<f32> = (0..8).map(|p| (p % 2) * 4 + (p / 2 % 2) * 2 + p / 4).map(|v| v as f32).collect::<Vec<_>>();
        assert_eq!(fortran_to_c(&f, &[2, 2, 2]), (0..8).map(|v| v as f32).collect::<Vec<_>>());
    }
}
