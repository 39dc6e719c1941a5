//! Running the named analyses on a lake: which ones apply, their parameters,
//! and their results as record batches.

use std::collections::BTreeSet;

use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::SchemaRef;
use arrow::datatypes::{DataType, Int64Type};
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;

use datafusion::execution::memory_pool::{MemoryLimit, MemoryPool};
use gradlake_pipeline::memory::{PeakPool, process};
use gradlake_stats::powerlaw_options::XminRule;

use crate::named::NamedQuery;
use crate::params::{self, ParamError};
use crate::windows::{Axis, Sizer, Unit, fixed_windows, next_window};

/// Errors of an analysis.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// A parameter was wrong.
    #[error("{analysis}: {source}")]
    Param {
        /// The analysis.
        analysis: &'static str,
        /// What was wrong.
        source: ParamError,
    },
    /// A parameter no selected analysis declares.
    #[error("no analysis has a parameter {name:?} (they have: {known})")]
    UnknownParam {
        /// The parameter given.
        name: String,
        /// Every parameter of the selected analyses.
        known: String,
    },
    /// One step (or coordinate) alone needs more memory than the limit.
    #[error(
        "{analysis}: {what} alone needs about {} MiB for its exact tests, more than the memory limit of {} MiB: raise --memory-limit",
        needed >> 20, limit >> 20
    )]
    TooBig {
        /// The analysis.
        analysis: &'static str,
        /// The step or coordinate, and what it holds.
        what: String,
        /// Bytes it is expected to need.
        needed: usize,
        /// The limit.
        limit: usize,
    },
    /// The memory pool refused an allocation.
    #[error("{analysis}: the memory limit was reached{window} ({message}); raise --memory-limit")]
    OutOfMemory {
        /// The analysis.
        analysis: &'static str,
        /// The window being run, if any.
        window: String,
        /// DataFusion's message.
        message: String,
    },
    /// The query engine failed.
    #[error("{analysis}: {source}")]
    DataFusion {
        /// The analysis.
        analysis: &'static str,
        /// What went wrong.
        source: DataFusionError,
    },
}

/// What running one analysis gave.
#[derive(Debug)]
pub enum Outcome {
    /// It ran; the batches of its closing summary SELECT.
    Ran(Vec<RecordBatch>),
    /// The lake lacks every kind it reads.
    Skipped {
        /// A sentence saying what is missing.
        reason: String,
    },
}

/// The gradient kinds present in the lake (for `run`, when given).
pub async fn lake_kinds(ctx: &SessionContext, run: Option<&str>) -> Result<BTreeSet<String>, DataFusionError> {
    let filter = run_filter(run);
    let batches =
        ctx.sql(&format!("SELECT DISTINCT CAST(kind AS VARCHAR) FROM grads{filter}")).await?.collect().await?;
    let mut kinds = BTreeSet::new();
    for b in &batches {
        let col = arrow::compute::cast(b.column(0), &DataType::Utf8)?;
        kinds.extend(col.as_string::<i32>().iter().flatten().map(str::to_string));
    }
    Ok(kinds)
}

/// ` WHERE run = '...'` (quoted), or nothing without a run.
fn run_filter(run: Option<&str>) -> String {
    run.map_or_else(String::new, |r| format!(" WHERE run = '{}'", r.replace('\'', "''")))
}

/// Checks, before anything runs, that every `NAME=VALUE` in `values` is a parameter of at
/// least one of `queries` and that each query accepts the values of its own parameters.
pub fn check_params(queries: &[NamedQuery], values: &[(String, String)]) -> Result<(), AnalyzeError> {
    let mut known = BTreeSet::new();
    for q in queries {
        let decls = params::declared(q.sql).map_err(|source| AnalyzeError::Param { analysis: q.name, source })?;
        known.extend(decls.into_iter().map(|d| d.name));
        params::bind(q.sql, &own_params(*q, values)?)
            .map_err(|source| AnalyzeError::Param { analysis: q.name, source })?;
    }
    match values.iter().find(|(name, _)| !known.contains(name)) {
        Some((name, _)) => Err(AnalyzeError::UnknownParam {
            name: name.clone(),
            known: known.into_iter().collect::<Vec<_>>().join(", "),
        }),
        None => Ok(()),
    }
}

