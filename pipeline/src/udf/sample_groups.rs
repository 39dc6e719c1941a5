//! The [`GroupsAccumulator`] of the whole-sample statistics: one query with
//! many groups (one per coordinate in an iteration-wise test, one per param
//! and step in a dimension-wise one) keeps every group's values in one vector
//! of vectors instead of one boxed accumulator per group.
//!
//! Groups are evaluated in parallel (rayon): a query that hands all its
//! groups to one partition — as `gradlake analyze` does, so that no value is
//! copied between a partial and a final aggregate — still uses every core.
//! Large groups are evaluated one at a time (their fits are parallel inside),
//! small ones together, so the working memory is that of the largest group
//! plus one small group per thread. `size()` counts it, and what the vectors
//! really hold (their capacity); vectors past [`LARGE`] values grow by an
//! eighth instead of doubling, so a group of millions of values wastes little.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use rayon::prelude::*;

use super::args::passes;
use super::sample_function::SampleFunction;
use super::sample_state::{
    Element, Keep, eval_bytes_per_value, extend_from_list, for_each_value, list_array, sorted_f64,
};

/// Groups of at least this many values are evaluated one at a time and grow by an eighth.
const LARGE: usize = 1 << 16;

/// Values and skipped counts of every group of one [`SampleFunction`], stored as `T`.
pub(crate) struct SampleGroups<F: SampleFunction, T> {
    params: F::Params,
    values: Vec<Vec<T>>,
    skipped: Vec<u64>,
    /// Σ capacity of `values`' vectors, for `size()` without walking every group.
    capacity: usize,
    /// The longest group, for the evaluation's working memory.
    longest: usize,
}

impl<F: SampleFunction, T: Element> SampleGroups<F, T> {
    pub fn new(params: F::Params) -> Self {
        Self { params, values: Vec::new(), skipped: Vec::new(), capacity: 0, longest: 0 }
    }

    fn resize(&mut self, total_num_groups: usize) {
        if self.values.len() < total_num_groups {
            self.values.resize_with(total_num_groups, Vec::new);
            self.skipped.resize(total_num_groups, 0);
        }
    }

    fn take(&mut self, emit_to: EmitTo) -> (Vec<Vec<T>>, Vec<u64>) {
        let values = emit_to.take_needed(&mut self.values);
        let skipped = emit_to.take_needed(&mut self.skipped);
        self.capacity -= values.iter().map(Vec::capacity).sum::<usize>();
        self.longest = self.values.iter().map(Vec::len).max().unwrap_or(0);
        (values, skipped)
    }

    /// Appends to group `g`, keeping the capacity count and the longest group current.
    fn push(&mut self, g: usize, extend: impl FnOnce(&mut Vec<T>) -> Result<()>) -> Result<()> {
        let group = &mut self.values[g];
        let before = group.capacity();
        if group.len() == before && before >= LARGE {
            group.reserve_exact(before / 8);
        }
        extend(group)?;
        self.capacity += group.capacity() - before;
        self.longest = self.longest.max(group.len());
        Ok(())
    }
}

