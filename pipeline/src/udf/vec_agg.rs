//! `vec_agg(value, idx [, d])`: a group's values placed at their indices, as one vector.
//!
//! Gradients exported in long form — one row per (sample, coordinate, value) —
//! become the vectors every spectrum needs:
//!
//! ```sql
//! SELECT sample, vec_agg(value, dim) AS v FROM long_grads GROUP BY sample
//! ```
//!
//! It gives what `array_agg(value ORDER BY idx)` gives when the indices of a
//! group are exactly 0, 1, …, len − 1, without sorting: each value is kept
//! with its index as it arrives and scattered once into place when the group
//! is finished, O(n) time. `idx` is 0-based, as `grad_values.idx` is, so
//! `vec_agg(value, idx) … GROUP BY step, kind, sample, param` rebuilds
//! `grad_vectors.values`.
//!
//! The length is `d` when given (a constant; an index outside `0..d` is an
//! error as soon as it is seen), else the group's largest index + 1. A missing
//! or repeated index is an error naming the index and the group's size; a
//! NULL index is an error. A NULL value keeps its place as a NULL item (as in
//! `array_agg`), so the list's null count counts them. The result is a
//! `List<Float32>` for Float32 values, else `List<Float64>`; NULL for a group
//! without rows.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, ListArray, PrimitiveArray};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, EmitTo, GroupsAccumulator, Signature, Volatility,
};

use super::args::passes;
use super::args::{check_arity, coerce_float, constant_int};
use super::docs::{FunctionDoc, Section};
use super::sample_state::Element;
use super::single_group::SingleGroup;

const NAME: &str = "vec_agg";
const USAGE: &str = "vec_agg(value, idx [, d])";

const DOC: FunctionDoc = FunctionDoc {
    section: Section::Vectors,
    description: "Aggregate: the group's values placed at their 0-based indices, as one vector (List<Float32> for Float32 values): array_agg(value ORDER BY idx) without sorting. Its length is d, or the largest index + 1; a missing, repeated, negative or out-of-range index is an error naming it and the group's size; a NULL value stays a NULL item.",
    arguments: &[
        ("value", "the values, Float32 or Float64"),
        ("idx", "the 0-based position of each value"),
        ("d", "optional constant length of every vector"),
    ],
    example: "SELECT step, param, vec_agg(value, idx) AS v FROM grad_values WHERE kind = 'full' GROUP BY step, param",
};

/// `vec_agg`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct VecAgg {
    signature: Signature,
    documentation: Documentation,
}

impl Default for VecAgg {
    fn default() -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable), documentation: DOC.build(USAGE) }
    }
}

fn list_of(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(item, true)))
}

impl AggregateUDFImpl for VecAgg {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&self.documentation)
    }

    fn coerce_types(&self, types: &[DataType]) -> Result<Vec<DataType>> {
        check_arity(NAME, types, 2, 3, USAGE)?;
        let value = coerce_float(NAME, "value", &types[0])?;
        if !(types[1].is_integer() || types[1].is_null()) {
            return plan_err!("{NAME}: argument idx must be an integer, got {}", types[1]);
        }
        let mut out = vec![value, DataType::Int64];
        if let Some(d) = types.get(2) {
            if !(d.is_integer() || d.is_null()) {
                return plan_err!("{NAME}: argument d must be an integer, got {d}");
            }
            out.push(DataType::Int64);
        }
        Ok(out)
    }

    fn return_type(&self, types: &[DataType]) -> Result<DataType> {
        Ok(list_of(types[0].clone()))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let item = args.input_fields[0].data_type().clone();
        Ok(vec![
            Arc::new(Field::new(format!("{}[idx]", args.name), list_of(DataType::Int64), true)),
            Arc::new(Field::new(format!("{}[values]", args.name), list_of(item), true)),
        ])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let d = length(&args)?;
        Ok(match args.expr_fields[0].data_type() {
            DataType::Float32 => Box::new(SingleGroup(PlaceGroups::<f32>::new(d))),
            _ => Box::new(SingleGroup(PlaceGroups::<f64>::new(d))),
        })
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        let d = length(&args)?;
        Ok(match args.expr_fields[0].data_type() {
            DataType::Float32 => Box::new(PlaceGroups::<f32>::new(d)),
            _ => Box::new(PlaceGroups::<f64>::new(d)),
        })
    }
}

