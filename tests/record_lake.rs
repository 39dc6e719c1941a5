//! A recorded run, read back through the lake: what was recorded, when, and
//! that noise is exactly draw − full. (Here rather than in the recorder's
//! crate, so that the recorder's own builds never need DataFusion.)
#![cfg(feature = "torch")]

use std::path::Path;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Float32Type, Float64Type, Int64Type};
use gradlake_ingest::WriterOptions;
use gradlake_pipeline::{LakeSession, SessionOptions};
use gradlake_recorder::data::Dataset;
use gradlake_recorder::gradients::full_gradient;
use gradlake_recorder::model::{Architecture, Model};
use gradlake_recorder::record::{RecordConfig, record};
use gradlake_recorder::torchscript::TorchScriptModel;

fn config(steps: u64) -> RecordConfig {
    let mut cfg = RecordConfig::new("t", Architecture::Mlp { hidden: vec![8] }, "synthetic", steps);
    cfg.batch_size = 8;
    cfg.draws = 3;
    cfg.samples = 4;
    cfg.noise_points = vec![0, steps as i64 - 1];
    cfg.seed = 5;
    cfg
}

fn model(data: &Dataset, seed: u64) -> Model {
    Model::new(Architecture::Mlp { hidden: vec![8] }, data.feature_count(), data.image_side, data.classes, seed)
        .unwrap()
}

async fn sql(lake: &Path, q: &str) -> Vec<RecordBatch> {
    let s = LakeSession::open(lake, &SessionOptions::default()).await.unwrap();
    s.context().sql(q).await.unwrap().collect().await.unwrap()
}

fn vectors(batches: &[RecordBatch], col: usize) -> Vec<Vec<f32>> {
    let mut out = Vec::new();
    for b in batches {
        let lists = b.column(col).as_list::<i32>();
        for i in 0..b.num_rows() {
            out.push(lists.value(i).as_primitive::<Float32Type>().values().to_vec());
        }
    }
    out
}

#[tokio::test]
async fn a_recorded_run_holds_every_kind_on_schedule() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let data = Dataset::synthetic(64, 3, 2).unwrap();
    let cfg = config(6);
    let m = model(&data, cfg.seed);
    let mut steps = 0;
    record(dir.path(), &data, &m, &cfg, WriterOptions::default(), &mut |_| steps += 1).unwrap();
    assert_eq!(steps, 6);

    let counts = sql(dir.path(), "SELECT kind, count(*) AS n FROM grad_vectors GROUP BY kind ORDER BY kind").await;
    let b = &counts[0];
    let kinds = datafusion::arrow::compute::cast(b.column(0), &DataType::Utf8).unwrap();
    let got: Vec<(String, i64)> = (0..b.num_rows())
        .map(|i| (kinds.as_string::<i32>().value(i).to_string(), b.column(1).as_primitive::<Int64Type>().value(i)))
        .collect();
    // 4 params; 2 noise points; 3 draws; 4 examples; 6 steps.
    let want = [("draw", 24), ("full", 8), ("minibatch", 24), ("noise", 24), ("sample", 32)];
    assert_eq!(got, want.map(|(k, n)| (k.to_string(), n)).to_vec());

    // noise = draw − full, bit for bit.
    let q = "SELECT d.\"values\", f.\"values\", n.\"values\" FROM grad_vectors d
             JOIN grad_vectors f ON f.step = d.step AND f.param_id = d.param_id AND f.kind = 'full'
             JOIN grad_vectors n ON n.step = d.step AND n.param_id = d.param_id AND n.sample = d.sample AND n.kind = 'noise'
             WHERE d.kind = 'draw'";
    let rows = sql(dir.path(), q).await;
    let (d, f, n) = (vectors(&rows, 0), vectors(&rows, 1), vectors(&rows, 2));
    assert_eq!(d.len(), 24);
    for ((d, f), n) in d.iter().zip(&f).zip(&n) {
        let diff: Vec<f32> = d.iter().zip(f).map(|(a, b)| a - b).collect();
        assert_eq!(&diff, n);
    }

    // The full gradient at step 0 is that of the freshly initialised model.
    let fresh = full_gradient(&model(&data, cfg.seed), &data, 1024).unwrap();
    let rows =
        sql(dir.path(), "SELECT \"values\" FROM grad_vectors WHERE kind = 'full' AND step = 0 ORDER BY param_id").await;
    assert_eq!(vectors(&rows, 0), fresh);

    // grad_norm (a scalar) is the norm of the recorded minibatch gradient (from the chunk summaries).
    let q = "SELECT s.step, s.value, sqrt(g.sq) FROM scalars s JOIN
               (SELECT step, sum(CAST(l2 AS DOUBLE) * l2) AS sq FROM grads WHERE kind = 'minibatch' GROUP BY step) g
             ON s.step = g.step WHERE s.name = 'grad_norm' ORDER BY s.step";
    let rows = sql(dir.path(), q).await;
    let b = &rows[0];
    assert_eq!(b.num_rows(), 6);
    for i in 0..6 {
        let (scalar, lake) =
            (b.column(1).as_primitive::<Float64Type>().value(i), b.column(2).as_primitive::<Float64Type>().value(i));
        assert!((scalar - lake).abs() <= 1e-5 * scalar, "step {i}: {scalar} vs {lake}");
    }
    let loss = sql(dir.path(), "SELECT count(*) FROM scalars WHERE name = 'loss'").await;
    assert_eq!(loss[0].column(0).as_primitive::<Int64Type>().value(0), 6);
}

