//! Opening a lake as a DataFusion session.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{GreedyMemoryPool, MemoryPool, TrackConsumersPool, UnboundedMemoryPool};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};
use gradlake_ingest::Table;
use gradlake_ingest::check::{CheckOptions, Severity, UNVERIFIED, check_lake};

use crate::distributed::Cluster;
use crate::error::{PipelineError, Result};
use crate::hiding_store::HidingStore;
use crate::local_reads::InlineReads;
use crate::memory::PeakPool;
use crate::store::{EnvStores, LakeLocation, scan_store_lake};
use crate::tables;

/// Settings of a query session. Every field is explicit so that the same
/// session can be rebuilt elsewhere (no hidden global state).
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// Memory the query operators may use; beyond it they spill to disk or fail.
    /// `None` means unbounded.
    pub memory_limit: Option<usize>,
    /// Where spill files go (default: the system temporary directory).
    pub temp_dir: Option<PathBuf>,
    /// Parallelism of query plans (default: the number of cores).
    pub target_partitions: Option<usize>,
    /// Leave damaged files out of the lake's tables (each is reported in
    /// [`LakeSession::warnings`]) instead of refusing to open the lake.
    pub skip_bad_files: bool,
    /// Run the queries' stages on these workers instead of in this process.
    pub cluster: Option<Cluster>,
    /// Aggregate `grad_values` element by element with DataFusion's hash
    /// aggregation, instead of a run of chunk rows at a time (the same results,
    /// slower; for comparisons). Only for this process: workers of a cluster
    /// always aggregate chunk-wise.
    pub element_wise_aggregation: bool,
}

/// Rows per batch. Gradient rows are 16 KiB each, so DataFusion's default of
/// 8192 would make every scanned batch 128 MiB; 128 rows keep it at 2 MiB.
/// The Parquet decoder's buffers scale with the batch (measured, bench/): on a
/// 3.3 GB lake, reassembling every tensor took 6.7 s and 362 MB peak RSS at
/// 1024 rows, 4.8–5.1 s and 166–183 MB at 128; `grad_values` Q2 3.5 s / 431 MB
/// became 3.7–3.9 s / 229 MB. (A per-scan batch size set in the task context
/// does not reach the Parquet source: it is fixed at planning.)
const BATCH_ROWS: usize = 128;

/// Consumers an out-of-memory error lists.
const TOP_CONSUMERS: std::num::NonZeroUsize = std::num::NonZeroUsize::new(3).expect("nonzero");

/// A DataFusion session, with a lake's tables and views registered if one was opened.
pub struct LakeSession {
    ctx: SessionContext,
    pool: Arc<PeakPool>,
    lake: Option<LakeLocation>,
    warnings: Vec<String>,
}

impl LakeSession {
    /// A session without a lake: only files named in a query (`FROM 'x.parquet'`) are visible.
    pub fn new(options: &SessionOptions) -> Result<Self> {
        let (ctx, pool) = build_context(options)?;
        Ok(Self { ctx, pool, lake: None, warnings: Vec::new() })
    }

