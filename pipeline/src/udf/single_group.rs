//! A groups accumulator driven as the [`Accumulator`] of one group, for the
//! aggregates whose groups accumulator is the whole implementation (a query
//! without GROUP BY asks for a plain accumulator).

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{Accumulator, EmitTo, GroupsAccumulator};

/// `G` with every row in group 0.
#[derive(Debug)]
pub(crate) struct SingleGroup<G>(pub G);

/// Row 0 of `array`, or a NULL of its type when it is empty (no row was ever seen).
fn first(array: &ArrayRef) -> Result<ScalarValue> {
    if array.is_empty() { ScalarValue::try_from(array.data_type()) } else { ScalarValue::try_from_array(array, 0) }
}

impl<G: GroupsAccumulator + Sync + std::fmt::Debug> Accumulator for SingleGroup<G> {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.0.update_batch(values, &vec![0; values[0].len()], None, 1)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        first(&self.0.evaluate(EmitTo::All)?)
    }

    fn size(&self) -> usize {
        self.0.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.0.state(EmitTo::All)?.iter().map(first).collect()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.0.merge_batch(states, &vec![0; states[0].len()], 1)
    }
}