#[tokio::test]
async fn a_params_glob_selects_tensors_and_a_bad_one_is_explained() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let data = Dataset::synthetic(32, 2, 2).unwrap();
    let mut cfg = config(2);
    cfg.params = Some("fc1.*".into());
    record(dir.path(), &data, &model(&data, 0), &cfg, WriterOptions::default(), &mut |_| {}).unwrap();
    let rows = sql(dir.path(), "SELECT param FROM params ORDER BY param_id").await;
    let names = datafusion::arrow::compute::cast(rows[0].column(0), &DataType::Utf8).unwrap();
    let names: Vec<&str> = (0..names.len()).map(|i| names.as_string::<i32>().value(i)).collect();
    assert_eq!(names, ["fc1.weight", "fc1.bias"]);

    cfg.params = Some("conv*".into());
    cfg.run = "u".into();
    let err = record(dir.path(), &data, &model(&data, 0), &cfg, WriterOptions::default(), &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("matches none") && err.to_string().contains("fc2.bias"), "{err}");
}

#[tokio::test]
async fn a_replay_of_the_checkpoints_reproduces_the_recorded_gradients() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let (lake, replayed, checkpoints) = (dir.path().join("lake"), dir.path().join("replayed"), dir.path().join("ckpt"));
    let data = Dataset::synthetic(64, 3, 2).unwrap();
    let mut cfg = config(5);
    cfg.noise_points = vec![0, 2, 4];
    cfg.checkpoint_every = 2;
    cfg.checkpoint_dir = Some(checkpoints.clone());
    record(&lake, &data, &model(&data, cfg.seed), &cfg, WriterOptions::default(), &mut |_| {}).unwrap();
    let files: Vec<String> = std::fs::read_dir(&checkpoints)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 3, "{files:?}");

    // A model initialised differently: only the checkpoints can make the gradients agree.
    let mut other = model(&data, 99);
    let mut seen = Vec::new();
    gradlake_recorder::record::replay(
        &replayed,
        &data,
        &mut other,
        &checkpoints,
        &cfg,
        WriterOptions::default(),
        &mut |s| seen.push(s),
    )
    .unwrap();
    assert_eq!(seen, [0, 2, 4]);
    let q = "SELECT \"values\" FROM grad_vectors WHERE kind <> 'minibatch' ORDER BY step, kind, sample, param_id";
    let a = vectors(&sql(&lake, q).await, 0);
    let b = vectors(&sql(&replayed, q).await, 0);
    // 3 points × 4 params × (1 full + 3 draws + 3 noise + 4 samples).
    assert_eq!(a.len(), 3 * 4 * 11);
    assert_eq!(a, b, "replayed gradients differ from the recorded ones");
}

fn strings(batches: &[RecordBatch], col: usize) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        let c = datafusion::arrow::compute::cast(b.column(col), &DataType::Utf8).unwrap();
        out.extend((0..c.len()).map(|i| c.as_string::<i32>().value(i).to_string()));
    }
    out
}

