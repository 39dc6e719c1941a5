//! Querying a lake: tables, views, pruning and damaged files.

use std::path::Path;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Float32Type, Int64Type};
use datafusion::arrow::util::pretty::pretty_format_batches;
use gradlake_ingest::writer::GradKey;
use gradlake_ingest::{CHUNK_LEN, Kind, LakeWriter, ParamSpec, RunInfo, WriterOptions};
use gradlake_pipeline::{LakeSession, PipelineError, SessionOptions};

const STEPS: i64 = 10;
const W_LEN: usize = 5000;

/// The value of element `idx` of param `param` at `step` in run `run`: exact in f32.
fn value(run: usize, step: i64, param: usize, idx: usize) -> f32 {
    (run * 100_000 + step as usize * 1000 + param * 100) as f32 + idx as f32 / 8.0
}

fn write_lake(lake: &Path) {
    for (r, run) in ["a", "b"].iter().enumerate() {
        let info = RunInfo {
            run: run.to_string(),
            model: "mlp".into(),
            dataset: "test".into(),
            optimizer: "sgd".into(),
            lr: 0.1,
            batch_size: 4,
            seed: 0,
            start_time_us: 0,
            config: serde_json::json!({}),
        };
        let params = vec![ParamSpec::new("w", [W_LEN]), ParamSpec::new("b", [3])];
        // Three chunk rows per row group: one step per row group, so step filters can prune.
        let options = WriterOptions { row_group_bytes: 3 * CHUNK_LEN * 4, file_bytes: 200_000, ..Default::default() };
        let mut w = LakeWriter::create(lake, &info, params, options).unwrap();
        for step in 0..STEPS {
            for (p, (name, n)) in [("w", W_LEN), ("b", 3)].into_iter().enumerate() {
                let t = (0..n).map(|i| value(r, step, p, i)).collect();
                w.write_grad_blocking(GradKey { step, kind: Kind::Minibatch, sample: 0, param: name }, t).unwrap();
            }
            w.write_scalar(step, "loss", step as f64).unwrap();
        }
        w.finish().unwrap();
    }
}

async fn query(session: &LakeSession, sql: &str) -> Vec<RecordBatch> {
    session.context().sql(sql).await.unwrap().collect().await.unwrap()
}

async fn query_text(session: &LakeSession, sql: &str) -> String {
    pretty_format_batches(&query(session, sql).await).unwrap().to_string()
}

async fn open(lake: &Path) -> LakeSession {
    LakeSession::open(lake, &SessionOptions { target_partitions: Some(2), ..Default::default() }).await.unwrap()
}

#[tokio::test]
async fn tables_and_views_return_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    write_lake(dir.path());
    let s = open(dir.path()).await;

    let counts =
        query_text(&s, "SELECT run, count(*) AS n, sum(numel) AS v FROM grads GROUP BY run ORDER BY run").await;
    let v = STEPS as usize * (W_LEN + 3);
    assert!(counts.contains(&format!("| a   | 30 | {v} |")), "{counts}");
    assert!(counts.contains(&format!("| b   | 30 | {v} |")), "{counts}");
    let meta = query_text(&s, "SELECT r.run, r.model, p.param, p.numel, p.chunks FROM runs r JOIN params p USING (run) ORDER BY r.run, p.param_id").await;
    assert!(meta.contains("| b   | mlp   | w     | 5000  | 2      |"), "{meta}");
    let loss = query_text(&s, "SELECT sum(value) AS s FROM scalars WHERE run = 'a' AND name = 'loss'").await;
    assert!(loss.contains("| 45.0 |"), "{loss}");

    // grad_values: one row per element, idx across chunk boundaries, padding dropped.
    let batches =
        query(&s, "SELECT idx, value FROM grad_values WHERE run = 'b' AND step = 3 AND param = 'w' ORDER BY idx").await;
    let mut n = 0;
    for b in &batches {
        let idx = b.column(0).as_primitive::<Int64Type>();
        let val = b.column(1).as_primitive::<Float32Type>();
        for i in 0..b.num_rows() {
            assert_eq!(idx.value(i), n as i64);
            assert_eq!(val.value(i), value(1, 3, 0, n), "element {n}");
            n += 1;
        }
    }
    assert_eq!(n, W_LEN);

    // grad_vectors: the whole flattened tensor in one row.
    let batches = query(&s, "SELECT values FROM grad_vectors WHERE run = 'a' AND step = 7 AND param = 'w'").await;
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    let list = batches.iter().find(|b| b.num_rows() == 1).unwrap().column(0).as_list::<i32>().value(0);
    let list = list.as_primitive::<Float32Type>();
    assert_eq!(list.len(), W_LEN);
    assert!((0..W_LEN).all(|i| list.value(i) == value(0, 7, 0, i)));
}

