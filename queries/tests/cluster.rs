//! The same results on one process, on a cluster of three workers (datafusion-distributed,
//! in this process on loopback ports), on a lake served from S3 (moto, started here), and on
//! the cluster reading that S3 lake: every SQL example of the README and every named analysis.
//! Integers, strings and verdicts are equal; floats agree to 1e-12 relative — only the order
//! in which partial results merge differs.

mod common;

use std::path::{Path, PathBuf};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use gradlake_ingest::WriterOptions;
use gradlake_ingest::synth::{SynthConfig, generate};
use gradlake_pipeline::distributed::{LocalCluster, WorkerOptions};
use gradlake_pipeline::store::LakeLocation;
use gradlake_pipeline::{LakeSession, SessionOptions};
use gradlake_queries::analyze::{Outcome, RunOptions, lake_kinds, run_named_with};
use gradlake_queries::named;

/// Floats of sums, means and exact tests: only the order partial sums merge in differs.
const RELATIVE: f64 = 1e-12;

/// Floats derived from covariance spectra. Sketches (`fd`, and the analyses' sketches)
/// work in f32 and see the rows in the order they arrive; another order is another
/// rounding, so eigenvalues agree to a few f32 ulps of the largest one, and the small
/// eigenvalues a KS distance or a slope depends on to ~1e-5 of themselves.
const SPECTRUM_RELATIVE: f64 = 1e-4;

/// f32's machine epsilon: in spectra, a value within this share of its row's largest float
/// (e.g. a sketch's error bound next to the total variance) is round-off either way.
const F32_EPSILON: f64 = f32::EPSILON as f64;

/// (relative tolerance, floor as a share of the row's largest float) for a query.
fn tolerance(what: &str) -> (f64, f64) {
    if what.contains("spectrum") || what.contains("sketch") {
        (SPECTRUM_RELATIVE, F32_EPSILON)
    } else {
        (RELATIVE, 0.0)
    }
}

/// One cell of a result, compared exactly unless it is a float.
#[derive(Debug, Clone)]
enum Cell {
    Exact(String),
    Float(f64),
}

/// The cells of row `row` of `array`, structs and lists walked into.
fn cells(array: &ArrayRef, row: usize, out: &mut Vec<Cell>) {
    if array.is_null(row) {
        out.push(Cell::Exact("NULL".into()));
        return;
    }
    match array.data_type() {
        DataType::Float64 => out.push(Cell::Float(array.as_primitive::<arrow::datatypes::Float64Type>().value(row))),
        DataType::Float32 => {
            out.push(Cell::Float(array.as_primitive::<arrow::datatypes::Float32Type>().value(row) as f64))
        }
        DataType::Struct(_) => {
            for column in array.as_struct().columns() {
                cells(column, row, out);
            }
        }
        DataType::List(_) => {
            let item = array.as_list::<i32>().value(row);
            out.push(Cell::Exact(format!("list of {}", item.len())));
            for i in 0..item.len() {
                cells(&item, i, out);
            }
        }
        _ => {
            let formatter = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default()).unwrap();
            out.push(Cell::Exact(formatter.value(row).to_string()));
        }
    }
}

/// Rows of `batches` as cells, in an order that does not depend on the plan: by their exact
/// cells, then by their floats.
fn rows(batches: &[RecordBatch]) -> Vec<Vec<Cell>> {
    let mut out = Vec::new();
    for b in batches {
        for row in 0..b.num_rows() {
            let mut r = Vec::new();
            for column in b.columns() {
                cells(column, row, &mut r);
            }
            out.push(r);
        }
    }
    let key = |r: &Vec<Cell>| {
        r.iter()
            .map(|c| match c {
                Cell::Exact(s) => s.clone(),
                Cell::Float(x) => format!("{x:.6e}"),
            })
            .collect::<Vec<_>>()
    };
    out.sort_by_key(key);
    out
}

fn assert_same(what: &str, local: &[RecordBatch], cluster: &[RecordBatch]) {
    let (a, b) = (rows(local), rows(cluster));
    let (relative, floor) = tolerance(what);
    let mut worst = 0.0f64;
    assert_eq!(a.len(), b.len(), "{what}: {} rows locally, {} on the cluster", a.len(), b.len());
    for (i, (ra, rb)) in a.iter().zip(&b).enumerate() {
        assert_eq!(ra.len(), rb.len(), "{what}, row {i}");
        let row_max = ra.iter().fold(0.0f64, |m, c| match c {
            Cell::Float(x) if x.is_finite() => m.max(x.abs()),
            _ => m,
        });
        for (j, (ca, cb)) in ra.iter().zip(rb).enumerate() {
            match (ca, cb) {
                (Cell::Exact(x), Cell::Exact(y)) => assert_eq!(x, y, "{what}, row {i}, cell {j}"),
                (Cell::Float(x), Cell::Float(y)) => {
                    let difference = if x == y || (x.is_nan() && y.is_nan()) || (x - y).abs() <= floor * row_max {
                        0.0
                    } else {
                        (x - y).abs() / x.abs().max(y.abs())
                    };
                    worst = worst.max(difference);
                    let close = difference <= relative;
                    assert!(close, "{what}, row {i}, cell {j}: {x} locally, {y} on the cluster");
                }
                _ => panic!("{what}, row {i}, cell {j}: {ca:?} vs {cb:?}"),
            }
        }
    }
    eprintln!("{what}: {} rows, largest relative difference {worst:.1e}", a.len());
}

