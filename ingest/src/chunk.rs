//! Splitting a flattened tensor into fixed-width chunks with per-chunk summaries.

use crate::schema::CHUNK_LEN;

/// Number of [`CHUNK_LEN`]-wide chunks a tensor of `numel` elements occupies.
pub fn chunk_count(numel: usize) -> usize {
    numel.div_ceil(CHUNK_LEN)
}

/// Summaries of one chunk, stored in the `l2` and `max_abs` columns so that
/// queries can filter chunks without decoding their values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChunkSummary {
    /// Euclidean norm of the chunk (NaN if the chunk holds a NaN).
    pub l2: f32,
    /// Largest absolute value (NaN if the chunk holds a NaN).
    pub max_abs: f32,
    /// Number of NaN or infinite values.
    pub non_finite: u64,
}

/// Summarises a chunk. The sum of squares is accumulated in f64 so the norm
/// of a 4096-value chunk is exact to f32 rounding.
pub fn summarize(values: &[f32]) -> ChunkSummary {
    let mut sum_sq = 0.0f64;
    let mut max_abs = 0.0f32;
    let mut non_finite = 0u64;
    let mut has_nan = false;
    for &v in values {
        sum_sq += f64::from(v) * f64::from(v);
        // f32::max would silently drop NaN; a chunk with NaN must not look small.
        max_abs = max_abs.max(v.abs());
        has_nan |= v.is_nan();
        non_finite += u64::from(!v.is_finite());
    }
    if has_nan {
        max_abs = f32::NAN;
    }
    ChunkSummary { l2: sum_sq.sqrt() as f32, max_abs, non_finite }
}

/// The `values_crc32` of a stored chunk (format v2): CRC-32 (IEEE) of its
/// [`CHUNK_LEN`] values, padding included, as little-endian IEEE 754 bytes —
/// what a reader checks before it uses them.
pub fn values_crc32(values: &[f32]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    if cfg!(target_endian = "little") {
        // SAFETY: any initialised f32 is 4 initialised bytes, in file order on a little-endian machine.
        hasher.update(unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), size_of_val(values)) });
    } else {
        values.iter().for_each(|v| hasher.update(&v.to_le_bytes()));
    }
    hasher.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference values from Python's `zlib.crc32` of the same little-endian bytes.
    #[test]
    fn values_crc32_is_zlibs_crc32_of_the_little_endian_bytes() {
        assert_eq!(values_crc32(&[0.0; CHUNK_LEN]), 0xab54_d286);
        let v: Vec<f32> = (0..CHUNK_LEN).map(|i| (i % 7) as f32 - 3.5).collect();
        assert_eq!(values_crc32(&v), 0x6f5f_3f35);
    }

    #[test]
    fn counts() {
        assert_eq!(chunk_count(0), 0);
        assert_eq!(chunk_count(1), 1);
        assert_eq!(chunk_count(CHUNK_LEN), 1);
        assert_eq!(chunk_count(CHUNK_LEN + 1), 2);
    }

    #[test]
    fn summaries_match_closed_forms() {
        let s = summarize(&[3.0, -4.0]);
        assert_eq!((s.l2, s.max_abs, s.non_finite), (5.0, 4.0, 0));
        let s = summarize(&[1.0, f32::NAN, f32::INFINITY]);
        assert!(s.l2.is_nan() && s.max_abs.is_nan());
        assert_eq!(s.non_finite, 2);
        let s = summarize(&[1.0, f32::NEG_INFINITY]);
        assert_eq!((s.l2, s.max_abs, s.non_finite), (f32::INFINITY, f32::INFINITY, 1));
    }
}
