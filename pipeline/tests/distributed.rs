//! gradlake's operators cross the network: each round-trips through
//! [`GradlakeCodec`] and gives the rows it gave before; a worker reads only the
//! lakes it serves; a query planned for a cluster runs its stages on the workers.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::physical_plan::{ExecutionPlan, collect, displayable};
use datafusion_proto::bytes::{
    physical_plan_from_bytes_with_extension_codec, physical_plan_to_bytes_with_extension_codec,
};
use gradlake_ingest::WriterOptions;
use gradlake_ingest::synth::{SynthConfig, generate};
use gradlake_pipeline::distributed::{Cluster, GradlakeCodec, LocalCluster, WorkerOptions, WorkerTls};
use gradlake_pipeline::store::LakeLocation;
use gradlake_pipeline::{LakeSession, SessionOptions};

fn write_lake(dir: &Path) {
    let mut cfg = SynthConfig::small("r", 3, 4);
    cfg.samples = 6;
    cfg.draws = 3;
    let dir = dir.to_path_buf();
    // `generate` blocks on its writer thread: keep it off the runtime's workers.
    std::thread::spawn(move || generate(&dir, &cfg, WriterOptions::default(), &mut |_| {}).unwrap()).join().unwrap();
}

fn sorted(batches: &[RecordBatch]) -> Vec<String> {
    let text = pretty_format_batches(batches).unwrap().to_string();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// The names of the plan's nodes, depth first.
fn node_names(plan: &Arc<dyn ExecutionPlan>) -> Vec<String> {
    let mut out = vec![plan.name().to_string()];
    for child in plan.children() {
        out.extend(node_names(child));
    }
    out
}

/// Each operator, encoded and decoded, is the same plan (same display) and gives the same rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_gradlake_operator_round_trips_through_the_codec() {
    let dir = tempfile::tempdir().unwrap();
    write_lake(dir.path());
    let session = LakeSession::open(dir.path(), &SessionOptions::default()).await.unwrap();
    let ctx = session.context();
    for (operator, sql) in [
        ("explode", "SELECT param, idx, value FROM grad_values WHERE kind = 'full' AND param = 'fc2.bias'"),
        // (the vectors summarised, so that comparing the rows as text stays cheap)
        (
            "assemble with values",
            "SELECT step, sample, param, cardinality(\"values\") AS d, vec_norm(\"values\") AS norm, \"values\"[7] AS v7 FROM grad_vectors WHERE kind = 'noise'",
        ),
        ("assemble without values", "SELECT run, step, kind, sample, param FROM grad_vectors WHERE step = 0"),
    ] {
        let plan = ctx.sql(sql).await.unwrap().create_physical_plan().await.unwrap();
        assert!(
            node_names(&plan).iter().any(|n| n.starts_with("Explode") || n.starts_with("Assemble")),
            "{operator}: {}",
            displayable(plan.as_ref()).indent(false)
        );
        let bytes = physical_plan_to_bytes_with_extension_codec(plan.clone(), &GradlakeCodec).unwrap();
        let decoded = physical_plan_from_bytes_with_extension_codec(&bytes, &ctx.task_ctx(), &GradlakeCodec).unwrap();
        assert_eq!(
            displayable(decoded.as_ref()).indent(true).to_string(),
            displayable(plan.as_ref()).indent(true).to_string(),
            "{operator}"
        );
        let before = collect(plan, ctx.task_ctx()).await.unwrap();
        let after = collect(decoded, ctx.task_ctx()).await.unwrap();
        assert!(before.iter().map(RecordBatch::num_rows).sum::<usize>() > 0, "{operator}: no rows");
        assert_eq!(sorted(&after), sorted(&before), "{operator}");
        assert_eq!(after.first().map(|b| b.schema()), before.first().map(|b| b.schema()), "{operator}");
    }
}

/// Bytes that are not an encoded gradlake operator are an error that says so, not a panic.
#[tokio::test]
async fn the_codec_names_what_it_cannot_decode() {
    use datafusion_proto::physical_plan::{DefaultPhysicalProtoConverter, PhysicalExtensionCodec};
    let ctx = datafusion::prelude::SessionContext::new();
    let e = GradlakeCodec.try_decode(b"{\"version\": 99}", &[], &ctx.task_ctx(), &DefaultPhysicalProtoConverter {});
    let e = e.unwrap_err().to_string();
    assert!(e.contains("gradlake codec"), "{e}");
}

