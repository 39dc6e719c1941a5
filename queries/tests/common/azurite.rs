//! A local Azure Blob API server for tests: Azurite (scripts/setup-azurite), started on a free port
//! of 127.0.0.1 over a temporary directory and stopped when dropped. Needs the dev-dependencies
//! `ring`, `base64`, `httpdate` and `tempfile` (a container is made with one Shared Key request).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Azurite's fixed development account (public, documented by Microsoft).
pub const ACCOUNT: &str = "devstoreaccount1";
/// Its key.
pub const KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const VERSION: &str = "2021-08-06";

/// A running Azurite blob server.
pub struct Azurite {
    child: Child,
    _data: tempfile::TempDir,
    port: u16,
}

/// The azurite-blob executable: `GRADLAKE_AZURITE_BLOB`, or the one scripts/setup-azurite made.
fn server_path() -> PathBuf {
    if let Some(path) = std::env::var_os("GRADLAKE_AZURITE_BLOB") {
        return PathBuf::from(path);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = if root.join("scripts").is_dir() { root } else { root.join("..") };
    let recorded = root.join(".deps/azurite-blob");
    let path = std::fs::read_to_string(&recorded).unwrap_or_else(|_| {
        panic!("no Azure test server: run scripts/setup-azurite (scripts/test does), {} missing", recorded.display())
    });
    PathBuf::from(path.trim())
}

impl Azurite {
    /// Starts a server and makes `container` in it.
    pub fn start(container: &str) -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let data = tempfile::tempdir().unwrap();
        let child = Command::new(server_path())
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string(), "--location"])
            .arg(data.path())
            .args(["--skipApiVersionCheck", "--loose", "--disableTelemetry", "--silent"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start azurite-blob (scripts/setup-azurite)");
        let azurite = Self { child, _data: data, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "azurite did not listen on port {port} within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        azurite.create_container(container);
        azurite
    }

    /// `PUT ?restype=container`, signed with the account's Shared Key.
    fn create_container(&self, container: &str) {
        let date = httpdate::fmt_http_date(SystemTime::now());
        // VERB, then eleven empty standard headers, the x-ms headers and the resource
        // (the account appears twice on the emulator's path-style URLs).
        let to_sign = format!(
            "PUT\n{}x-ms-date:{date}\nx-ms-version:{VERSION}\n/{ACCOUNT}/{ACCOUNT}/{container}\nrestype:container",
            "\n".repeat(11)
        );
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &STANDARD.decode(KEY).unwrap());
        let signature = STANDARD.encode(ring::hmac::sign(&key, to_sign.as_bytes()).as_ref());
        let addr = format!("127.0.0.1:{}", self.port);
        let mut stream = TcpStream::connect(&addr).unwrap();
        write!(
            stream,
            "PUT /{ACCOUNT}/{container}?restype=container HTTP/1.1\r\nHost: {addr}\r\nx-ms-date: {date}\r\n\
             x-ms-version: {VERSION}\r\nAuthorization: SharedKey {ACCOUNT}:{signature}\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let status = answer.split_whitespace().nth(1).unwrap_or("");
        assert!(status.starts_with('2'), "creating container {container}: {answer}");
    }

    /// Store settings that point object_store's Azure client at this server.
    pub fn options(&self) -> Vec<(String, String)> {
        self.env().into_iter().map(|(k, v)| (k.to_lowercase(), v)).collect()
    }

    /// The same settings as the environment of a child process.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AZURE_STORAGE_ACCOUNT_NAME", ACCOUNT.to_string()),
            ("AZURE_STORAGE_ACCOUNT_KEY", KEY.to_string()),
            ("AZURE_STORAGE_ENDPOINT", format!("http://127.0.0.1:{}/{ACCOUNT}", self.port)),
            ("AZURE_ALLOW_HTTP", "true".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
