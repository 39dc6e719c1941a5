//! Lakes in object stores: lake URLs, stores built from the environment, and
//! opening a lake with one listing and concurrent footer reads.
//!
//! A lake is a local path, a `file://` URL, or `s3://bucket/prefix`,
//! `gs://bucket/prefix`, `az://container/prefix` (also `abfs`/`abfss`). The
//! layout inside is the same as on disk. Credentials, regions and endpoints come
//! from the stores' usual environment variables (`AWS_ACCESS_KEY_ID`,
//! `AWS_ENDPOINT`, `AWS_ALLOW_HTTP`, `GOOGLE_APPLICATION_CREDENTIALS`,
//! `AZURE_STORAGE_*`, …) through the builders' `from_env`; nothing is built in.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use datafusion::common::{DataFusionError, Result as DfResult};
use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
use datafusion::execution::cache::cache_manager::FileMetadataCache;
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use futures::{StreamExt, TryStreamExt};
use gradlake_ingest::check::{UNVERIFIED, check_metadata};
use gradlake_ingest::{FilePublisher, Table};
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::path::Path as StorePath;
use object_store::{BackoffConfig, ObjectMeta, ObjectStore, ObjectStoreExt, RetryConfig};
use url::Url;

use crate::error::{PipelineError, Result};

/// Footers fetched at once while a lake opens: enough to hide a store's
/// latency, few enough not to be throttled. `GRADLAKE_FOOTER_CONCURRENCY`
/// overrides it (bench/store_open.sh measures 1 against the default).
const FOOTER_CONCURRENCY: usize = 32;

/// Bytes read from the end of a file in its first request: with the session's
/// metadata cache, DataFusion keeps the page index with the footer, so a first
/// read this large usually gets footer, metadata and page index in one request
/// instead of three (measured on moto: 3 requests a file without it).
const FOOTER_HINT: usize = 256 << 10;

fn footer_concurrency() -> usize {
    std::env::var("GRADLAKE_FOOTER_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(FOOTER_CONCURRENCY)
}

/// Where a lake is.
#[derive(Debug, Clone)]
pub enum LakeLocation {
    /// A directory on this machine.
    Local(PathBuf),
    /// A prefix in an object store.
    Store(StoreLake),
}

impl LakeLocation {
    /// A lake named by a path or a URL (`file://`, `s3://`, `gs://`, `az://`, `abfs(s)://`).
    /// Building a store reads its settings from the environment; nothing is contacted yet.
    pub fn parse(text: &str) -> Result<Self> {
        Self::parse_with(text, &[])
    }

    /// As [`LakeLocation::parse`], with store settings that override the
    /// environment: the builders' config keys, e.g. `("aws_endpoint", "http://127.0.0.1:9000")`,
    /// `("aws_allow_http", "true")`, `("google_service_account", …)`.
    pub fn parse_with(text: &str, options: &[(String, String)]) -> Result<Self> {
        let Some((scheme, _)) = text.split_once("://") else {
            return Ok(Self::Local(PathBuf::from(text)));
        };
        let url = Url::parse(text).map_err(|e| PipelineError::InvalidArgument(format!("{text}: not a URL ({e})")))?;
        match scheme {
            "file" => url
                .to_file_path()
                .map(Self::Local)
                .map_err(|()| PipelineError::InvalidArgument(format!("{text}: not a local file URL"))),
            "s3" | "s3a" | "gs" | "az" | "abfs" | "abfss" => Ok(Self::Store(StoreLake::new(url, options)?)),
            other => Err(PipelineError::InvalidArgument(format!(
                "{text}: unsupported scheme {other:?} (a path, file://, s3://, gs://, az://, abfs:// or abfss://)"
            ))),
        }
    }

    /// The lake as the user named it, for messages.
    pub fn display(&self) -> String {
        match self {
            Self::Local(path) => path.display().to_string(),
            Self::Store(lake) => lake.url.to_string(),
        }
    }
}

/// A lake under a prefix of an object store.
#[derive(Debug, Clone)]
pub struct StoreLake {
    /// `scheme://bucket/prefix/`, with the trailing slash.
    url: Url,
    /// `scheme://bucket`: the key the store is registered under.
    bucket: Url,
    prefix: StorePath,
    store: Arc<dyn ObjectStore>,
}

impl StoreLake {
    fn new(mut url: Url, options: &[(String, String)]) -> Result<Self> {
        if url.host_str().is_none_or(str::is_empty) {
            return Err(PipelineError::InvalidArgument(format!("{url}: no bucket or container")));
        }
        if !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        let bucket = Url::parse(&format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default()))
            .map_err(|e| PipelineError::InvalidArgument(format!("{url}: {e}")))?;
        let prefix =
            StorePath::from_url_path(url.path()).map_err(|e| PipelineError::InvalidArgument(format!("{url}: {e}")))?;
        let store = store_for(&bucket, options)?;
        Ok(Self { url, bucket, prefix, store })
    }

    /// The lake's URL, ending with `/`.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// `scheme://bucket`, under which the store is registered.
    pub fn bucket(&self) -> &Url {
        &self.bucket
    }

    /// The store, for writers and readers that go around DataFusion.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The lake's prefix in the store.
    pub fn prefix(&self) -> &StorePath {
        &self.prefix
    }
}

