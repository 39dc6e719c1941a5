//! What goes into a LakeWriter comes out of the Parquet files bit-exact, read
//! back with the plain parquet reader (not with any gradlake code).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arrow::array::AsArray;
use arrow::datatypes::{Float32Type, Int32Type, Int64Type, UInt32Type};
use gradlake_ingest::writer::GradKey;
use gradlake_ingest::{CHUNK_LEN, IngestError, Kind, LakeWriter, ParamSpec, PublishLag, RunInfo, WriterOptions};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, Encoding};
use parquet::file::reader::{FileReader, SerializedFileReader};

fn info(run: &str) -> RunInfo {
    RunInfo {
        run: run.into(),
        model: "mlp".into(),
        dataset: "test".into(),
        optimizer: "sgd".into(),
        lr: 0.1,
        batch_size: 8,
        seed: 1,
        start_time_us: 1_700_000_000_000_000,
        config: serde_json::json!({"k": 1}),
    }
}

/// A deterministic tensor with NaN, infinities, negative zero and subnormals mixed in.
fn tensor(seed: u32, n: usize) -> Vec<f32> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            match i % 997 {
                13 => f32::NAN,
                14 => f32::NEG_INFINITY,
                15 => -0.0,
                16 => f32::from_bits(1), // smallest subnormal
                _ => (x as f32 / u32::MAX as f32 - 0.5) * 1e-3,
            }
        })
        .collect()
}

type Key = (i64, String, i64, i32);

/// Reassembles every tensor from the grads files with the plain parquet reader.
fn read_back(dir: &Path) -> (BTreeMap<Key, Vec<f32>>, usize) {
    let mut chunks: BTreeMap<Key, Vec<(i32, Vec<f32>)>> = BTreeMap::new();
    let mut files = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("parquet") {
            continue;
        }
        files += 1;
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap().build().unwrap();
        for batch in reader {
            let b = batch.unwrap();
            let step = b.column_by_name("step").unwrap().as_primitive::<Int64Type>();
            let kind = b.column_by_name("kind").unwrap().as_dictionary::<Int32Type>();
            let kind_values = kind.values().as_string::<i32>();
            let sample = b.column_by_name("sample").unwrap().as_primitive::<Int64Type>();
            let param = b.column_by_name("param_id").unwrap().as_primitive::<Int32Type>();
            let chunk = b.column_by_name("chunk").unwrap().as_primitive::<Int32Type>();
            let numel = b.column_by_name("numel").unwrap().as_primitive::<Int32Type>();
            let values = b.column_by_name("values").unwrap().as_fixed_size_list();
            let crcs = b.column_by_name("values_crc32").unwrap().as_primitive::<UInt32Type>();
            assert_eq!(values.value_length(), CHUNK_LEN as i32);
            for i in 0..b.num_rows() {
                let v = values.value(i);
                let v = v.as_primitive::<Float32Type>().values();
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                assert_eq!(crcs.value(i), crc32fast::hash(&bytes), "the checksum of the chunk's 4096 values");
                let n = numel.value(i) as usize;
                assert!(v[n..].iter().all(|x| x.to_bits() == 0), "padding must be +0.0");
                let k = kind_values.value(kind.keys().value(i) as usize).to_string();
                chunks
                    .entry((step.value(i), k, sample.value(i), param.value(i)))
                    .or_default()
                    .push((chunk.value(i), v[..n].to_vec()));
            }
        }
    }
    let tensors = chunks
        .into_iter()
        .map(|(k, mut parts)| {
            parts.sort_by_key(|p| p.0);
            assert!(parts.iter().enumerate().all(|(i, p)| p.0 == i as i32), "chunks 0..n present once");
            (k, parts.into_iter().flat_map(|p| p.1).collect())
        })
        .collect();
    (tensors, files)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn tensors_round_trip_bit_exact_with_chunking_and_padding() {
    let lake = tempfile::tempdir().unwrap();
    let sizes = [1usize, CHUNK_LEN - 1, CHUNK_LEN, CHUNK_LEN + 1, 3 * CHUNK_LEN + 17];
    let params: Vec<ParamSpec> = sizes.iter().enumerate().map(|(i, &n)| ParamSpec::new(format!("p{i}"), [n])).collect();
    // Tiny row groups and files so that rolling is exercised too.
    let options = WriterOptions {
        row_group_bytes: 3 * CHUNK_LEN * 4,
        file_bytes: 64 << 10,
        queue_bytes: 1 << 16,
        ..Default::default()
    };
    let mut w = LakeWriter::create(lake.path(), &info("r1"), params, options).unwrap();
    let mut expected = BTreeMap::new();
    let mut seed = 0;
    for step in 0..4i64 {
        // Kinds are written in an order unlike the sort order, to exercise sorting.
        for (kind, samples) in [(Kind::Sample, 2), (Kind::Minibatch, 1), (Kind::Full, 1)] {
            for sample in 0..samples {
                for (i, &n) in sizes.iter().enumerate().rev() {
                    seed += 1;
                    let t = tensor(seed, n);
                    expected.insert((step, kind.to_string(), sample, i as i32), t.clone());
                    let key = GradKey { step, kind, sample, param: &format!("p{i}") };
                    w.write_grad_blocking(key, t).unwrap();
                }
            }
        }
        w.write_scalar(step, "loss", 1.0 / (step + 1) as f64).unwrap();
    }
    let stats = w.finish().unwrap();
    let non_finite: u64 = expected.values().flatten().filter(|v| !v.is_finite()).count() as u64;
    assert_eq!(stats.non_finite, non_finite);
    assert_eq!(stats.values, expected.values().map(|v| v.len() as u64).sum::<u64>());

    let (got, files) = read_back(&lake.path().join("grads/run=r1"));
    assert!(files > 1, "small file_bytes must roll files, got {files}");
    assert_eq!(got.len(), expected.len());
    for (k, v) in &expected {
        assert_eq!(bits(&got[k]), bits(v), "tensor {k:?}");
    }
}