/// The README's `gradlake sql --lake lake "..."` examples, except those whose rows a LIMIT
/// without ORDER BY leaves to chance.
fn readme_queries() -> Vec<String> {
    let readme = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let text = std::fs::read_to_string(&readme).unwrap();
    let mut out = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("gradlake sql --lake lake ")) {
        let (Some(start), Some(end)) = (line.find('"'), line.rfind('"')) else { continue };
        let sql = line[start + 1..end].replace("\\\"", "\"");
        if sql.contains("LIMIT") && !sql.contains("ORDER BY") {
            continue;
        }
        out.push(sql);
    }
    assert!(out.len() >= 12, "README examples not found in {}: {out:?}", readme.display());
    out
}

/// The same lake four ways; `local` is the reference.
struct Sessions {
    _dir: tempfile::TempDir,
    _moto: common::moto::Moto,
    _workers: Vec<LocalCluster>,
    local: LakeSession,
    others: Vec<(&'static str, LakeSession)>,
}

async fn lake() -> Sessions {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lake");
    let mut cfg = SynthConfig::small("c", 11, 6);
    cfg.samples = 24;
    cfg.draws = 8;
    let writer_path = path.clone();
    // `generate` blocks on its writer thread: keep it off the runtime's workers.
    std::thread::spawn(move || generate(&writer_path, &cfg, WriterOptions::default(), &mut |_| {}).unwrap())
        .join()
        .unwrap();
    let moto = tokio::task::spawn_blocking(|| common::moto::Moto::start("lakes")).await.unwrap();
    let s3 = LakeLocation::parse_with("s3://lakes/study/lake", &moto.options()).unwrap();
    upload(&path, &s3).await;

    let local_lake = LakeLocation::Local(path.clone());
    let workers =
        LocalCluster::start(3, &WorkerOptions { lakes: vec![local_lake.clone()], ..WorkerOptions::default() })
            .await
            .unwrap();
    let s3_workers =
        LocalCluster::start(3, &WorkerOptions { lakes: vec![s3.clone()], ..WorkerOptions::default() }).await.unwrap();
    // One byte per task: every scan of the small lake is spread over all three workers.
    let on = |c: &LocalCluster| SessionOptions {
        cluster: Some(c.cluster().clone().with_bytes_per_task(Some(1))),
        ..SessionOptions::default()
    };
    let local = open(&local_lake, SessionOptions::default()).await;
    let others = vec![
        ("cluster", open(&local_lake, on(&workers)).await),
        ("s3", open(&s3, SessionOptions::default()).await),
        ("cluster on s3", open(&s3, on(&s3_workers)).await),
    ];
    Sessions { _dir: dir, _moto: moto, _workers: vec![workers, s3_workers], local, others }
}

/// Copies a local lake's files to `to`, one PUT each.
async fn upload(from: &Path, to: &LakeLocation) {
    use object_store::ObjectStoreExt;
    let LakeLocation::Store(lake) = to else { panic!("not a store") };
    let mut stack = vec![from.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let relative = path.strip_prefix(from).unwrap().to_str().unwrap().to_string();
            let location = object_store::path::Path::from(format!("{}/{relative}", lake.prefix()));
            lake.store().put(&location, std::fs::read(&path).unwrap().into()).await.unwrap();
        }
    }
}

async fn open(lake: &LakeLocation, options: SessionOptions) -> LakeSession {
    LakeSession::open_location(lake, &options).await.unwrap()
}

async fn run(session: &LakeSession, sql: &str) -> Vec<RecordBatch> {
    let df = session.context().sql(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    df.collect().await.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_sql_examples_give_the_same_results_on_a_cluster_and_from_s3() {
    let all = lake().await;
    for sql in readme_queries() {
        let local = run(&all.local, &sql).await;
        for (name, session) in &all.others {
            assert_same(&format!("{name}: {sql}"), &local, &run(session, &sql).await);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_named_analysis_gives_the_same_tables_on_a_cluster_and_from_s3() {
    let all = lake().await;
    let kinds = lake_kinds(all.local.context(), None).await.unwrap();
    let sessions = std::iter::once(("local", &all.local)).chain(all.others.iter().map(|(n, s)| (*n, s)));
    for (name, session) in sessions {
        let cluster = name.contains("cluster");
        let options = RunOptions { cluster, ..RunOptions::default() };
        for q in named::ALL {
            let outcome = run_named_with(session.context(), *q, &[], &kinds, &options, &mut |_| {})
                .await
                .unwrap_or_else(|e| panic!("{} ({name}): {e}", q.name));
            assert!(matches!(outcome, Outcome::Ran(_)), "{} was skipped", q.name);
        }
    }
    for table in
        ["summary", "dimension_wise", "iteration_wise", "noise_across_params", "noise_across_draws", "spectrum"]
    {
        let sql = format!("SELECT * FROM {table}");
        let local = run(&all.local, &sql).await;
        assert!(local.iter().map(RecordBatch::num_rows).sum::<usize>() > 0, "{table} is empty");
        for (name, session) in &all.others {
            assert_same(&format!("{name}: {table}"), &local, &run(session, &sql).await);
        }
    }
}
