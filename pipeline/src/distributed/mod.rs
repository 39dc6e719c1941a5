//! Queries on a cluster, with datafusion-distributed.
//!
//! A coordinator is an ordinary [`crate::LakeSession`] whose planner cuts the
//! physical plan into stages at its shuffles and sends them, as DataFusion
//! physical plans, to workers over Arrow Flight ([`Cluster`] in
//! [`crate::SessionOptions`]). A worker ([`serve`]) executes the stages it
//! receives with every gradlake function registered and gradlake's operators
//! decoded by [`GradlakeCodec`]. Workers read the lake's files themselves, by
//! the paths in the plan: a lake on a local disk must be at the same path on
//! every worker (one machine, or a shared file system), and a worker reads only
//! under the lakes it was started with.
//!
//! An aggregate's groups are hash-partitioned across workers at the shuffle
//! before its final stage, so a group whose statistic needs all its values
//! (the exact power-law fits) is finished on one worker, holding those values:
//! a worker's memory bounds the largest group, the cluster's the sum.

mod channels;
mod codec;
mod scan_split;
mod scoped_store;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::local_reads::InlineReads;
use datafusion::common::DataFusionError;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::prelude::SessionContext;
use datafusion_distributed::{
    DistributedExt, SessionStateBuilderExt, Worker, WorkerPlanRewriteEvent, WorkerPlanRewriteEventResponse,
    WorkerQueryContext, WorkerResolver,
};
use http::{HeaderMap, HeaderName, HeaderValue};
use object_store::ObjectStore;
use object_store::path::Path as StorePath;
use tokio::net::TcpListener;
use url::Url;

use channels::NamingChannels;
pub use codec::GradlakeCodec;
use scoped_store::ScopedStore;

use crate::error::{PipelineError, Result};
use crate::store::{EnvStores, LakeLocation};

/// The header that carries a cluster's shared secret on every request.
const SECRET_HEADER: &str = "x-gradlake-secret";

/// The environment variable both sides read the shared secret from.
pub const SECRET_ENV: &str = "GRADLAKE_WORKER_SECRET";

/// The shared secret of [`SECRET_ENV`], if set and not empty.
pub fn secret_from_env() -> Option<String> {
    std::env::var(SECRET_ENV).ok().filter(|s| !s.is_empty())
}

/// The workers a coordinator sends its stages to.
#[derive(Clone, PartialEq, Eq)]
pub struct Cluster {
    workers: Vec<Url>,
    secret: Option<String>,
    bytes_per_task: Option<usize>,
    /// Certificates (PEM) trusted for `https://` workers; `None`: the system's roots.
    tls_ca: Option<Arc<Vec<u8>>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("Cluster")
            .field("workers", &self.workers)
            .field("secret", &self.secret.is_some())
            .field("bytes_per_task", &self.bytes_per_task)
            .field("tls_ca", &self.tls_ca.is_some())
            .finish()
    }
}

impl Cluster {
    /// The workers listening at `addresses` (`host:port`, `http://host:port`, or
    /// `https://host:port` for workers that serve TLS).
    pub fn new<S: AsRef<str>>(addresses: &[S]) -> Result<Self> {
        let workers = addresses
            .iter()
            .map(|a| {
                let a = a.as_ref().trim();
                let url = if a.contains("://") { a.to_string() } else { format!("http://{a}") };
                match Url::parse(&url) {
                    Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.port().is_some() => {
                        Ok(u)
                    }
                    Ok(_) | Err(_) => Err(PipelineError::InvalidArgument(format!(
                        "worker address {a:?}: expected HOST:PORT (e.g. 127.0.0.1:7070) or https://HOST:PORT"
                    ))),
                }
            })
            .collect::<Result<Vec<_>>>()?;
        if workers.is_empty() {
            return Err(PipelineError::InvalidArgument("a cluster needs at least one worker address".into()));
        }
        Ok(Self { workers, secret: None, bytes_per_task: None, tls_ca: None })
    }

