//! Partial aggregates over `grad_values`, a run of chunk rows at a time.
//!
//! Every element of a chunk row shares its row's `run`, `step`, `kind`,
//! `sample`, `param_id` and `param`. An aggregate grouped only by those columns
//! therefore does not need DataFusion's hash aggregation, which finds a group
//! for every element (for `GROUP BY kind` over a dictionary column that is a
//! row-format key per element: over half the time of a full scan, profiled).
//! [`AggregateByChunk`] finds the group once per run of chunk rows with the
//! same keys and feeds that run's elements, as array slices, to the group's
//! [`Accumulator`]s — the aggregate functions' own vectorised kernels. Key
//! columns the arguments do not use are never materialised per element.
//!
//! It replaces only the *partial* stage ([`ChunkAggregation`], a physical
//! optimizer rule) and emits exactly that stage's output (group keys and
//! each function's state fields), so the final stage and every aggregate
//! function are DataFusion's own. Memory: the groups' accumulators, reserved
//! in the pool; when the reservation fails, or past [`MAX_GROUPS`], the
//! states gathered so far are emitted and the operator starts afresh (a
//! partial stage may emit a group more than once; the final stage merges).
//!
//! `GROUPING SETS` (and `ROLLUP`, `CUBE`) of chunk keys are taken too: each run
//! goes to one group per set, its key with the set's absent columns NULL and
//! the set's `__grouping_id`, computed as DataFusion computes it
//! (`dimension_wise.sql` tests every param and the whole model in one pass).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, BooleanArray, Int32Array, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::compute::kernels::boolean::and_kleene;
use datafusion::arrow::datatypes::{DataType, Int32Type, SchemaRef};
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, ScalarValue, internal_err};
use datafusion::config::ConfigOptions;
use datafusion::execution::TaskContext;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::logical_expr::Accumulator;
use datafusion::logical_expr::ColumnarValue;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::aggregate::{AggregateExprBuilder, AggregateFunctionExpr};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream,
};
use futures::StreamExt;
use gradlake_ingest::CHUNK_LEN;

use super::grad_values::{Explode, explode_slice};
use super::grads_exec::{GradsExec, GradsOperator};
use super::grads_scan::ParamIndex;

/// Columns of `grad_values` (by index) that are constant within a chunk row:
/// run, step, kind, sample, param_id, param.
const CHUNK_KEYS: std::ops::RangeInclusive<usize> = 0..=5;

/// Groups held before their states are emitted, however much memory is free:
/// keeps the per-batch work of finding groups small.
const MAX_GROUPS: usize = 1 << 14;

/// Chunk rows exploded at a time: 64 × 4096 elements, 1 MiB of `value`.
const ROWS_PER_SLICE: usize = 64;

/// Replaces a partial [`AggregateExec`] directly over `grad_values`'
/// [`Explode`], grouped only by chunk-constant columns, with [`AggregateByChunk`].
/// Leaves every other aggregate alone: grouping sets, `FILTER`, `DISTINCT`,
/// ordered aggregates, or a group column that varies within a chunk (`idx`, `value`).
#[derive(Debug, Default)]
pub struct ChunkAggregation;

impl PhysicalOptimizerRule for ChunkAggregation {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            Ok(match rewrite(&node)? {
                Some((operator, scan, schema)) => {
                    Transformed::yes(Arc::new(GradsExec::new(scan, Arc::new(operator), schema)) as _)
                }
                None => Transformed::no(node),
            })
        })
        .data()
    }

    fn name(&self) -> &str {
        "gradlake_chunk_aggregation"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The same replacement in a stage a worker received: the nodes between the
/// aggregate and the scan stay in the plan as its child (never executed), so
/// that the stage keeps the shape the coordinator planned (datafusion-distributed
/// maps the workers' metrics back onto its plan node by node).
pub(crate) fn rewrite_worker_plan(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        Ok(match rewrite(&node)? {
            Some((operator, scan, schema)) => {
                let input = Arc::clone(node.children()[0]);
                let properties = Arc::clone(node.properties());
                Transformed::yes(
                    Arc::new(ChunkAggregateOverKeptNodes { input, scan, operator, schema, properties }) as _
                )
            }
            None => Transformed::no(node),
        })
    })
    .data()
}