#[test]
fn files_carry_the_declared_encodings_sort_order_and_statistics() {
    let lake = tempfile::tempdir().unwrap();
    let params = vec![ParamSpec::new("w", [2 * CHUNK_LEN])];
    let mut w = LakeWriter::create(lake.path(), &info("r"), params, WriterOptions::default()).unwrap();
    for step in 0..3 {
        w.write_grad_blocking(
            GradKey { step, kind: Kind::Minibatch, sample: 0, param: "w" },
            tensor(step as u32, 2 * CHUNK_LEN),
        )
        .unwrap();
    }
    w.finish().unwrap();
    let path: PathBuf = lake.path().join("grads/run=r/part-000000.parquet");
    let options = parquet::file::serialized_reader::ReadOptionsBuilder::new().with_page_index().build();
    let reader = SerializedFileReader::new_with_options(File::open(&path).unwrap(), options).unwrap();
    let meta = reader.metadata();
    let kv = meta.file_metadata().key_value_metadata().unwrap();
    assert!(kv.iter().any(|k| k.key == "gradlake.format_version" && k.value.as_deref() == Some("2")));
    let rg = meta.row_group(0);
    // Only `step` holds across row groups, and readers take the declaration as the file's order.
    let sorting: Vec<i32> = rg.sorting_columns().unwrap().iter().map(|s| s.column_idx).collect();
    assert_eq!(sorting, [0], "step");
    for col in rg.columns() {
        let path = col.column_path().string();
        if path == "values.list.item" {
            assert!(matches!(col.compression(), Compression::ZSTD(_)), "{path}");
            assert!(col.encodings().any(|e| e == Encoding::BYTE_STREAM_SPLIT), "{path}");
            assert!(col.dictionary_page_offset().is_none(), "values must not be dictionary-encoded");
            assert!(col.statistics().is_none(), "values carry no statistics");
        } else if path == "values_crc32" {
            assert_eq!(col.compression(), Compression::UNCOMPRESSED, "{path}");
            assert!(col.statistics().is_none(), "checksums carry no statistics");
        } else {
            assert!(col.statistics().is_some(), "key column {path} needs statistics");
            assert_eq!(col.compression(), Compression::UNCOMPRESSED, "key column {path}: read without a codec");
        }
    }
    assert!(meta.column_index().is_some(), "page statistics (column index) are written");
}