/// A query on a cluster runs on its workers and gives the local rows; a worker
/// refuses a lake it does not serve, naming the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_runs_the_stages_and_reads_only_the_lakes_it_serves() {
    let dir = tempfile::tempdir().unwrap();
    let (served, other) = (dir.path().join("served"), dir.path().join("other"));
    write_lake(&served);
    write_lake(&other);
    let workers = LocalCluster::start(
        3,
        &WorkerOptions { lakes: vec![LakeLocation::Local(served.clone())], ..WorkerOptions::default() },
    )
    .await
    .unwrap();
    // One byte per task: the small lake's scan is spread over every worker.
    let cluster = workers.cluster().clone().with_bytes_per_task(Some(1));
    let on_cluster = SessionOptions { cluster: Some(cluster), ..SessionOptions::default() };
    let sql = "SELECT param, count(*) AS n, max(abs(value)) AS max_abs, min(value) AS lowest FROM grad_values WHERE kind = 'minibatch' GROUP BY param ORDER BY param";

    let local = LakeSession::open(&served, &SessionOptions::default()).await.unwrap();
    let expected = local.context().sql(sql).await.unwrap().collect().await.unwrap();
    let remote = LakeSession::open(&served, &on_cluster).await.unwrap();
    let plan = remote.context().sql(sql).await.unwrap().create_physical_plan().await.unwrap();
    let names = node_names(&plan);
    assert!(names.iter().any(|n| n.starts_with("Network")), "not distributed: {names:?}");
    let got = collect(plan, remote.context().task_ctx()).await.unwrap();
    let (e, g) =
        (pretty_format_batches(&expected).unwrap().to_string(), pretty_format_batches(&got).unwrap().to_string());
    // Counts, maxima and minima do not depend on the order partial results merge in.
    assert_eq!(g, e);

    let elsewhere = LakeSession::open(&other, &on_cluster).await.unwrap();
    let err = elsewhere.context().sql(sql).await.unwrap().collect().await.unwrap_err().to_string();
    assert!(err.contains("outside the lakes this worker serves"), "{err}");
}

/// However many workers there are, a scan splits over them with the same number of
/// partitions in every task (datafusion-distributed 4.0's own split gave tasks
/// different counts when the files did not divide evenly, and planning failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_number_of_workers_splits_the_scan_and_gives_the_local_rows() {
    let dir = tempfile::tempdir().unwrap();
    // Many small files, each sorted by step: the case DataFusion will not split by byte range.
    let mut cfg = SynthConfig::small("r", 3, 4);
    cfg.samples = 6;
    let (path, options) = (
        dir.path().to_path_buf(),
        WriterOptions { row_group_bytes: 16 << 10, file_bytes: 1, ..WriterOptions::default() },
    );
    std::thread::spawn(move || generate(&path, &cfg, options, &mut |_| {}).unwrap()).join().unwrap();
    let files = std::fs::read_dir(dir.path().join("grads/run=r")).unwrap().count();
    assert!(files >= 5, "{files} files");
    let sql = "SELECT kind, param, count(*) AS n, max(value) AS highest, min(value) AS lowest FROM grad_values GROUP BY kind, param ORDER BY kind, param";
    let local = LakeSession::open(dir.path(), &SessionOptions::default()).await.unwrap();
    let expected =
        pretty_format_batches(&local.context().sql(sql).await.unwrap().collect().await.unwrap()).unwrap().to_string();
    let options =
        WorkerOptions { lakes: vec![LakeLocation::Local(dir.path().to_path_buf())], ..WorkerOptions::default() };
    for n in [1, 2, 3, 4, 5] {
        let workers = LocalCluster::start(n, &options).await.unwrap();
        let cluster = workers.cluster().clone().with_bytes_per_task(Some(1));
        let session =
            LakeSession::open(dir.path(), &SessionOptions { cluster: Some(cluster), ..SessionOptions::default() })
                .await
                .unwrap();
        let got = session.context().sql(sql).await.unwrap().collect().await;
        let got = got.unwrap_or_else(|e| panic!("{n} workers: {e}"));
        assert_eq!(pretty_format_batches(&got).unwrap().to_string(), expected, "{n} workers");
        // The workers aggregate a chunk at a time: where DataFusion's partial
        // aggregate stood, their node reports no metrics of its own, and the
        // workers' metrics still map onto the coordinator's plan node by node.
        let analyzed = session.context().sql(&format!("EXPLAIN ANALYZE {sql}")).await.unwrap().collect().await;
        let analyzed = pretty_format_batches(&analyzed.unwrap_or_else(|e| panic!("{n} workers: {e}"))).unwrap();
        let text = analyzed.to_string();
        let partial: Vec<&str> = text.lines().filter(|l| l.contains("mode=Partial")).collect();
        // (One worker: nothing to distribute, so this process runs DataFusion's plan itself.)
        let chunk_wise = !partial.is_empty() && partial.iter().all(|l| l.contains("metrics=[]"));
        assert!(chunk_wise || n == 1, "{n} workers:\n{analyzed}");
    }
}

