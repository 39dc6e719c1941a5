//! MNIST's IDX format, on small files written here.

use gradlake_recorder::data::{Dataset, read_idx};

fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[test]
fn idx_images_and_labels_load_scaled() {
    let dir = tempfile::tempdir().unwrap();
    let pixels: Vec<u8> = (0..3 * 28 * 28).map(|i| (i % 256) as u8).collect();
    std::fs::write(dir.path().join("train-images-idx3-ubyte"), idx(&[3, 28, 28], &pixels)).unwrap();
    std::fs::write(dir.path().join("train-labels-idx1-ubyte"), idx(&[3], &[7, 0, 2])).unwrap();
    let d = Dataset::idx(dir.path(), "train").unwrap();
    assert_eq!((d.len(), d.feature_count(), d.classes, d.image_side), (3, 784, 8, Some(28)));
    assert_eq!(d.features.double_value(&[1, 5]), f64::from(f32::from(((784 + 5) % 256) as u8) / 255.0));
    assert_eq!(d.labels.int64_value(&[0]), 7);
}

#[test]
fn bad_idx_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x-idx1-ubyte");
    std::fs::write(&path, idx(&[5], &[1, 2, 3])).unwrap();
    let err = read_idx(&path).unwrap_err().to_string();
    assert!(err.contains("x-idx1-ubyte") && err.contains("need Some(5) bytes"), "{err}");
    std::fs::write(&path, b"PK\x03\x04").unwrap();
    assert!(read_idx(&path).unwrap_err().to_string().contains("bad magic"));
    let err = Dataset::idx(dir.path(), "train").unwrap_err().to_string();
    assert!(err.contains("no uncompressed train*idx3*"), "{err}");
}
