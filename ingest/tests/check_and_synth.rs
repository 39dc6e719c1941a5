//! `check` names every damaged file; synthetic lakes are deterministic and pass a deep check.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{AsArray, Int32Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use gradlake_ingest::check::{CheckOptions, Severity, check_lake};
use gradlake_ingest::synth::{SynthConfig, generate};
use gradlake_ingest::{GradCompression, ParamSpec, WriterOptions};
use parquet::basic::Compression;
use parquet::file::reader::{FileReader, SerializedFileReader};

fn small_lake(dir: &Path, seed: u64) -> SynthConfig {
    small_lake_with(dir, seed, WriterOptions::default())
}

/// `options` with tiny row groups and files, so that rolling is exercised.
fn small_lake_with(dir: &Path, seed: u64, options: WriterOptions) -> SynthConfig {
    let mut cfg = SynthConfig::small("s", seed, 6);
    cfg.params = vec![ParamSpec::new("w", [5000]), ParamSpec::new("b", [7])];
    cfg.samples = 3;
    cfg.draws = 2;
    let options = WriterOptions { row_group_bytes: 4 * 16384, file_bytes: 100_000, ..options };
    generate(dir, &cfg, options, &mut |_| {}).unwrap();
    cfg
}

fn scalar_parts(lake: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(lake.join("scalars/run=s")).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

/// Encoder threads encode row groups in parallel but the writer appends them in
/// order: the same files, byte for byte, whatever their number.
#[test]
fn encoder_threads_do_not_change_the_bytes() {
    let dirs: Vec<_> = [0, 1, 3]
        .map(|threads| {
            let dir = tempfile::tempdir().unwrap();
            small_lake_with(dir.path(), 4, WriterOptions { encoder_threads: threads, ..Default::default() });
            dir
        })
        .into_iter()
        .collect();
    let reference = grads_parts(dirs[0].path());
    assert!(reference.len() > 1, "files must roll");
    for dir in &dirs[1..] {
        let parts = grads_parts(dir.path());
        assert_eq!(parts.len(), reference.len());
        for (x, y) in reference.iter().zip(&parts) {
            assert_eq!(x.file_name(), y.file_name());
            assert_eq!(std::fs::read(x).unwrap(), std::fs::read(y).unwrap(), "{}", y.display());
        }
        let scalars: Vec<_> = scalar_parts(dir.path()).iter().map(|p| p.file_name().unwrap().to_owned()).collect();
        let expected: Vec<_> = scalar_parts(dirs[0].path()).iter().map(|p| p.file_name().unwrap().to_owned()).collect();
        assert_eq!(scalars, expected);
    }
}

/// Reads every `values` bit of a lake's grads files, file by file, row by row.
fn value_bits(lake: &Path) -> Vec<u32> {
    let mut bits = Vec::new();
    for part in grads_parts(lake) {
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(File::open(&part).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let values = batch.column_by_name("values").unwrap().as_fixed_size_list();
            bits.extend(
                values.values().as_primitive::<arrow::datatypes::Float32Type>().values().iter().map(|v| v.to_bits()),
            );
        }
    }
    bits
}

#[test]
fn uncompressed_grads_round_trip_and_pass_deep_check() {
    let zstd = tempfile::tempdir().unwrap();
    let plain = tempfile::tempdir().unwrap();
    small_lake(zstd.path(), 5);
    small_lake_with(
        plain.path(),
        5,
        WriterOptions { compression: GradCompression::Uncompressed, ..Default::default() },
    );
    let report = check_lake(plain.path(), CheckOptions { deep: true }).unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    for part in grads_parts(plain.path()) {
        let reader = SerializedFileReader::new(File::open(&part).unwrap()).unwrap();
        for rg in reader.metadata().row_groups() {
            for col in rg.columns() {
                assert_eq!(col.compression(), Compression::UNCOMPRESSED, "{}", col.column_path().string());
            }
        }
    }
    let bits = value_bits(plain.path());
    assert!(!bits.is_empty());
    assert!(bits == value_bits(zstd.path()), "the same values, bit for bit, whatever the codec");
    let size = |parts: Vec<std::path::PathBuf>| parts.iter().map(|p| p.metadata().unwrap().len()).sum::<u64>();
    assert!(size(grads_parts(plain.path())) > size(grads_parts(zstd.path())));
}

fn grads_parts(lake: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(lake.join("grads/run=s")).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

#[test]
fn synthetic_lake_is_deterministic_and_passes_deep_check() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let cfg = small_lake(a.path(), 9);
    small_lake(b.path(), 9);
    let report = check_lake(a.path(), CheckOptions { deep: true }).unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    // 6 minibatch steps + 3 noise points × (1 full + 2 draws + 2 noise + 3 samples) tensors of each param;
    // w has 2 chunks, b has 1.
    let tensors_per_param = 6 + cfg.noise_points.len() as u64 * (1 + 2 + 2 + 3);
    assert_eq!(report.rows["grads"], tensors_per_param * 3);
    // loss, lr and grad_norm per step, and the writer's run_finished marker.
    assert_eq!(report.rows["scalars"], 6 * 3 + 1);
    let (pa, pb) = (grads_parts(a.path()), grads_parts(b.path()));
    assert!(pa.len() > 1);
    for (x, y) in pa.iter().zip(&pb) {
        assert_eq!(std::fs::read(x).unwrap(), std::fs::read(y).unwrap(), "{}", x.display());
    }
}

#[test]
fn damaged_and_foreign_files_are_named() {
    let lake = tempfile::tempdir().unwrap();
    small_lake(lake.path(), 1);
    let parts = grads_parts(lake.path());

    // A truncated file (e.g. copied while incomplete by a tool that does not rename).
    let truncated = &parts[0];
    let len = std::fs::metadata(truncated).unwrap().len();
    OpenOptions::new().write(true).open(truncated).unwrap().set_len(len / 2).unwrap();
    // A foreign Parquet file where readers would pick it up.
    let foreign = lake.path().join("grads/run=s/part-000999.parquet");
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, false)]));
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int32Array::from(vec![1]))]).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(File::create(&foreign).unwrap(), schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    // Bytes overwritten inside the compressed gradient values of another file: only the
    // deep check decodes them. The offset comes from the file's own metadata (values
    // column). Parquet pages carry no checksum here, so a change too small to alter a
    // chunk's f32 l2 or max_abs would go unseen; 64 bytes of the stream never are.
    let flipped = &parts[1];
    let middle = {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let reader = SerializedFileReader::new(File::open(flipped).unwrap()).unwrap();
        let values = reader.metadata().row_group(0).column(8);
        values.data_page_offset() as u64 + values.compressed_size() as u64 / 2
    };
    let mut f = OpenOptions::new().write(true).open(flipped).unwrap();
    f.seek(SeekFrom::Start(middle)).unwrap();
    f.write_all(&[0xA5; 64]).unwrap();
    drop(f);
    // The hidden leftover of a killed writer is harmless.
    std::fs::write(lake.path().join("grads/run=s/.part-000010.parquet.inprogress"), b"partial").unwrap();

    let report = check_lake(lake.path(), CheckOptions { deep: false }).unwrap();
    let errors: Vec<_> = report.findings.iter().filter(|f| f.severity == Severity::Error).collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(&errors[0].path, truncated);
    assert!(errors[0].message.contains("unreadable Parquet"), "{}", errors[0].message);
    assert_eq!(errors[1].path, foreign);
    assert!(errors[1].message.contains("not written by gradlake"), "{}", errors[1].message);
    let warnings: Vec<_> = report.findings.iter().filter(|f| f.severity == Severity::Warning).collect();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].message.contains("interrupted writer"));

    let deep = check_lake(lake.path(), CheckOptions { deep: true }).unwrap();
    assert!(
        deep.findings.iter().any(|f| &f.path == flipped && f.severity == Severity::Error),
        "deep check must catch flipped bytes: {:?}",
        deep.findings
    );
}

#[test]
fn a_run_without_its_metadata_is_an_error() {
    let lake = tempfile::tempdir().unwrap();
    small_lake(lake.path(), 2);
    std::fs::remove_file(lake.path().join("params/run=s/params.parquet")).unwrap();
    let report = check_lake(lake.path(), CheckOptions::default()).unwrap();
    assert!(!report.is_ok());
    assert!(report.findings.iter().any(|f| f.message.contains("has no params file")), "{:?}", report.findings);
}
