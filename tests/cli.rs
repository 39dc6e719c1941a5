//! End-to-end tests of the `gradlake` binary: exit codes, stdout/stderr, formats.

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn gradlake(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gradlake")).args(args).output().expect("run gradlake")
}

#[cfg(feature = "torch")]
fn gradlake_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gradlake"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run gradlake")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn synth(lake: &Path, extra: &[&str]) {
    let mut args = vec![
        "synth",
        "--out",
        lake.to_str().unwrap(),
        "--steps",
        "8",
        "--samples",
        "4",
        "--draws",
        "2",
        "--params",
        "w:40x30,b:30",
    ];
    args.extend_from_slice(extra);
    let o = gradlake(&args);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn synth_then_check_then_sql_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    synth(&lake, &["--seed", "3", "--json"]);
    let truth = gradlake(&[
        "synth",
        "--out",
        dir.path().join("l2").to_str().unwrap(),
        "--steps",
        "2",
        "--alpha",
        "3",
        "--json",
    ]);
    let truth: serde_json::Value = serde_json::from_slice(&truth.stdout).unwrap();
    assert_eq!(truth["alpha"], 3.0);

    let o = gradlake(&["check", lake.to_str().unwrap(), "--deep"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("ok"), "{}", stdout(&o));

    let l = lake.to_str().unwrap();
    // csv: 8 minibatch steps; the stored config is the ground truth.
    let o = gradlake(&[
        "sql",
        "--lake",
        l,
        "--format",
        "csv",
        "SELECT count(DISTINCT step) AS steps FROM grads WHERE kind = 'minibatch'",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "steps\n8\n");
    let o = gradlake(&["sql", "--lake", l, "--format", "json", "SELECT config FROM runs"]);
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let config: serde_json::Value = serde_json::from_str(rows[0]["config"].as_str().unwrap()).unwrap();
    assert_eq!(config["synth"]["seed"], 3);
    // Several statements: DDL first, then a query over the view it made.
    let o = gradlake(&[
        "sql",
        "--lake",
        l,
        "--format",
        "csv",
        "CREATE VIEW b AS SELECT * FROM grad_values WHERE param = 'b'; SELECT count(*) AS n FROM b WHERE kind = 'full'",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "n\n90\n", "30 values at each of 3 noise points");
    // SHOW and EXPLAIN render like queries.
    let o = gradlake(&["sql", "--lake", l, "--format", "csv", "SHOW TABLES"]);
    assert!(stdout(&o).contains("grad_values") && stdout(&o).contains("grads"), "{}", stdout(&o));
    // parquet output to a file, read back by path without a lake.
    let out = dir.path().join("out.parquet");
    let o = gradlake(&[
        "sql",
        "--lake",
        l,
        "--format",
        "parquet",
        "--output",
        out.to_str().unwrap(),
        "SELECT step, name, value FROM scalars",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let q = format!("SELECT count(*) AS n FROM '{}'", out.display());
    let o = gradlake(&["sql", "--format", "csv", &q]);
    // 8 steps × (loss, lr, grad_norm), and the writer's run_finished marker.
    assert_eq!(stdout(&o), "n\n25\n", "{}", stderr(&o));
    // table format stops at --max-rows and says so on stderr.
    let o = gradlake(&["sql", "--lake", l, "--max-rows", "3", "SELECT * FROM scalars"]);
    assert!(o.status.success());
    assert!(stderr(&o).contains("truncated at 3 rows"), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().filter(|l| l.starts_with("| ") && !l.contains("step")).count(), 3);
}

/// The shell lists gradlake's functions with `\\f`, one line each with its syntax.
#[test]
fn the_shell_lists_gradlakes_functions() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    synth(&lake, &[]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_gradlake"))
        .args(["sql", "--lake", lake.to_str().unwrap(), "--format", "csv"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"\\f\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for syntax in [
        "powerlaw_ks_test(x [, significance] [, options])",
        "vec_agg(value, idx [, d])",
        "spectrum_fit(eigs [, kmin [, kmax]])",
    ] {
        assert!(text.contains(syntax), "{syntax} missing from:\n{text}");
    }
    assert_eq!(text.lines().count(), 21, "a header and one line per function:\n{text}");
}

#[test]
fn errors_go_to_stderr_with_meaningful_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    synth(&lake, &[]);
    let l = lake.to_str().unwrap();

    let o = gradlake(&["sql", "--lake", l, "SELECT nonexistent FROM grads"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("nonexistent"), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());

    let o = gradlake(&["sql", "--lake", l, "--memory-limit", "lots", "SELECT 1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--memory-limit") && stderr(&o).contains("lots"), "{}", stderr(&o));

    let o = gradlake(&["sql", "--format", "xml", "SELECT 1"]);
    assert_eq!(o.status.code(), Some(2), "bad usage");

    let o = gradlake(&["synth", "--out", l]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));

    // Damage one file: check names it and exits 3; sql refuses to open the lake, naming it.
    let part = lake.join("grads/run=synth/part-000000.parquet");
    std::fs::write(&part, b"PAR1 not really").unwrap();
    let o = gradlake(&["check", l]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("part-000000.parquet"), "{}", stderr(&o));
    let o = gradlake(&["sql", "--lake", l, "SELECT count(*) FROM runs"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("part-000000.parquet"), "{}", stderr(&o));
    // On request the damaged file is left out, with a warning naming it; scalars are intact.
    let o = gradlake(&["sql", "--lake", l, "--skip-bad-files", "--format", "csv", "SELECT count(*) AS n FROM scalars"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("skipped damaged file") && stderr(&o).contains("part-000000.parquet"));
    assert_eq!(stdout(&o), "n\n25\n");
}

#[test]
fn memory_limit_bounds_a_query_that_must_spill_or_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let made = gradlake(&["synth", "--out", lake.to_str().unwrap()]);
    assert!(made.status.success(), "{}", stderr(&made));
    let lake = lake.to_str().unwrap();
    // A sort of every element of synth's default 24 MB lake: under 64 MiB it must spill
    // and still be right (from 80 MiB it needs not; at 48 MiB its merge may not find
    // room); under 4 MiB it cannot merge and must fail cleanly. A limit that were
    // ignored would neither spill nor fail.
    let sql = "SELECT count(*) AS n, sum(CASE WHEN rn = 1 THEN value END) AS smallest FROM \
               (SELECT value, row_number() OVER (ORDER BY value) AS rn FROM grad_values)";
    let spills = |extra: &[&str]| {
        let explain = format!("EXPLAIN ANALYZE {sql}");
        let o = gradlake(&[&["sql", "--lake", lake, "--format", "csv"], extra, &[explain.as_str()]].concat());
        assert!(o.status.success(), "{}", stderr(&o));
        let text = stdout(&o);
        let counts: Vec<u64> = text
            .match_indices("spill_count=")
            .map(|(at, key)| text[at + key.len()..].chars().take_while(char::is_ascii_digit).collect::<String>())
            .map(|n| n.parse().unwrap())
            .collect();
        assert!(!counts.is_empty(), "no spill metrics in:\n{text}");
        counts.iter().sum::<u64>()
    };
    assert_eq!(spills(&[]), 0, "without a limit nothing spills");
    assert!(spills(&["--memory-limit", "64M"]) > 0, "under 64 MiB the sort spills");
    let unlimited = gradlake(&["sql", "--lake", lake, "--format", "csv", sql]);
    let limited = gradlake(&["sql", "--lake", lake, "--memory-limit", "64M", "--format", "csv", sql]);
    assert!(unlimited.status.success() && limited.status.success(), "{}", stderr(&limited));
    assert_eq!(stdout(&limited), stdout(&unlimited), "spilling changes nothing");
    let starved = gradlake(&["sql", "--lake", lake, "--memory-limit", "4M", "--format", "csv", sql]);
    assert_eq!(starved.status.code(), Some(1), "{}", stderr(&starved));
    assert!(stderr(&starved).contains("Resources exhausted"), "{}", stderr(&starved));
}

/// A NumPy `.npy` file (format 1.0) of `descr` and `shape` holding `data` as written.
fn npy(path: &Path, descr: &str, shape: &str, data: &[u8]) {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    std::fs::write(path, bytes).unwrap();
}

/// `gradlake import` reads what numpy (`np.save`, `np.savez_compressed`, Fortran order,
/// big-endian, f16, f64) and the `safetensors` package (bf16 from ml_dtypes, f32) wrote
/// (fixtures/import/make_fixture.py): every value lands as the f32 numpy computes, and
/// bad input is named by file and tensor before the run is made.
#[test]
fn import_reads_numpy_and_safetensors_dumps_exactly() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/import");
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let l = lake.to_str().unwrap();
    let manifest = fixtures.join("manifest.csv");
    let o = gradlake(&["import", "--manifest", manifest.to_str().unwrap(), "--out", l, "--run", "imp"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("2 params, 6 tensors, 45 values"), "{}", stdout(&o));
    let o = gradlake(&["check", l, "--deep"]);
    assert!(o.status.success(), "{}", stderr(&o));

    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("reference.json")).unwrap()).unwrap();
    let sql = "SELECT step, CAST(kind AS VARCHAR) AS kind, sample, CAST(param AS VARCHAR) AS param, \"values\" \
               FROM grad_vectors ORDER BY step, param";
    let o = gradlake(&["sql", "--lake", l, "--format", "json", sql]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 6);
    for row in rows {
        let (step, param) = (row["step"].as_i64().unwrap(), row["param"].as_str().unwrap());
        assert_eq!((row["kind"].as_str(), row["sample"].as_i64()), (Some("minibatch"), Some(0)));
        let want = reference["steps"][step.to_string()][param].as_array().unwrap();
        let got = row["values"].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "step {step} {param}");
        for (g, w) in got.iter().zip(want) {
            // JSON carries the f32's shortest decimal form; compare as f32.
            assert_eq!(g.as_f64().unwrap() as f32, w.as_f64().unwrap() as f32, "step {step} {param}");
        }
    }

    // Files and flags, without a manifest.
    let weight = fixtures.join("step1/fc.weight.npy");
    let (l2, w) = (dir.path().join("l2"), weight.to_str().unwrap());
    let o = gradlake(&["import", w, "--step", "4", "--kind", "full", "--out", l2.to_str().unwrap(), "--run", "f"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = gradlake(&["import", w, "--out", dir.path().join("l3").to_str().unwrap(), "--run", "f"]);
    assert!(!o.status.success() && stderr(&o).contains("--step"), "{}", stderr(&o));

    // A shape that disagrees with another file's, and integers: named, and no run is made.
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    npy(&bad.join("fc.bias.npy"), "<f4", "(4,)", &[0u8; 16]);
    let bias = fixtures.join("step1/fc.bias.npy");
    let l4 = dir.path().join("l4");
    let args = |extra: &Path| {
        vec![
            "import".to_string(),
            bias.display().to_string(),
            extra.display().to_string(),
            "--step".into(),
            "0".into(),
            "--out".into(),
            l4.display().to_string(),
            "--run".into(),
            "x".into(),
        ]
    };
    let run = |a: Vec<String>| gradlake(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let o = run(args(&bad.join("fc.bias.npy")));
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("bad/fc.bias.npy") && e.contains("\"fc.bias\"") && e.contains("[4]") && e.contains("[3]"),
        "{e}"
    );
    npy(&bad.join("fc.weight.npy"), "<i4", "(3, 4)", &[0u8; 48]);
    let o = run(args(&bad.join("fc.weight.npy")));
    let e = stderr(&o);
    assert!(e.contains("fc.weight.npy") && e.contains("<i4") && e.contains("not supported"), "{e}");
    assert!(!l4.join("runs/run=x").exists(), "nothing is written before every header is read");
}

/// `analyze --xmin`: the verdicts under each rule, side by side in the report's table and
/// as rows of the summaries; a rule that does not parse is named before anything runs.
#[test]
fn analyze_compares_xmin_rules_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    synth(&lake, &[]);
    let l = lake.to_str().unwrap();
    let report = dir.path().join("report");
    let o = gradlake(&[
        "analyze",
        l,
        "--only",
        "dimension_wise,noise",
        "--xmin",
        "csn,top:0.2,all",
        "--format",
        "json",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["xmin_rules"], serde_json::json!(["csn", "top:0.2", "all"]));
    for analysis in doc["analyses"].as_array().unwrap() {
        let mut rules: Vec<&str> =
            analysis["summary"].as_array().unwrap().iter().map(|r| r["xmin_rule"].as_str().unwrap()).collect();
        rules.sort();
        rules.dedup();
        assert_eq!(rules, ["all", "csn", "top:0.2"], "{}", analysis["name"]);
    }
    let html = std::fs::read_to_string(report.join("index.html")).unwrap();
    for rule in ["csn", "top:0.2", "all"] {
        assert!(html.contains(&format!("data-rule=\"{rule}\"")), "no column for {rule}");
    }

    let o = gradlake(&["analyze", l, "--only", "dimension_wise", "--xmin", "csn,top:2"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--xmin top:2"), "{}", stderr(&o));
    let o = gradlake(&["analyze", l, "--xmin", "all", "--param", "xmin=csn"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--xmin") && stderr(&o).contains("--param xmin"), "{}", stderr(&o));
}

#[test]
fn demo_on_a_synthetic_lake_checks_analyses_and_writes_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let o = gradlake(&["demo", "--synthetic", "--out", out.to_str().unwrap(), "--steps", "10"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("gradlake check --deep") && text.contains("ok"), "{text}");
    for analysis in ["(summary)", "(dimension_wise)", "(iteration_wise)", "(noise)", "(spectrum)"] {
        assert!(text.contains(analysis), "{analysis} missing:\n{text}");
    }
    let report = dir.path().join("demo-report").join("index.html");
    assert!(report.is_file() && text.contains("demo-report/index.html"), "{text}");
    let again = gradlake(&["demo", "--synthetic", "--out", out.to_str().unwrap()]);
    assert!(!again.status.success() && stderr(&again).contains("already exists"), "{}", stderr(&again));
}

#[cfg(feature = "torch")]
#[test]
fn demo_records_a_run_and_analyses_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let o = gradlake_env(
        &["demo", "--out", out.to_str().unwrap(), "--steps", "6"],
        &[("GRADLAKE_DEPS_DIR", dir.path().to_str().unwrap())],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("recorded run \"demo\""), "{text}");
    assert!(text.contains("gradlake check --deep") && text.contains("ok"), "{text}");
    assert!(!text.contains("skipped:"), "every kind is recorded by default:\n{text}");
    assert!(dir.path().join("demo-report").join("index.html").is_file());
}

#[cfg(feature = "torch")]
#[test]
fn record_writes_a_lake_that_checks_and_bad_options_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let lake = lake.to_str().unwrap();
    let o = gradlake(&[
        "record",
        "--out",
        lake,
        "--run",
        "r1",
        "--steps",
        "4",
        "--hidden",
        "8",
        "--batch-size",
        "8",
        "--synthetic-examples",
        "64",
        "--samples",
        "3",
        "--draws",
        "2",
        "--threads",
        "1",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("recorded run \"r1\""));
    assert!(gradlake(&["check", lake, "--deep"]).status.success());
    let o = gradlake(&[
        "sql",
        "--lake",
        lake,
        "--format",
        "csv",
        "SELECT kind, count(*) FROM grad_vectors GROUP BY kind ORDER BY kind",
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    // An MLP 784-8-10 has 4 params; noise points 0, 1, 3; 2 draws; 3 examples; 4 steps.
    assert_eq!(
        text.lines().skip(1).collect::<Vec<_>>(),
        ["draw,24", "full,12", "minibatch,16", "noise,24", "sample,36"],
        "{text}"
    );

    // Checkpoints, then a replay of them into another lake: the same full gradients.
    let ckpt = dir.path().join("ckpt");
    let ckpt = ckpt.to_str().unwrap();
    let small = [
        "--hidden",
        "8",
        "--batch-size",
        "8",
        "--synthetic-examples",
        "64",
        "--samples",
        "2",
        "--draws",
        "1",
        "--threads",
        "1",
    ];
    let o = gradlake(
        &[
            &[
                "record",
                "--out",
                lake,
                "--run",
                "r2",
                "--steps",
                "3",
                "--at",
                "0,2",
                "--checkpoints",
                ckpt,
                "--checkpoint-every",
                "2",
            ][..],
            &small[..],
        ]
        .concat(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let replayed = dir.path().join("replayed");
    let replayed = replayed.to_str().unwrap();
    let o = gradlake(&[&["replay", "--out", replayed, "--run", "r2", "--checkpoints", ckpt][..], &small[..]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let full = |l: &str| {
        let q = "SELECT step, param_id, vec_norm(\"values\") FROM grad_vectors WHERE run = 'r2' AND kind = 'full' ORDER BY step, param_id";
        String::from_utf8_lossy(&gradlake(&["sql", "--lake", l, "--format", "csv", q]).stdout).into_owned()
    };
    assert_eq!(full(lake), full(replayed));
    assert_eq!(full(lake).lines().count(), 1 + 2 * 4);

    let o = Command::new(env!("CARGO_BIN_EXE_gradlake"))
        .args(["record", "--out", lake, "--dataset", "digits"])
        .env("GRADLAKE_DEPS_DIR", dir.path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("run scripts/setup-digits"));
    let o = Command::new(env!("CARGO_BIN_EXE_gradlake"))
        .args(["record", "--out", lake, "--dataset", "mnist"])
        .env("GRADLAKE_DEPS_DIR", dir.path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("run scripts/setup-mnist"));

    let o = gradlake(&["record", "--out", lake, "--model", "resnet"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--model \"resnet\""));
    let o = gradlake(&["record", "--out", lake, "--batch-size", "100000", "--synthetic-examples", "64"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--batch-size must be in 1..=64"));
}

#[cfg(feature = "torch")]
#[test]
fn replay_of_a_torchscript_module_writes_a_lake_that_checks_and_bad_files_are_named() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/torchscript");
    let module = fixtures.join("mlp.pt");
    let module = module.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // 40 examples of 64 features (the module's input, as scikit-learn's 8×8 digits) and 10 classes.
    let csv = dir.path().join("d64.csv");
    let mut text = (0..64).map(|j| format!("p{j}")).collect::<Vec<_>>().join(",") + ",label\n";
    for i in 0..40 {
        let row: Vec<String> = (0..64).map(|j| format!("{}", ((i * 7 + j * 3) % 17) as f32 / 16.0)).collect();
        text += &format!("{},{}\n", row.join(","), i % 10);
    }
    std::fs::write(&csv, text).unwrap();
    let dataset = format!("csv:{}", csv.display());
    let ckpt = dir.path().join("ckpt");
    std::fs::create_dir(&ckpt).unwrap();
    std::fs::copy(fixtures.join("weights.safetensors"), ckpt.join("step-00000000.safetensors")).unwrap();
    let lake = dir.path().join("lake");
    let replay = |out: &Path, ckpt: &Path, extra: &[&str]| {
        let mut args = vec![
            "replay",
            "--checkpoints",
            ckpt.to_str().unwrap(),
            "--dataset",
            &dataset,
            "--out",
            out.to_str().unwrap(),
            "--batch-size",
            "8",
            "--draws",
            "3",
            "--samples",
            "5",
            "--threads",
            "1",
        ];
        args.extend_from_slice(extra);
        gradlake(&args)
    };
    let o = replay(&lake, &ckpt, &["--torchscript", module]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("replayed run \"torchscript-mlp-tabular-s0-"), "{}", stdout(&o));
    let l = lake.to_str().unwrap();
    let o = gradlake(&["check", l, "--deep"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));

    let csv_query = |q: &str| {
        let o = gradlake(&["sql", "--lake", l, "--format", "csv", q]);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    // 6 params; 1 checkpoint; 3 draws; 5 examples.
    assert_eq!(
        csv_query("SELECT kind, count(*) AS n FROM grad_vectors GROUP BY kind ORDER BY kind"),
        "kind,n\ndraw,18\nfull,6\nnoise,18\nsample,30\n"
    );
    // noise = draw − full, exactly (vec_sub stays in f32, as the recorder's subtraction).
    let q = "SELECT max(vec_norm(vec_sub(vec_sub(d.\"values\", f.\"values\"), n.\"values\"))) AS worst, count(*) AS pairs
             FROM grad_vectors d
             JOIN grad_vectors f ON f.step = d.step AND f.param_id = d.param_id AND f.kind = 'full'
             JOIN grad_vectors n ON n.step = d.step AND n.param_id = d.param_id AND n.sample = d.sample AND n.kind = 'noise'
             WHERE d.kind = 'draw'";
    assert_eq!(csv_query(q), "worst,pairs\n0.0,18\n");
    assert_eq!(csv_query("SELECT model FROM runs"), "model\ntorchscript:mlp.pt\n",);
    assert_eq!(
        csv_query("SELECT param FROM params ORDER BY param_id").lines().skip(1).collect::<Vec<_>>(),
        ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"]
    );

    // Not a TorchScript file: named, nothing written.
    let other = dir.path().join("other");
    let weights = fixtures.join("weights.safetensors");
    let o = replay(&other, &ckpt, &["--torchscript", weights.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("weights.safetensors: not a TorchScript module"), "{}", stderr(&o));
    assert!(!other.exists());
    // A checkpoint without one of the module's params: the file and the tensor are named, nothing written.
    let partial = dir.path().join("partial");
    std::fs::create_dir(&partial).unwrap();
    let mut tensors = tch::Tensor::read_safetensors(&weights).unwrap();
    tensors.retain(|(n, _)| n != "fc2.weight");
    tch::Tensor::write_safetensors(&tensors, partial.join("step-00000007.safetensors")).unwrap();
    let o = replay(&other, &partial, &["--torchscript", module]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("step-00000007.safetensors") && err.contains("no tensor \"fc2.weight\""), "{err}");
    assert!(!other.exists());
    // Examples of another width: the module, the shapes and libtorch's complaint.
    let wide = dir.path().join("d65.csv");
    let mut text = (0..65).map(|j| format!("p{j}")).collect::<Vec<_>>().join(",") + ",label\n";
    for i in 0..10 {
        text += &format!("{},{}\n", vec!["0.5"; 65].join(","), i % 2);
    }
    std::fs::write(&wide, text).unwrap();
    let o = gradlake(&[
        "replay",
        "--torchscript",
        module,
        "--checkpoints",
        ckpt.to_str().unwrap(),
        "--dataset",
        &format!("csv:{}", wide.display()),
        "--out",
        other.to_str().unwrap(),
        "--batch-size",
        "4",
        "--samples",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("mlp.pt") && err.contains("[2, 65]") && err.contains("cannot be multiplied"), "{err}");
    // A TorchScript module and a built-in model at once is bad usage.
    let o = replay(&other, &ckpt, &["--torchscript", module, "--model", "lenet"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--torchscript") && stderr(&o).contains("--model"), "{}", stderr(&o));
}

/// `watch` follows a lake written while it runs and, once the run is marked
/// finished, reports what `analyze` computes on the finished lake: the same
/// dimension-wise counts, and the same spectrum fits up to the f32 rounding of
/// sketch rows (analyze merges partial sketches across partitions).
#[test]
fn watch_of_a_growing_lake_ends_with_the_numbers_of_analyze() {
    // Small files, so the watcher sees the lake grow file by file.
    let writer = [
        "synth",
        "--run",
        "grow",
        "--steps",
        "40",
        "--file-size",
        "1M",
        "--row-group-size",
        "256K",
        "--samples",
        "24",
        "--draws",
        "8",
    ];
    watch_while_writing(&writer, "grow", &[], None);
}

/// The same with the lake in S3 (moto on 127.0.0.1): `watch` lists the run's prefixes
/// and reads each new object once, while `synth` uploads them.
#[test]
fn watch_of_a_lake_growing_in_s3_ends_with_the_numbers_of_analyze() {
    let s3 = moto::Moto::start("bucket");
    let writer = [
        "synth",
        "--run",
        "up",
        "--steps",
        "24",
        "--file-size",
        "1M",
        "--row-group-size",
        "256K",
        "--samples",
        "24",
        "--draws",
        "8",
    ];
    watch_while_writing(&writer, "up", &s3.env(), Some("s3://bucket/watched"));
}

/// The same on a recorded run: a softmax layer's per-sample bias gradients sum to zero, so
/// their covariance has a round-off eigenvalue that both must leave out alike.
#[cfg(feature = "torch")]
#[test]
fn watch_of_a_recording_ends_with_the_numbers_of_analyze() {
    let writer = [
        "record",
        "--run",
        "rec",
        "--steps",
        "30",
        "--hidden",
        "16",
        "--synthetic-examples",
        "256",
        "--samples",
        "40",
        "--draws",
        "8",
        "--at",
        "0,29",
        "--file-size",
        "1M",
        "--row-group-size",
        "256K",
    ];
    watch_while_writing(&writer, "rec", &[("OMP_NUM_THREADS".into(), "1".into())], None);
}

/// Starts `watch` on an empty directory (or `url`), writes a lake with `writer` (a gradlake
/// command without `--out`) while it polls, and compares its final report with `analyze`.
fn watch_while_writing(writer: &[&str], run: &str, env: &[(String, String)], url: Option<&str>) {
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let lake_s = url.unwrap_or(lake.to_str().unwrap());
    let watch_tmp = dir.path().join("tmp");
    std::fs::create_dir(&watch_tmp).unwrap();
    let watch = Command::new(env!("CARGO_BIN_EXE_gradlake"))
        .args(["watch", lake_s, "--run", run, "--interval", "0.05", "--idle-timeout", "60", "--format", "json"])
        .envs(env.iter().cloned())
        .env("TMPDIR", &watch_tmp)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start watch");
    let mut write = Command::new(env!("CARGO_BIN_EXE_gradlake"));
    write.args(&writer[..1]).args(["--out", lake_s]).args(&writer[1..]).envs(env.iter().cloned());
    let written = write.output().unwrap();
    assert!(written.status.success(), "{}", stderr(&written));
    let watched = watch.wait_with_output().unwrap();
    assert!(watched.status.success(), "{}", stderr(&watched));
    let w: serde_json::Value = serde_json::from_slice(&watched.stdout).unwrap();
    assert_eq!(w["finished"], true, "{w}");
    let files = w["files"].as_u64().unwrap();
    assert!(files > 6, "the lake should have grown over several files, watch read {files}");
    let left: Vec<_> = std::fs::read_dir(&watch_tmp).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "watch leaves nothing in its temporary directory: {left:?}");

    let a = gradlake_with(
        &["analyze", lake_s, "--only", "dimension_wise,spectrum", "--param", "phases=1", "--format", "json"],
        env,
    );
    assert!(a.status.success(), "{}", stderr(&a));
    let a: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    let analysis = |name: &str| a["analyses"].as_array().unwrap().iter().find(|x| x["name"] == name).unwrap().clone();
    for row in analysis("dimension_wise")["summary"].as_array().unwrap() {
        let kind = row["kind"].as_str().unwrap();
        assert_eq!(w["dimension_wise"][kind]["tests"], row["tests"], "{kind}");
        assert_eq!(w["dimension_wise"][kind]["rate"], row["power_law_rate"], "{kind}");
    }
    let spectra = analysis("spectrum")["tables"]["spectrum"].as_array().unwrap().clone();
    let per_param: Vec<_> = spectra.iter().filter(|r| r["param"] != "(model)").collect();
    let watched_spectra = w["spectrum"].as_array().unwrap();
    assert_eq!(watched_spectra.len(), per_param.len());
    for r in watched_spectra {
        let q = per_param
            .iter()
            .find(|q| q["kind"] == r["kind"] && q["step"] == r["step"] && q["param"] == r["param"])
            .unwrap();
        assert_eq!(
            (&q["n"], &q["kmin"], &q["kmax"], &q["power_law"]),
            (&r["n"], &r["kmin"], &r["kmax"], &r["power_law"]),
            "{r}"
        );
        for field in ["s", "r2", "ks_s"] {
            match (q[field].as_f64(), r[field].as_f64()) {
                (Some(x), Some(y)) => assert!((x - y).abs() <= 1e-5 * x.abs(), "{field}: analyze {x}, watch {y} ({r})"),
                _ => assert_eq!(q[field], r[field], "{field}: {r}"),
            }
        }
    }
}

/// `gradlake worker` processes on loopback ports, killed when the test ends (also when it fails).
struct Workers(Vec<std::process::Child>);

impl Workers {
    /// Starts `n` workers serving `lake`; returns them with their addresses (each asked for port 0
    /// and prints the one it got).
    fn start(n: usize, lake: &Path) -> (Self, Vec<String>) {
        Self::start_with(n, lake, &[])
    }

    /// The same, with more arguments for each worker.
    fn start_with(n: usize, lake: &Path, extra: &[&str]) -> (Self, Vec<String>) {
        use std::io::BufRead;
        let mut workers = Self(Vec::new());
        let mut addresses = Vec::new();
        for _ in 0..n {
            let mut child = Command::new(env!("CARGO_BIN_EXE_gradlake"))
                .args(["worker", "--listen", "127.0.0.1:0", "--lake", lake.to_str().unwrap()])
                .args(extra)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("start gradlake worker");
            let mut line = String::new();
            std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
            workers.0.push(child);
            let addr = line.trim().strip_prefix("gradlake worker listening on ").unwrap_or_else(|| panic!("{line:?}"));
            addresses.push(addr.to_string());
        }
        (workers, addresses)
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn sql_and_analyze_on_three_worker_processes_give_the_local_results() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    synth(&lake, &["--seed", "5"]);
    let (running, addresses) = Workers::start(3, &lake);
    let workers = addresses.join(",");
    let lake_arg = lake.to_str().unwrap();
    // Exact aggregates, so the text is the same whatever order partial results merge in.
    let sql = "SELECT param, kind, count(*) AS n, max(abs(value)) AS m FROM grad_values GROUP BY param, kind ORDER BY param, kind";
    let local = gradlake(&["sql", "--lake", lake_arg, "--format", "csv", sql]);
    let remote =
        gradlake(&["sql", "--lake", lake_arg, "--format", "csv", "--workers", &workers, "--bytes-per-task", "1", sql]);
    assert!(remote.status.success(), "{}", stderr(&remote));
    assert_eq!(stdout(&remote), stdout(&local));
    assert!(stdout(&local).lines().count() > 4, "{}", stdout(&local));

    let analyze = |extra: &[&str]| {
        let mut args = vec!["analyze", lake_arg, "--only", "dimension_wise", "--format", "json"];
        args.extend_from_slice(extra);
        let o = gradlake(&args);
        assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
        let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        json["analyses"][0]["summary"].clone()
    };
    let local = analyze(&[]);
    let remote = analyze(&["--workers", &workers, "--bytes-per-task", "1"]);
    assert!(local.as_array().is_some_and(|rows| !rows.is_empty()), "{local}");
    // The verdict counts are integers: equal.
    assert_eq!(remote, local);

    // A worker killed mid-query: the query fails, promptly, naming a worker; the others stay up.
    let slow = "SELECT sum(g['p_value']) AS p FROM (SELECT param, kind, step, powerlaw_gof(abs(value), 5000, 1) AS g FROM grad_values GROUP BY param, kind, step)";
    let started = std::time::Instant::now();
    let query = Command::new(env!("CARGO_BIN_EXE_gradlake"))
        .args(["sql", "--lake", lake_arg, "--workers", &workers, "--bytes-per-task", "1", slow])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut running = running;
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let mut victim = running.0.remove(0);
    victim.kill().unwrap();
    victim.wait().unwrap();
    let killed_at = started.elapsed();
    let broken = query.wait_with_output().unwrap();
    assert_eq!(broken.status.code(), Some(1), "finished before the kill at {killed_at:?}? {}", stdout(&broken));
    assert!(stderr(&broken).contains("127.0.0.1:"), "{}", stderr(&broken));
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "{:?}", started.elapsed());
    eprintln!("a worker killed after {killed_at:?}: {}", stderr(&broken));

    // The stages ran on the workers: without them the same query fails, promptly and saying why.
    drop(running);
    let started = std::time::Instant::now();
    let gone = gradlake(&["sql", "--lake", lake_arg, "--workers", &workers, "--bytes-per-task", "1", sql]);
    assert_eq!(gone.status.code(), Some(1), "{}", stdout(&gone));
    assert!(stderr(&gone).contains("cannot reach worker http://127.0.0.1:"), "{}", stderr(&gone));
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "{:?}", started.elapsed());
    eprintln!("without workers: {}", stderr(&gone));

    let bad = gradlake(&["sql", "--lake", lake_arg, "--workers", "127.0.0.1", "SELECT 1"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("--workers") && stderr(&bad).contains("HOST:PORT"), "{}", stderr(&bad));
}

/// Workers started with `--tls-cert/--tls-key` answer a coordinator given `--tls-ca`, with the
/// local results; plain HTTP to them is refused, naming the worker.
#[test]
fn workers_serve_tls_to_a_coordinator_that_trusts_their_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    synth(&lake, &["--seed", "6"]);
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let (_running, addresses) = Workers::start_with(2, &lake, &["--tls-cert", cert, "--tls-key", key]);
    let workers = addresses.join(",");
    let lake_arg = lake.to_str().unwrap();
    let sql = "SELECT param, kind, count(*) AS n, max(abs(value)) AS m FROM grad_values GROUP BY param, kind ORDER BY param, kind";
    let local = gradlake(&["sql", "--lake", lake_arg, "--format", "csv", sql]);
    let on = |extra: &[&str]| {
        let mut args =
            vec!["sql", "--lake", lake_arg, "--format", "csv", "--workers", &workers, "--bytes-per-task", "1"];
        args.extend_from_slice(extra);
        args.push(sql);
        gradlake(&args)
    };
    let remote = on(&["--tls-ca", cert]);
    assert!(remote.status.success(), "{}", stderr(&remote));
    assert_eq!(stdout(&remote), stdout(&local));
    let plain = on(&[]);
    assert_eq!(plain.status.code(), Some(1), "{}", stdout(&plain));
    assert!(stderr(&plain).contains("worker http://127.0.0.1:"), "{}", stderr(&plain));
    let missing = on(&["--tls-ca", "/nonexistent/ca.pem"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("--tls-ca /nonexistent/ca.pem"), "{}", stderr(&missing));
}

#[path = "../queries/tests/common/moto.rs"]
#[allow(dead_code)] // the library-side options; this file passes the environment
mod moto;

fn gradlake_with(args: &[&str], env: &[(String, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gradlake")).args(args).envs(env.iter().cloned()).output().expect("run gradlake")
}

/// A lake written to S3 (moto on 127.0.0.1) by `synth`, checked, queried and analysed there,
/// gives what the same run written to a directory gives; errors name the URL.
#[test]
fn a_lake_in_s3_is_written_checked_and_queried_like_a_directory() {
    let s3 = moto::Moto::start("bucket");
    let env = s3.env();
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("lake");
    let url = "s3://bucket/team/lake";
    let synth_args = |out: &str| {
        vec![
            "synth",
            "--out",
            out,
            "--steps",
            "6",
            "--samples",
            "4",
            "--draws",
            "2",
            "--params",
            "w:40x30,b:30",
            "--seed",
            "9",
        ]
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>()
    };
    for out in [local.to_str().unwrap(), url] {
        let args = synth_args(out);
        let o = gradlake_with(&args.iter().map(String::as_str).collect::<Vec<_>>(), &env);
        assert!(o.status.success(), "{out}: {}", stderr(&o));
    }
    // The same run again is refused, naming it.
    let args = synth_args(url);
    let again = gradlake_with(&args.iter().map(String::as_str).collect::<Vec<_>>(), &env);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("already exists in s3://bucket/team/lake"), "{}", stderr(&again));

    let check = gradlake_with(&["check", url], &env);
    assert!(check.status.success(), "{}", stderr(&check));
    let local_check = gradlake(&["check", local.to_str().unwrap()]);
    // "<lake>: N files, 1 runs, rows: ...; ok" — the same counts in both places.
    let tail = |o: &Output| stdout(o).split_once(": ").map(|(_, t)| t.to_string()).unwrap();
    assert_eq!(tail(&check), tail(&local_check));

    let sql = "SELECT kind, param, count(*) AS n, max(abs(value)) AS m FROM grad_values GROUP BY kind, param ORDER BY kind, param";
    let from_s3 = gradlake_with(&["sql", "--lake", url, "--format", "csv", sql], &env);
    assert!(from_s3.status.success(), "{}", stderr(&from_s3));
    assert_eq!(
        stdout(&from_s3),
        stdout(&gradlake(&["sql", "--lake", local.to_str().unwrap(), "--format", "csv", sql]))
    );

    let analyze = |lake: &str| {
        let o = gradlake_with(&["analyze", lake, "--only", "dimension_wise", "--format", "json"], &env);
        assert!(o.status.success(), "{lake}: {}", stderr(&o));
        let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        json["analyses"][0]["summary"].clone()
    };
    assert_eq!(analyze(url), analyze(local.to_str().unwrap()));

    // A missing bucket and an unreachable endpoint are errors naming the URL, promptly.
    let missing = gradlake_with(&["sql", "--lake", "s3://nobucket/lake", "SELECT count(*) FROM grads"], &env);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("s3://nobucket/lake"), "{}", stderr(&missing));
    let mut unreachable = env.clone();
    unreachable.retain(|(k, _)| k != "AWS_ENDPOINT");
    unreachable.push(("AWS_ENDPOINT".into(), "http://127.0.0.1:9".into()));
    let started = std::time::Instant::now();
    let down = gradlake_with(&["check", url], &unreachable);
    assert_eq!(down.status.code(), Some(1));
    assert!(stderr(&down).contains(url), "{}", stderr(&down));
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "{:?}", started.elapsed());
}

#[path = "../queries/tests/common/azurite.rs"]
#[allow(dead_code)] // the library-side options; this file passes the environment
mod azurite;

/// A lake in Azure Blob storage (Azurite on 127.0.0.1, settings from `AZURE_*` in the
/// environment): `synth` writes it, `check` and `sql` read it as they read a directory,
/// and a wrong account key is an error that names the URL.
#[test]
fn a_lake_in_azure_blob_storage_is_written_checked_and_queried_like_a_directory() {
    let az = azurite::Azurite::start("lakes");
    let env = az.env();
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("lake");
    let url = "az://lakes/team/lake";
    for out in [local.to_str().unwrap(), url] {
        let args =
            ["synth", "--out", out, "--steps", "4", "--samples", "3", "--draws", "2", "--params", "w:20x10,b:10"];
        let o = gradlake_with(&args, &env);
        assert!(o.status.success(), "{out}: {}", stderr(&o));
    }
    let check = gradlake_with(&["check", url], &env);
    assert!(check.status.success(), "{}", stderr(&check));
    let tail = |o: &Output| stdout(o).split_once(": ").map(|(_, t)| t.to_string()).unwrap();
    assert_eq!(tail(&check), tail(&gradlake(&["check", local.to_str().unwrap()])));
    let sql = "SELECT kind, param, count(*) AS n, min(value) AS lo, max(value) AS hi FROM grad_values GROUP BY kind, param ORDER BY kind, param";
    let remote = gradlake_with(&["sql", "--lake", url, "--format", "csv", sql], &env);
    assert!(remote.status.success(), "{}", stderr(&remote));
    let here = gradlake(&["sql", "--lake", local.to_str().unwrap(), "--format", "csv", sql]);
    assert_eq!(stdout(&remote), stdout(&here));

    let mut wrong = env.clone();
    wrong.retain(|(k, _)| k != "AZURE_STORAGE_ACCOUNT_KEY");
    wrong.push(("AZURE_STORAGE_ACCOUNT_KEY".into(), azurite::KEY.replace('E', "F")));
    let refused = gradlake_with(&["check", url], &wrong);
    assert_eq!(refused.status.code(), Some(1), "{}", stdout(&refused));
    assert!(stderr(&refused).contains(url), "{}", stderr(&refused));
}