/// The constant `d`, if given.
fn length(args: &AccumulatorArgs) -> Result<Option<u64>> {
    Ok(constant_int(NAME, "d", args.exprs, 2, 0)?.map(|d| d as u64))
}

/// One group's rows in arrival order: indices, values (a NULL value as
/// `T::default()`), and which rows' values were NULL (rare, so a list).
#[derive(Debug, Default)]
struct Placed<T> {
    idx: Vec<u64>,
    values: Vec<T>,
    null_rows: Vec<usize>,
}

/// The rows of every group, placed when the group is finished.
#[derive(Debug)]
struct PlaceGroups<T> {
    d: Option<u64>,
    groups: Vec<Placed<T>>,
    /// Capacity bytes of the groups' vectors, kept current for `size()`.
    held: usize,
}

impl<T: Element> PlaceGroups<T> {
    fn new(d: Option<u64>) -> Self {
        Self { d, groups: Vec::new(), held: 0 }
    }

    fn resize(&mut self, total_num_groups: usize) {
        if self.groups.len() < total_num_groups {
            self.groups.resize_with(total_num_groups, Placed::default);
        }
    }

    fn bytes(g: &Placed<T>) -> usize {
        g.idx.capacity() * size_of::<u64>()
            + g.values.capacity() * size_of::<T>()
            + g.null_rows.capacity() * size_of::<usize>()
    }

    /// Adds the rows of `idx`/`values` (already checked) to `group`.
    fn push(&mut self, group: usize, index: u64, value: Option<T>) {
        let g = &mut self.groups[group];
        let before = Self::bytes(g);
        if value.is_none() {
            g.null_rows.push(g.values.len());
        }
        g.idx.push(index);
        g.values.push(value.unwrap_or_default());
        self.held = self.held + Self::bytes(g) - before;
    }

    /// Checks an index against `d`; negative and NULL indices are errors.
    fn index(&self, idx: &PrimitiveArray<Int64Type>, row: usize) -> Result<u64> {
        if idx.is_null(row) {
            return exec_err!("{NAME}: argument idx is NULL");
        }
        let i = idx.value(row);
        if i < 0 {
            return exec_err!("{NAME}: index {i} is negative (indices start at 0)");
        }
        match self.d {
            Some(d) if i as u64 >= d => exec_err!("{NAME}: index {i} is outside 0..{d} (d = {d})"),
            _ => Ok(i as u64),
        }
    }

    fn take(&mut self, emit_to: EmitTo) -> Vec<Placed<T>> {
        let taken = emit_to.take_needed(&mut self.groups);
        self.held -= taken.iter().map(Self::bytes).sum::<usize>();
        taken
    }
}

/// A bit per index in `0..len`.
struct Bits(Vec<u64>);

impl Bits {
    fn new(len: u64) -> Self {
        Self(vec![0; len.div_ceil(64) as usize])
    }

    /// Sets bit `i`; false when it was set already.
    fn set(&mut self, i: u64) -> bool {
        let (word, bit) = ((i / 64) as usize, 1u64 << (i % 64));
        let was = self.0[word] & bit != 0;
        self.0[word] |= bit;
        !was
    }

    /// The first index in `0..len` whose bit is not set.
    fn first_unset(&self, len: u64) -> Option<u64> {
        self.0
            .iter()
            .enumerate()
            .find(|(_, w)| **w != u64::MAX)
            .map(|(k, w)| k as u64 * 64 + w.trailing_ones() as u64)
            .filter(|&i| i < len)
    }
}

/// A finished group's vector, and which items are valid (`None`: all).
type Vector<T> = (Vec<T>, Option<Vec<bool>>);

