//! One execution-plan node for the operators over `grads` scans
//! (`grad_values`' explode, `grad_vectors`' assembly): the DataFusion plumbing
//! once, the per-partition stream in a [`GradsOperator`].

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result, Statistics, internal_err};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::statistics::{ChildStats, StatisticsArgs};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream,
};

/// Turns one partition of a `grads` scan into output batches.
pub(crate) trait GradsOperator: fmt::Debug + Send + Sync + 'static {
    /// Node name in plans.
    const NAME: &'static str;
    /// Whether each input row can be processed on its own. If not (a tensor's
    /// chunks must meet in one partition), the optimizer must not spread the
    /// scan's batches over partitions (round-robin repartitioning).
    const ROW_LOCAL: bool;
    /// Output rows for `input` rows, roughly: the optimizer's estimate (a join
    /// builds its hash table on the side it believes smaller).
    fn output_rows(input: usize) -> usize;
    /// The output stream for one partition's input.
    fn execute(
        &self,
        input: SendableRecordBatchStream,
        partition: usize,
        context: Arc<TaskContext>,
        schema: SchemaRef,
    ) -> Result<SendableRecordBatchStream>;
}

/// The plan node: `operator` applied to each partition of `input`.
#[derive(Debug)]
pub(crate) struct GradsExec<O> {
    input: Arc<dyn ExecutionPlan>,
    operator: Arc<O>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl<O: GradsOperator> GradsExec<O> {
    pub fn new(input: Arc<dyn ExecutionPlan>, operator: Arc<O>, schema: SchemaRef) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            input.properties().partitioning.clone(),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Self { input, operator, schema, properties }
    }
}

impl<O> GradsExec<O> {
    /// The operator.
    pub fn operator(&self) -> &Arc<O> {
        &self.operator
    }
}

impl<O: GradsOperator> DisplayAs for GradsExec<O> {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let names: Vec<&str> = self.schema.fields().iter().map(|f| f.name().as_str()).collect();
        write!(f, "{}: columns=[{}]", O::NAME, names.join(", "))
    }
}

impl<O: GradsOperator> ExecutionPlan for GradsExec<O> {
    fn name(&self) -> &'static str {
        O::NAME
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![O::ROW_LOCAL]
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
            return internal_err!("{} takes one child, got {}", O::NAME, children.len());
        }
        Ok(Arc::new(Self::new(children.swap_remove(0), self.operator.clone(), self.schema.clone())))
    }

    #[allow(deprecated)]
    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute))
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        vec![ChildStats::At(partition)]
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        let mut stats = Statistics::new_unknown(&self.schema);
        if let Some(input) = input_stats.first() {
            stats.num_rows = input.num_rows.map(O::output_rows).to_inexact();
        }
        Ok(Arc::new(stats))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context.clone())?;
        self.operator.execute(input, partition, context, self.schema.clone())
    }
}