/// Those of `values` that `query` declares (the others are for other analyses).
fn own_params(query: NamedQuery, values: &[(String, String)]) -> Result<Vec<(String, String)>, AnalyzeError> {
    let declared =
        params::declared(query.sql).map_err(|source| AnalyzeError::Param { analysis: query.name, source })?;
    Ok(values.iter().filter(|(name, _)| declared.iter().any(|d| &d.name == name)).cloned().collect())
}

/// Runs `query` with those of `values` it declares (others are for other analyses).
/// Its tables are left in `ctx` for plots; the summary SELECT's rows are returned.
/// An analysis whose kinds are all missing from `kinds` is skipped, not run.
/// Everything is computed in one pass; see [`run_named_with`] for bounded memory.
pub async fn run_named(
    ctx: &SessionContext,
    query: NamedQuery,
    values: &[(String, String)],
    kinds: &BTreeSet<String>,
) -> Result<Outcome, AnalyzeError> {
    run_named_with(ctx, query, values, kinds, &RunOptions::default(), &mut |_| {}).await
}

/// How an analysis that declares a window (see [`crate::windows`]) is split into passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Passes {
    /// Everything in one pass.
    #[default]
    One,
    /// Windows of this many units (steps or coordinates).
    Fixed(u64),
    /// Windows sized so that the memory pool's peak reservation stays within
    /// `target` bytes, measured as they run (needs [`RunOptions::pool`]).
    Budget {
        /// Bytes a window may reserve.
        target: usize,
    },
}

/// What a [`Passes::Budget`] is measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Meter {
    /// The session's memory pool: what the operators reserve.
    #[default]
    Pool,
    /// The process's resident memory (Linux; the pool elsewhere): everything,
    /// also what no pool sees — operators' outputs in flight, the Parquet
    /// decoder's buffers, the allocator's free lists. Only meaningful when the
    /// process runs one analysis at a time.
    Process,
}

/// How [`run_named_with`] runs an analysis.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions<'a> {
    /// How windowed analyses are split.
    pub passes: Passes,
    /// The session's pool, whose peak sizes [`Passes::Budget`] windows.
    pub pool: Option<&'a PeakPool>,
    /// What the budget is measured in.
    pub meter: Meter,
    /// The session runs its stages on a cluster: keep the plans' partitioning
    /// (the analyses that run on one partition locally, to keep one window's
    /// groups on one core, would otherwise run on one worker).
    pub cluster: bool,
    /// The xmin rules (`csn`, `top:0.1`, `all`, …) the analyses that declare
    /// [`XMIN_PARAM`] run under, one pass each, their rows told apart by the
    /// column `xmin_rule`; empty: the script's default. Ignored for an analysis
    /// given `xmin` as a parameter.
    pub xmin_rules: &'a [String],
}

/// Measures the memory a window group takes, by the chosen meter.
struct Measurement<'a> {
    pool: Option<&'a PeakPool>,
    /// The resident size when the measurement started (process meter).
    start_rss: Option<usize>,
}

impl<'a> Measurement<'a> {
    fn start(options: &RunOptions<'a>) -> Self {
        let start_rss = (options.meter == Meter::Process)
            .then(|| {
                process::release_free_memory();
                if process::reset_peak() { process::rss() } else { None }
            })
            .flatten();
        if let Some(pool) = options.pool {
            pool.reset_peak();
        }
        Self { pool: options.pool, start_rss }
    }

    /// Bytes the group took: the growth of the resident peak, or the pool's peak.
    fn taken(&self) -> Option<usize> {
        match (self.start_rss, process::peak_rss()) {
            (Some(start), Some(peak)) => Some(peak.saturating_sub(start)),
            _ => self.pool.map(PeakPool::peak),
        }
    }
}

/// Progress of an analysis: units (steps or coordinates) done of all, and windows run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The window axis, if the analysis runs in windows.
    pub axis: Option<Axis>,
    /// Units done.
    pub done: u64,
    /// Units in all.
    pub total: u64,
    /// Windows run so far.
    pub windows: u64,
    /// Bytes the windows just run took, by [`RunOptions::meter`] (0 without a measure).
    pub peak: usize,
}

