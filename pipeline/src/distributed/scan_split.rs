//! How a Parquet scan of the lake is split over the tasks of a stage.
//!
//! datafusion-distributed sends every task of a stage its own variant of the
//! scan, and all variants must have the same number of partitions. Its default
//! split (4.0) asks DataFusion's `FileGroupPartitioner` for `tasks × partitions`
//! file groups and deals them out round-robin. A lake's `grads` files are
//! sorted by step, so DataFusion keeps each group's order and will not split
//! groups of several files: it hands back fewer groups than asked, the tasks
//! get different counts, and planning fails. Here the bytes are cut into
//! contiguous pieces, so each new group is an in-order stretch of one old group
//! (the ordering still holds), the pieces go to the least-loaded task, and every
//! task is padded with empty groups to the same count.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfig};
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};
use datafusion_distributed::{DistributedLeafExec, ScaleUpLeafNodeEvent, ScaleUpLeafNodeEventResponse};

/// A scale-up handler for file scans: see the module docs. Declines (`None`)
/// scans whose file groups carry a declared partitioning, which must stay as
/// they are, and everything that is not a file scan.
pub(crate) fn split_file_scan(ev: ScaleUpLeafNodeEvent) -> Option<Result<ScaleUpLeafNodeEventResponse>> {
    let source = ev.plan.downcast_ref::<DataSourceExec>()?;
    let config = source.data_source().downcast_ref::<FileScanConfig>()?;
    if config.output_partitioning.is_some() || ev.task_count == 0 {
        return None;
    }
    let pieces = cut_in_order(&config.file_groups, ev.plan.output_partitioning().partition_count() * ev.task_count);
    let variants = deal(pieces, ev.task_count).into_iter().map(|groups| {
        let mut variant = config.clone();
        variant.file_groups = groups;
        DataSourceExec::from_data_source(variant) as Arc<dyn ExecutionPlan>
    });
    Some(
        DistributedLeafExec::try_new(Arc::clone(ev.plan), variants)
            .map(|leaf| ScaleUpLeafNodeEventResponse::new(Arc::new(leaf))),
    )
}

/// Cuts `groups` into pieces of about `total / target` bytes. A piece never
/// spans two groups, and within a group the pieces follow its files and byte
/// ranges in order.
fn cut_in_order(groups: &[FileGroup], target: usize) -> Vec<FileGroup> {
    let total: u64 = groups.iter().flat_map(FileGroup::iter).map(PartitionedFile::effective_size).sum();
    if total == 0 || target == 0 {
        return groups.to_vec();
    }
    let piece = total.div_ceil(target as u64);
    let mut pieces = Vec::new();
    for group in groups {
        let (mut current, mut filled) = (Vec::new(), 0u64);
        for file in group.iter() {
            let (mut start, end) = file.range();
            while start < end {
                let stop = end.min(start + (piece - filled));
                current.push(file.clone().with_range(start as i64, stop as i64));
                filled += stop - start;
                start = stop;
                if filled == piece {
                    pieces.push(FileGroup::new(std::mem::take(&mut current)));
                    filled = 0;
                }
            }
        }
        if !current.is_empty() {
            pieces.push(FileGroup::new(current));
        }
    }
    pieces
}

/// Deals `pieces` to `tasks` tasks, largest first to the task with the fewest
/// bytes, then pads every task with empty groups to the same number of groups.
fn deal(mut pieces: Vec<FileGroup>, tasks: usize) -> Vec<Vec<FileGroup>> {
    let bytes = |g: &FileGroup| g.iter().map(PartitionedFile::effective_size).sum::<u64>();
    pieces.sort_by_key(|g| std::cmp::Reverse(bytes(g)));
    let mut dealt: Vec<(u64, Vec<FileGroup>)> = vec![(0, Vec::new()); tasks];
    for piece in pieces {
        let (load, groups) = dealt.iter_mut().min_by_key(|(load, groups)| (*load, groups.len())).expect("tasks > 0");
        *load += bytes(&piece);
        groups.push(piece);
    }
    let width = dealt.iter().map(|(_, g)| g.len()).max().unwrap_or(0).max(1);
    dealt
        .into_iter()
        .map(|(_, mut groups)| {
            groups.resize_with(width, || FileGroup::new(Vec::new()));
            groups
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(sizes: &[u64]) -> FileGroup {
        FileGroup::new(sizes.iter().enumerate().map(|(i, &s)| PartitionedFile::new(format!("f{i}-{s}"), s)).collect())
    }

    /// (file, start, end) of every piece, in order.
    fn spans(pieces: &[FileGroup]) -> Vec<Vec<(String, u64, u64)>> {
        pieces
            .iter()
            .map(|g| {
                g.iter()
                    .map(|f| {
                        let (s, e) = f.range();
                        (f.object_meta.location.to_string(), s, e)
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn pieces_cover_every_byte_once_in_order_and_never_span_groups() {
        let groups = vec![group(&[100, 60, 40]), group(&[30, 70])];
        let pieces = cut_in_order(&groups, 6);
        // 300 bytes into pieces of 50; the second group starts a new piece.
        let s = spans(&pieces);
        assert_eq!(
            s,
            vec![
                vec![("f0-100".to_string(), 0, 50)],
                vec![("f0-100".to_string(), 50, 100)],
                vec![("f1-60".to_string(), 0, 50)],
                vec![("f1-60".to_string(), 50, 60), ("f2-40".to_string(), 0, 40)],
                vec![("f0-30".to_string(), 0, 30), ("f1-70".to_string(), 0, 20)],
                vec![("f1-70".to_string(), 20, 70)],
            ]
        );
    }

    #[test]
    fn every_task_gets_the_same_number_of_groups_and_about_the_same_bytes() {
        // The lake that failed to plan on 4 workers: five files in two ordered groups.
        let groups = vec![group(&[539, 539, 539]), group(&[539, 345])];
        for tasks in 1..=7 {
            let dealt = deal(cut_in_order(&groups, 2 * tasks), tasks);
            assert_eq!(dealt.len(), tasks);
            let widths: Vec<usize> = dealt.iter().map(Vec::len).collect();
            assert!(widths.iter().all(|&w| w == widths[0]), "{tasks} tasks: {widths:?}");
            let loads: Vec<u64> =
                dealt.iter().map(|t| t.iter().flat_map(FileGroup::iter).map(|f| f.effective_size()).sum()).collect();
            assert_eq!(loads.iter().sum::<u64>(), 2501, "{tasks} tasks: {loads:?}");
            let (lo, hi) = (loads.iter().min().unwrap(), loads.iter().max().unwrap());
            // Within two pieces of each other (a piece is 2501 / (2 × tasks) bytes).
            assert!(hi - lo <= 2 * 2501u64.div_ceil(2 * tasks as u64), "{tasks} tasks: {loads:?}");
        }
    }

    #[test]
    fn empty_files_keep_their_groups() {
        let groups = vec![group(&[0, 0])];
        assert_eq!(cut_in_order(&groups, 4).len(), 1);
        let dealt = deal(cut_in_order(&groups, 4), 3);
        assert_eq!(dealt.iter().map(Vec::len).collect::<Vec<_>>(), [1, 1, 1]);
    }
}