/// Time-outs and retries: an unreachable store fails within seconds, with the
/// URL and what went wrong, instead of hanging. Client settings go in as config
/// keys, after the environment's: replacing the builder's client options would
/// drop what the environment set there (e.g. `AWS_ALLOW_HTTP`).
fn client_defaults() -> ([(&'static str, &'static str); 3], RetryConfig) {
    let client = [("connect_timeout", "5s"), ("timeout", "120s"), ("pool_idle_timeout", "30s")];
    let retry = RetryConfig {
        max_retries: 3,
        retry_timeout: Duration::from_secs(30),
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
    };
    (client, retry)
}

/// The store behind `scheme://bucket`, configured from the environment and then `options`.
pub fn store_for(bucket: &Url, options: &[(String, String)]) -> Result<Arc<dyn ObjectStore>> {
    let (client, retry) = client_defaults();
    let url = bucket.as_str();
    let settings: Vec<(&str, &str)> =
        client.into_iter().chain(options.iter().map(|(k, v)| (k.as_str(), v.as_str()))).collect();
    let bad_key = |key: &str, e: object_store::Error| {
        PipelineError::InvalidArgument(format!("{url}: unknown store option {key:?} ({e})"))
    };
    let built: object_store::Result<Arc<dyn ObjectStore>> = match bucket.scheme() {
        "s3" | "s3a" => {
            let mut b = AmazonS3Builder::from_env().with_url(url).with_retry(retry);
            for &(key, value) in &settings {
                b = b.with_config(key.parse().map_err(|e| bad_key(key, e))?, value);
            }
            b.build().map(|s| Arc::new(s) as _)
        }
        "gs" => {
            let mut b = GoogleCloudStorageBuilder::from_env().with_url(url).with_retry(retry);
            for &(key, value) in &settings {
                b = b.with_config(key.parse().map_err(|e| bad_key(key, e))?, value);
            }
            b.build().map(|s| Arc::new(s) as _)
        }
        "az" | "abfs" | "abfss" => {
            let mut b = MicrosoftAzureBuilder::from_env().with_url(url).with_retry(retry);
            for &(key, value) in &settings {
                b = b.with_config(key.parse().map_err(|e| bad_key(key, e))?, value);
            }
            b.build().map(|s| Arc::new(s) as _)
        }
        other => return Err(PipelineError::InvalidArgument(format!("{url}: no object store for scheme {other:?}"))),
    };
    built.map_err(|e| PipelineError::InvalidArgument(format!("{url}: cannot configure the store: {e}")))
}

/// DataFusion's store registry, which also builds stores for `s3://`, `gs://`
/// and `az://` URLs from the environment on first use (so a plan that names a
/// bucket finds it, on a coordinator or a worker), unless made `closed`.
#[derive(Debug)]
pub(crate) struct EnvStores {
    inner: DefaultObjectStoreRegistry,
    /// Only stores registered explicitly (a worker serves only its lakes).
    closed: bool,
}

impl EnvStores {
    pub fn open() -> Self {
        Self { inner: DefaultObjectStoreRegistry::new(), closed: false }
    }

    pub fn closed() -> Self {
        Self { inner: DefaultObjectStoreRegistry::new(), closed: true }
    }
}