/// [`run_named`], a window at a time when the analysis declares one (and the
/// user did not set its bounds) and `options.passes` asks for it, and once per
/// rule of [`RunOptions::xmin_rules`] when it declares `xmin`. Exact
/// per-group statistics hold their groups' values, so one pass over a long run
/// holds every step's values at once; in windows, memory is bounded by the
/// window, not by the run's length. Each window's (and rule's) rows are added to
/// the tables, and the summary runs once at the end, over every rule.
pub async fn run_named_with(
    ctx: &SessionContext,
    query: NamedQuery,
    values: &[(String, String)],
    kinds: &BTreeSet<String>,
    options: &RunOptions<'_>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Outcome, AnalyzeError> {
    if !query.kinds.iter().any(|k| kinds.contains(*k)) {
        let reason = format!(
            "the lake has no {} gradients (it has: {})",
            query.kinds.join(" or "),
            if kinds.is_empty() { "none".to_string() } else { kinds.iter().cloned().collect::<Vec<_>>().join(", ") }
        );
        return Ok(Outcome::Skipped { reason });
    }
    let err = |source| AnalyzeError::DataFusion { analysis: query.name, source };
    let param_err = |source| AnalyzeError::Param { analysis: query.name, source };
    let declared = params::declared(query.sql).map_err(param_err)?;
    let mine = own_params(query, values)?;
    let _partitions = (query.one_partition && !options.cluster).then(|| OnePartition::set(ctx));
    // Each rule is a pass of its own: one pass computing every rule would hold
    // each group's values once per rule.
    let rules: Vec<Option<&str>> = if declared.iter().any(|d| d.name == XMIN_PARAM)
        && !options.xmin_rules.is_empty()
        && !mine.iter().any(|(n, _)| n == XMIN_PARAM)
    {
        options.xmin_rules.iter().map(|r| Some(r.as_str())).collect()
    } else {
        vec![None]
    };
    let mut tables: Vec<TableRows> = Vec::new();
    for rule in rules {
        let mut bound = mine.clone();
        if let Some(rule) = rule {
            bound.push((XMIN_PARAM.to_string(), rule.to_string()));
        }
        append_tables(&mut tables, rule_tables(ctx, query, &declared, &bound, options, progress).await?);
    }
    for (name, schema, batches) in tables {
        ctx.deregister_table(name.as_str()).map_err(err)?;
        let table = MemTable::try_new(schema, vec![batches]).map_err(err)?;
        ctx.register_table(name.as_str(), Arc::new(table)).map_err(err)?;
    }
    // The summary reads the complete tables.
    let sql = params::bind(query.sql, &mine).map_err(param_err)?;
    let mut last = Vec::new();
    for statement in DFParser::parse_sql(&sql).map_err(err)? {
        if created_table(&statement).is_none() {
            last = execute(ctx, statement).await.map_err(err)?;
        }
    }
    Ok(Outcome::Ran(last))
}

/// The parameter of the paper-style analyses that picks the power-law tail (`csn`, `top:0.1`, …).
pub const XMIN_PARAM: &str = "xmin";

/// Why [`xmin_rules`] refused the rules it was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XminRulesError {
    /// Rules were given while the parameters also set `xmin`.
    #[error("the xmin rule is given both as rules and as the parameter xmin")]
    Twice,
    /// A rule does not parse.
    #[error("{rule}: {message}")]
    Bad {
        /// The rule as given.
        rule: String,
        /// What is wrong with it.
        message: String,
    },
}

/// The xmin rules `given` for [`RunOptions::xmin_rules`], each checked, without
/// repeats. Rules and a parameter `xmin=…` among `values` exclude each other.
pub fn xmin_rules(given: &[String], values: &[(String, String)]) -> Result<Vec<String>, XminRulesError> {
    if given.is_empty() {
        return Ok(Vec::new());
    }
    if values.iter().any(|(n, _)| n == XMIN_PARAM) {
        return Err(XminRulesError::Twice);
    }
    let mut rules: Vec<String> = Vec::with_capacity(given.len());
    for rule in given.iter().map(|r| r.trim()) {
        rule.parse::<XminRule>().map_err(|e| XminRulesError::Bad { rule: rule.to_string(), message: e.to_string() })?;
        if !rules.iter().any(|r| r == rule) {
            rules.push(rule.to_string());
        }
    }
    Ok(rules)
}

/// How far the resident memory may grow while a group of windows runs
/// ([`Passes::Budget`]), for a memory limit: half the limit (the process's own
/// baseline — the binary, libtorch or Python when loaded, the session — and
/// what an analysis keeps between windows come on top), and at most
/// [`WINDOW_TARGET_MAX`].
pub fn window_target(limit: usize) -> usize {
    (limit / 2).min(WINDOW_TARGET_MAX)
}

