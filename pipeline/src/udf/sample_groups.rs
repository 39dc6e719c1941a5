//! The [`GroupsAccumulator`] of the whole-sample statistics: one query with
//! many groups (one per coordinate in an iteration-wise test, one per param
//! and step in a dimension-wise one) keeps every group's values in one vector
//! of vectors instead of one boxed accumulator per group.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array};
use datafusion::arrow::datatypes::{Float64Type, Int64Type};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};

use super::sample_state::{Keep, for_each_value, list_array};
use super::sample_udaf::SampleFunction;

/// Values and skipped counts of every group of one [`SampleFunction`].
pub(crate) struct SampleGroups<F: SampleFunction> {
    params: F::Params,
    values: Vec<Vec<f64>>,
    skipped: Vec<u64>,
    /// Values held, for `size()` without walking every group.
    held: usize,
}

impl<F: SampleFunction> SampleGroups<F> {
    pub fn new(params: F::Params) -> Self {
        Self { params, values: Vec::new(), skipped: Vec::new(), held: 0 }
    }

    fn resize(&mut self, total_num_groups: usize) {
        if self.values.len() < total_num_groups {
            self.values.resize_with(total_num_groups, Vec::new);
            self.skipped.resize(total_num_groups, 0);
        }
    }

    fn take(&mut self, emit_to: EmitTo) -> (Vec<Vec<f64>>, Vec<u64>) {
        let values = emit_to.take_needed(&mut self.values);
        let skipped = emit_to.take_needed(&mut self.skipped);
        self.held -= values.iter().map(Vec::len).sum::<usize>();
        (values, skipped)
    }
}

/// Whether `row` passes an aggregate's FILTER clause (none: every row does).
pub(crate) fn passes(filter: Option<&BooleanArray>, row: usize) -> bool {
    filter.is_none_or(|f| f.is_valid(row) && f.value(row))
}

impl<F: SampleFunction> GroupsAccumulator for SampleGroups<F> {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.resize(total_num_groups);
        let keep: Keep = F::KEEP;
        for_each_value(&values[0], |row, v| {
            if !passes(opt_filter, row) {
                return;
            }
            let g = group_indices[row];
            match v.and_then(|v| keep.map(v)) {
                Some(v) => {
                    self.values[g].push(v);
                    self.held += 1;
                }
                None => self.skipped[g] += 1,
            }
        })
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let (values, skipped) = self.take(emit_to);
        let results = values
            .into_iter()
            .zip(skipped)
            .map(|(mut v, s)| {
                v.sort_unstable_by(f64::total_cmp);
                F::evaluate(&self.params, &mut v, s)
            })
            .collect::<Result<Vec<ScalarValue>>>()?;
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
            if lists.is_valid(row) {
                let part = lists.value(row);
                let before = self.values[g].len();
                self.values[g].extend(part.as_primitive::<Float64Type>().iter().flatten());
                self.held += self.values[g].len() - before;
            }
            if skipped.is_valid(row) {
                self.skipped[g] += skipped.value(row) as u64;
            }
        }
        Ok(())
    }

    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        // Each input row becomes a one-row state: its value (if usable) or a skip.
        let keep: Keep = F::KEEP;
        let mut lists = Vec::with_capacity(values[0].len());
        let mut skipped = Vec::with_capacity(values[0].len());
        for_each_value(&values[0], |row, v| {
            if !passes(opt_filter, row) {
                lists.push(Vec::new());
                skipped.push(0);
                return;
            }
            match v.and_then(|v| keep.map(v)) {
                Some(v) => {
                    lists.push(vec![v]);
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
        size_of_val(self)
            + self.held * size_of::<f64>()
            + self.values.capacity() * size_of::<Vec<f64>>()
            + self.skipped.capacity() * size_of::<u64>()
    }
}