/// The group's vector: each value at its index. Memory beyond the result is
/// one bit per index, and never more than the group's rows call for.
fn place<T: Element>(group: Placed<T>, d: Option<u64>) -> Result<Option<Vector<T>>> {
    let rows = group.idx.len() as u64;
    let len = match d {
        Some(d) => d,
        None if rows == 0 => return Ok(None),
        None => group.idx.iter().max().map_or(0, |m| m + 1),
    };
    if rows < len {
        // Some index in 0..=rows is missing (rows + 1 slots, rows values): find the first.
        let mut seen = Bits::new(rows + 1);
        for &i in group.idx.iter().filter(|&&i| i <= rows) {
            seen.set(i);
        }
        let missing = seen.first_unset(rows + 1).expect("pigeonhole");
        return exec_err!(
            "{NAME}: a group of {rows} values has no value at index {missing} (expected indices 0..{len})"
        );
    }
    let mut seen = Bits::new(len);
    let mut out = vec![T::default(); len as usize];
    for (&i, &v) in group.idx.iter().zip(&group.values) {
        if !seen.set(i) {
            return exec_err!("{NAME}: index {i} appears more than once in a group of {rows} values");
        }
        out[i as usize] = v;
    }
    let valid = (!group.null_rows.is_empty()).then(|| {
        let mut valid = vec![true; len as usize];
        for &row in &group.null_rows {
            valid[group.idx[row] as usize] = false;
        }
        valid
    });
    Ok(Some((out, valid)))
}

/// A `List<T>` array of placed vectors (NULL items where values were NULL).
fn lists<T: Element>(rows: Vec<Option<Vector<T>>>) -> ListArray {
    let total: usize = rows.iter().flatten().map(|(v, _)| v.len()).sum();
    let any_null_item = rows.iter().flatten().any(|(_, valid)| valid.is_some());
    let mut lengths = Vec::with_capacity(rows.len());
    let mut present = Vec::with_capacity(rows.len());
    let mut flat = Vec::with_capacity(total);
    let mut item_valid = any_null_item.then(|| Vec::with_capacity(total));
    for r in rows {
        present.push(r.is_some());
        let (v, valid) = r.unwrap_or_default();
        lengths.push(v.len());
        if let Some(items) = item_valid.as_mut() {
            match valid {
                Some(valid) => items.extend(valid),
                None => items.extend(std::iter::repeat_n(true, v.len())),
            }
        }
        flat.extend(v);
    }
    let items = PrimitiveArray::<T::Arrow>::new(flat.into(), item_valid.map(NullBuffer::from));
    ListArray::new(
        Arc::new(Field::new_list_field(T::DATA_TYPE, true)),
        OffsetBuffer::from_lengths(lengths),
        Arc::new(items),
        Some(present.into()),
    )
}