/// Beyond this, larger windows save no measurable time: each pass already reads
/// enough that its planning and the scan's footers cost little (README, Performance).
pub const WINDOW_TARGET_MAX: usize = 512 << 20;

/// A table a script creates: its name, schema and rows.
type TableRows = (String, SchemaRef, Vec<RecordBatch>);

/// Adds the rows of `more` (of another window or rule) to `tables`, by table name.
fn append_tables(tables: &mut Vec<TableRows>, more: Vec<TableRows>) {
    for (name, schema, batches) in more {
        match tables.iter_mut().find(|(n, _, _)| *n == name) {
            Some((_, _, all)) => all.extend(batches),
            None => tables.push((name, schema, batches)),
        }
    }
}

/// The rows of the tables `query` creates with the parameters `values`: in one
/// pass, or a window at a time (see [`run_named_with`]).
async fn rule_tables(
    ctx: &SessionContext,
    query: NamedQuery,
    declared: &[params::ParamDecl],
    values: &[(String, String)],
    options: &RunOptions<'_>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<TableRows>, AnalyzeError> {
    let err = |source| AnalyzeError::DataFusion { analysis: query.name, source };
    let declares = |name: &str| declared.iter().any(|d| d.name == name);
    let axis = [Axis::Steps, Axis::Coordinates].into_iter().find(|a| {
        let (first, last) = a.params();
        declares(first) && declares(last) && !values.iter().any(|(n, _)| n == first || n == last)
    });
    let run = values.iter().find(|(n, _)| n == "run").map(|(_, v)| v.as_str()).filter(|r| !r.is_empty());
    let (axis, units) = match (axis, options.passes) {
        (Some(axis), Passes::Fixed(_) | Passes::Budget { .. }) => {
            let units = match axis {
                Axis::Steps => step_units(ctx, run, query.kinds).await.map_err(err)?,
                Axis::Coordinates => {
                    let count = param_value(declared, values, "coordinates").unwrap_or(0);
                    coordinate_units(ctx, run, query.kinds, count).await.map_err(err)?
                }
            };
            (Some(axis), units)
        }
        _ => (None, Vec::new()),
    };
    let Some(axis) = axis.filter(|_| units.len() > 1) else {
        let measurement = Measurement::start(options);
        let tables = run_tables(ctx.clone(), query, values.to_vec(), None).await?;
        let peak = measurement.taken().unwrap_or(0);
        progress(Progress { axis: None, done: 1, total: 1, windows: 1, peak });
        return Ok(tables);
    };
    let mut sizer = match options.passes {
        Passes::Budget { target } => Some(Sizer::new(target)),
        _ => None,
    };
    let fixed = match options.passes {
        Passes::Fixed(width) => fixed_windows(&units, width),
        _ => Vec::new(),
    };
    // A one-partition analysis runs a window per core at once: its scan and its
    // groups' updates are single-threaded, and windows share nothing.
    let parallel = if query.one_partition {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    } else {
        1
    };
    let total: u64 = units.iter().map(|u| u.weight).sum();
    let (mut start, mut done, mut windows) = (0usize, 0u64, 0usize);
    let mut tables: Vec<TableRows> = Vec::new();
    while start < units.len() {
        let mut group = Vec::with_capacity(parallel);
        let mut group_weight = 0u64;
        while group.len() < parallel && start < units.len() {
            let end = match &sizer {
                Some(s) => next_window(&units, start, s.capacity() / parallel as u64),
                None => fixed[windows + group.len()].1,
            };
            let weight: u64 = units[start..end].iter().map(|u| u.weight).sum();
            // Windows of one unit can still be too many at once: run fewer together.
            if let Some(s) = &sizer
                && !group.is_empty()
                && group_weight + weight > s.capacity()
            {
                break;
            }
            group_weight += weight;
            if let (Some(s), Some(pool)) = (&sizer, options.pool)
                && end == start + 1
                && let MemoryLimit::Finite(limit) = pool.memory_limit()
                && s.bytes_for(weight) > limit as u64
                && windows > 0
            {
                return Err(too_big(ctx, query, axis, units[start], s.bytes_for(weight), limit).await);
            }
            group.push((start, end, weight));
            start = end;
        }
        let measurement = Measurement::start(options);
        // Each window on a task of its own: one partition's stream is polled by
        // the task that collects it, so windows joined in one task would take turns.
        let runs: Vec<_> = group
            .iter()
            .map(|&(a, b, _)| {
                let window = (axis, (units[a].key, units[b - 1].key));
                tokio::spawn(run_tables(ctx.clone(), query, values.to_vec(), Some(window)))
            })
            .collect();
        for run in runs {
            append_tables(&mut tables, run.await.map_err(|e| err(DataFusionError::External(Box::new(e))))??);
        }
        let weight: u64 = group.iter().map(|g| g.2).sum();
        let peak = measurement.taken().unwrap_or(0);
        if let Some(s) = &mut sizer {
            s.measured(weight, peak);
        }
        done += weight;
        windows += group.len();
        progress(Progress { axis: Some(axis), done, total, windows: windows as u64, peak });
    }
    Ok(tables)
}