    /// Reaches every worker over TLS (addresses without a scheme become
    /// `https://`), trusting the certificates of `ca_pem` (PEM), or the
    /// system's roots when `None`.
    pub fn with_tls(mut self, ca_pem: Option<Vec<u8>>) -> Result<Self> {
        for url in &mut self.workers {
            if url.scheme() == "http" {
                let https = url.as_str().replacen("http://", "https://", 1);
                *url = Url::parse(&https).map_err(|e| PipelineError::InvalidArgument(format!("{https}: {e}")))?;
            }
        }
        self.tls_ca = ca_pem.map(Arc::new);
        Ok(self)
    }

    /// Sends `secret` with every request, for workers started with the same secret.
    pub fn with_secret(mut self, secret: Option<String>) -> Self {
        self.secret = secret;
        self
    }

    /// A cluster from a comma-separated list of addresses.
    pub fn parse(list: &str) -> Result<Self> {
        Self::new(&list.split(',').filter(|s| !s.trim().is_empty()).collect::<Vec<_>>())
    }

    /// Scan about `bytes` of the lake's files in each task (datafusion-distributed's default,
    /// `None`: 16 MiB): smaller spreads a scan over more workers, larger sends fewer plans.
    pub fn with_bytes_per_task(mut self, bytes: Option<usize>) -> Self {
        self.bytes_per_task = bytes;
        self
    }

    /// The workers' URLs.
    pub fn workers(&self) -> &[Url] {
        &self.workers
    }
}

impl WorkerResolver for Cluster {
    fn get_urls(&self) -> std::result::Result<Vec<Url>, DataFusionError> {
        Ok(self.workers.clone())
    }
}

/// Makes `builder`'s sessions plan distributed over `cluster`, sending
/// gradlake's operators with [`GradlakeCodec`].
pub(crate) fn distribute(builder: SessionStateBuilder, cluster: &Cluster) -> Result<SessionStateBuilder> {
    let mut builder = builder
        .with_distributed_planner()
        .with_distributed_worker_resolver(cluster.clone())
        .with_distributed_channel_resolver(NamingChannels::trusting(cluster.tls_ca.clone()))
        .with_distributed_user_codec(GradlakeCodec)
        .with_distributed_scale_up_leaf_node_handler(scan_split::split_file_scan)
        // A stage this process runs itself (one task) is rewritten as a worker's is.
        .with_distributed_worker_plan_rewrite_handler(rewrite_stage);
    if let Some(bytes) = cluster.bytes_per_task {
        if bytes == 0 {
            return Err(PipelineError::InvalidArgument("bytes per task must be at least 1".into()));
        }
        builder = builder.with_distributed_file_scan_config_bytes_per_partition(bytes)?;
    }
    Ok(match &cluster.secret {
        Some(secret) => builder.with_distributed_passthrough_headers(secret_headers(secret)?)?,
        None => builder,
    })
}

/// A stage about to run: gradlake's chunk-wise partial aggregation swapped in.
fn rewrite_stage(ev: WorkerPlanRewriteEvent) -> std::result::Result<WorkerPlanRewriteEventResponse, DataFusionError> {
    Ok(WorkerPlanRewriteEventResponse::new(crate::tables::rewrite_worker_plan(ev.plan)?))
}

fn secret_headers(secret: &str) -> Result<HeaderMap> {
    let value = HeaderValue::from_str(secret).map_err(|_| {
        PipelineError::InvalidArgument(format!("{SECRET_ENV}: the secret must be visible ASCII characters"))
    })?;
    Ok(HeaderMap::from_iter([(HeaderName::from_static(SECRET_HEADER), value)]))
}

/// Compares in time independent of where the strings differ.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len() && given.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// What a worker serves.
#[derive(Debug, Clone, Default)]
pub struct WorkerOptions {
    /// The lakes whose files the worker may read, local or in object stores
    /// (a plan that names any other file fails).
    pub lakes: Vec<LakeLocation>,
    /// Memory the worker's query operators may use; `None`: unbounded.
    pub memory_limit: Option<usize>,
    /// A secret every request must carry (coordinators send it from
    /// [`SECRET_ENV`]); required to listen beyond loopback.
    pub secret: Option<String>,
    /// Serve TLS with this identity (and reach other workers over TLS).
    pub tls: Option<WorkerTls>,
}

