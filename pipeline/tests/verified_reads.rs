//! Every read of gradient values is checked against the chunk's stored
//! checksum (format v2): a sign flip that leaves `l2` and `max_abs` as they
//! were fails every query that reads the chunk, naming the file; lakes of
//! format v1 (no checksums) are still read, and reported as unverified.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{Float32Type, Float64Type, Int64Type};
use gradlake_ingest::check::{CheckOptions, check_lake};
use gradlake_ingest::synth::{SynthConfig, generate};
use gradlake_ingest::{GradCompression, ParamSpec, WriterOptions};
use gradlake_pipeline::{LakeSession, SessionOptions};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

/// A lake of one run whose tensors are exactly one chunk (no padding), stored
/// uncompressed so that a byte of the file is a byte of a value.
fn write_lake(dir: &Path) -> PathBuf {
    let mut cfg = SynthConfig::small("r", 3, 4);
    cfg.params = vec![ParamSpec::new("w", vec![64, 64])];
    cfg.samples = 0;
    cfg.draws = 0;
    cfg.noise_points = Vec::new();
    let options = WriterOptions { compression: GradCompression::Uncompressed, ..WriterOptions::default() };
    let lake = dir.to_path_buf();
    std::thread::spawn(move || generate(&lake, &cfg, options, &mut |_| {}).unwrap()).join().unwrap();
    let file = dir.join("grads/run=r/part-000000.parquet");
    assert!(file.exists());
    file
}

/// Every batch of a Parquet file, read without gradlake.
fn read(path: &Path) -> Vec<RecordBatch> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap().build().unwrap();
    reader.map(Result::unwrap).collect()
}

/// Every value of the `values` column, in file order.
fn values(batches: &[RecordBatch]) -> Vec<f32> {
    let mut out = Vec::new();
    for b in batches {
        let v = b.column_by_name("values").unwrap().as_fixed_size_list();
        out.extend_from_slice(v.values().as_primitive::<Float32Type>().values());
    }
    out
}

/// Flips the sign bit of the last value of the first row group's `values` chunk: under
/// BYTE_STREAM_SPLIT the last byte of a page is the top byte of its last value.
fn flip_a_sign(path: &Path) {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    let column = builder
        .metadata()
        .row_group(0)
        .columns()
        .iter()
        .find(|c| c.column_path().string() == "values.list.item")
        .unwrap()
        .clone();
    let (start, len) = column.byte_range();
    let mut bytes = std::fs::read(path).unwrap();
    bytes[(start + len - 1) as usize] ^= 0x80;
    std::fs::write(path, bytes).unwrap();
}

async fn query(lake: &Path, sql: &str) -> Result<Vec<RecordBatch>, String> {
    let session = LakeSession::open(lake, &SessionOptions::default()).await.map_err(|e| e.to_string())?;
    let df = session.context().sql(sql).await.map_err(|e| e.to_string())?;
    df.collect().await.map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_sign_flip_fails_every_query_that_reads_the_chunk_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_lake(dir.path());
    let before = read(&file);
    flip_a_sign(&file);
    let after = read(&file);

    // Without gradlake: one value changed, to its negative; the chunk summaries cannot tell.
    let (a, b) = (values(&before), values(&after));
    let changed: Vec<usize> = (0..a.len()).filter(|&i| a[i].to_bits() != b[i].to_bits()).collect();
    assert_eq!(changed.len(), 1, "one value changed");
    assert_eq!(b[changed[0]], -a[changed[0]]);
    assert_ne!(a[changed[0]], 0.0);
    for column in ["l2", "max_abs"] {
        let col = |batches: &[RecordBatch]| -> Vec<f32> {
            batches
                .iter()
                .flat_map(|b| b.column_by_name(column).unwrap().as_primitive::<Float32Type>().values().to_vec())
                .collect()
        };
        assert_eq!(col(&before), col(&after), "{column} unchanged");
    }

    let file_name = file.to_string_lossy().into_owned();
    for sql in [
        "SELECT sum(value) FROM grad_values",
        "SELECT sum(cardinality(\"values\")) FROM grad_vectors",
        "SELECT \"values\" FROM grads",
        "SELECT max(value) FROM grad_values WHERE kind = 'minibatch'",
    ] {
        let err = query(dir.path(), sql).await.expect_err(sql);
        assert!(err.contains("damaged data in file") && err.contains("do not match their checksum"), "{sql}: {err}");
        assert!(err.contains(file_name.trim_start_matches('/')), "{sql}: names the file: {err}");
    }
    // What does not read the damaged chunk still answers.
    assert!(query(dir.path(), "SELECT count(*), sum(l2) FROM grads").await.is_ok());
    let steps: Vec<i64> = after
        .iter()
        .flat_map(|b| b.column_by_name("step").unwrap().as_primitive::<Int64Type>().values().to_vec())
        .collect();
    let damaged_step = steps[changed[0] / gradlake_ingest::CHUNK_LEN];
    assert!(steps.iter().any(|&s| s != damaged_step), "the lake has other steps");
    let others = format!("SELECT sum(value) FROM grad_values WHERE step <> {damaged_step}");
    assert!(query(dir.path(), &others).await.is_ok(), "other steps still read");

    // `check --deep` finds it too; without --deep the footer alone is sound.
    let deep = check_lake(dir.path(), CheckOptions { deep: true }).unwrap();
    assert!(deep.findings.iter().any(|f| f.message.contains("do not match their checksum")), "{:?}", deep.findings);
}

/// Rewrites a grads file as format v1 wrote it: no checksum column, version 1.
fn downgrade_to_v1(path: &Path) {
    let batches = read(path);
    let schema = batches[0].schema();
    let keep: Vec<usize> = (0..schema.fields().len()).filter(|&i| schema.field(i).name() != "values_crc32").collect();
    let v1 = Arc::new(schema.project(&keep).unwrap());
    let metadata = vec![
        KeyValue::new("gradlake.format_version".to_string(), "1".to_string()),
        KeyValue::new("gradlake.table".to_string(), "grads".to_string()),
    ];
    let props = WriterProperties::builder().set_key_value_metadata(Some(metadata)).build();
    let mut writer = ArrowWriter::try_new(File::create(path).unwrap(), v1.clone(), Some(props)).unwrap();
    for b in &batches {
        writer.write(&b.project(&keep).unwrap()).unwrap();
    }
    writer.close().unwrap();
    assert_eq!(v1.fields().len() + 1, schema.fields().len());
}

#[tokio::test]
async fn a_lake_of_format_v1_reads_unverified_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_lake(dir.path());
    let sql = "SELECT sum(CAST(value AS DOUBLE)) AS s FROM grad_values";
    let sum = |batches: Vec<RecordBatch>| batches[0].column(0).as_primitive::<Float64Type>().value(0);
    let v2 = sum(query(dir.path(), sql).await.unwrap());
    downgrade_to_v1(&file);
    let session = LakeSession::open(dir.path(), &SessionOptions::default()).await.unwrap();
    assert!(
        session.warnings().iter().any(|w| w.contains("format version 1") && w.contains("cannot be verified")),
        "{:?}",
        session.warnings()
    );
    let v1 = sum(session.context().sql(sql).await.unwrap().collect().await.unwrap());
    assert_eq!(v1, v2);
    let report = check_lake(dir.path(), CheckOptions { deep: true }).unwrap();
    assert!(
        report.findings.iter().all(|f| f.severity == gradlake_ingest::check::Severity::Warning),
        "{:?}",
        report.findings
    );
    assert!(report.findings.iter().any(|f| f.message.contains("cannot be verified")));
}