#[tokio::test]
async fn grad_vectors_reassembles_every_tensor_and_feeds_spectra() {
    let dir = tempfile::tempdir().unwrap();
    write_lake(dir.path());
    let s = open(dir.path()).await;

    let batches = query(&s, "SELECT run, step, param_id, param, \"values\" FROM grad_vectors").await;
    let mut seen = 0;
    for b in &batches {
        let run = datafusion::arrow::compute::cast(b.column(0), &datafusion::arrow::datatypes::DataType::Utf8).unwrap();
        let param =
            datafusion::arrow::compute::cast(b.column(3), &datafusion::arrow::datatypes::DataType::Utf8).unwrap();
        for i in 0..b.num_rows() {
            let r = if run.as_string::<i32>().value(i) == "a" { 0 } else { 1 };
            let step = b.column(1).as_primitive::<Int64Type>().value(i);
            let p = b.column(2).as_primitive::<datafusion::arrow::datatypes::Int32Type>().value(i) as usize;
            assert_eq!(param.as_string::<i32>().value(i), ["w", "b"][p]);
            let list = b.column(4).as_list::<i32>().value(i);
            let list = list.as_primitive::<Float32Type>();
            assert_eq!(list.len(), [W_LEN, 3][p]);
            assert!((0..list.len()).all(|k| list.value(k) == value(r, step, p, k)), "run {r} step {step} param {p}");
            seen += 1;
        }
    }
    assert_eq!(seen, 2 * STEPS as usize * 2);

    // One file, one partition, a sort above: the optimizer wants more partitions,
    // but must not scatter a tensor's chunks by repartitioning below the assembly.
    let q = "SELECT cardinality(\"values\") AS d FROM grad_vectors WHERE run = 'a' AND step = 7 ORDER BY param_id";
    let plan = query_text(&s, &format!("EXPLAIN {q}")).await;
    let below = plan.split("AssembleGradVectorsExec").nth(1).unwrap_or_default();
    assert!(!below.contains("RoundRobin"), "{plan}");
    let d = query_text(&s, q).await;
    assert!(d.contains(&format!("| {W_LEN} |")) && d.contains("| 3    |"), "{d}");

    // Without `values`, only chunk 0 of each tensor is read.
    let plan = query_text(&s, "EXPLAIN SELECT count(*) FROM grad_vectors WHERE kind = 'minibatch'").await;
    assert!(plan.contains("AssembleGradVectorsExec") && plan.contains("chunk@"), "{plan}");
    let n = query_text(&s, "SELECT count(*) AS n FROM grad_vectors WHERE kind = 'minibatch'").await;
    assert!(n.contains("| 40 |"), "{n}");

    // A whole-model vector: every param of a (run, step) concatenated in param order, by
    // DataFusion's array_agg and by gradlake's vec_concat (params arrive in either order).
    for sql in [
        "SELECT flatten(array_agg(values ORDER BY param_id)) AS v FROM grad_vectors WHERE run = 'b' AND step = 2 GROUP BY run, step",
        "SELECT vec_concat(values, param_id) AS v FROM grad_vectors WHERE run = 'b' AND step = 2 GROUP BY run, step",
        "SELECT vec_concat(values, param_id) AS v FROM (SELECT * FROM grad_vectors WHERE run = 'b' AND step = 2 ORDER BY param_id DESC)",
    ] {
        let whole = query(&s, sql).await;
        let v = whole[0].column(0).as_list::<i32>().value(0);
        let v = v.as_primitive::<Float32Type>();
        assert_eq!(v.len(), W_LEN + 3, "{sql}");
        assert_eq!(
            (v.value(0), v.value(W_LEN - 1), v.value(W_LEN)),
            (value(1, 2, 0, 0), value(1, 2, 0, W_LEN - 1), value(1, 2, 1, 0)),
            "{sql}"
        );
    }
    let e = s.context().sql("SELECT vec_concat(values, 1) FROM grad_vectors WHERE run = 'b' AND step = 2").await;
    let e = match e {
        Ok(df) => df.collect().await.map(|_| ()).unwrap_err().to_string(),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("vec_concat") && e.contains("key 1"), "{e}");

    // grad_values' long rows placed back by vec_agg are the tensors the writer stored.
    let n = query_text(&s, "SELECT count(*) AS n FROM grad_vectors").await;
    let same = query_text(
        &s,
        "SELECT count(*) AS n FROM (SELECT run, step, kind, sample, param_id, vec_agg(value, idx) AS v \
         FROM grad_values GROUP BY run, step, kind, sample, param_id) a \
         JOIN grad_vectors b USING (run, step, kind, sample, param_id) WHERE a.v = b.\"values\"",
    )
    .await;
    assert_eq!(same, n);

    // Across steps, w moves by 1000·step along the all-ones vector: the covariance
    // has one nonzero eigenvalue, 1000² · var(0..9) · W_LEN, var(0..9) = 55/6.
    let eig = query(&s, "SELECT cov_spectrum(values, 'gram') FROM grad_vectors WHERE run = 'a' AND param = 'w'").await;
    let eig = eig[0].column(0).as_list::<i32>().value(0);
    let eig = eig.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
    let want = 1e6 * 55.0 / 6.0 * W_LEN as f64;
    assert_eq!(eig.len(), STEPS as usize - 1);
    assert!((eig.value(0) - want).abs() < 1e-9 * want, "{} vs {want}", eig.value(0));
    assert!((1..eig.len()).all(|k| eig.value(k).abs() < 1e-9 * want));
}