/// A worker's TLS identity, and the certificates it trusts when it reaches
/// other workers (its own certificate when no CA is given: one self-signed
/// certificate shared by a cluster).
#[derive(Clone)]
pub struct WorkerTls {
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for WorkerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("WorkerTls").field("ca", &self.ca_pem.is_some()).finish_non_exhaustive()
    }
}

impl WorkerTls {
    /// An identity from PEM text: a certificate chain, its private key, and optionally a CA.
    pub fn from_pem(cert_pem: Vec<u8>, key_pem: Vec<u8>, ca_pem: Option<Vec<u8>>) -> Self {
        Self { cert_pem, key_pem, ca_pem }
    }

    /// An identity read from PEM files, naming a file that cannot be read.
    pub fn from_files(cert: &std::path::Path, key: &std::path::Path, ca: Option<&std::path::Path>) -> Result<Self> {
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|e| PipelineError::InvalidArgument(format!("{}: {e}", path.display())))
        };
        Ok(Self { cert_pem: read(cert)?, key_pem: read(key)?, ca_pem: ca.map(read).transpose()? })
    }

    /// What this worker trusts when it reaches other workers.
    fn trusted(&self) -> Arc<Vec<u8>> {
        Arc::new(self.ca_pem.clone().unwrap_or_else(|| self.cert_pem.clone()))
    }
}

/// A worker: gradlake's functions and operators over a runtime that reads only `options.lakes`.
pub fn worker(options: &WorkerOptions) -> Result<Worker> {
    let runtime = worker_runtime(options)?;
    let secret = match &options.secret {
        Some(s) => Some((Arc::new(secret_headers(s)?), Arc::new(s.clone()))),
        None => None,
    };
    // One set of channels for all tasks: a worker keeps one connection per peer.
    let channels = NamingChannels::trusting(options.tls.as_ref().map(WorkerTls::trusted));
    let worker = Worker::from_session_builder(move |ctx: WorkerQueryContext| {
        let secret = secret.clone();
        let channels = channels.clone();
        async move { worker_session(ctx, secret, channels).await }
    });
    Ok(worker.with_runtime_env(runtime))
}