/// The operator of an [`AggregateByChunk`] plus the scan it reads.
type Rewritten = (AggregateByChunk, Arc<dyn ExecutionPlan>, SchemaRef);

fn rewrite(node: &Arc<dyn ExecutionPlan>) -> Result<Option<Rewritten>> {
    let Some(agg) = node.downcast_ref::<AggregateExec>() else { return Ok(None) };
    if *agg.mode() != AggregateMode::Partial
        || agg.limit_options().is_some()
        || agg.filter_expr().iter().any(Option::is_some)
    {
        return Ok(None);
    }
    // Between the aggregate and the explode there may be projections (DataFusion
    // computes an argument shared by two aggregates, `abs(value)`, once) and
    // filters on chunk keys that the scan did not apply exactly: both are folded
    // in, as expressions over the explode's output.
    let mut chain = Vec::new();
    let mut below = agg.input();
    let explode_exec = loop {
        if let Some(explode) = below.downcast_ref::<GradsExec<Explode>>() {
            break explode;
        } else if let Some(p) = below.downcast_ref::<ProjectionExec>() {
            chain.push(Between::Projection(p));
            below = p.input();
        } else if let Some(f) = below.downcast_ref::<FilterExec>() {
            chain.push(Between::Filter(f));
            below = f.input();
        } else {
            return Ok(None);
        }
    };
    let (params, explode_output) = explode_exec.operator().parts();
    let explode_schema = explode_exec.schema();
    let is_key = |e: &Arc<dyn PhysicalExpr>| {
        let mut only_keys = true;
        let _ = e.apply(|n| {
            if let Some(c) = n.downcast_ref::<Column>() {
                only_keys &= CHUNK_KEYS.contains(&explode_output[c.index()]);
            }
            Ok(TreeNodeRecursion::Continue)
        });
        only_keys
    };
    // What each column of the current node is, over the explode's output.
    let mut mapping: Vec<Arc<dyn PhysicalExpr>> = explode_schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| Arc::new(Column::new(f.name(), i)) as Arc<dyn PhysicalExpr>)
        .collect();
    let mut predicates = Vec::new();
    for node in chain.iter().rev() {
        match node {
            Between::Projection(p) => {
                mapping = p.expr().iter().map(|e| substitute(&e.expr, &mapping)).collect::<Result<_>>()?;
            }
            Between::Filter(f) => {
                let predicate = substitute(f.predicate(), &mapping)?;
                if !is_key(&predicate) {
                    return Ok(None);
                }
                predicates.push(predicate);
                if let Some(columns) = f.projection() {
                    mapping = columns.iter().map(|&i| Arc::clone(&mapping[i])).collect();
                }
            }
        }
    }
    let unfold = |expr: &Arc<dyn PhysicalExpr>| substitute(expr, &mapping);
    // Group keys: plain columns that are chunk keys, as indices into grad_values.
    let mut keys = Vec::new();
    for (expr, _) in agg.group_expr().expr() {
        let expr = unfold(expr)?;
        let Some(column) = expr.downcast_ref::<Column>() else { return Ok(None) };
        let key = explode_output[column.index()];
        if !CHUNK_KEYS.contains(&key) {
            return Ok(None);
        }
        keys.push(key);
    }
    // The arguments' columns, explode-output positions in ascending order.
    let mut used = Vec::new();
    let mut unfolded = Vec::with_capacity(agg.aggr_expr().len());
    for aggregate in agg.aggr_expr() {
        if aggregate.is_distinct() || aggregate.is_reversed() || !aggregate.order_bys().is_empty() {
            return Ok(None);
        }
        let args = aggregate.expressions().iter().map(&unfold).collect::<Result<Vec<_>>>()?;
        for arg in &args {
            arg.apply(|e| {
                if let Some(c) = e.downcast_ref::<Column>() {
                    used.push(c.index());
                }
                Ok(TreeNodeRecursion::Continue)
            })?;
        }
        unfolded.push(args);
    }
    used.sort_unstable();
    used.dedup();
    let arg_schema = Arc::new(explode_schema.project(&used)?);
    let position = |old: usize| used.iter().position(|&u| u == old).expect("collected above");
    let mut aggregates = Vec::with_capacity(agg.aggr_expr().len());
    for (aggregate, args) in agg.aggr_expr().iter().zip(unfolded) {
        let args = args
            .into_iter()
            .map(|arg| {
                arg.transform(|e| {
                    Ok(match e.downcast_ref::<Column>() {
                        Some(c) => Transformed::yes(Arc::new(Column::new(c.name(), position(c.index()))) as _),
                        None => Transformed::no(e),
                    })
                })
                .data()
            })
            .collect::<Result<Vec<_>>>()?;
        aggregates.push(rebuild(aggregate, args, &arg_schema)?);
    }
    let sets = if agg.group_expr().is_single() { Vec::new() } else { grouping_sets(agg)? };
    let operator = AggregateByChunk {
        sets,
        explode_output: used.iter().map(|&u| explode_output[u]).collect(),
        predicates,
        explode_all: explode_output.to_vec(),
        explode_schema,
        arg_schema,
        params: params.clone(),
        keys,
        aggregates,
    };
    Ok(Some((operator, Arc::clone(explode_exec.children()[0]), agg.schema())))
}