#[test]
fn bad_input_is_rejected_by_name_and_nothing_written_is_lost() {
    let lake = tempfile::tempdir().unwrap();
    let params = vec![ParamSpec::new("fc.weight", [3, 2])];
    let mut w = LakeWriter::create(lake.path(), &info("r"), params.clone(), WriterOptions::default()).unwrap();
    let key = |step, param| GradKey { step, kind: Kind::Full, sample: 0, param };
    w.write_grad_blocking(key(5, "fc.weight"), vec![1.0; 6]).unwrap();

    let err = w.write_grad_blocking(key(5, "fc.bias"), vec![1.0; 6]).unwrap_err();
    assert!(matches!(err, IngestError::UnknownParam(ref p) if p == "fc.bias"), "{err}");
    let err = w.write_grad_blocking(key(5, "fc.weight"), vec![1.0; 5]).unwrap_err();
    assert!(err.to_string().contains("fc.weight") && err.to_string().contains("5 elements"), "{err}");
    let err = w.write_grad_blocking(key(4, "fc.weight"), vec![1.0; 6]).unwrap_err();
    assert!(matches!(err, IngestError::StepBackwards { step: 4, last: 5, .. }), "{err}");
    // Another kind has its own step order.
    w.write_grad_blocking(GradKey { step: 0, kind: Kind::Minibatch, sample: 0, param: "fc.weight" }, vec![f32::NAN; 6])
        .unwrap();
    let stats = w.finish().unwrap();
    assert_eq!((stats.tensors, stats.non_finite), (2, 6));
    let (got, _) = read_back(&lake.path().join("grads/run=r"));
    assert_eq!(got.len(), 2, "the valid tensors were written");

    let err = LakeWriter::create(lake.path(), &info("r"), params.clone(), WriterOptions::default()).err().unwrap();
    assert!(matches!(err, IngestError::RunExists { .. }), "{err}");
    let err = LakeWriter::create(lake.path(), &info("../x"), params, WriterOptions::default()).err().unwrap();
    assert!(matches!(err, IngestError::InvalidRunId(_)), "{err}");
}

#[test]
fn flush_makes_data_visible_and_drop_keeps_what_was_queued() {
    let lake = tempfile::tempdir().unwrap();
    let params = vec![ParamSpec::new("b", [10])];
    let mut w = LakeWriter::create(lake.path(), &info("r"), params, WriterOptions::default()).unwrap();
    let key = |step| GradKey { step, kind: Kind::Minibatch, sample: 0, param: "b" };
    w.write_grad_blocking(key(0), vec![0.5; 10]).unwrap();
    w.write_scalar(0, "loss", 2.0).unwrap();
    w.flush_blocking().unwrap();
    let dir = lake.path().join("grads/run=r");
    assert_eq!(read_back(&dir).0.len(), 1);
    assert!(lake.path().join("scalars/run=r/part-000000.parquet").exists());
    w.write_grad_blocking(key(1), vec![0.25; 10]).unwrap();
    drop(w); // no finish(): the queued tensor is still written
    let (got, files) = read_back(&dir);
    assert_eq!((got.len(), files), (2, 2));
}

