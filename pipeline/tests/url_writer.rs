//! A [`UrlLakeWriter`] writes a run into a lake in S3 and in Azure Blob storage
//! (real API servers: moto and Azurite): a session reads back exactly the values
//! written, a second run with the same id is refused without touching the
//! first, and no staging files stay.

#[path = "../../queries/tests/common/azurite.rs"]
mod azurite;
#[path = "../../queries/tests/common/moto.rs"]
#[allow(dead_code)]
mod moto;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float32Type, Int64Type};
use gradlake_ingest::writer::GradKey;
use gradlake_ingest::{Kind, ParamSpec, RunInfo, WriterOptions};
use gradlake_pipeline::output::UrlLakeWriter;
use gradlake_pipeline::store::LakeLocation;
use gradlake_pipeline::{LakeSession, SessionOptions};

fn info(run: &str) -> RunInfo {
    RunInfo {
        run: run.into(),
        model: "by-hand".into(),
        dataset: "none".into(),
        optimizer: "none".into(),
        lr: 0.0,
        batch_size: 1,
        seed: 0,
        start_time_us: 0,
        config: serde_json::json!({}),
    }
}

/// The value written at (step, param index, flat index): exact in f32 and different everywhere.
fn value(step: i64, param: usize, idx: usize) -> f32 {
    (step * 1000 + param as i64 * 100) as f32 + idx as f32 / 4.0
}

fn staging_dirs() -> Vec<String> {
    let prefix = format!("gradlake-staging-{}-", std::process::id());
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

#[test]
fn a_run_written_to_s3_reads_back_exactly() {
    let moto = moto::Moto::start("lakes");
    round_trip("s3://lakes/team/lake", &moto.options());
}

#[test]
fn a_run_written_to_azure_blob_storage_reads_back_exactly() {
    let azurite = azurite::Azurite::start("lakes");
    round_trip("az://lakes/team/lake", &azurite.options());
}

fn round_trip(url: &str, store_options: &[(String, String)]) {
    let lake = LakeLocation::parse_with(url, store_options).unwrap();
    let run = format!("r-{}", &url[..2]);
    let run = run.as_str();
    let params = vec![ParamSpec::new("w", vec![3, 50]), ParamSpec::new("b", vec![7])];
    // Small files, so that several parts (and the scalars after them) go up one by one.
    let options = WriterOptions { row_group_bytes: 1 << 10, file_bytes: 1 << 10, ..WriterOptions::default() };
    let mut writer = UrlLakeWriter::create(&lake, &info(run), params.clone(), options.clone()).unwrap();
    for step in 0..4 {
        for (p, spec) in params.iter().enumerate() {
            let data = (0..spec.numel()).map(|i| value(step, p, i)).collect();
            writer
                .write_grad_blocking(GradKey { step, kind: Kind::Minibatch, sample: 0, param: &spec.name }, data)
                .unwrap();
        }
    }
    let stats = writer.finish().unwrap();
    assert_eq!((stats.tensors, stats.values), (8, 4 * 157));
    assert!(stats.files > 4, "{stats:?}");
    // (tests of this file run in parallel, each with its own run id)
    assert!(staging_dirs().iter().all(|d| !d.ends_with(&run)), "{:?}", staging_dirs());

    let again = UrlLakeWriter::create(&lake, &info(run), params.clone(), options).err().unwrap().to_string();
    assert!(again.contains(&format!("already exists in {url}")), "{again}");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let batches: Vec<RecordBatch> = runtime.block_on(async {
        let session = LakeSession::open_location(&lake, &SessionOptions::default()).await.unwrap();
        let sql = "SELECT step, param, idx, value FROM grad_values ORDER BY step, param DESC, idx";
        session.context().sql(sql).await.unwrap().collect().await.unwrap()
    });
    let mut n = 0;
    for batch in &batches {
        let steps = batch.column(0).as_primitive::<Int64Type>();
        let names = cast(batch.column(1), &DataType::Utf8).unwrap();
        let names = names.as_string::<i32>();
        let idx = batch.column(2).as_primitive::<Int64Type>();
        let values = batch.column(3).as_primitive::<Float32Type>();
        for row in 0..batch.num_rows() {
            let p = params.iter().position(|s| s.name == names.value(row)).unwrap();
            assert_eq!(values.value(row), value(steps.value(row), p, idx.value(row) as usize), "row {n}");
            n += 1;
        }
    }
    assert_eq!(n, 4 * 157);
}