/// Workers started with a secret answer only requests that carry it, through every stage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_with_a_secret_refuse_requests_without_it() {
    let dir = tempfile::tempdir().unwrap();
    write_lake(dir.path());
    let options = WorkerOptions {
        lakes: vec![LakeLocation::Local(dir.path().to_path_buf())],
        secret: Some("s3cret".into()),
        ..WorkerOptions::default()
    };
    let workers = LocalCluster::start(2, &options).await.unwrap();
    let sql = "SELECT kind, count(*) AS n FROM grad_values GROUP BY kind ORDER BY kind";
    let local = LakeSession::open(dir.path(), &SessionOptions::default()).await.unwrap();
    let expected =
        pretty_format_batches(&local.context().sql(sql).await.unwrap().collect().await.unwrap()).unwrap().to_string();
    for (secret, ok) in [(None, false), (Some("wrong"), false), (Some("s3cret"), true)] {
        let cluster = workers.cluster().clone().with_secret(secret.map(str::to_string)).with_bytes_per_task(Some(1));
        let session =
            LakeSession::open(dir.path(), &SessionOptions { cluster: Some(cluster), ..SessionOptions::default() })
                .await
                .unwrap();
        let result = session.context().sql(sql).await.unwrap().collect().await;
        match (result, ok) {
            (Ok(batches), true) => assert_eq!(pretty_format_batches(&batches).unwrap().to_string(), expected),
            (Err(e), false) => assert!(e.to_string().contains("x-gradlake-secret"), "{secret:?}: {e}"),
            (r, _) => panic!("{secret:?}: {:?}", r.map(|_| "rows")),
        }
    }
}

/// A self-signed certificate for 127.0.0.1, as (certificate PEM, key PEM).
fn self_signed() -> (Vec<u8>, Vec<u8>) {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    (made.cert.pem().into_bytes(), made.signing_key.serialize_pem().into_bytes())
}

/// Workers that serve TLS answer a coordinator that trusts their certificate, through every
/// stage (they reach each other over TLS too); plain HTTP, or a certificate the coordinator
/// does not trust, is refused with an error naming the worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_with_tls_answer_only_coordinators_that_trust_them() {
    let dir = tempfile::tempdir().unwrap();
    write_lake(dir.path());
    let (cert, key) = self_signed();
    let options = WorkerOptions {
        lakes: vec![LakeLocation::Local(dir.path().to_path_buf())],
        tls: Some(WorkerTls::from_pem(cert, key, None)),
        ..WorkerOptions::default()
    };
    let workers = LocalCluster::start(2, &options).await.unwrap();
    assert!(workers.cluster().workers().iter().all(|u| u.scheme() == "https"), "{:?}", workers.cluster());
    // A repartitioned aggregate: the final stage's tasks read the scan stage's from the other workers.
    let sql = "SELECT param, kind, count(*) AS n, max(abs(value)) AS m FROM grad_values GROUP BY param, kind ORDER BY param, kind";
    let local = LakeSession::open(dir.path(), &SessionOptions::default()).await.unwrap();
    let expected =
        pretty_format_batches(&local.context().sql(sql).await.unwrap().collect().await.unwrap()).unwrap().to_string();
    let run = |cluster: Cluster| {
        let path = dir.path().to_path_buf();
        async move {
            let session =
                LakeSession::open(&path, &SessionOptions { cluster: Some(cluster), ..SessionOptions::default() })
                    .await
                    .unwrap();
            let plan = session.context().sql(sql).await.unwrap().create_physical_plan().await.unwrap();
            assert!(node_names(&plan).iter().any(|n| n.starts_with("Network")), "not distributed");
            collect(plan, session.context().task_ctx()).await
        }
    };
    let trusted = workers.cluster().clone().with_bytes_per_task(Some(1));
    let got = run(trusted).await.unwrap();
    assert_eq!(pretty_format_batches(&got).unwrap().to_string(), expected);

    let plain: Vec<String> =
        workers.cluster().workers().iter().map(|u| u.as_str().replacen("https", "http", 1)).collect();
    let err = run(Cluster::new(&plain).unwrap().with_bytes_per_task(Some(1))).await.unwrap_err().to_string();
    assert!(err.contains("worker http://127.0.0.1:"), "{err}");

    let (stranger, _) = self_signed();
    let untrusting = Cluster::new(&plain).unwrap().with_tls(Some(stranger)).unwrap().with_bytes_per_task(Some(1));
    let err = run(untrusting).await.unwrap_err().to_string();
    assert!(err.contains("worker https://127.0.0.1:") && err.contains("certificate"), "{err}");
}
