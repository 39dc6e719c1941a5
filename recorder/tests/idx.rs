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

/// The real digits scripts/setup-mnist makes (run by scripts/test) have the pixel statistics
/// published for MNIST's training set: mean 0.1307 and standard deviation 0.3081 (the values
/// torchvision's MNIST examples normalise with), and all ten classes.
#[test]
fn setup_mnist_gives_real_mnist_digits() {
    let deps = std::env::var_os("GRADLAKE_DEPS_DIR").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.deps"),
        std::path::PathBuf::from,
    );
    let dir = deps.join("mnist");
    assert!(dir.join("train-images-idx3-ubyte").is_file(), "{}: run scripts/setup-mnist", dir.display());
    let train = Dataset::idx(&dir, "train").unwrap();
    let test = Dataset::idx(&dir, "t10k").unwrap();
    assert_eq!((train.len(), test.len(), train.feature_count(), train.classes), (8000, 2000, 784, 10));
    let mean = train.features.mean(tch::Kind::Double).double_value(&[]);
    let std = train.features.to_kind(tch::Kind::Double).std(false).double_value(&[]);
    assert!((mean - 0.1307).abs() < 0.003, "mean {mean}");
    assert!((std - 0.3081).abs() < 0.003, "std {std}");
    // Every class at least 5% of the examples: a real, shuffled split.
    let counts = train.labels.bincount(None::<tch::Tensor>, 10);
    let counts: Vec<i64> = Vec::try_from(&counts).unwrap();
    assert!(counts.iter().all(|&c| c > 400), "{counts:?}");
}