#[tokio::test]
async fn run_and_step_filters_prune_files_and_row_groups() {
    let dir = tempfile::tempdir().unwrap();
    write_lake(dir.path());
    let s = open(dir.path()).await;

    // `run` is a partition column: files of other runs are not even listed.
    let plan = query_text(&s, "EXPLAIN SELECT sum(numel) FROM grads WHERE run = 'a'").await;
    assert!(plan.contains("run=a/part-"), "{plan}");
    assert!(!plan.contains("run=b/"), "run=b files must be pruned:\n{plan}");

    // `step` has row-group statistics: only the matching row groups are read.
    let analyzed = query_text(&s, "EXPLAIN ANALYZE SELECT sum(numel) FROM grads WHERE step = 4").await;
    let metric = analyzed
        .split("row_groups_pruned_statistics=")
        .nth(1)
        .unwrap_or_else(|| panic!("no row-group pruning metric:\n{analyzed}"));
    let numbers: Vec<usize> = metric.split([' ', ',', ']']).filter_map(|t| t.parse().ok()).take(2).collect();
    assert_eq!(numbers.len(), 2, "{metric}");
    let (total, matched) = (numbers[0], numbers[1]);
    assert_eq!(total, 2 * STEPS as usize, "one row group per step and run");
    assert_eq!(matched, 2, "only step 4 of each run:\n{analyzed}");
    // grad_values hands key filters, and param names as param_ids, to the grads scan.
    let plan = query_text(&s, "EXPLAIN SELECT idx, value FROM grad_values WHERE param = 'b' AND step = 4").await;
    assert!(plan.contains("ExplodeGradValuesExec"), "{plan}");
    let scan = plan.lines().find(|l| l.contains("DataSourceExec")).unwrap_or_default();
    assert!(scan.contains("predicate=") && scan.contains("param_id@") && scan.contains("step@"), "{plan}");
    let sum = query_text(&s, "SELECT count(*) AS n FROM grad_values WHERE param = 'b' AND step = 4").await;
    assert!(sum.contains("| 6 |"), "3 values in each of 2 runs:\n{sum}");
    let sum = query_text(&s, "SELECT sum(numel) AS n FROM grads WHERE step = 4").await;
    assert!(sum.contains(&format!("| {} |", 2 * (W_LEN + 3))), "{sum}");
}