impl ObjectStoreRegistry for EnvStores {
    fn register_store(&self, url: &Url, store: Arc<dyn ObjectStore>) -> Option<Arc<dyn ObjectStore>> {
        self.inner.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> DfResult<Arc<dyn ObjectStore>> {
        self.inner.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> DfResult<Arc<dyn ObjectStore>> {
        match self.inner.get_store(url) {
            Ok(store) => Ok(store),
            Err(e) if self.closed || !matches!(url.scheme(), "s3" | "s3a" | "gs" | "az" | "abfs" | "abfss") => Err(e),
            Err(_) => {
                let bucket = Url::parse(&format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default()))
                    .map_err(|e| DataFusionError::External(Box::new(e)))?;
                let store = store_for(&bucket, &[]).map_err(|e| DataFusionError::External(Box::new(e)))?;
                self.inner.register_store(&bucket, Arc::clone(&store));
                Ok(store)
            }
        }
    }
}

/// What verifying a lake in a store found.
#[derive(Debug, Default)]
pub struct StoreScan {
    /// Damaged files (URL, what is wrong).
    pub damaged: Vec<(String, String)>,
    /// Damaged files' store paths, to hide from listings.
    pub(crate) hidden: HashSet<StorePath>,
    /// Harmless findings: objects that are no part of the layout.
    pub warnings: Vec<String>,
    /// Files whose footers were read.
    pub files: usize,
    /// Rows of each table, from the footers of its sound files.
    pub rows: BTreeMap<&'static str, u64>,
    /// The runs that have files.
    pub runs: BTreeSet<String>,
}

/// Lists `lake` once and verifies every table file's footer (format version,
/// table, schema), fetching up to [`FOOTER_CONCURRENCY`] footers at a time into
/// the session's file metadata cache, where the queries find them: no footer is
/// read twice in a session.
/// Without a `cache` (as `gradlake check` does), the footers are read and dropped.
pub async fn scan_store_lake(lake: &StoreLake, cache: Option<Arc<FileMetadataCache>>) -> Result<StoreScan> {
    let store = Arc::clone(&lake.store);
    let listed: Vec<ObjectMeta> = store
        .list(Some(&lake.prefix))
        .try_collect()
        .await
        .map_err(|e| PipelineError::InvalidArgument(format!("{}: cannot list the lake: {e}", lake.url)))?;
    let mut scan = StoreScan::default();
    let mut files = Vec::new();
    let skip = lake.prefix.parts().count();
    for meta in listed {
        let parts: Vec<String> = meta.location.parts().skip(skip).map(|p| p.as_ref().to_string()).collect();
        let url = format!("{}{}", lake.url, parts.join("/"));
        let table = parts.first().and_then(|name| Table::ALL.into_iter().find(|t| t.name() == name));
        match (table, parts.as_slice()) {
            (Some(table), [_, run, file])
                if run.starts_with("run=") && file.ends_with(".parquet") && !file.starts_with('.') =>
            {
                scan.runs.insert(run["run=".len()..].to_string());
                files.push((table, meta, url));
            }
            _ => scan.warnings.push(format!("{url}: not part of the lake's layout (ignored)")),
        }
    }
    let checks = futures::stream::iter(files)
        .map(|(table, meta, url)| {
            let (store, cache) = (Arc::clone(&store), cache.clone());
            async move {
                let fetched = DFParquetMetadata::new(store.as_ref(), &meta)
                    .with_metadata_size_hint(Some(FOOTER_HINT))
                    .with_file_metadata_cache(cache)
                    .fetch_metadata()
                    .await;
                let verdict = match fetched {
                    Ok(metadata) => check_metadata(&metadata, table)
                        .map(|version| (metadata.file_metadata().num_rows() as u64, version)),
                    Err(e) => Err(format!("unreadable footer (truncated, or not Parquet): {e}")),
                };
                (table, meta.location, url, verdict)
            }
        })
        .buffer_unordered(footer_concurrency());
    let mut results: Vec<_> = checks.collect().await;
    results.sort_by(|a, b| a.2.cmp(&b.2));
    for (table, location, url, verdict) in results {
        scan.files += 1;
        match verdict {
            Ok((rows, version)) => {
                *scan.rows.entry(table.name()).or_default() += rows;
                if table == Table::Grads && version < 2 {
                    scan.warnings.push(format!("{url}: format version {version}: {UNVERIFIED}"));
                }
            }
            Err(message) => {
                scan.hidden.insert(location);
                scan.damaged.push((url, message));
            }
        }
    }
    Ok(scan)
}

/// Parts of a multipart upload: the writer's bounded memory, per file in flight.
const UPLOAD_PART_BYTES: usize = 8 << 20;

/// Parts uploaded at once per file.
const UPLOAD_PARTS_IN_FLIGHT: usize = 2;

/// Whether `run` already has objects in `lake` (a writer never adds to a run).
pub async fn run_exists(lake: &StoreLake, run: &str) -> Result<bool> {
    for table in Table::ALL {
        let prefix = lake.prefix.clone().join(table.name()).join(format!("run={run}"));
        let first = lake.store.list(Some(&prefix)).next().await;
        match first {
            None => {}
            Some(Ok(_)) => return Ok(true),
            Some(Err(e)) => {
                return Err(PipelineError::InvalidArgument(format!("{}: cannot list the lake: {e}", lake.url)));
            }
        }
    }
    Ok(false)
}

/// A [`FilePublisher`] for a [`gradlake_ingest::LakeWriter`] that writes into
/// the local directory `staging`: each finished file is uploaded to the same
/// place under `lake` — one PUT, or a multipart upload completed only when the
/// whole file is sent, so a reader never lists a partial object — and its local
/// copy removed. Memory: [`UPLOAD_PARTS_IN_FLIGHT`] parts of
/// [`UPLOAD_PART_BYTES`]. The uploads run on a thread of their own, so the
/// writer may be driven from inside an async runtime.
pub fn uploader(lake: &StoreLake, staging: &std::path::Path) -> Result<FilePublisher> {
    type Request = (PathBuf, std::sync::mpsc::SyncSender<std::io::Result<()>>);
    let (tx, rx) = std::sync::mpsc::channel::<Request>();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| PipelineError::InvalidArgument(format!("{}: cannot start the uploader: {e}", lake.url)))?;
    let (store, prefix, url, staging) =
        (Arc::clone(&lake.store), lake.prefix.clone(), lake.url.clone(), staging.to_path_buf());
    std::thread::Builder::new()
        .name("gradlake-uploader".into())
        .spawn(move || {
            for (path, reply) in rx {
                let result = runtime.block_on(upload(&store, &prefix, &url, &staging, &path));
                let _ = reply.send(result);
            }
        })
        .map_err(|e| PipelineError::InvalidArgument(format!("cannot start the uploader thread: {e}")))?;
    let tx = std::sync::Mutex::new(tx);
    Ok(FilePublisher(Arc::new(move |path: &std::path::Path| {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        let sent = tx.lock().map_err(|_| std::io::Error::other("uploader poisoned"))?.send((path.to_path_buf(), reply));
        sent.map_err(|_| std::io::Error::other("the uploader thread stopped"))?;
        answer.recv().map_err(|_| std::io::Error::other("the uploader thread stopped"))?
    })))
}

