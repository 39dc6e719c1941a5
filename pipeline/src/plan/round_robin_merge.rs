//! [`RoundRobinMergeExec`]: every partition of its input as one stream, in an
//! order fixed by the partitions' contents alone.
//!
//! `CoalescePartitionsExec` hands batches on as they arrive, so their order
//! varies from run to run. An aggregate whose result depends on the order of
//! its input (merging Frequent Directions sketches keeps the guarantee in any
//! order, but not the bits) would then answer differently each time. This
//! operator still runs every partition on a task of its own, concurrently,
//! but hands on batch 1 of partition 0, batch 1 of partition 1, …, then
//! batch 2 of partition 0, and so on, skipping partitions that have ended.
//! Each task runs at most one batch ahead of its turn.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::common::runtime::SpawnedTask;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result, internal_err};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};
use futures::StreamExt;
use tokio::sync::mpsc;

/// All partitions of `input` as one, taking turns batch by batch (see the module docs).
#[derive(Debug)]
pub(crate) struct RoundRobinMergeExec {
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl RoundRobinMergeExec {
    /// Merges the partitions of `input`.
    pub(crate) fn new(input: Arc<dyn ExecutionPlan>) -> Self {
        // Like any merge of partitions, the output keeps no ordering.
        let mut eq_properties = input.equivalence_properties().clone();
        eq_properties.clear_orderings();
        eq_properties.clear_per_partition_constants();
        let properties = PlanProperties::new(
            eq_properties,
            Partitioning::UnknownPartitioning(1),
            input.pipeline_behavior(),
            input.boundedness(),
        );
        Self { input, properties: Arc::new(properties) }
    }
}

impl DisplayAs for RoundRobinMergeExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "RoundRobinMergeExec")
    }
}

/// One partition's task and the channel it sends its batches on.
struct Turn {
    batches: mpsc::Receiver<Result<RecordBatch>>,
    task: SpawnedTask<()>,
}

/// The merged stream's state: the partitions still running, and whose turn it is.
struct Turns {
    turns: Vec<Turn>,
    next: usize,
}

impl ExecutionPlan for RoundRobinMergeExec {
    fn name(&self) -> &'static str {
        "RoundRobinMergeExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
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
        options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return internal_err!("RoundRobinMergeExec takes one child, got {}", children.len());
        }
        let input = children.swap_remove(0);
        Ok(Arc::new(match options.children_properties {
            ChildrenPropertiesMode::Keep => Self { input, properties: Arc::clone(&self.properties) },
            ChildrenPropertiesMode::Recompute => Self::new(input),
        }))
    }

    #[allow(deprecated)]
    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return internal_err!("RoundRobinMergeExec has one partition, asked for {partition}");
        }
        let count = self.input.output_partitioning().partition_count();
        let mut turns = Vec::with_capacity(count);
        for i in 0..count {
            let (sender, batches) = mpsc::channel(1);
            let (input, context) = (Arc::clone(&self.input), Arc::clone(&context));
            let task = SpawnedTask::spawn(async move {
                let mut stream = match input.execute(i, context) {
                    Ok(stream) => stream,
                    Err(e) => {
                        let _ = sender.send(Err(e)).await;
                        return;
                    }
                };
                while let Some(item) = stream.next().await {
                    let failed = item.is_err();
                    // A closed channel means the merged stream was dropped: stop.
                    if sender.send(item).await.is_err() || failed {
                        return;
                    }
                }
            });
            turns.push(Turn { batches, task });
        }
        let stream = futures::stream::unfold(Turns { turns, next: 0 }, |mut state| async move {
            loop {
                if state.turns.is_empty() {
                    return None;
                }
                let i = state.next % state.turns.len();
                match state.turns[i].batches.recv().await {
                    Some(Ok(batch)) => {
                        state.next = i + 1;
                        return Some((Ok(batch), state));
                    }
                    Some(Err(e)) => {
                        state.turns.clear();
                        return Some((Err(e), state));
                    }
                    None => {
                        // The partition ended, or its task panicked: that
                        // panic surfaces here rather than passing for an end.
                        let turn = state.turns.remove(i);
                        if let Err(e) = turn.task.join_unwind().await {
                            state.turns.clear();
                            return Some((Err(DataFusionError::ExecutionJoin(Box::new(e))), state));
                        }
                        state.next = i;
                    }
                }
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema(), stream)))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{AsArray, Int64Array};
    use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema};
    use datafusion::datasource::memory::MemorySourceConfig;
    use datafusion::physical_plan::collect;

    use super::*;

    #[tokio::test]
    async fn partitions_take_turns_batch_by_batch_and_ended_ones_are_skipped() {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let batch = |v: i64| RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![v]))]).unwrap();
        // Partition p holds batches 10p, 10p + 1, …: 3, 1 and 2 of them.
        let partitions: Vec<Vec<RecordBatch>> =
            [3, 1, 2].iter().enumerate().map(|(p, &n)| (0..n).map(|b| batch(10 * p as i64 + b)).collect()).collect();
        let input = MemorySourceConfig::try_new_exec(&partitions, schema.clone(), None).unwrap();
        let merged: Arc<dyn ExecutionPlan> = Arc::new(RoundRobinMergeExec::new(input));
        assert_eq!(merged.output_partitioning().partition_count(), 1);
        for _ in 0..5 {
            let out = collect(merged.clone(), Arc::new(TaskContext::default())).await.unwrap();
            let order: Vec<i64> = out.iter().map(|b| b.column(0).as_primitive::<Int64Type>().value(0)).collect();
            assert_eq!(order, [0, 10, 20, 1, 21, 2]);
        }
    }
}