impl<F: SampleFunction, T: Element> GroupsAccumulator for SampleGroups<F, T> {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.resize(total_num_groups);
        let keep: Keep = F::KEEP;
        let mut result = Ok(());
        for_each_value(&values[0], |row, v| {
            if !passes(opt_filter, row) || result.is_err() {
                return;
            }
            let g = group_indices[row];
            match v.and_then(|v| keep.map(v)) {
                Some(v) => {
                    result = self.push(g, |group| {
                        group.push(T::from_f64(v));
                        Ok(())
                    })
                }
                None => self.skipped[g] += 1,
            }
        })?;
        result
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let (values, skipped) = self.take(emit_to);
        let params = &self.params;
        let one = |mut v: Vec<T>, s: u64| {
            let mut sorted = sorted_f64(&mut v);
            drop(v);
            F::evaluate(params, &mut sorted, s)
        };
        let mut results: Vec<Option<Result<ScalarValue>>> = (0..values.len()).map(|_| None).collect();
        let (large, small): (Vec<_>, Vec<_>) =
            values.into_iter().zip(skipped).enumerate().partition(|(_, (v, _))| v.len() >= LARGE);
        for (i, (v, s)) in large {
            results[i] = Some(one(v, s));
        }
        let small: Vec<(usize, Result<ScalarValue>)> =
            small.into_par_iter().map(|(i, (v, s))| (i, one(v, s))).collect();
        for (i, r) in small {
            results[i] = Some(r);
        }
        let results = results.into_iter().map(|r| r.expect("every group evaluated")).collect::<Result<Vec<_>>>()?;
        if results.is_empty() {
            return Ok(datafusion::arrow::array::new_empty_array(&F::return_type()));
        }
        ScalarValue::iter_to_array(results)
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let (values, skipped) = self.take(emit_to);
        let skipped = Int64Array::from_iter_values(skipped.into_iter().map(|s| s as i64));
        Ok(vec![Arc::new(list_array(values)), Arc::new(skipped)])
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> Result<()> {
        self.resize(total_num_groups);
        let lists = values[0].as_list::<i32>();
        let skipped = values[1].as_primitive::<Int64Type>();
        for (row, &g) in group_indices.iter().enumerate() {
            self.push(g, |group| extend_from_list(lists, row, group))?;
            if skipped.is_valid(row) {
                self.skipped[g] += skipped.value(row) as u64;
            }
        }
        Ok(())
    }

    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        // Each input row becomes a one-row state: its value (if usable) or a skip.
        let keep: Keep = F::KEEP;
        let mut lists: Vec<Vec<T>> = Vec::with_capacity(values[0].len());
        let mut skipped = Vec::with_capacity(values[0].len());
        for_each_value(&values[0], |row, v| {
            if !passes(opt_filter, row) {
                lists.push(Vec::new());
                skipped.push(0);
                return;
            }
            match v.and_then(|v| keep.map(v)) {
                Some(v) => {
                    lists.push(vec![T::from_f64(v)]);
                    skipped.push(0);
                }
                None => {
                    lists.push(Vec::new());
                    skipped.push(1);
                }
            }
        })?;
        Ok(vec![Arc::new(list_array(lists)), Arc::new(Int64Array::from(skipped))])
    }

    fn size(&self) -> usize {
        let small = self.longest.min(LARGE) * rayon::current_num_threads();
        let evaluating = (self.longest + small) * eval_bytes_per_value();
        size_of_val(self)
            + self.capacity * size_of::<T>()
            + self.values.capacity() * size_of::<Vec<T>>()
            + self.skipped.capacity() * size_of::<u64>()
            + evaluating
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Float32Array, StructArray};
    use datafusion::arrow::datatypes::{DataType, Float64Type};

    use super::*;
    use crate::udf::powerlaw_fit::PowerLawFit;
    use gradlake_stats::powerlaw::{FitOptions, fit};

    fn column(v: &[f32]) -> ArrayRef {
        Arc::new(Float32Array::from(v.to_vec()))
    }

    fn alpha(results: &ArrayRef, row: usize) -> f64 {
        let s: &StructArray = results.as_struct();
        s.column_by_name("alpha").unwrap().as_primitive::<Float64Type>().value(row)
    }

    /// Two groups fed through update, through state → merge, and through
    /// convert_to_state → merge (DataFusion's path when it skips partial
    /// aggregation) give the fit of the values themselves; the state keeps f32.
    #[test]
    fn every_state_path_gives_the_direct_fit_and_keeps_f32() {
        let a: Vec<f32> = (1..=300).map(|i| (i as f32).powf(-0.7) * 3.0).collect();
        let b: Vec<f32> = (1..=200).map(|i| 1.0 + (i % 17) as f32 * 0.25).collect();
        let want = [&a, &b].map(|v| {
            let mut s: Vec<f64> = v.iter().map(|&x| f64::from(x)).collect();
            s.sort_by(f64::total_cmp);
            fit(&s, &FitOptions::default()).unwrap().alpha
        });
        let rows: Vec<f32> = a.iter().chain(&b).copied().collect();
        let groups: Vec<usize> = (0..rows.len()).map(|i| usize::from(i >= a.len())).collect();

        let mut direct = SampleGroups::<PowerLawFit, f32>::new(FitOptions::default());
        direct.update_batch(&[column(&rows)], &groups, None, 2).unwrap();
        assert!(direct.size() >= rows.len() * 4, "size counts the values");

        // Partial states of two halves, merged.
        let (first, second) = rows.split_at(250);
        let mut merged = SampleGroups::<PowerLawFit, f32>::new(FitOptions::default());
        for (part, idx) in [(first, &groups[..250]), (second, &groups[250..])] {
            let mut partial = SampleGroups::<PowerLawFit, f32>::new(FitOptions::default());
            partial.update_batch(&[column(part)], idx, None, 2).unwrap();
            let state = partial.state(EmitTo::All).unwrap();
            assert_eq!(state[0].as_list::<i32>().value_type(), DataType::Float32);
            merged.merge_batch(&state, &[0, 1], 2).unwrap();
        }

        // One state per input row, with a FILTER that drops the first row of group 1.
        let mut from_rows = SampleGroups::<PowerLawFit, f32>::new(FitOptions::default());
        let extra: Vec<f32> = rows.iter().copied().chain([1e6]).collect();
        let mut extra_groups = groups.clone();
        extra_groups.push(1);
        let filter = BooleanArray::from((0..extra.len()).map(|i| i + 1 != extra.len()).collect::<Vec<_>>());
        let state = from_rows.convert_to_state(&[column(&extra)], Some(&filter)).unwrap();
        from_rows.merge_batch(&state, &extra_groups, 2).unwrap();

        for acc in [&mut direct, &mut merged, &mut from_rows] {
            let out = acc.evaluate(EmitTo::All).unwrap();
            assert_eq!([alpha(&out, 0), alpha(&out, 1)], want);
        }
    }

    /// EmitTo::First hands out the first groups and keeps the others' values and accounting.
    #[test]
    fn emitting_the_first_groups_keeps_the_rest() {
        let mut acc = SampleGroups::<PowerLawFit, f32>::new(FitOptions::default());
        let v: Vec<f32> = (1..=400).map(|i| (i as f32).powf(-0.5)).collect();
        let groups: Vec<usize> = (0..400).map(|i| i % 4).collect();
        acc.update_batch(&[column(&v)], &groups, None, 4).unwrap();
        let before = acc.size();
        let first = acc.evaluate(EmitTo::First(1)).unwrap();
        assert_eq!(first.len(), 1);
        assert!(acc.size() < before);
        let rest = acc.evaluate(EmitTo::All).unwrap();
        assert_eq!(rest.len(), 3);
        assert_eq!(acc.capacity, 0);
    }
}