/// Runs the `CREATE TABLE ... AS` statements of `query` (of one window, when
/// given) and returns each table's rows. Without a window each table is
/// registered as it is made, for the script's later statements; a window's
/// statements may not read the tables the script creates (windows run at once,
/// and each sees only the lake), and nothing is registered.
async fn run_tables(
    ctx: SessionContext,
    query: NamedQuery,
    values: Vec<(String, String)>,
    window: Option<(Axis, (i64, i64))>,
) -> Result<Vec<TableRows>, AnalyzeError> {
    let err = |source| AnalyzeError::DataFusion { analysis: query.name, source };
    let mut bound = values;
    if let Some((axis, (first, last))) = window {
        let (first_name, last_name) = axis.params();
        bound.push((first_name.into(), first.to_string()));
        bound.push((last_name.into(), last.to_string()));
    }
    let sql = params::bind(query.sql, &bound).map_err(|source| AnalyzeError::Param { analysis: query.name, source })?;
    let mut out = Vec::new();
    for statement in DFParser::parse_sql(&sql).map_err(err)? {
        let Some((name, select)) = created_table(&statement) else { continue };
        if window.is_some()
            && let Some(t) = query.tables.iter().find(|t| contains_word(&select, t))
        {
            return Err(err(DataFusionError::Plan(format!(
                "{}: table {name} reads table {t} of the same script, which a window cannot",
                query.name
            ))));
        }
        let df = ctx.sql(&select).await.map_err(err)?;
        let planned: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await.map_err(|e| out_of_memory(query, window, e))?;
        // The rows' own schema (the plan's may differ in nullability); every window's is the same plan's.
        let schema = batches.first().map_or(planned, RecordBatch::schema);
        if window.is_none() {
            ctx.deregister_table(name.as_str()).map_err(err)?;
            let table = MemTable::try_new(schema.clone(), vec![batches.clone()]).map_err(err)?;
            ctx.register_table(name.as_str(), Arc::new(table)).map_err(err)?;
        }
        out.push((name, schema, batches));
    }
    Ok(out)
}

/// Whether `word` occurs in `text` as a whole identifier.
fn contains_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !ident(before) && !ident(after)
    })
}

/// Sets the session's target partitions to 1 until dropped.
struct OnePartition<'a> {
    ctx: &'a SessionContext,
    before: usize,
}

impl<'a> OnePartition<'a> {
    fn set(ctx: &'a SessionContext) -> Self {
        let state = ctx.state_ref();
        let mut state = state.write();
        let options = state.config_mut().options_mut();
        let before = options.execution.target_partitions;
        options.execution.target_partitions = 1;
        Self { ctx, before }
    }
}

impl Drop for OnePartition<'_> {
    fn drop(&mut self) {
        self.ctx.state_ref().write().config_mut().options_mut().execution.target_partitions = self.before;
    }
}

/// The value of integer parameter `name`: given, or its declared default.
fn param_value(declared: &[params::ParamDecl], given: &[(String, String)], name: &str) -> Option<u64> {
    let text = given
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .or_else(|| declared.iter().find(|d| d.name == name).map(|d| d.default.display().to_string()))?;
    text.trim().parse().ok()
}

/// `kind IN ('a', 'b')` for the analysis's kinds (names from the code, not the user).
fn kinds_filter(kinds: &[&str]) -> String {
    let list: Vec<String> = kinds.iter().map(|k| format!("'{k}'")).collect();
    format!("kind IN ({})", list.join(", "))
}

