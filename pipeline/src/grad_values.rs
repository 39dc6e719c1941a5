//! The `grad_values` table: one row per gradient element, produced by
//! exploding `grads` chunk rows in a dedicated operator.
//!
//! A SQL view (`unnest(values)` zipped with `range(numel)`, then a join for the
//! param name) materialises a 4096-entry index list per chunk and probes a hash
//! table per element. [`ExplodeExec`] instead builds each output column
//! directly: `value` is a zero-copy slice of the chunk values when no chunk in
//! the slice is padded, repeated keys are written once per element, `run`,
//! `kind` and `param` are dictionary-encoded (their keys are repeated, never the
//! strings), and the param name comes from a lookup built when the lake is opened.
//!
//! Filters on `run`, `step`, `kind`, `sample` and `param_id` are handed to the
//! `grads` scan (file, row-group and page pruning, and filtering before the
//! values are decoded); `param = '...'` and `param IN (...)` become `param_id`
//! filters. All are reported inexact, so DataFusion still applies them.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, DictionaryArray, Float32Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Float32Type, Int32Type, Int64Type, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchema, Result, ScalarValue, internal_err};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType, ReplaceChildrenOptions};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream,
};
use futures::StreamExt;
use gradlake_ingest::CHUNK_LEN;

/// Output rows per batch, at most: big enough to amortise per-batch work, small
/// enough (a few MB per column) to keep memory bounded.
const MAX_OUTPUT_ROWS: usize = 1 << 18;

/// Columns of `grads` the operator reads, in this order.
const INPUT: [&str; 8] = ["run", "step", "kind", "sample", "param_id", "chunk", "numel", "values"];

/// Param names of every (run, param_id), known when the lake is opened.
#[derive(Debug, Default)]
pub(crate) struct ParamNames {
    names: Vec<String>,
    index: HashMap<(String, i32), i32>,
}

impl ParamNames {
    /// From the rows of `SELECT run, param_id, param FROM params`.
    pub fn from_batches(batches: &[RecordBatch]) -> Result<Self> {
        let mut out = Self::default();
        let mut by_name: HashMap<String, i32> = HashMap::new();
        for b in batches {
            let b = datafusion::arrow::compute::cast(b.column(0), &DataType::Utf8)
                .map(|run| (run, b.column(1).clone(), b.column(2).clone()))?;
            let (runs, ids, names) = (b.0.as_string::<i32>().clone(), b.1, b.2);
            let names = datafusion::arrow::compute::cast(&names, &DataType::Utf8)?;
            let names = names.as_string::<i32>();
            for i in 0..runs.len() {
                let name = names.value(i).to_string();
                let next = by_name.len() as i32;
                let key = *by_name.entry(name.clone()).or_insert_with(|| {
                    out.names.push(name);
                    next
                });
                out.index.insert((runs.value(i).to_string(), ids.as_primitive::<Int32Type>().value(i)), key);
            }
        }
        Ok(out)
    }

