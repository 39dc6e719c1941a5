//! Physical plans of gradlake's own making for local sessions: operators and
//! the optimizer rules that place them.

mod ordered_merge;
mod round_robin_merge;

pub(crate) use ordered_merge::OrderedSketchMerge;
pub(crate) use round_robin_merge::RoundRobinMergeExec;
