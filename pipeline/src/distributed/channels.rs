//! How a coordinator (or a worker feeding another) reaches workers: one gRPC
//! channel per worker, over TLS for `https://` workers, each wrapped so that
//! every error it yields names the worker it came from.
//!
//! Without the wrapper, a worker that dies mid-query surfaces as a bare
//! "h2 protocol error: error reading a body from connection", and a user with
//! ten workers cannot tell which one to look at.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use datafusion_distributed::grpc::{BoxCloneSyncChannel, create_worker_client};
use datafusion_distributed::{
    ChannelResolver, CoordinatorToWorkerMsg, ExecuteTaskRequest, GetWorkerInfoRequest, GetWorkerInfoResponse,
    SetPlanRequest, WorkerChannel, WorkerToCoordinatorMsg,
};
use futures::StreamExt;
use futures::stream::BoxStream;
use http::HeaderMap;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use url::Url;

/// How long a worker may take to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Channels to workers whose errors name the worker. Clones share their
/// connections, so a worker keeps one per peer across the tasks it runs.
#[derive(Clone, Default)]
pub(crate) struct NamingChannels {
    /// Certificates trusted for `https://` workers; `None`: the system's roots.
    ca_pem: Option<Arc<Vec<u8>>>,
    connected: Arc<Mutex<HashMap<Url, Channel>>>,
}

impl NamingChannels {
    /// Channels that trust the certificates of `ca_pem` (PEM) for `https://` workers.
    pub(crate) fn trusting(ca_pem: Option<Arc<Vec<u8>>>) -> Self {
        Self { ca_pem, connected: Arc::default() }
    }

    async fn channel(&self, url: &Url) -> Result<Channel> {
        if let Some(channel) = self.connected.lock().expect("not poisoned").get(url) {
            return Ok(channel.clone());
        }
        let address = url.as_str().trim_end_matches('/');
        let unreachable = |e: &dyn std::error::Error| {
            DataFusionError::Execution(format!("cannot reach worker {address}: {}", error_chain(e)))
        };
        let mut endpoint =
            Endpoint::from_shared(url.to_string()).map_err(|e| unreachable(&e))?.connect_timeout(CONNECT_TIMEOUT);
        if url.scheme() == "https" {
            let tls = match &self.ca_pem {
                Some(pem) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem.as_slice())),
                None => ClientTlsConfig::new().with_native_roots(),
            };
            endpoint = endpoint.tls_config(tls).map_err(|e| unreachable(&e))?;
        }
        let channel = endpoint.connect().await.map_err(|e| unreachable(&e))?;
        self.connected.lock().expect("not poisoned").insert(url.clone(), channel.clone());
        Ok(channel)
    }
}

#[async_trait]
impl ChannelResolver for NamingChannels {
    async fn get_worker_client_for_url(&self, url: &Url) -> Result<Box<dyn WorkerChannel>> {
        let inner = create_worker_client(BoxCloneSyncChannel::new(self.channel(url).await?));
        Ok(Box::new(NamedWorker { url: Arc::new(url.clone()), inner }))
    }
}

/// An error and its sources, each once ("transport error: tcp connect error: Connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = e.source();
    }
    out
}

/// A worker's channel that adds the worker's address to its errors.
struct NamedWorker {
    url: Arc<Url>,
    inner: Box<dyn WorkerChannel>,
}

/// `error`, saying it came from the worker at `url`.
fn from_worker(url: &Url, error: DataFusionError) -> DataFusionError {
    let address = url.as_str().trim_end_matches('/');
    // The root cause alone: the transport's errors repeat themselves through their wrappers.
    let cause = root_cause(&error);
    DataFusionError::Execution(format!("worker {address} failed or stopped answering during the query: {cause}"))
}

fn root_cause(error: &DataFusionError) -> String {
    let mut source: &dyn std::error::Error = error;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}

fn name_stream<T: Send + 'static>(
    url: &Arc<Url>,
    stream: BoxStream<'static, Result<T>>,
) -> BoxStream<'static, Result<T>> {
    let url = Arc::clone(url);
    stream.map(move |item| item.map_err(|e| from_worker(&url, e))).boxed()
}

#[async_trait]
impl WorkerChannel for NamedWorker {
    async fn coordinator_channel(
        &mut self,
        headers: HeaderMap,
        set_plan_request: SetPlanRequest,
        c2w_stream: BoxStream<'static, CoordinatorToWorkerMsg>,
        metrics: ExecutionPlanMetricsSet,
        task_ctx: &Arc<TaskContext>,
    ) -> Result<BoxStream<'static, Result<WorkerToCoordinatorMsg>>> {
        let stream = self
            .inner
            .coordinator_channel(headers, set_plan_request, c2w_stream, metrics, task_ctx)
            .await
            .map_err(|e| from_worker(&self.url, e))?;
        Ok(name_stream(&self.url, stream))
    }

    async fn execute_task(
        &mut self,
        headers: HeaderMap,
        request: ExecuteTaskRequest,
        metrics: ExecutionPlanMetricsSet,
        task_ctx: &Arc<TaskContext>,
    ) -> Result<Vec<BoxStream<'static, Result<RecordBatch>>>> {
        let streams = self
            .inner
            .execute_task(headers, request, metrics, task_ctx)
            .await
            .map_err(|e| from_worker(&self.url, e))?;
        Ok(streams.into_iter().map(|s| name_stream(&self.url, s)).collect())
    }

    async fn get_worker_info(&mut self, request: GetWorkerInfoRequest) -> Result<GetWorkerInfoResponse> {
        self.inner.get_worker_info(request).await.map_err(|e| from_worker(&self.url, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_from_a_worker_names_it_once_with_the_root_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "stream closed because of a broken pipe");
        let nested = DataFusionError::External(Box::new(DataFusionError::External(Box::new(io))));
        let url = Url::parse("http://10.0.0.7:7070").unwrap();
        let e = from_worker(&url, nested).to_string();
        assert!(e.contains("worker http://10.0.0.7:7070 failed"), "{e}");
        assert!(e.ends_with("stream closed because of a broken pipe"), "{e}");
        assert_eq!(e.matches("broken pipe").count(), 1, "{e}");
    }
}