/// Every step holding the analysis's kinds, weighted by their values (key columns only).
async fn step_units(ctx: &SessionContext, run: Option<&str>, kinds: &[&str]) -> Result<Vec<Unit>, DataFusionError> {
    let mut filter = kinds_filter(kinds);
    if let Some(run) = run {
        filter += &format!(" AND run = '{}'", run.replace('\'', "''"));
    }
    let sql = format!(
        "SELECT step, CAST(sum(CAST(numel AS BIGINT)) AS BIGINT) FROM grads WHERE {filter} GROUP BY step ORDER BY step"
    );
    let mut units = Vec::new();
    for b in ctx.sql(&sql).await?.collect().await? {
        let (steps, weights) = (b.column(0).as_primitive::<Int64Type>(), b.column(1).as_primitive::<Int64Type>());
        for i in 0..b.num_rows() {
            units.push(Unit { key: steps.value(i), weight: weights.value(i).max(0) as u64 });
        }
    }
    Ok(units)
}

/// Coordinate ranks 0..count, each weighted by the rows of the analysis's kinds it is followed over.
async fn coordinate_units(
    ctx: &SessionContext,
    run: Option<&str>,
    kinds: &[&str],
    count: u64,
) -> Result<Vec<Unit>, DataFusionError> {
    let mut filter = kinds_filter(kinds);
    if let Some(run) = run {
        filter += &format!(" AND run = '{}'", run.replace('\'', "''"));
    }
    let sql = format!("SELECT count(*) FROM (SELECT DISTINCT run, step, kind, sample FROM grads WHERE {filter})");
    let batches = ctx.sql(&sql).await?.collect().await?;
    let rows =
        batches.first().filter(|b| b.num_rows() == 1).map_or(0, |b| b.column(0).as_primitive::<Int64Type>().value(0));
    Ok((0..count as i64).map(|key| Unit { key, weight: rows.max(0) as u64 }).collect())
}

/// The error for a unit that cannot fit on its own, naming the largest tensor it holds.
async fn too_big(
    ctx: &SessionContext,
    query: NamedQuery,
    axis: Axis,
    unit: Unit,
    needed: u64,
    limit: usize,
) -> AnalyzeError {
    let largest = match largest_tensor(ctx).await {
        Ok(Some((name, numel))) => format!("; its largest tensor, {name}, has {numel} values"),
        _ => String::new(),
    };
    let what = match axis {
        Axis::Steps => format!("step {} ({} gradient values{largest})", unit.key, unit.weight),
        Axis::Coordinates => format!("one coordinate ({} steps)", unit.weight),
    };
    AnalyzeError::TooBig { analysis: query.name, what, needed: needed as usize, limit }
}

/// The name and size of the lake's largest tensor.
async fn largest_tensor(ctx: &SessionContext) -> Result<Option<(String, i64)>, DataFusionError> {
    let batches = ctx
        .sql("SELECT CAST(param AS VARCHAR), CAST(numel AS BIGINT) FROM params ORDER BY numel DESC LIMIT 1")
        .await?
        .collect()
        .await?;
    Ok(batches.into_iter().find(|b| b.num_rows() == 1).map(|b| {
        let name = b.column(0).as_string::<i32>().value(0).to_string();
        (name, b.column(1).as_primitive::<Int64Type>().value(0))
    }))
}

/// A DataFusion error, told as the memory limit when it is one.
fn out_of_memory(query: NamedQuery, window: Option<(Axis, (i64, i64))>, e: DataFusionError) -> AnalyzeError {
    match e.find_root() {
        DataFusionError::ResourcesExhausted(msg) => AnalyzeError::OutOfMemory {
            analysis: query.name,
            window: match window {
                Some((Axis::Steps, (a, b))) => format!(" in steps {a}..={b}"),
                Some((Axis::Coordinates, (a, b))) => format!(" in coordinates {a}..={b}"),
                None => String::new(),
            },
            message: msg.clone(),
        },
        _ => AnalyzeError::DataFusion { analysis: query.name, source: e },
    }
}

async fn execute(ctx: &SessionContext, statement: DfStatement) -> Result<Vec<RecordBatch>, DataFusionError> {
    let plan = ctx.state().statement_to_plan(statement).await?;
    ctx.execute_logical_plan(plan).await?.collect().await
}

/// `CREATE [OR REPLACE] TABLE name AS query` → (name, query).
fn created_table(statement: &DfStatement) -> Option<(String, String)> {
    match statement {
        DfStatement::Statement(s) => match s.as_ref() {
            SqlStatement::CreateTable(c) => c.query.as_ref().map(|q| (c.name.to_string(), q.to_string())),
            _ => None,
        },
        _ => None,
    }
}