#[tokio::test]
async fn a_torchscript_replay_matches_the_builtin_model_with_the_same_weights() {
    tch::set_num_threads(1);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/torchscript");
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = dir.path().join("ckpt");
    std::fs::create_dir(&checkpoints).unwrap();
    // The fixture's weights at step 0, and halved at step 3 (as if training had moved them),
    // under a name Python might give it.
    std::fs::copy(fixtures.join("weights.safetensors"), checkpoints.join("step-00000000.safetensors")).unwrap();
    let halved: Vec<(String, tch::Tensor)> = tch::Tensor::read_safetensors(fixtures.join("weights.safetensors"))
        .unwrap()
        .into_iter()
        .map(|(n, t)| (n, t * 0.5))
        .collect();
    tch::Tensor::write_safetensors(&halved, checkpoints.join("step-3.safetensors")).unwrap();

    // libtorch's generator is global: draw under the lock Model::new takes, so a test
    // building a model on another thread cannot interleave with this draw.
    let features = {
        let _rng = gradlake_recorder::model::GLOBAL_RNG.lock().unwrap();
        tch::manual_seed(11);
        tch::Tensor::randn([48, 64], (tch::Kind::Float, tch::Device::Cpu))
    };
    let data = Dataset {
        name: "gaussian64".into(),
        features,
        labels: tch::Tensor::arange(48, (tch::Kind::Int64, tch::Device::Cpu)).remainder(10),
        classes: 10,
        image_side: Some(8),
    };
    let arch = Architecture::Mlp { hidden: vec![16, 12] };
    let mut cfg = RecordConfig::new("ts", arch.clone(), "gaussian64", 1);
    cfg.batch_size = 8;
    cfg.draws = 3;
    cfg.samples = 5;
    cfg.seed = 2;
    cfg.full_batch_chunk = 20;
    let (ts_lake, mlp_lake) = (dir.path().join("ts"), dir.path().join("mlp"));
    let mut ts = TorchScriptModel::load(&fixtures.join("mlp.pt")).unwrap();
    gradlake_recorder::record::replay(
        &ts_lake,
        &data,
        &mut ts,
        &checkpoints,
        &cfg,
        WriterOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    // A built-in MLP initialised otherwise: only the checkpoints give it the module's weights.
    let mut mlp = Model::new(arch, 64, Some(8), 10, 99).unwrap();
    gradlake_recorder::record::replay(
        &mlp_lake,
        &data,
        &mut mlp,
        &checkpoints,
        &cfg,
        WriterOptions::default(),
        &mut |_| {},
    )
    .unwrap();

    let q = "SELECT kind, \"values\" FROM grad_vectors ORDER BY step, kind, sample, param_id";
    let (a, b) = (sql(&ts_lake, q).await, sql(&mlp_lake, q).await);
    let kinds = strings(&a, 0);
    assert_eq!(kinds, strings(&b, 0));
    // 2 checkpoints × 6 params × (1 full + 3 draws + 3 noise + 5 samples).
    assert_eq!(kinds.len(), 2 * 6 * 12);
    let mut worst = std::collections::BTreeMap::new();
    for ((kind, a), b) in kinds.iter().zip(vectors(&a, 1)).zip(vectors(&b, 1)) {
        // Both run aten::linear, so full, draw and noise gradients come out bit-equal on one thread;
        // per-sample ones round differently (the built-in's vectorised outer products, the module's
        // one backward pass per example). Noise, a difference, would amplify any rounding: a looser bound.
        let scale = b.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let err = a.iter().zip(&b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
        let rel = f64::from(err / scale.max(1e-30));
        let w = worst.entry(kind.clone()).or_insert(0.0f64);
        *w = w.max(rel);
    }
    eprintln!("largest relative differences: {worst:?}");
    for (kind, rel) in &worst {
        assert!(*rel <= if kind == "noise" { 1e-5 } else { 1e-6 }, "{kind}: {rel:e}");
    }

    let runs = sql(&ts_lake, "SELECT model, config FROM runs").await;
    assert_eq!(strings(&runs, 0), ["torchscript:mlp.pt"]);
    let config: serde_json::Value = serde_json::from_str(&strings(&runs, 1)[0]).unwrap();
    assert_eq!(config["replay"]["record"]["model"]["name"], "torchscript");
    assert!(config["replay"]["record"]["model"]["path"].as_str().unwrap().ends_with("mlp.pt"));
    assert_eq!(config["replay"]["steps"], serde_json::json!([0, 3]));
    assert_eq!(strings(&sql(&mlp_lake, "SELECT model FROM runs").await, 0), ["mlp"]);
}
