//! [`OrderedSketchMerge`]: partial covariance sketches merged in partition order.
//!
//! Without GROUP BY, DataFusion runs an aggregate as a partial stage in every
//! partition and a final stage fed by `CoalescePartitionsExec`, which hands
//! the partial states on in the order they finish. Merging two Frequent
//! Directions sketches keeps the guarantee in either order, but not the bits:
//! with partitions of equal size (`grads_scan::derived_scan`), which finishes
//! first is a coin toss, and the same query over the same lake answered
//! differently from run to run (`bench/spectrum.sh`: error bounds
//! 3.50331285e-6 and 3.50331307e-6). This rule puts a [`RoundRobinMergeExec`]
//! there instead, so the final stage merges partition 0's state, then
//! partition 1's, and so on. Each partition still runs concurrently; a state
//! that finishes early waits in its channel, as it waited in the coalesce's.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};

use super::RoundRobinMergeExec;
use crate::udf::is_covariance_aggregate;

/// The rule (see the module docs): it takes final aggregates without GROUP BY
/// that compute at least one covariance aggregate.
#[derive(Debug, Default)]
pub(crate) struct OrderedSketchMerge;

impl PhysicalOptimizerRule for OrderedSketchMerge {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            Ok(match ordered(&node)? {
                Some(replacement) => Transformed::yes(replacement),
                None => Transformed::no(node),
            })
        })
        .data()
    }

    fn name(&self) -> &str {
        "gradlake_ordered_sketch_merge"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `node` with its coalesce replaced, if it is the final stage of a covariance aggregate.
fn ordered(node: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(last) = node.downcast_ref::<AggregateExec>() else { return Ok(None) };
    if *last.mode() != AggregateMode::Final
        || !last.group_expr().is_empty()
        || !last.aggr_expr().iter().any(|e| is_covariance_aggregate(e.fun()))
    {
        return Ok(None);
    }
    let Some(coalesce) = last.input().downcast_ref::<CoalescePartitionsExec>() else { return Ok(None) };
    if coalesce.fetch().is_some() {
        return Ok(None);
    }
    let merged: Arc<dyn ExecutionPlan> = Arc::new(RoundRobinMergeExec::new(Arc::clone(coalesce.input())));
    let options = ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute);
    Ok(Some(Arc::clone(node).replace_children(vec![merged], options)?))
}
