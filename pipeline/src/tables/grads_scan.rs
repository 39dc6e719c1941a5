//! What `grad_values` and `grad_vectors` share: the param lookup built when
//! the lake is opened, and a `grads` scan with their key filters pushed down.
//!
//! Filters on `run`, `step`, `kind`, `sample` and `param_id` are handed to the
//! `grads` scan (file, row-group and page pruning, and filtering before the
//! values are decoded); `param = '...'` and `param IN (...)` become `param_id`
//! filters. All are reported inexact, so DataFusion still applies them.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Int32Type, Int64Type};
use datafusion::catalog::Session;
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::datasource::TableProvider;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::FilterExec;

use super::verify::{VerifiedGrads, Verify, verified_projection};

/// Dictionary<Int32, Utf8>: the type of the derived tables' string keys.
pub(crate) fn dict() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// SQL that lists what [`ParamIndex::from_batches`] reads.
pub(crate) const PARAMS_QUERY: &str = "SELECT run, param_id, param, numel FROM params";

/// A tensor of one run, as `params` describes it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ParamEntry {
    /// Index of its name in [`ParamIndex::names`].
    pub name: i32,
    /// Elements in the flattened tensor.
    pub numel: usize,
}

/// Every (run, param_id) of the lake, known when it is opened.
#[derive(Debug, Default)]
pub(crate) struct ParamIndex {
    /// Distinct param names (dictionary values of the `param` column).
    pub names: Vec<String>,
    index: HashMap<(String, i32), ParamEntry>,
}

impl ParamIndex {
    /// From the rows of [`PARAMS_QUERY`].
    pub fn from_batches(batches: &[RecordBatch]) -> Result<Self> {
        let mut out = Self::default();
        let mut by_name: HashMap<String, i32> = HashMap::new();
        for b in batches {
            let runs = datafusion::arrow::compute::cast(b.column(0), &DataType::Utf8)?;
            let names = datafusion::arrow::compute::cast(b.column(2), &DataType::Utf8)?;
            let (runs, names) = (runs.as_string::<i32>(), names.as_string::<i32>());
            let ids = b.column(1).as_primitive::<Int32Type>();
            let numels = b.column(3).as_primitive::<Int64Type>();
            for i in 0..runs.len() {
                let name = names.value(i).to_string();
                let next = by_name.len() as i32;
                let key = *by_name.entry(name.clone()).or_insert_with(|| {
                    out.names.push(name);
                    next
                });
                let entry = ParamEntry { name: key, numel: numels.value(i).max(0) as usize };
                out.index.insert((runs.value(i).to_string(), ids.value(i)), entry);
            }
        }
        Ok(out)
    }

    /// Every (run, param_id, name, numel), for sending the index to a worker.
    pub fn entries(&self) -> Vec<(String, i32, String, u64)> {
        let mut out: Vec<_> = self
            .index
            .iter()
            .map(|((run, id), e)| (run.clone(), *id, self.names[e.name as usize].clone(), e.numel as u64))
            .collect();
        out.sort();
        out
    }

    /// The index of `entries` (as [`ParamIndex::entries`] lists them).
    pub fn from_entries(entries: &[(String, i32, String, u64)]) -> Self {
        let mut out = Self::default();
        let mut by_name: HashMap<String, i32> = HashMap::new();
        for (run, id, name, numel) in entries {
            let next = by_name.len() as i32;
            let key = *by_name.entry(name.clone()).or_insert_with(|| {
                out.names.push(name.clone());
                next
            });
            out.index.insert((run.clone(), *id), ParamEntry { name: key, numel: *numel as usize });
        }
        out
    }

    /// The entry of (run, param_id), if `params` lists it.
    pub fn get(&self, run: &str, param_id: i32) -> Option<ParamEntry> {
        self.index.get(&(run.to_string(), param_id)).copied()
    }

