//! Killing a writer with SIGKILL at any moment leaves a lake whose every
//! visible file is whole: `check --deep` passes and queries run.

use std::process::{Command, Stdio};
use std::time::Duration;

use gradlake_ingest::check::{CheckOptions, check_lake};

/// Waits (up to a minute) until `path` exists.
fn wait_for(path: &std::path::Path) {
    let start = std::time::Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < Duration::from_secs(60), "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn kill_9_mid_write_leaves_only_whole_files() {
    let mut saw_visible_grads = false;
    let mut saw_in_progress = false;
    for delay_ms in [300u64, 800, 1500, 2500] {
        let dir = tempfile::tempdir().unwrap();
        let lake = dir.path().join("lake");
        let mut child = Command::new(env!("CARGO_BIN_EXE_gradlake"))
            .args(["synth", "--out", lake.to_str().unwrap(), "--steps", "100000", "--params", "w:1000x500"])
            .args(["--row-group-size", "1M", "--file-size", "3M", "--samples", "0", "--draws", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Count from the moment the writer has created the lake: on a loaded machine the
        // process alone can take longer to start than the shortest delay.
        wait_for(&lake);
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL: no destructor, no flush
        child.wait().unwrap();

        let report = check_lake(&lake, CheckOptions { deep: true }).unwrap();
        assert!(report.is_ok(), "after kill at {delay_ms} ms: {:?}", report.findings);
        saw_visible_grads |= report.rows.get("grads").copied().unwrap_or(0) > 0;
        saw_in_progress |= report.findings.iter().any(|f| f.message.contains("interrupted writer"));

        let o = Command::new(env!("CARGO_BIN_EXE_gradlake"))
            .args(["sql", "--lake", lake.to_str().unwrap(), "--format", "csv"])
            .arg("SELECT count(*) AS n, count(DISTINCT step) AS steps FROM grad_vectors")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert!(saw_visible_grads, "some kill should come after a file was published");
    assert!(saw_in_progress, "some kill should come in the middle of a file");
}

/// The recorder writes through the same writer: killed at random moments while
/// it trains, it leaves whole files only.
#[cfg(feature = "torch")]
#[test]
fn kill_9_while_recording_leaves_only_whole_files() {
    let mut saw_visible_grads = false;
    for delay_ms in [700u64, 1500, 2600] {
        let dir = tempfile::tempdir().unwrap();
        let lake = dir.path().join("lake");
        let mut child = Command::new(env!("CARGO_BIN_EXE_gradlake"))
            .args(["record", "--out", lake.to_str().unwrap(), "--steps", "100000", "--threads", "1"])
            .args(["--synthetic-examples", "256", "--at", "0,1,2,3,4,5,6,7,8,9", "--samples", "16", "--draws", "4"])
            .args(["--row-group-size", "1M", "--file-size", "3M"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for(&lake);
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        let report = check_lake(&lake, CheckOptions { deep: true }).unwrap();
        assert!(report.is_ok(), "after kill at {delay_ms} ms: {:?}", report.findings);
        saw_visible_grads |= report.rows.get("grads").copied().unwrap_or(0) > 0;
    }
    assert!(saw_visible_grads, "some kill should come after a file was published");
}

#[path = "../queries/tests/common/moto.rs"]
#[allow(dead_code)] // the library-side options; this file passes the environment
mod moto;

/// Writing to S3 (moto on 127.0.0.1), a killed writer leaves only whole objects: files of
/// more than one 8 MiB part go up as multipart uploads, which stay invisible until completed.
#[test]
fn kill_9_while_writing_to_s3_leaves_only_whole_objects() {
    let s3 = moto::Moto::start("crash");
    let mut saw_visible_grads = false;
    for (i, delay_ms) in [500u64, 1500, 3000].into_iter().enumerate() {
        let staging = tempfile::tempdir().unwrap();
        let url = format!("s3://crash/lake{i}");
        let mut child = Command::new(env!("CARGO_BIN_EXE_gradlake"))
            .args(["synth", "--out", &url, "--steps", "100000", "--params", "w:1000x500"])
            .args(["--row-group-size", "1M", "--file-size", "12M", "--samples", "0", "--draws", "0"])
            .envs(s3.env())
            .env("TMPDIR", staging.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();

        let check = Command::new(env!("CARGO_BIN_EXE_gradlake")).args(["check", &url]).envs(s3.env()).output().unwrap();
        let text = String::from_utf8_lossy(&check.stdout).into_owned();
        assert!(
            check.status.success(),
            "after kill at {delay_ms} ms: {text}{}",
            String::from_utf8_lossy(&check.stderr)
        );
        saw_visible_grads |= text.contains("grads ");

        let o = Command::new(env!("CARGO_BIN_EXE_gradlake"))
            .args(["sql", "--lake", &url, "--format", "csv"])
            .arg("SELECT count(*) AS n, count(DISTINCT step) AS steps FROM grad_vectors")
            .envs(s3.env())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert!(saw_visible_grads, "some kill should come after a grads object was uploaded");
}
