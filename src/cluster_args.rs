//! The options of `sql` and `analyze` that send query stages to workers.

use std::path::PathBuf;

use anyhow::Context;
use gradlake_pipeline::distributed::{self, Cluster};

/// Where a query's stages run: on `gradlake worker`s, or (without `--workers`) here.
#[derive(clap::Args, Debug, Default)]
pub struct ClusterArgs {
    /// Run the query's stages on these `gradlake worker`s (comma-separated HOST:PORT, or
    /// https://HOST:PORT). The shared secret, if the workers have one, comes from
    /// GRADLAKE_WORKER_SECRET.
    #[arg(long, value_name = "ADDR,ADDR,...")]
    pub workers: Option<String>,
    /// With --workers: scan about this much of the lake's files per task (e.g. 4M; default 16M).
    /// Smaller spreads a scan over more workers.
    #[arg(long, value_name = "SIZE", requires = "workers")]
    pub bytes_per_task: Option<String>,
    /// With --workers: reach them over TLS, trusting the certificates of this PEM file
    /// (the workers' `--tls-cert`, or the CA that signed it).
    #[arg(long, value_name = "PEM", requires = "workers")]
    pub tls_ca: Option<PathBuf>,
}

impl ClusterArgs {
    /// The cluster named by these options, if any.
    pub fn cluster(&self) -> anyhow::Result<Option<Cluster>> {
        let Some(workers) = self.workers.as_deref() else {
            return Ok(None);
        };
        let bytes = self
            .bytes_per_task
            .as_deref()
            .map(gradlake_pipeline::memory::parse_size)
            .transpose()
            .context("--bytes-per-task")?;
        let mut cluster = Cluster::parse(workers)
            .context("--workers")?
            .with_secret(distributed::secret_from_env())
            .with_bytes_per_task(bytes);
        if let Some(ca) = &self.tls_ca {
            let pem = std::fs::read(ca).with_context(|| format!("--tls-ca {}", ca.display()))?;
            cluster = cluster.with_tls(Some(pem)).context("--workers")?;
        }
        Ok(Some(cluster))
    }
}
