//! How a coordinator (or a worker feeding another) reaches workers: the
//! default gRPC channels, each wrapped so that every error it yields names the
//! worker it came from.
//!
//! Without the wrapper, a worker that dies mid-query surfaces as a bare
//! "h2 protocol error: error reading a body from connection", and a user with
//! ten workers cannot tell which one to look at.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use datafusion_distributed::grpc::DefaultChannelResolver;
use datafusion_distributed::{
    ChannelResolver, CoordinatorToWorkerMsg, ExecuteTaskRequest, GetWorkerInfoRequest, GetWorkerInfoResponse,
    SetPlanRequest, WorkerChannel, WorkerToCoordinatorMsg,
};
use futures::StreamExt;
use futures::stream::BoxStream;
use http::HeaderMap;
use url::Url;

/// Channels to workers whose errors name the worker.
#[derive(Clone, Default)]
pub(crate) struct NamingChannels {
    inner: DefaultChannelResolver,
}

#[async_trait]
impl ChannelResolver for NamingChannels {
    async fn get_worker_client_for_url(&self, url: &Url) -> Result<Box<dyn WorkerChannel>> {
        let inner = self.inner.get_worker_client_for_url(url).await.map_err(|e| {
            let address = url.as_str().trim_end_matches('/');
            DataFusionError::Execution(format!("cannot reach worker {address}: {}", connect_cause(&e)))
        })?;
        Ok(Box::new(NamedWorker { url: Arc::new(url.clone()), inner }))
    }
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

/// What the transport said, without the resolver's wrappers (which repeat it).
fn connect_cause(error: &DataFusionError) -> String {
    // The resolver keeps the transport error only as text, in its context line:
    // "tonic::transport::Error(Transport, ConnectError(ConnectError(\"tcp connect error\", ADDR, Os { … })))".
    let text = error.to_string();
    match text.rsplit_once("ConnectError(") {
        Some((_, tail)) => tail.lines().next().unwrap_or_default().trim_end_matches(')').to_string(),
        None => root_cause(error),
    }
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
