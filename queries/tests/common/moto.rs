//! A local S3 API server for tests: moto (scripts/setup-moto), started on a free port of
//! 127.0.0.1 and stopped when dropped. Std only, so that any test crate can include it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running moto server.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

/// The moto_server executable: `GRADLAKE_MOTO_SERVER`, or the one scripts/setup-moto made.
fn server_path() -> PathBuf {
    if let Some(path) = std::env::var_os("GRADLAKE_MOTO_SERVER") {
        return PathBuf::from(path);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = if root.join("scripts").is_dir() { root } else { root.join("..") };
    let recorded = root.join(".deps/moto-server");
    let path = std::fs::read_to_string(&recorded).unwrap_or_else(|_| {
        panic!("no S3 test server: run scripts/setup-moto (scripts/test does), {} missing", recorded.display())
    });
    PathBuf::from(path.trim())
}

impl Moto {
    /// Starts a server and makes `bucket` in it.
    pub fn start(bucket: &str) -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(server_path())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server (scripts/setup-moto)");
        let moto = Self { child, endpoint: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not listen on port {port} within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        moto.request("PUT", &format!("/{bucket}"));
        moto
    }

    /// One HTTP request without a body; panics unless the answer is 2xx.
    fn request(&self, method: &str, path: &str) {
        let addr = self.endpoint.trim_start_matches("http://");
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(stream, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let status = answer.split_whitespace().nth(1).unwrap_or("");
        assert!(status.starts_with('2'), "{method} {path}: {answer}");
    }

    /// Store settings that point object_store at this server (any key works with moto).
    pub fn options(&self) -> Vec<(String, String)> {
        self.env().into_iter().map(|(k, v)| (k.to_lowercase(), v)).collect()
    }

    /// The same settings as the environment of a child process.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT", self.endpoint.as_str()),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