    fn ids_named(&self, wanted: &[String]) -> Vec<i32> {
        let mut ids: Vec<i32> = self
            .index
            .iter()
            .filter(|(_, e)| wanted.iter().any(|w| w == &self.names[e.name as usize]))
            .map(|((_, id), _)| *id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The `grads` filter that a filter on a derived table implies, if any.
    pub fn inner_filter(&self, filter: &Expr) -> Option<Expr> {
        if on_chunk_keys(filter) {
            return Some(filter.clone());
        }
        // param = 'x' / param IN ('x', 'y') → param_id IN (ids of those names in any run).
        let names: Vec<String> = match filter {
            Expr::BinaryExpr(b) if b.op == Operator::Eq => match (b.left.as_ref(), b.right.as_ref()) {
                (Expr::Column(c), Expr::Literal(v, _)) | (Expr::Literal(v, _), Expr::Column(c))
                    if c.name == "param" =>
                {
                    vec![literal_string(v)?]
                }
                _ => return None,
            },
            Expr::InList(l) if !l.negated && matches!(l.expr.as_ref(), Expr::Column(c) if c.name == "param") => l
                .list
                .iter()
                .map(|e| match e {
                    Expr::Literal(v, _) => literal_string(v),
                    _ => None,
                })
                .collect::<Option<_>>()?,
            _ => return None,
        };
        let ids = self.ids_named(&names);
        let list = ids.into_iter().map(|id| Expr::Literal(ScalarValue::Int32(Some(id)), None)).collect();
        Some(datafusion::logical_expr::col("param_id").in_list(list, false))
    }

    /// How far each filter can be pushed into the `grads` scan. A filter on
    /// the chunk keys alone is applied exactly by [`scan_grads`] (every row of
    /// a derived table has its chunk's keys), so DataFusion need not filter
    /// again above: a second filter would copy every vector or element it
    /// keeps. A `param` filter becomes `param_id IN (...)` over the ids that
    /// name has in any run, which may keep other runs' params: inexact.
    pub fn pushdown(&self, filters: &[&Expr]) -> Vec<TableProviderFilterPushDown> {
        filters
            .iter()
            .map(|f| match self.inner_filter(f) {
                Some(_) if on_chunk_keys(f) => TableProviderFilterPushDown::Exact,
                Some(_) => TableProviderFilterPushDown::Inexact,
                None => TableProviderFilterPushDown::Unsupported,
            })
            .collect()
    }
}

/// Whether `filter` reads only columns that `grads` and every derived table
/// share, and gives the same answer each time it is evaluated (`random()`
/// would be drawn per chunk in the scan, not per row of the derived table).
fn on_chunk_keys(filter: &Expr) -> bool {
    !filter.is_volatile()
        && filter.column_refs().iter().all(|c| ["run", "step", "kind", "sample", "param_id"].contains(&c.name.as_str()))
}

fn literal_string(v: &ScalarValue) -> Option<String> {
    match v {
        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => {
            Some(s.clone())
        }
        // Literals compared with the dictionary-encoded column arrive wrapped.
        ScalarValue::Dictionary(_, inner) => literal_string(inner),
        _ => None,
    }
}

/// Scans `columns` of `grads` with the key filters that `filters` imply, plus
/// `extra`, in batches of `batch_rows` chunk rows if given (else the session's).
/// Over the [`VerifiedGrads`] table, `values` are verified above the
/// filter, so that the filter still reaches the Parquet reader.
pub(crate) async fn scan_grads(
    grads: &Arc<dyn TableProvider>,
    params: &ParamIndex,
    state: &dyn Session,
    columns: &[&str],
    filters: &[Expr],
    extra: Vec<Expr>,
    batch_rows: Option<usize>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let (provider, verified) = match grads.downcast_ref::<VerifiedGrads>() {
        Some(v) => (v.inner(), true),
        None => (grads, false),
    };
    let schema = provider.schema();
    let wanted: Vec<usize> = columns.iter().map(|c| schema.index_of(c)).collect::<Result<_, _>>()?;
    let verify = if verified { verified_projection(&schema, &wanted)? } else { None };
    let projection = verify.clone().unwrap_or_else(|| wanted.clone());
    let mut inner: Vec<Expr> = filters.iter().filter_map(|f| params.inner_filter(f)).collect();
    inner.extend(extra);
    let mut input = derived_scan(provider.scan(state, Some(&projection), &inner, None).await?, batch_rows);
    // A filter right above the scan is what DataFusion pushes into the Parquet
    // reader (row-group and page pruning, filtering before decoding the values).
    if let Some(predicate) = conjunction(inner) {
        let df_schema = DFSchema::try_from(input.schema())?;
        let predicate = state.create_physical_expr(predicate, &df_schema)?;
        input = Arc::new(FilterExec::try_new(predicate, input)?);
    }
    if verify.is_some() {
        input = Verify::plan(input, (0..wanted.len()).collect())?;
    }
    Ok(input)
}

/// `scan` as the derived tables read it, if it is a file scan: `rows` rows per
/// batch when given, and without the sort order its files declare.
///
/// The session's batch size is read when the scan is planned, so a smaller
/// one for a single scan must be set on its [`FileScanConfig`]. The order:
/// `grad_vectors` and `grad_values` keep none of their own, and a scan that
/// promises one is split between partitions only at file boundaries. On a
/// lake of a few large files the partitions then get unequal shares (7 files
/// into 2 partitions: 4 and 3, one core idle for the last third). Unordered,
/// the files are split into byte ranges of equal size; a row group still
/// goes whole to one partition, so a tensor's chunks stay together.
fn derived_scan(scan: Arc<dyn ExecutionPlan>, rows: Option<usize>) -> Arc<dyn ExecutionPlan> {
    let Some(config) =
        scan.downcast_ref::<DataSourceExec>().and_then(|d| d.data_source().downcast_ref::<FileScanConfig>())
    else {
        return scan;
    };
    let mut config = config.clone();
    if let Some(rows) = rows {
        config.batch_size = Some(rows);
    }
    config.output_ordering.clear();
    DataSourceExec::from_data_source(config)
}