    fn ids_named(&self, wanted: &[String]) -> Vec<i32> {
        let mut ids: Vec<i32> = self
            .index
            .iter()
            .filter(|(_, k)| wanted.iter().any(|w| w == &self.names[**k as usize]))
            .map(|((_, id), _)| *id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// The `grad_values` table provider.
#[derive(Debug)]
pub(crate) struct GradValuesTable {
    grads: Arc<dyn TableProvider>,
    params: Arc<ParamNames>,
    schema: SchemaRef,
}

fn dict() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

impl GradValuesTable {
    pub fn new(grads: Arc<dyn TableProvider>, params: ParamNames) -> Self {
        let schema = Arc::new(Schema::new(vec![
            Field::new("run", dict(), true),
            Field::new("step", DataType::Int64, false),
            Field::new("kind", dict(), false),
            Field::new("sample", DataType::Int64, false),
            Field::new("param_id", DataType::Int32, false),
            Field::new("param", dict(), true),
            Field::new("idx", DataType::Int64, false),
            Field::new("value", DataType::Float32, true),
        ]));
        Self { grads, params: Arc::new(params), schema }
    }

    /// The `grads` filter that a `grad_values` filter implies, if any.
    fn inner_filter(&self, filter: &Expr) -> Option<Expr> {
        let columns = filter.column_refs();
        if columns.iter().all(|c| ["run", "step", "kind", "sample", "param_id"].contains(&c.name.as_str())) {
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
        let ids = self.params.ids_named(&names);
        let list = ids.into_iter().map(|id| Expr::Literal(ScalarValue::Int32(Some(id)), None)).collect();
        Some(datafusion::logical_expr::col("param_id").in_list(list, false))
    }
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

#[async_trait]
impl TableProvider for GradValuesTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| match self.inner_filter(f) {
                Some(_) => TableProviderFilterPushDown::Inexact,
                None => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let grads_schema = self.grads.schema();
        let input_projection: Vec<usize> = INPUT.iter().map(|c| grads_schema.index_of(c)).collect::<Result<_, _>>()?;
        let inner_filters: Vec<Expr> = filters.iter().filter_map(|f| self.inner_filter(f)).collect();
        let mut input = self.grads.scan(state, Some(&input_projection), &inner_filters, None).await?;
        // A filter right above the scan is what DataFusion pushes into the Parquet
        // reader (row-group and page pruning, filtering before decoding the values).
        if let Some(predicate) = conjunction(inner_filters) {
            let df_schema = DFSchema::try_from(input.schema())?;
            let predicate = state.create_physical_expr(predicate, &df_schema)?;
            input = Arc::new(FilterExec::try_new(predicate, input)?);
        }
        let output: Vec<usize> = projection.cloned().unwrap_or_else(|| (0..self.schema.fields().len()).collect());
        let schema = Arc::new(self.schema.project(&output)?);
        Ok(Arc::new(ExplodeExec::new(input, self.params.clone(), output, schema)))
    }
}

/// Explodes `grads` chunk rows (columns [`INPUT`]) into one row per valid element.
#[derive(Debug)]
pub(crate) struct ExplodeExec {
    input: Arc<dyn ExecutionPlan>,
    params: Arc<ParamNames>,
    /// Indices into the full `grad_values` schema.
    output: Vec<usize>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl ExplodeExec {
    fn new(input: Arc<dyn ExecutionPlan>, params: Arc<ParamNames>, output: Vec<usize>, schema: SchemaRef) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            input.properties().partitioning.clone(),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Self { input, params, output, schema, properties }
    }
}

impl DisplayAs for ExplodeExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let names: Vec<&str> = self.schema.fields().iter().map(|f| f.name().as_str()).collect();
        write!(f, "ExplodeGradValuesExec: columns=[{}]", names.join(", "))
    }
}

impl ExecutionPlan for ExplodeExec {
    fn name(&self) -> &'static str {
        "ExplodeGradValuesExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return internal_err!("ExplodeGradValuesExec takes one child, got {}", children.len());
        }
        Ok(Arc::new(ExplodeExec::new(
            children.swap_remove(0),
            self.params.clone(),
            self.output.clone(),
            self.schema.clone(),
        )))
    }

    #[allow(deprecated)]
    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(datafusion::physical_plan::execution_plan::ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let (params, output, schema) = (self.params.clone(), self.output.clone(), self.schema.clone());
        let stream = input.flat_map(move |batch| {
            let batches: Vec<Result<RecordBatch>> = match batch {
                Ok(b) => explode(&b, &params, &output, &schema),
                Err(e) => vec![Err(e)],
            };
            futures::stream::iter(batches)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream)))
    }
}

/// Explodes one input batch into output batches of at most [`MAX_OUTPUT_ROWS`] rows.
fn explode(batch: &RecordBatch, params: &ParamNames, output: &[usize], schema: &SchemaRef) -> Vec<Result<RecordBatch>> {
    let rows_per_slice = (MAX_OUTPUT_ROWS / CHUNK_LEN).max(1);
    let mut out = Vec::new();
    let mut start = 0;
    while start < batch.num_rows() {
        let len = rows_per_slice.min(batch.num_rows() - start);
        out.push(explode_slice(&batch.slice(start, len), params, output, schema));
        start += len;
    }
    out
}