/// The grouping sets of `agg` with their `__grouping_id`s: in its low bits
/// one bit per group column, 1 where the set leaves it out (the first column
/// highest), above them the occurrence of a repeated set — DataFusion's
/// `evaluate_group_by` and `group_id_array`.
fn grouping_sets(agg: &AggregateExec) -> Result<Vec<GroupingSet>> {
    let group_by = agg.group_expr();
    let columns = group_by.expr().len();
    let schema = agg.schema();
    let id_type = schema.field(columns).data_type();
    let mut occurrences: HashMap<&[bool], u64> = HashMap::new();
    group_by
        .groups()
        .iter()
        .map(|nulls| {
            let seen = occurrences.entry(nulls).or_insert(0);
            let ordinal = *seen;
            *seen += 1;
            let bits = nulls.iter().fold(0u64, |acc, &null| (acc << 1) | u64::from(null));
            let id = ScalarValue::UInt64(Some(bits | (ordinal << columns))).cast_to(id_type)?;
            Ok(GroupingSet { nulls: nulls.clone(), id })
        })
        .collect()
}

/// One grouping set: which group columns it leaves out, and its `__grouping_id`.
#[derive(Debug, Clone)]
struct GroupingSet {
    nulls: Vec<bool>,
    id: ScalarValue,
}

