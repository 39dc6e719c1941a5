//! `gradlake worker`: serve query stages to coordinators (`sql|analyze --workers`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use gradlake_pipeline::distributed::{self, WorkerOptions, WorkerTls};
use gradlake_pipeline::memory::parse_size;
use gradlake_pipeline::store::LakeLocation;

/// Arguments of `gradlake worker`.
#[derive(clap::Args)]
pub struct WorkerArgs {
    /// Address to listen on (port 0: any free port; the address is printed on stdout).
    /// Beyond loopback only with a shared secret in GRADLAKE_WORKER_SECRET.
    #[arg(long, default_value = "127.0.0.1:7070")]
    listen: SocketAddr,
    /// A lake coordinators may query, a directory or a URL (repeatable). The worker reads
    /// nothing else.
    #[arg(long = "lake", value_name = "LAKE")]
    lakes: Vec<String>,
    /// Memory this worker's query operators may use (e.g. 4G; default: unbounded).
    #[arg(long)]
    memory_limit: Option<String>,
    /// Serve TLS with this certificate chain (PEM); coordinators then name the worker
    /// https://HOST:PORT or pass --tls-ca.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Certificates (PEM) this worker trusts when it reaches other workers (default: its own
    /// --tls-cert, for a cluster sharing one self-signed certificate).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_ca: Option<PathBuf>,
}

pub fn run(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let secret = distributed::secret_from_env();
    // A worker runs any plan it is sent: beyond this machine, only for those who hold the secret.
    if !args.listen.ip().is_loopback() && secret.is_none() {
        bail!(
            "--listen {}: a worker reachable from other machines needs a shared secret in {} (coordinators send the same)",
            args.listen,
            distributed::SECRET_ENV
        );
    }
    if args.lakes.is_empty() {
        bail!("--lake: name at least one lake this worker serves");
    }
    let options = WorkerOptions {
        lakes: args.lakes.iter().map(|l| LakeLocation::parse(l)).collect::<Result<_, _>>().context("--lake")?,
        memory_limit: args.memory_limit.as_deref().map(parse_size).transpose().context("--memory-limit")?,
        secret,
        tls: match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(WorkerTls::from_files(cert, key, args.tls_ca.as_deref())?),
            _ => None,
        },
    };
    let tls = options.tls.clone();
    let worker = distributed::worker(&options)?;
    let rt = crate::runtime()?;
    rt.block_on(async {
        let listener = distributed::bind(args.listen).await?;
        let addr = listener.local_addr().context("--listen")?;
        // One line on stdout, so a script (or a test) that asked for port 0 learns the port.
        println!("gradlake worker listening on {addr}");
        use std::io::Write;
        std::io::stdout().flush()?;
        distributed::serve(worker, listener, tls.as_ref()).await?;
        anyhow::Ok(ExitCode::SUCCESS)
    })
}