fn explode_slice(b: &RecordBatch, params: &ParamNames, output: &[usize], schema: &SchemaRef) -> Result<RecordBatch> {
    let run = datafusion::arrow::compute::cast(b.column(0), &DataType::Utf8)?;
    let run = run.as_string::<i32>();
    let step = b.column(1).as_primitive::<Int64Type>();
    let kind = b.column(2);
    let sample = b.column(3).as_primitive::<Int64Type>();
    let param_id = b.column(4).as_primitive::<Int32Type>();
    let chunk = b.column(5).as_primitive::<Int32Type>();
    let numel = b.column(6).as_primitive::<Int32Type>();
    let values = b.column(7).as_fixed_size_list();
    let n = b.num_rows();
    let counts: Vec<usize> = (0..n).map(|i| numel.value(i).clamp(0, CHUNK_LEN as i32) as usize).collect();
    let total: usize = counts.iter().sum();
    let repeat_i64 = |a: &datafusion::arrow::array::PrimitiveArray<Int64Type>| {
        let mut v = Vec::with_capacity(total);
        for (i, &c) in counts.iter().enumerate() {
            v.extend(std::iter::repeat_n(a.value(i), c));
        }
        Arc::new(Int64Array::from(v)) as ArrayRef
    };
    let repeat_keys = |keys: &[i32]| {
        let mut v = Vec::with_capacity(total);
        for (i, &c) in counts.iter().enumerate() {
            v.extend(std::iter::repeat_n(keys[i], c));
        }
        Int32Array::from(v)
    };
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(output.len());
    for &col in output {
        columns.push(match col {
            0 => {
                // A batch comes from one file, so usually one run: a tiny dictionary.
                let mut names: Vec<&str> = Vec::new();
                let keys: Vec<i32> = (0..n)
                    .map(|i| {
                        let r = run.value(i);
                        names.iter().position(|x| *x == r).unwrap_or_else(|| {
                            names.push(r);
                            names.len() - 1
                        }) as i32
                    })
                    .collect();
                Arc::new(DictionaryArray::<Int32Type>::try_new(repeat_keys(&keys), Arc::new(StringArray::from(names)))?)
            }
            1 => repeat_i64(step),
            2 => {
                let kind = kind.as_dictionary::<Int32Type>();
                let keys: Vec<i32> = kind.keys().values().to_vec();
                Arc::new(DictionaryArray::<Int32Type>::try_new(repeat_keys(&keys), kind.values().clone())?)
            }
            3 => repeat_i64(sample),
            4 => Arc::new(repeat_keys(param_id.values())),
            5 => {
                let keys: Vec<Option<i32>> =
                    (0..n).map(|i| params.index.get(&(run.value(i).to_string(), param_id.value(i))).copied()).collect();
                let mut v = Vec::with_capacity(total);
                for (i, &c) in counts.iter().enumerate() {
                    v.extend(std::iter::repeat_n(keys[i], c));
                }
                let names = StringArray::from_iter_values(params.names.iter());
                Arc::new(DictionaryArray::<Int32Type>::try_new(Int32Array::from(v), Arc::new(names))?)
            }
            6 => {
                let mut v = Vec::with_capacity(total);
                for (i, &c) in counts.iter().enumerate() {
                    let base = i64::from(chunk.value(i)) * CHUNK_LEN as i64;
                    v.extend((0..c as i64).map(|j| base + j));
                }
                Arc::new(Int64Array::from(v))
            }
            7 => {
                // Slicing a FixedSizeList slices its child too: chunk i starts at i·CHUNK_LEN.
                let flat = values.values().as_primitive::<Float32Type>();
                if counts.iter().all(|&c| c == CHUNK_LEN) {
                    Arc::new(flat.slice(0, total))
                } else {
                    let raw = flat.values();
                    let mut v = Vec::with_capacity(total);
                    for (i, &c) in counts.iter().enumerate() {
                        let s = i * CHUNK_LEN;
                        v.extend_from_slice(&raw[s..s + c]);
                    }
                    Arc::new(Float32Array::from(v))
                }
            }
            other => return internal_err!("grad_values has no column {other}"),
        });
    }
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}