/// The session one task runs in: the request's secret checked, gradlake's codec and functions.
async fn worker_session(
    ctx: WorkerQueryContext,
    secret: Option<(Arc<HeaderMap>, Arc<String>)>,
    channels: NamingChannels,
) -> std::result::Result<SessionState, DataFusionError> {
    let mut builder = ctx
        .builder
        .with_distributed_user_codec(GradlakeCodec)
        .with_distributed_channel_resolver(channels)
        // Partial aggregates over grad_values run a chunk at a time here too.
        .with_distributed_worker_plan_rewrite_handler(rewrite_stage);
    if let Some((headers, expected)) = secret {
        let given = ctx.headers.get(SECRET_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
        if !same_secret(given, expected.as_bytes()) {
            return Err(DataFusionError::Execution(format!(
                "gradlake worker: the request's {SECRET_HEADER} is missing or wrong (set {SECRET_ENV} to the workers' secret)"
            )));
        }
        // Stages this one starts on other workers carry it on.
        builder = builder.with_distributed_passthrough_headers((*headers).clone())?;
    }
    let config = builder.config().take().unwrap_or_default();
    *builder.config() = Some(crate::session::configure(config));
    let ctx = SessionContext::new_with_state(builder.build());
    crate::register_all(&ctx);
    Ok(ctx.state())
}

fn worker_runtime(options: &WorkerOptions) -> Result<Arc<RuntimeEnv>> {
    let mut local_roots = Vec::new();
    // Served prefixes of each bucket, with its store.
    let mut buckets: Vec<(Url, Arc<dyn ObjectStore>, Vec<StorePath>)> = Vec::new();
    for lake in &options.lakes {
        match lake {
            LakeLocation::Local(path) => {
                let abs = std::path::absolute(path)
                    .map_err(|e| PipelineError::InvalidArgument(format!("{}: {e}", path.display())))?;
                if !abs.is_dir() {
                    return Err(PipelineError::InvalidArgument(format!("{}: not a directory", path.display())));
                }
                let root = StorePath::from_absolute_path(&abs)
                    .map_err(|e| PipelineError::InvalidArgument(format!("{}: {e}", path.display())))?;
                local_roots.push(root);
            }
            LakeLocation::Store(lake) => match buckets.iter_mut().find(|(b, _, _)| b == lake.bucket()) {
                Some((_, _, prefixes)) => prefixes.push(lake.prefix().clone()),
                None => buckets.push((lake.bucket().clone(), Arc::clone(lake.store()), vec![lake.prefix().clone()])),
            },
        }
    }
    let runtime = crate::session::runtime(options.memory_limit, None, EnvStores::closed())?.0;
    let local = Url::parse("file://").expect("static URL");
    runtime.register_object_store(&local, Arc::new(ScopedStore::new(Arc::new(InlineReads::default()), local_roots)));
    for (bucket, store, prefixes) in buckets {
        runtime.register_object_store(&bucket, Arc::new(ScopedStore::new(store, prefixes)));
    }
    Ok(runtime)
}

/// Serves `worker` on `listener` until the process ends, over TLS when `tls` is given.
pub async fn serve(worker: Worker, listener: TcpListener, tls: Option<&WorkerTls>) -> Result<()> {
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        let identity = tonic::transport::Identity::from_pem(&tls.cert_pem, &tls.key_pem);
        server = server
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .map_err(|e| PipelineError::InvalidArgument(format!("TLS certificate or key: {e}")))?;
    }
    server
        .add_service(worker.into_worker_server())
        .serve_with_incoming(incoming)
        .await
        .map_err(|e| PipelineError::InvalidArgument(format!("worker stopped: {e}")))
}

/// Binds `addr` for a worker, naming the address if it cannot.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| PipelineError::InvalidArgument(format!("cannot listen on {addr}: {e}")))
}

/// Workers on loopback ports inside this process, for tests and for trying a
/// cluster on one machine. The workers stop when it is dropped.
pub struct LocalCluster {
    cluster: Cluster,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl LocalCluster {
    /// Starts `workers` workers on the current tokio runtime, each on a free port of 127.0.0.1.
    pub async fn start(workers: usize, options: &WorkerOptions) -> Result<Self> {
        let mut addresses = Vec::with_capacity(workers);
        let mut tasks = Vec::with_capacity(workers);
        for _ in 0..workers {
            let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
            let addr = listener.local_addr().map_err(|e| PipelineError::InvalidArgument(e.to_string()))?;
            addresses.push(addr.to_string());
            let worker = worker(options)?;
            let tls = options.tls.clone();
            tasks.push(tokio::spawn(async move {
                // A worker that stops early shows up as the coordinator's connection error.
                let _ = serve(worker, listener, tls.as_ref()).await;
            }));
        }
        let mut cluster = Cluster::new(&addresses)?;
        if let Some(tls) = &options.tls {
            cluster = cluster.with_tls(Some(tls.trusted().to_vec()))?;
        }
        Ok(Self { cluster, tasks })
    }

    /// The addresses of its workers, for [`crate::SessionOptions::cluster`].
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_worker_addresses() {
        let c = Cluster::parse("127.0.0.1:7070, http://localhost:7071").unwrap();
        let urls: Vec<_> = c.workers().iter().map(|u| u.as_str().to_string()).collect();
        assert_eq!(urls, ["http://127.0.0.1:7070/", "http://localhost:7071/"]);
        for bad in ["", "127.0.0.1", "s3://x:1", ":7070"] {
            let e = Cluster::parse(bad).unwrap_err().to_string();
            assert!(e.contains("worker") || e.contains("cluster"), "{bad}: {e}");
        }
    }
}