    /// Opens `lake`: verifies every file's footer and schema (so a damaged file
    /// is named up front instead of failing a query half-way), then registers
    /// the tables and views.
    pub async fn open(lake: &Path, options: &SessionOptions) -> Result<Self> {
        let mut session = Self::new(options)?;
        let report = check_lake(lake, CheckOptions::default())?;
        let damaged: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| (f.path.clone(), f.message.clone()))
            .collect();
        if !damaged.is_empty() && !options.skip_bad_files {
            return Err(PipelineError::DamagedFiles { lake: lake.display().to_string(), files: damaged });
        }
        if !damaged.is_empty() {
            session.hide_files(damaged.iter().map(|(p, _)| p.as_path()))?;
        }
        session.warnings = report
            .findings
            .iter()
            .filter(|f| !f.message.ends_with(UNVERIFIED))
            .map(|f| match f.severity {
                Severity::Error => format!("skipped damaged file {}: {}", f.path.display(), f.message),
                Severity::Warning => f.to_string(),
            })
            .collect();
        let unverified = report.findings.iter().filter(|f| f.message.ends_with(UNVERIFIED)).count();
        if unverified > 0 {
            session.warnings.push(format!(
                "{unverified} grads file(s) of format version 1: {UNVERIFIED} (`gradlake check` lists them)"
            ));
        }
        for table in Table::ALL {
            register_table(&session.ctx, lake, table)?;
        }
        tables::register(&session.ctx).await?;
        session.lake = Some(LakeLocation::Local(lake.to_path_buf()));
        Ok(session)
    }

    /// Opens the lake at `location`: a local directory as [`LakeSession::open`]; a
    /// prefix of an object store with one listing and its footers fetched
    /// concurrently (each verified, and kept for the queries).
    pub async fn open_location(location: &LakeLocation, options: &SessionOptions) -> Result<Self> {
        let lake = match location {
            LakeLocation::Local(path) => return Self::open(path, options).await,
            LakeLocation::Store(lake) => lake,
        };
        let mut session = Self::new(options)?;
        let bucket = lake.bucket();
        session.ctx.register_object_store(bucket, Arc::clone(lake.store()));
        let cache = session.ctx.runtime_env().cache_manager.get_file_metadata_cache();
        let scan = scan_store_lake(lake, Some(cache)).await?;
        if !scan.damaged.is_empty() && !options.skip_bad_files {
            let files = scan.damaged.iter().map(|(url, m)| (PathBuf::from(url), m.clone())).collect();
            return Err(PipelineError::DamagedFiles { lake: lake.url().to_string(), files });
        }
        if !scan.hidden.is_empty() {
            let store = HidingStore::new(Arc::clone(lake.store()), scan.hidden);
            session.ctx.register_object_store(bucket, Arc::new(store));
        }
        session.warnings = scan.warnings;
        session.warnings.extend(scan.damaged.iter().map(|(url, m)| format!("skipped damaged file {url}: {m}")));
        for table in Table::ALL {
            let url = ListingTableUrl::parse(format!("{}{}/", lake.url(), table.name()))?;
            register_listing(&session.ctx, url, table)?;
        }
        tables::register(&session.ctx).await?;
        session.lake = Some(location.clone());
        Ok(session)
    }

    /// Routes local file access through a store that leaves `files` out of every listing.
    fn hide_files<'a>(&self, files: impl Iterator<Item = &'a Path>) -> Result<()> {
        let mut hidden = HashSet::new();
        for file in files {
            let abs = std::path::absolute(file)
                .map_err(|e| PipelineError::InvalidArgument(format!("{}: {e}", file.display())))?;
            let path = object_store::path::Path::from_absolute_path(&abs)
                .map_err(|e| PipelineError::InvalidArgument(format!("{}: {e}", file.display())))?;
            hidden.insert(path);
        }
        let store = HidingStore::new(Arc::new(InlineReads::default()), hidden);
        self.ctx.register_object_store(ObjectStoreUrl::local_filesystem().as_ref(), Arc::new(store));
        Ok(())
    }

    /// The DataFusion context, for running SQL.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// The session's memory pool, which records its peak reservation.
    pub fn memory_pool(&self) -> &PeakPool {
        &self.pool
    }

    /// The lake, if one was opened.
    pub fn lake(&self) -> Option<&LakeLocation> {
        self.lake.as_ref()
    }

    /// Harmless findings from opening the lake (e.g. leftovers of a killed writer).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

/// Registers every SQL function gradlake adds. The single place a session
/// (local or distributed) gets gradlake's functions from.
pub fn register_all(ctx: &SessionContext) {
    crate::udf::register(ctx);
}

fn build_context(options: &SessionOptions) -> Result<(SessionContext, Arc<PeakPool>)> {
    let (runtime, pool) = runtime(options.memory_limit, options.temp_dir.clone(), EnvStores::open())?;
    let mut config = configure(SessionConfig::new().with_information_schema(true));
    if let Some(n) = options.target_partitions {
        if n == 0 {
            return Err(PipelineError::InvalidArgument("target partitions must be at least 1".into()));
        }
        config = config.with_target_partitions(n);
    }
    let mut builder = SessionStateBuilder::new().with_default_features().with_config(config).with_runtime_env(runtime);
    match &options.cluster {
        Some(cluster) => builder = crate::distributed::distribute(builder, cluster)?,
        // On a cluster the stages travel with DataFusion's aggregate (which any
        // worker decodes); each worker swaps in the chunk-wise one itself.
        None => {
            if !options.element_wise_aggregation {
                builder = builder.with_physical_optimizer_rule(Arc::new(crate::tables::ChunkAggregation));
            }
            builder = builder.with_physical_optimizer_rule(Arc::new(crate::plan::OrderedSketchMerge));
        }
    }
    let ctx = SessionContext::new_with_state(builder.build()).enable_url_table();
    ctx.register_object_store(ObjectStoreUrl::local_filesystem().as_ref(), Arc::new(InlineReads::default()));
    register_all(&ctx);
    Ok((ctx, pool))
}

