//! The [`GroupsAccumulator`] of the covariance aggregates: one query computes
//! spectra for many groups (one per param, per step) with one estimator per
//! group in a vector, not one boxed accumulator each.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};

use super::args::passes;
use super::cov_function::{CovFunction, apply, for_each_item, for_each_state, state_array};
use gradlake_stats::spectrum::{CovEstimator, Method};

/// Every group's estimator.
pub(crate) struct CovGroups<F: CovFunction> {
    method: Option<Method>,
    estimators: Vec<Option<CovEstimator>>,
    /// Bytes held by the estimators, kept up to date so `size()` is O(1).
    held: usize,
    buf: Vec<f64>,
    _function: std::marker::PhantomData<F>,
}

impl<F: CovFunction> CovGroups<F> {
    pub fn new(method: Option<Method>) -> Self {
        Self { method, estimators: Vec::new(), held: 0, buf: Vec::new(), _function: std::marker::PhantomData }
    }

    fn resize(&mut self, total_num_groups: usize) {
        if self.estimators.len() < total_num_groups {
            self.estimators.resize_with(total_num_groups, || None);
        }
    }

    fn take(&mut self, emit_to: EmitTo) -> Vec<Option<CovEstimator>> {
        let taken = emit_to.take_needed(&mut self.estimators);
        self.held -= taken.iter().flatten().map(CovEstimator::bytes).sum::<usize>();
        taken
    }
}

fn bytes(e: &Option<CovEstimator>) -> usize {
    e.as_ref().map_or(0, CovEstimator::bytes)
}

impl<F: CovFunction> GroupsAccumulator for CovGroups<F> {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.resize(total_num_groups);
        let (method, estimators, held) = (self.method, &mut self.estimators, &mut self.held);
        for_each_item::<F>(&values[0], &mut self.buf, |row, item| {
            if !passes(opt_filter, row) {
                return Ok(());
            }
            let slot = &mut estimators[group_indices[row]];
            let before = bytes(slot);
            let result = apply::<F>(slot, method, item);
            *held = *held + bytes(slot) - before;
            result
        })
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let results =
            self.take(emit_to).into_iter().map(|mut e| F::evaluate(e.as_mut())).collect::<Result<Vec<_>>>()?;
        if results.is_empty() {
            return Ok(datafusion::arrow::array::new_empty_array(&F::return_type()));
        }
        ScalarValue::iter_to_array(results)
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        Ok(vec![Arc::new(state_array(F::NAME, self.take(emit_to))?)])
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> Result<()> {
        self.resize(total_num_groups);
        let (method, estimators, held) = (self.method, &mut self.estimators, &mut self.held);
        for_each_state(&values[0], |row, item| {
            let slot = &mut estimators[group_indices[row]];
            let before = bytes(slot);
            let result = apply::<F>(slot, method, item);
            *held = *held + bytes(slot) - before;
            result
        })
    }

    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        // Each input row becomes a one-row state.
        let mut states: Vec<Option<CovEstimator>> = vec![None; values[0].len()];
        let mut buf = Vec::new();
        for_each_item::<F>(&values[0], &mut buf, |row, item| {
            if !passes(opt_filter, row) {
                return Ok(());
            }
            apply::<F>(&mut states[row], self.method, item)
        })?;
        Ok(vec![Arc::new(state_array(F::NAME, states)?)])
    }

    fn size(&self) -> usize {
        size_of_val(self)
            + self.held
            + self.estimators.capacity() * size_of::<Option<CovEstimator>>()
            + self.buf.capacity() * size_of::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListArray};
    use datafusion::arrow::datatypes::{Float32Type, Float64Type};
    use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
    use gradlake_stats::spectrum::Method;

    use super::CovGroups;
    use crate::udf::cov_spectrum::CovSpectrum;

    /// Group g holds (a, 0), (−a, 0), (0, b), (0, −b) with a = g + 1, b = 2(g + 1): mean 0,
    /// scatter diag(2a², 2b²), so the covariance's eigenvalues are 2b²/3 and 2a²/3.
    fn rows(groups: usize) -> (ArrayRef, Vec<usize>, Vec<[f64; 2]>) {
        let mut vectors = Vec::new();
        let mut index = Vec::new();
        let mut want = Vec::new();
        for g in 0..groups {
            let (a, b) = ((g + 1) as f32, 2.0 * (g + 1) as f32);
            for v in [[a, 0.0], [-a, 0.0], [0.0, b], [0.0, -b]] {
                vectors.push(Some(v.map(Some).to_vec()));
                index.push(g);
            }
            want.push([2.0 * f64::from(b * b) / 3.0, 2.0 * f64::from(a * a) / 3.0]);
        }
        (Arc::new(ListArray::from_iter_primitive::<Float32Type, _, _>(vectors)), index, want)
    }

    fn eigenvalues(out: &ArrayRef) -> Vec<Vec<f64>> {
        let lists = out.as_list::<i32>();
        (0..lists.len()).map(|i| lists.value(i).as_primitive::<Float64Type>().values().to_vec()).collect()
    }

    fn assert_spectra(got: &[Vec<f64>], want: &[[f64; 2]]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.len(), 2);
            for (x, y) in g.iter().zip(w) {
                assert!((x - y).abs() <= 1e-12 * y, "{g:?} vs {w:?}");
            }
        }
    }

    /// EmitTo::First hands out the first groups, renumbers the rest from 0 and keeps their
    /// estimators and their bytes; the rest's states merge into the same spectra.
    #[test]
    fn emitting_the_first_groups_keeps_the_rest() {
        let (values, index, want) = rows(3);
        let mut acc = CovGroups::<CovSpectrum>::new(Some(Method::Exact));
        acc.update_batch(&[values], &index, None, 3).unwrap();
        let before = acc.size();
        assert_spectra(&eigenvalues(&acc.evaluate(EmitTo::First(1)).unwrap()), &want[..1]);
        assert!(acc.size() < before, "the emitted group's bytes are released");

        let state = acc.state(EmitTo::First(1)).unwrap();
        let mut merged = CovGroups::<CovSpectrum>::new(Some(Method::Exact));
        merged.merge_batch(&state, &[0], 1).unwrap();
        assert_spectra(&eigenvalues(&merged.evaluate(EmitTo::All).unwrap()), &want[1..2]);
        assert_spectra(&eigenvalues(&acc.evaluate(EmitTo::All).unwrap()), &want[2..]);
        assert_eq!(acc.held, 0);
    }
}