#[tokio::test]
async fn key_filters_on_derived_tables_are_applied_once_in_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    write_lake(dir.path());
    let s = open(dir.path()).await;
    // A filter on chunk keys is exact in the grads scan: no FilterExec copies vectors or elements above it.
    for table in ["grad_vectors", "grad_values"] {
        let plan = query_text(&s, &format!("EXPLAIN SELECT * FROM {table} WHERE step >= 7 AND run = 'b'")).await;
        let physical = plan.split("physical_plan").nth(1).unwrap();
        assert!(!physical.contains("FilterExec"), "{table}:\n{plan}");
    }
    // Results as the closed form says: steps 7..9 of run b, every element of w and b.
    let sum = query(
        &s,
        "SELECT sum(CAST(value AS DOUBLE)) AS s, count(*) AS n FROM grad_values WHERE step >= 7 AND run = 'b'",
    )
    .await;
    let want: f64 = (7..STEPS)
        .flat_map(|step| {
            (0..W_LEN)
                .map(move |i| f64::from(value(1, step, 0, i)))
                .chain((0..3).map(move |i| f64::from(value(1, step, 1, i))))
        })
        .sum();
    assert_eq!(sum[0].column(0).as_primitive::<datafusion::arrow::datatypes::Float64Type>().value(0), want);
    assert_eq!(sum[0].column(1).as_primitive::<Int64Type>().value(0), 3 * (W_LEN as i64 + 3));
    let vectors = query(&s, "SELECT count(*) AS n FROM grad_vectors WHERE kind = 'minibatch' AND step = 2").await;
    assert_eq!(vectors[0].column(0).as_primitive::<Int64Type>().value(0), 4, "2 params in 2 runs");
    // A param name maps to ids in every run: still checked above the scan.
    let plan = query_text(&s, "EXPLAIN SELECT * FROM grad_vectors WHERE param = 'b'").await;
    assert!(plan.split("physical_plan").nth(1).unwrap().contains("FilterExec"), "{plan}");
    // A volatile filter is not pushed as a key filter (it would be drawn per chunk).
    let plan = query_text(&s, "EXPLAIN SELECT * FROM grad_values WHERE random() < 2.0").await;
    assert!(plan.split("physical_plan").nth(1).unwrap().contains("FilterExec"), "{plan}");
}

#[tokio::test]
async fn derived_tables_split_the_lake_into_byte_ranges_and_keep_tensors_whole() {
    let dir = tempfile::tempdir().unwrap();
    write_lake(dir.path());
    let s = open(dir.path()).await;
    // Files this small are split only when DataFusion is told to (10 MB by default).
    query(&s, "SET datafusion.optimizer.repartition_file_min_size = 1").await;
    // `grads` files declare their sort order, which a scan keeps by splitting
    // only between files; the derived tables keep no order, so DataFusion may
    // split their files into byte ranges of equal size.
    let scan_of = |plan: &str| plan.lines().find(|l| l.contains("DataSourceExec")).unwrap_or_default().to_string();
    let plan = query_text(&s, "EXPLAIN SELECT sum(numel), max(step) FROM grads").await;
    assert!(scan_of(&plan).contains("output_ordering=[step@"), "{plan}");
    for table in ["grad_vectors", "grad_values"] {
        let plan = query_text(&s, &format!("EXPLAIN SELECT count(*) FROM {table}")).await;
        assert!(!scan_of(&plan).contains("output_ordering"), "{table}:\n{plan}");
    }
    let plan = query_text(&s, "EXPLAIN SELECT count(*) FROM grad_vectors").await;
    assert!(scan_of(&plan).contains(".parquet:"), "split into byte ranges:\n{plan}");
    // The final stage of a sketch merges the partitions' states in partition order.
    let plan = query_text(&s, "EXPLAIN SELECT sketch_info(cov_sketch(\"values\", 4)) FROM grad_vectors").await;
    assert!(plan.contains("RoundRobinMergeExec") && !plan.contains("CoalescePartitionsExec"), "{plan}");
    // A row group goes whole to one partition: every tensor is assembled.
    let got = query(&s, "SELECT count(*) AS n, sum(cardinality(\"values\")) AS v FROM grad_vectors").await;
    assert_eq!(got[0].column(0).as_primitive::<Int64Type>().value(0), 2 * STEPS * 2);
    let values = got[0].column(1).as_primitive::<datafusion::arrow::datatypes::UInt64Type>().value(0);
    assert_eq!(values, 2 * STEPS as u64 * (W_LEN as u64 + 3));
}