/// The settings every gradlake session shares, coordinator or worker.
pub(crate) fn configure(config: SessionConfig) -> SessionConfig {
    let mut config = config.with_batch_size(BATCH_ROWS);
    let options = config.options_mut();
    // Filters on key columns are evaluated while decoding, so the 16 KiB value
    // lists of rows that fail them are never decompressed.
    options.execution.parquet.pushdown_filters = true;
    options.execution.parquet.reorder_filters = true;
    // Each partition reads the byte ranges it was planned with. With stealing,
    // which partition reads a range depends on timing, and so does the order in
    // which an order-sensitive aggregate sees rows: a Frequent Directions
    // sketch then answers differently on every run (by up to its error bound).
    // The ranges are of equal size (`grads_scan::derived_scan`), so little
    // balance is lost (`bench/spectrum.sh`: no slower).
    options.execution.enable_file_stream_work_stealing = false;
    config
}

/// A runtime with a memory pool bounded by `memory_limit` (and recording its
/// peak), spilling to `temp_dir`.
pub(crate) fn runtime(
    memory_limit: Option<usize>,
    temp_dir: Option<PathBuf>,
    stores: EnvStores,
) -> Result<(Arc<RuntimeEnv>, Arc<PeakPool>)> {
    // Greedy, not fair: gradlake's large consumers are exact tests and sketches,
    // which cannot spill, so dividing the limit among consumers (FairSpillPool)
    // only fails a query that fits. The error names the largest consumers.
    let inner: Arc<dyn MemoryPool> = match memory_limit {
        Some(limit) => Arc::new(TrackConsumersPool::new(GreedyMemoryPool::new(limit), TOP_CONSUMERS)),
        None => Arc::new(UnboundedMemoryPool::default()),
    };
    let pool = Arc::new(PeakPool::new(inner));
    let mode = match temp_dir {
        Some(dir) => DiskManagerMode::Directories(vec![dir]),
        None => DiskManagerMode::OsTmpDirectory,
    };
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(pool.clone())
        .with_object_store_registry(Arc::new(stores))
        .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(mode))
        .build_arc()?;
    Ok((runtime, pool))
}

/// Registers `LAKE/<table>/` as a listing table partitioned by `run`, with the
/// format's fixed schema (an empty or missing directory is an empty table).
fn register_table(ctx: &SessionContext, lake: &Path, table: Table) -> Result<()> {
    let dir = std::path::absolute(lake.join(table.name()))
        .map_err(|e| PipelineError::InvalidArgument(format!("{}: {e}", lake.display())))?;
    // A trailing separator makes DataFusion treat the path as a directory even if it does not exist yet.
    let url = ListingTableUrl::parse(format!("{}/", dir.display()))?;
    register_listing(ctx, url, table)
}

/// Registers the directory `url` as `table`, partitioned by `run`, with the
/// format's fixed schema (an empty or missing directory is an empty table).
fn register_listing(ctx: &SessionContext, url: ListingTableUrl, table: Table) -> Result<()> {
    let listing = ListingOptions::new(Arc::new(ParquetFormat::default()))
        .with_file_extension(".parquet")
        .with_table_partition_cols(vec![("run".to_string(), DataType::Utf8)]);
    if table != Table::Grads {
        let config = ListingTableConfig::new(url).with_listing_options(listing).with_schema(table.schema());
        ctx.register_table(table.name(), Arc::new(ListingTable::try_new(config)?))?;
        return Ok(());
    }
    let schema = tables::reading_schema(&table.schema());
    let config = ListingTableConfig::new(url).with_listing_options(listing).with_schema(schema);
    ctx.register_table(table.name(), Arc::new(tables::VerifiedGrads::new(Arc::new(ListingTable::try_new(config)?))))?;
    Ok(())
}