impl<T: Element> GroupsAccumulator for PlaceGroups<T> {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.resize(total_num_groups);
        let Some(v) = values[0].as_primitive_opt::<T::Arrow>() else {
            return exec_err!("{NAME}: expected values of {}, got {}", T::DATA_TYPE, values[0].data_type());
        };
        let idx = values[1].as_primitive::<Int64Type>();
        for (row, &g) in group_indices.iter().enumerate() {
            if passes(opt_filter, row) {
                let i = self.index(idx, row)?;
                self.push(g, i, v.is_valid(row).then(|| v.value(row)));
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let d = self.d;
        let rows = self.take(emit_to).into_iter().map(|g| place(g, d)).collect::<Result<Vec<_>>>()?;
        Ok(Arc::new(lists(rows)))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let groups = self.take(emit_to);
        let lengths: Vec<usize> = groups.iter().map(|g| g.idx.len()).collect();
        let total = lengths.iter().sum();
        let mut idx = Vec::with_capacity(total);
        let mut values = Vec::with_capacity(total);
        let mut valid = groups.iter().any(|g| !g.null_rows.is_empty()).then(|| vec![true; total]);
        for g in groups {
            if let Some(valid) = valid.as_mut() {
                for row in g.null_rows {
                    valid[values.len() + row] = false;
                }
            }
            idx.extend(g.idx.into_iter().map(|i| i as i64));
            values.extend(g.values);
        }
        let idx = ListArray::new(
            Arc::new(Field::new_list_field(DataType::Int64, true)),
            OffsetBuffer::from_lengths(lengths.iter().copied()),
            Arc::new(Int64Array::from(idx)),
            None,
        );
        let values = ListArray::new(
            Arc::new(Field::new_list_field(T::DATA_TYPE, true)),
            OffsetBuffer::from_lengths(lengths),
            Arc::new(PrimitiveArray::<T::Arrow>::new(values.into(), valid.map(NullBuffer::from))),
            None,
        );
        Ok(vec![Arc::new(idx), Arc::new(values)])
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> Result<()> {
        self.resize(total_num_groups);
        let (idx, vals) = (values[0].as_list::<i32>(), values[1].as_list::<i32>());
        let Some(items) = vals.values().as_primitive_opt::<T::Arrow>() else {
            return exec_err!("{NAME}: expected a state of {}, got {}", T::DATA_TYPE, vals.values().data_type());
        };
        let indices = idx.values().as_primitive::<Int64Type>();
        let offsets = idx.value_offsets();
        for (row, &g) in group_indices.iter().enumerate() {
            if idx.is_null(row) {
                continue;
            }
            for k in offsets[row] as usize..offsets[row + 1] as usize {
                // Checked when first seen: indices in a state are in range.
                self.push(g, indices.value(k) as u64, items.is_valid(k).then(|| items.value(k)));
            }
        }
        Ok(())
    }

    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        // Each input row becomes a group of one row (or none).
        let mut one = PlaceGroups::<T>::new(self.d);
        let rows = values[0].len();
        let identity: Vec<usize> = (0..rows).collect();
        one.update_batch(values, &identity, opt_filter, rows)?;
        one.state(EmitTo::All)
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.held + self.groups.capacity() * size_of::<Placed<T>>()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float32Array, Int64Array};
    use datafusion::arrow::datatypes::Float32Type;
    use datafusion::logical_expr::{EmitTo, GroupsAccumulator};

    use super::PlaceGroups;

    fn vectors(out: &ArrayRef) -> Vec<Vec<f32>> {
        let lists = out.as_list::<i32>();
        (0..lists.len()).map(|i| lists.value(i).as_primitive::<Float32Type>().values().to_vec()).collect()
    }

    /// EmitTo::First hands out the first groups and keeps the rest, renumbered from 0,
    /// with their bytes; the rest's state merges into the same vectors.
    #[test]
    fn emitting_the_first_groups_keeps_the_rest() {
        // Group g holds g·10 + i at index i, fed in reverse index order.
        let (mut values, mut idx, mut groups) = (Vec::new(), Vec::new(), Vec::new());
        for g in 0..3 {
            for i in (0..4).rev() {
                values.push((g * 10 + i) as f32);
                idx.push(i as i64);
                groups.push(g);
            }
        }
        let want = |g: usize| (0..4).map(|i| (g * 10 + i) as f32).collect::<Vec<_>>();
        let input: [ArrayRef; 2] = [Arc::new(Float32Array::from(values)), Arc::new(Int64Array::from(idx))];
        let mut acc = PlaceGroups::<f32>::new(Some(4));
        acc.update_batch(&input, &groups, None, 3).unwrap();
        let before = acc.size();
        assert_eq!(vectors(&acc.evaluate(EmitTo::First(1)).unwrap()), [want(0)]);
        assert!(acc.size() < before, "the emitted group's bytes are released");

        let state = acc.state(EmitTo::First(1)).unwrap();
        let mut merged = PlaceGroups::<f32>::new(Some(4));
        merged.merge_batch(&state, &[0], 1).unwrap();
        assert_eq!(vectors(&merged.evaluate(EmitTo::All).unwrap()), [want(1)]);
        assert_eq!(vectors(&acc.evaluate(EmitTo::All).unwrap()), [want(2)]);
        assert_eq!(acc.held, 0);
    }
}