#[tokio::test]
async fn a_damaged_file_is_named_when_the_lake_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    write_lake(dir.path());
    let victim = dir.path().join("grads/run=b/part-000000.parquet");
    let len = std::fs::metadata(&victim).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&victim).unwrap().set_len(len - 10).unwrap();
    let err = LakeSession::open(dir.path(), &SessionOptions::default()).await.err().expect("must fail");
    match &err {
        PipelineError::DamagedFiles { files, .. } => {
            assert_eq!(files.len(), 1);
            assert_eq!(files[0].0, victim);
        }
        other => panic!("unexpected error {other}"),
    }
    assert!(err.to_string().contains("part-000000.parquet"), "{err}");

    // With skip_bad_files the lake opens without the damaged file, and says so.
    let options = SessionOptions { skip_bad_files: true, ..Default::default() };
    let s = LakeSession::open(dir.path(), &options).await.unwrap();
    assert!(
        s.warnings().iter().any(|w| w.contains("skipped damaged file") && w.contains("run=b")),
        "{:?}",
        s.warnings()
    );
    let runs = query_text(&s, "SELECT run, sum(numel) AS n FROM grads GROUP BY run ORDER BY run").await;
    assert!(runs.contains(&format!("| a   | {} |", STEPS as usize * (W_LEN + 3))), "{runs}");
    assert!(!runs.contains("| b "), "run b's only grads file is damaged:\n{runs}");
}

#[tokio::test]
async fn empty_lake_and_files_by_path() {
    let empty = tempfile::tempdir().unwrap();
    let s = open(empty.path()).await;
    let n = query_text(&s, "SELECT count(*) AS n FROM grads").await;
    assert!(n.contains("| 0 |"), "{n}");
    let views = query_text(&s, "SELECT count(*) AS n FROM grad_values").await;
    assert!(views.contains("| 0 |"), "{views}");

    let dir = tempfile::tempdir().unwrap();
    write_lake(dir.path());
    let bare = LakeSession::new(&SessionOptions::default()).unwrap();
    let file = dir.path().join("scalars/run=a/part-000000.parquet");
    let text = query_text(&bare, &format!("SELECT count(*) AS n FROM '{}'", file.display())).await;
    assert!(text.contains(&format!("| {STEPS} |")), "{text}");
}

/// Regression: files once declared (step, param_id, chunk, kind, sample) on every row
/// group; DataFusion took that as the file's order and skipped the sort of ORDER BY.
#[tokio::test]
async fn order_by_is_honoured_across_row_groups_and_kinds() {
    use gradlake_ingest::synth::{SynthConfig, generate};
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SynthConfig::small("s", 1, 6);
    cfg.params = vec![ParamSpec::new("w", [100, 100]), ParamSpec::new("b", [100])];
    cfg.samples = 3;
    cfg.draws = 2;
    let options = WriterOptions { row_group_bytes: 64 << 10, ..Default::default() };
    generate(dir.path(), &cfg, options, &mut |_| {}).unwrap();
    let s = open(dir.path()).await;
    let batches = query(&s, "SELECT step, param_id, chunk FROM grads ORDER BY step, param_id, chunk").await;
    let mut rows = Vec::new();
    for b in &batches {
        for i in 0..b.num_rows() {
            rows.push((
                b.column(0).as_primitive::<Int64Type>().value(i),
                b.column(1).as_primitive::<datafusion::arrow::datatypes::Int32Type>().value(i),
                b.column(2).as_primitive::<datafusion::arrow::datatypes::Int32Type>().value(i),
            ));
        }
    }
    assert!(!rows.is_empty());
    assert!(rows.is_sorted(), "ORDER BY must sort");
}