/// A node between the aggregate and the explode.
enum Between<'a> {
    Projection(&'a ProjectionExec),
    Filter(&'a FilterExec),
}

/// `expr` with each column `i` replaced by `mapping[i]`.
fn substitute(expr: &Arc<dyn PhysicalExpr>, mapping: &[Arc<dyn PhysicalExpr>]) -> Result<Arc<dyn PhysicalExpr>> {
    Arc::clone(expr)
        .transform(|e| {
            Ok(match e.downcast_ref::<Column>() {
                Some(c) => Transformed::yes(Arc::clone(&mapping[c.index()])),
                None => Transformed::no(e),
            })
        })
        .data()
}

/// `aggregate` with `args` over `schema` (its arguments' input after the rewrite).
fn rebuild(
    aggregate: &AggregateFunctionExpr,
    args: Vec<Arc<dyn PhysicalExpr>>,
    schema: &SchemaRef,
) -> Result<Arc<AggregateFunctionExpr>> {
    let mut builder = AggregateExprBuilder::new(Arc::new(aggregate.fun().clone()), args)
        .schema(Arc::clone(schema))
        .alias(aggregate.name())
        .with_ignore_nulls(aggregate.ignore_nulls());
    if let Some(display) = aggregate.human_display() {
        builder = builder.human_display(display);
    }
    if let Some(alias) = aggregate.human_display_alias() {
        builder = builder.human_display_alias(alias);
    }
    Ok(Arc::new(builder.build()?))
}

/// Partial aggregation of exploded chunk rows, a run of equal keys at a time (module docs).
#[derive(Debug, Clone)]
pub(crate) struct AggregateByChunk {
    /// Grouping sets (empty for a plain GROUP BY).
    sets: Vec<GroupingSet>,
    /// `grad_values` columns the arguments read (indices), in `arg_schema` order.
    explode_output: Vec<usize>,
    /// Filters on chunk keys, over the explode's original output (`explode_all`, `explode_schema`).
    predicates: Vec<Arc<dyn PhysicalExpr>>,
    explode_all: Vec<usize>,
    explode_schema: SchemaRef,
    arg_schema: SchemaRef,
    params: Arc<ParamIndex>,
    /// Group-by columns, as `grad_values` indices, in the aggregate's order.
    keys: Vec<usize>,
    aggregates: Vec<Arc<AggregateFunctionExpr>>,
}

impl AggregateByChunk {
    /// Which chunk rows of `b` pass the filters: they are evaluated on one row
    /// per chunk (the explode's columns with every `numel` set to 1), since
    /// they read only columns that are constant within a chunk.
    fn selected(&self, b: &RecordBatch) -> Result<BooleanArray> {
        let mut columns = b.columns().to_vec();
        columns[6] = Arc::new(Int32Array::from(vec![1; b.num_rows()]));
        let one_each = RecordBatch::try_new(b.schema(), columns)?;
        let rows = explode_slice(&one_each, &self.params, &self.explode_all, &self.explode_schema)?;
        let mut selected = BooleanArray::from(vec![true; b.num_rows()]);
        for predicate in &self.predicates {
            let passed = predicate.evaluate(&rows)?.into_array(rows.num_rows())?;
            selected = and_kleene(&selected, passed.as_boolean())?;
        }
        Ok(selected)
    }
}

impl GradsOperator for AggregateByChunk {
    const NAME: &'static str = "AggregateGradValuesByChunkExec";
    const ROW_LOCAL: bool = true;

    fn output_rows(input: usize) -> usize {
        input
    }

    fn execute(
        &self,
        input: SendableRecordBatchStream,
        partition: usize,
        context: Arc<TaskContext>,
        schema: SchemaRef,
    ) -> Result<SendableRecordBatchStream> {
        let reservation = MemoryConsumer::new(format!("{}[{partition}]", Self::NAME)).register(context.memory_pool());
        let groups = Groups {
            operator: Arc::new(self.clone()),
            schema: Arc::clone(&schema),
            index: HashMap::new(),
            groups: Vec::new(),
            bytes: 0,
            reservation,
            literals: HashMap::new(),
            pending: VecDeque::new(),
            emitted: false,
        };
        let stream =
            futures::stream::try_unfold((input, groups, false), |(mut input, mut groups, mut done)| async move {
                loop {
                    if let Some(batch) = groups.pending.pop_front() {
                        return Ok(Some((batch, (input, groups, done))));
                    }
                    if done {
                        return Ok(None);
                    }
                    match input.next().await {
                        Some(batch) => groups.update(&batch?)?,
                        None => {
                            groups.finish()?;
                            done = true;
                        }
                    }
                }
            });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}

/// One group: its key and one accumulator per aggregate.
struct Group {
    key: Vec<ScalarValue>,
    accumulators: Vec<Box<dyn Accumulator>>,
    /// What its accumulators reported at the last measure.
    bytes: usize,
}

impl Group {
    /// Feeds elements `offset..offset + len` of each aggregate's arguments.
    fn update(&mut self, args: &[Vec<ArrayRef>], offset: usize, len: usize) -> Result<()> {
        for (accumulator, arrays) in self.accumulators.iter_mut().zip(args) {
            let slices: Vec<ArrayRef> = arrays.iter().map(|a| a.slice(offset, len)).collect();
            accumulator.update_batch(&slices)?;
        }
        Ok(())
    }
}

/// The groups of one partition, and the batches ready to go out.
struct Groups {
    operator: Arc<AggregateByChunk>,
    schema: SchemaRef,
    index: HashMap<Vec<ScalarValue>, usize>,
    groups: Vec<Group>,
    /// Sum of the groups' `bytes`: what `reservation` holds.
    bytes: usize,
    reservation: MemoryReservation,
    /// Arrays of constant arguments (`count(*)`'s 1), by (aggregate, argument).
    literals: HashMap<(usize, usize), (ScalarValue, ArrayRef)>,
    pending: VecDeque<RecordBatch>,
    emitted: bool,
}

impl Groups {
    fn update(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut start = 0;
        while start < batch.num_rows() {
            let len = ROWS_PER_SLICE.min(batch.num_rows() - start);
            self.update_slice(&batch.slice(start, len))?;
            start += len;
        }
        Ok(())
    }

    /// Adds the elements of the chunk rows in `b` (the `grads` scan's columns).
    fn update_slice(&mut self, b: &RecordBatch) -> Result<()> {
        let op = Arc::clone(&self.operator);
        let filtered;
        let b = if op.predicates.is_empty() {
            b
        } else {
            filtered = filter_record_batch(b, &op.selected(b)?)?;
            &filtered
        };
        if b.num_rows() == 0 {
            return Ok(());
        }
        let elements = explode_slice(b, &op.params, &op.explode_output, &op.arg_schema)?;
        let total = elements.num_rows();
        let mut args: Vec<Vec<ArrayRef>> = Vec::with_capacity(op.aggregates.len());
        for (a, aggregate) in op.aggregates.iter().enumerate() {
            let mut arrays = Vec::new();
            for (j, expr) in aggregate.expressions().iter().enumerate() {
                arrays.push(match expr.evaluate(&elements)? {
                    ColumnarValue::Array(array) => array,
                    ColumnarValue::Scalar(value) => self.literal(a, j, value, total)?,
                });
            }
            args.push(arrays);
        }
        let numel = b.column(6).as_primitive::<Int32Type>();
        let count = |row: usize| numel.value(row).clamp(0, CHUNK_LEN as i32) as usize;
        let runs =
            if op.keys.iter().any(|&k| k == 0 || k == 5) { Some(cast(b.column(0), &DataType::Utf8)?) } else { None };
        let mut keys = (0..b.num_rows()).map(|row| self.key(b, runs.as_ref(), row)).collect::<Result<Vec<_>>>()?;
        let mut touched = Vec::new();
        let (mut row, mut offset) = (0, 0);
        while row < b.num_rows() {
            let (mut end, mut len) = (row + 1, count(row));
            while end < b.num_rows() && keys[end] == keys[row] {
                len += count(end);
                end += 1;
            }
            let key = std::mem::take(&mut keys[row]);
            if op.sets.is_empty() {
                let g = self.group(key)?;
                self.groups[g].update(&args, offset, len)?;
                touched.push(g);
            } else {
                for set in &op.sets {
                    let mut in_set = Vec::with_capacity(key.len() + 1);
                    for (value, &null) in key.iter().zip(&set.nulls) {
                        in_set.push(if null { ScalarValue::try_from(&value.data_type())? } else { value.clone() });
                    }
                    in_set.push(set.id.clone());
                    let g = self.group(in_set)?;
                    self.groups[g].update(&args, offset, len)?;
                    touched.push(g);
                }
            }
            (row, offset) = (end, offset + len);
        }
        touched.sort_unstable();
        touched.dedup();
        for g in touched {
            let group = &mut self.groups[g];
            let now: usize = group.accumulators.iter().map(|a| a.size()).sum();
            self.bytes = self.bytes - group.bytes + now;
            group.bytes = now;
        }
        if self.groups.len() >= MAX_GROUPS || self.reservation.try_resize(self.bytes).is_err() {
            self.flush()?;
        }
        Ok(())
    }

    /// The array of a constant argument for `len` elements, made once per value.
    fn literal(&mut self, aggregate: usize, arg: usize, value: ScalarValue, len: usize) -> Result<ArrayRef> {
        if let Some((cached, array)) = self.literals.get(&(aggregate, arg))
            && *cached == value
            && array.len() >= len
        {
            return Ok(array.slice(0, len));
        }
        let array = value.to_array_of_size(len.max(ROWS_PER_SLICE * CHUNK_LEN))?;
        self.literals.insert((aggregate, arg), (value, Arc::clone(&array)));
        Ok(array.slice(0, len))
    }

    /// The group key of chunk row `row`: its values of the group-by columns.
    fn key(&self, b: &RecordBatch, runs: Option<&ArrayRef>, row: usize) -> Result<Vec<ScalarValue>> {
        let op = &self.operator;
        op.keys
            .iter()
            .map(|&k| match k {
                // run, step, kind, sample, param_id: the scan's columns in the same order.
                0..=4 => ScalarValue::try_from_array(b.column(k), row),
                5 => {
                    let run = runs.expect("cast when param is a key").as_string::<i32>().value(row);
                    let id = b.column(4).as_primitive::<Int32Type>().value(row);
                    let name = op.params.get(run, id).map(|e| op.params.names[e.name as usize].clone());
                    Ok(ScalarValue::Utf8(name))
                }
                other => internal_err!("grad_values column {other} is not constant within a chunk"),
            })
            .collect()
    }

    fn group(&mut self, key: Vec<ScalarValue>) -> Result<usize> {
        if let Some(&g) = self.index.get(&key) {
            return Ok(g);
        }
        let accumulators =
            self.operator.aggregates.iter().map(|a| a.create_accumulator()).collect::<Result<Vec<_>>>()?;
        self.groups.push(Group { key: key.clone(), accumulators, bytes: 0 });
        self.index.insert(key, self.groups.len() - 1);
        Ok(self.groups.len() - 1)
    }

    /// Emits the groups' keys and states as one batch of the partial stage's schema, and starts afresh.
    fn flush(&mut self) -> Result<()> {
        if self.groups.is_empty() {
            return Ok(());
        }
        let groups = std::mem::take(&mut self.groups);
        self.index.clear();
        let fields = self.schema.fields();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(fields.len());
        let key_columns = self.operator.keys.len() + usize::from(!self.operator.sets.is_empty());
        for k in 0..key_columns {
            let keys = ScalarValue::iter_to_array(groups.iter().map(|g| g.key[k].clone()))?;
            columns.push(cast(&keys, fields[columns.len()].data_type())?);
        }
        let mut groups = groups;
        let states: Vec<Vec<Vec<ScalarValue>>> = groups
            .iter_mut()
            .map(|g| g.accumulators.iter_mut().map(|a| a.state()).collect::<Result<Vec<_>>>())
            .collect::<Result<_>>()?;
        for a in 0..self.operator.aggregates.len() {
            for s in 0..states.first().map_or(0, |g| g[a].len()) {
                let values = ScalarValue::iter_to_array(states.iter().map(|g| g[a][s].clone()))?;
                columns.push(cast(&values, fields[columns.len()].data_type())?);
            }
        }
        if columns.len() != fields.len() {
            return internal_err!(
                "{} made {} columns for a schema of {}",
                AggregateByChunk::NAME,
                columns.len(),
                fields.len()
            );
        }
        self.pending.push_back(RecordBatch::try_new(Arc::clone(&self.schema), columns)?);
        self.emitted = true;
        self.bytes = 0;
        self.reservation.free();
        Ok(())
    }

    /// Emits what is left. Without GROUP BY, a partial stage emits one row even
    /// for no input (the functions' initial states), as DataFusion's does.
    fn finish(&mut self) -> Result<()> {
        if self.operator.keys.is_empty() && self.operator.sets.is_empty() && !self.emitted && self.groups.is_empty() {
            self.group(Vec::new())?;
        }
        self.flush()
    }
}

/// [`AggregateByChunk`] reading `scan` directly, with the nodes it replaced
/// (`input`: projections, filters, the explode, the scan) kept as its child.
#[derive(Debug)]
struct ChunkAggregateOverKeptNodes {
    input: Arc<dyn ExecutionPlan>,
    scan: Arc<dyn ExecutionPlan>,
    operator: AggregateByChunk,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl DisplayAs for ChunkAggregateOverKeptNodes {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{} (reads the scan below directly)", AggregateByChunk::NAME)
    }
}

impl ExecutionPlan for ChunkAggregateOverKeptNodes {
    fn name(&self) -> &'static str {
        AggregateByChunk::NAME
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
            return internal_err!("{} takes one child, got {}", AggregateByChunk::NAME, children.len());
        }
        let input = children.swap_remove(0);
        // The scan is the explode's child, wherever the new input puts it.
        let mut below = Arc::clone(&input);
        let scan = loop {
            if below.downcast_ref::<GradsExec<Explode>>().is_some() {
                break Arc::clone(below.children()[0]);
            }
            match below.children().first() {
                Some(&child) => below = Arc::clone(child),
                None => return internal_err!("{}: no grad_values explode below", AggregateByChunk::NAME),
            }
        };
        let (operator, schema, properties) =
            (self.operator.clone(), Arc::clone(&self.schema), Arc::clone(&self.properties));
        Ok(Arc::new(Self { input, scan, operator, schema, properties }))
    }

    #[allow(deprecated)]
    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let input = self.scan.execute(partition, Arc::clone(&context))?;
        self.operator.execute(input, partition, context, Arc::clone(&self.schema))
    }
}