/// Uploads `path` (under `staging`) to the same relative place under `prefix`, then removes it.
async fn upload(
    store: &Arc<dyn ObjectStore>,
    prefix: &StorePath,
    url: &Url,
    staging: &std::path::Path,
    path: &std::path::Path,
) -> std::io::Result<()> {
    use std::io::Read;
    let relative = path.strip_prefix(staging).map_err(std::io::Error::other)?;
    let mut location = prefix.clone();
    for part in relative.components() {
        location = location.join(part.as_os_str().to_string_lossy().as_ref());
    }
    let failed =
        |e: object_store::Error| std::io::Error::other(format!("uploading to {url}{}: {e}", relative.display()));
    let size = std::fs::metadata(path)?.len() as usize;
    if size <= UPLOAD_PART_BYTES {
        store.put(&location, std::fs::read(path)?.into()).await.map_err(failed)?;
    } else {
        let upload = store.put_multipart(&location).await.map_err(failed)?;
        let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, UPLOAD_PART_BYTES);
        let mut file = std::fs::File::open(path)?;
        let mut buf = vec![0u8; UPLOAD_PART_BYTES];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            if let Err(e) = writer.wait_for_capacity(UPLOAD_PARTS_IN_FLIGHT).await {
                writer.abort().await.ok();
                return Err(failed(e));
            }
            writer.write(&buf[..n]);
        }
        writer.finish().await.map_err(failed)?;
    }
    std::fs::remove_file(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lakes_are_paths_or_urls() {
        assert!(
            matches!(LakeLocation::parse("some/dir").unwrap(), LakeLocation::Local(p) if p == std::path::Path::new("some/dir"))
        );
        assert!(
            matches!(LakeLocation::parse("file:///tmp/lake").unwrap(), LakeLocation::Local(p) if p == std::path::Path::new("/tmp/lake"))
        );
        // Making a store contacts nothing: this runs offline.
        let LakeLocation::Store(lake) = LakeLocation::parse("s3://bucket/runs/lake").unwrap() else { panic!() };
        assert_eq!(lake.url().as_str(), "s3://bucket/runs/lake/");
        assert_eq!(lake.prefix().as_ref(), "runs/lake");
        for bad in ["ftp://host/x", "s3://", "file://host/x"] {
            let e = LakeLocation::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad.trim_end_matches('/')) || e.contains("bucket"), "{bad}: {e}");
        }
    }
}