/// With a publish lag the writer closes its files by age as data keeps coming, so
/// a follower sees gradients and scalars long before the run ends; without one,
/// nothing is visible until the file is big enough or the writer finishes.
#[test]
fn a_publish_lag_makes_files_visible_while_the_run_goes_on() {
    let visible = |lake: &Path| {
        let dir = lake.join("grads/run=r");
        if dir.exists() { read_back(&dir).0.len() } else { 0 }
    };
    for lag in [None, Some(PublishLag::fixed(Duration::from_millis(20)))] {
        let lake = tempfile::tempdir().unwrap();
        let params = vec![ParamSpec::new("b", [10])];
        let options = WriterOptions { publish_lag: lag, ..Default::default() };
        let mut w = LakeWriter::create(lake.path(), &info("r"), params, options).unwrap();
        let key = |step| GradKey { step, kind: Kind::Minibatch, sample: 0, param: "b" };
        w.write_grad_blocking(key(0), vec![0.5; 10]).unwrap();
        w.write_scalar(0, "loss", 2.0).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        // The writer looks at the age of what it holds as data arrives.
        w.write_grad_blocking(key(1), vec![0.25; 10]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        // Scalars are published after the gradients they describe: wait for both.
        let scalars = lake.path().join("scalars/run=r/part-000000.parquet");
        while lag.is_some() && (visible(lake.path()) < 2 || !scalars.exists()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if lag.is_some() {
            assert_eq!(visible(lake.path()), 2, "both steps published before finish");
            assert!(scalars.exists(), "with the loss");
        } else {
            std::thread::sleep(Duration::from_millis(100));
            assert_eq!(visible(lake.path()), 0, "by size only: nothing yet");
        }
        assert_eq!(w.finish().unwrap().tensors, 2);
        assert_eq!(visible(lake.path()), 2);
    }
}

/// Regression: inside a tokio task, the coop budget used to defer the wake-up of a
/// producer waiting for queue space to a scheduler tick that never came. The task
/// runs on its own thread, so that a deadlock fails the test instead of hanging it.
#[test]
fn blocking_writes_from_inside_a_tokio_task_do_not_deadlock() {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let tensors = runtime.block_on(async {
            let lake = tempfile::tempdir().unwrap();
            let params = vec![ParamSpec::new("w", [CHUNK_LEN])];
            // A queue of two tensors: most writes wait for the writer thread.
            let options = WriterOptions { queue_bytes: 2 * CHUNK_LEN * 4, ..Default::default() };
            let mut w = LakeWriter::create(lake.path(), &info("r"), params, options).unwrap();
            for step in 0..1000 {
                w.write_grad_blocking(
                    GradKey { step, kind: Kind::Minibatch, sample: 0, param: "w" },
                    vec![step as f32; CHUNK_LEN],
                )
                .unwrap();
            }
            w.finish().unwrap().tensors
        });
        let _ = done.send(tensors);
    });
    let tensors = finished.recv_timeout(Duration::from_secs(120)).expect("the writes deadlocked (no answer in 120 s)");
    assert_eq!(tensors, 1000);
}

/// Kinds have their own step order, so a later tensor may have a lower step than one
/// already in the file; the writer then starts a new file, so that every file really
/// is sorted by step, as it declares.
#[test]
fn a_step_going_back_for_another_kind_starts_a_new_file() {
    let lake = tempfile::tempdir().unwrap();
    let params = vec![ParamSpec::new("w", [10])];
    let mut w = LakeWriter::create(lake.path(), &info("r"), params, WriterOptions::default()).unwrap();
    let mut write =
        |step, kind| w.write_grad_blocking(GradKey { step, kind, sample: 0, param: "w" }, vec![1.0; 10]).unwrap();
    write(5, Kind::Full);
    write(6, Kind::Full);
    write(3, Kind::Minibatch); // allowed: another kind
    write(4, Kind::Minibatch);
    w.finish().unwrap();
    let dir = lake.path().join("grads/run=r");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), 2);
    for f in files {
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&f).unwrap()).unwrap().build().unwrap();
        let steps: Vec<i64> =
            reader.flat_map(|b| b.unwrap().column(0).as_primitive::<Int64Type>().values().to_vec()).collect();
        assert!(steps.is_sorted(), "{}: {steps:?}", f.display());
    }
}
