//! `vec_concat(v, key)`: the vectors of a group concatenated in ascending order of `key`.
//!
//! Whole-model gradients are every param's tensor of one (step, kind, sample)
//! laid end to end in param order:
//!
//! ```sql
//! SELECT step, sample, vec_concat("values", param_id) AS v FROM grad_vectors WHERE kind = 'sample' GROUP BY step, sample
//! ```
//!
//! It is what `flatten(array_agg(v ORDER BY key))` computes, without sorting
//! rows and with memory the pool can see: each part is copied once into the
//! group's state (Float32 stays Float32), whereas `array_agg` keeps slices of
//! the scanned batches and reports each whole batch per row to the memory
//! pool — a whole-model spectrum's groups then claim hundreds of times the
//! memory they hold, and fail any memory limit.
//!
//! `v` is a List, LargeList or FixedSizeList of Float32/Float64; `key` an
//! integer. NULL vectors are skipped; two parts of a group with the same key
//! are an error naming the function and the key. The result is a
//! `List<Float32>` for Float32 input, else `List<Float64>`; NULL for a group
//! without parts.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, ListArray, PrimitiveArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, EmitTo, GroupsAccumulator, Signature, Volatility,
};

use super::args::check_arity;
use super::args::passes;
use super::docs::{FunctionDoc, Section};
use super::sample_state::Element;
use super::single_group::SingleGroup;
use super::vectors::coerce_vector;

const NAME: &str = "vec_concat";
const USAGE: &str = "vec_concat(v, key)";

const DOC: FunctionDoc = FunctionDoc {
    section: Section::Vectors,
    description: "Aggregate: the group's vectors laid end to end in ascending order of key: every param of a sample by param_id, say, makes a whole-model vector. Float32 stays Float32, NULL vectors are skipped, a repeated key is an error.",
    arguments: &[("v", "the vectors"), ("key", "the order of the pieces, unique within a group")],
    example: "SELECT step, sample, vec_concat(\"values\", param_id) AS v FROM grad_vectors WHERE kind = 'sample' GROUP BY step, sample",
};

/// `vec_concat`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct VecConcat {
    signature: Signature,
    documentation: Documentation,
}

impl Default for VecConcat {
    fn default() -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable), documentation: DOC.build(USAGE) }
    }
}

/// The item type of a (coerced) vector type.
fn item_type(t: &DataType) -> DataType {
    match t {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => f.data_type().clone(),
        _ => DataType::Float64,
    }
}

fn list_of(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(item, true)))
}

impl AggregateUDFImpl for VecConcat {
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
        check_arity(NAME, types, 2, 2, USAGE)?;
        let v = coerce_vector(NAME, "v", &types[0])?;
        if !(types[1].is_integer() || types[1].is_null()) {
            return plan_err!("{NAME}: argument key must be an integer, got {}", types[1]);
        }
        Ok(vec![v, DataType::Int64])
    }

    fn return_type(&self, types: &[DataType]) -> Result<DataType> {
        Ok(list_of(item_type(&types[0])))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let item = item_type(args.input_fields[0].data_type());
        Ok(vec![
            Arc::new(Field::new(format!("{}[keys]", args.name), list_of(DataType::Int64), true)),
            Arc::new(Field::new(
                format!("{}[parts]", args.name),
                DataType::List(Arc::new(Field::new_list_field(list_of(item), true))),
                true,
            )),
        ])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        // A single group (no GROUP BY) goes through the groups accumulator as group 0.
        Ok(match item_type(args.expr_fields[0].data_type()) {
            DataType::Float32 => Box::new(SingleGroup(ConcatGroups::<f32>::default())),
            _ => Box::new(SingleGroup(ConcatGroups::<f64>::default())),
        })
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(match item_type(args.expr_fields[0].data_type()) {
            DataType::Float32 => Box::new(ConcatGroups::<f32>::default()),
            _ => Box::new(ConcatGroups::<f64>::default()),
        })
    }
}

/// The parts of every group: (key, values) in arrival order.
#[derive(Debug)]
struct ConcatGroups<T> {
    parts: Vec<Vec<(i64, Vec<T>)>>,
    /// Bytes held by the parts' values, kept current for `size()`.
    held: usize,
}

impl<T> Default for ConcatGroups<T> {
    fn default() -> Self {
        Self { parts: Vec::new(), held: 0 }
    }
}

/// Calls `f(row, values)` for every row of a vector column of `T` items (NULL rows as `None`).
fn for_each_vector<T: Element>(array: &ArrayRef, mut f: impl FnMut(usize, Option<&[T]>) -> Result<()>) -> Result<()> {
    let (offsets, values): (Vec<(usize, usize)>, &ArrayRef) = match array.data_type() {
        DataType::List(_) => {
            let l = array.as_list::<i32>();
            (l.value_offsets().windows(2).map(|w| (w[0] as usize, w[1] as usize)).collect(), l.values())
        }
        DataType::LargeList(_) => {
            let l = array.as_list::<i64>();
            (l.value_offsets().windows(2).map(|w| (w[0] as usize, w[1] as usize)).collect(), l.values())
        }
        DataType::FixedSizeList(_, n) => {
            let l = array.as_fixed_size_list();
            let n = *n as usize;
            ((0..l.len()).map(|i| (l.value_offset(i) as usize, l.value_offset(i) as usize + n)).collect(), l.values())
        }
        DataType::Null => return (0..array.len()).try_for_each(|row| f(row, None)),
        t => return exec_err!("{NAME}: expected a vector column, got {t}"),
    };
    let Some(items) = values.as_primitive_opt::<T::Arrow>() else {
        return exec_err!("{NAME}: expected items of {}, got {}", T::DATA_TYPE, values.data_type());
    };
    let items = items.values();
    for (row, (a, b)) in offsets.into_iter().enumerate() {
        f(row, array.is_valid(row).then(|| &items[a..b]))?;
    }
    Ok(())
}

impl<T: Element> ConcatGroups<T> {
    fn resize(&mut self, total_num_groups: usize) {
        if self.parts.len() < total_num_groups {
            self.parts.resize_with(total_num_groups, Vec::new);
        }
    }

    fn add(&mut self, group: usize, key: i64, values: &[T]) {
        self.held += std::mem::size_of_val(values) + size_of::<(i64, Vec<T>)>();
        self.parts[group].push((key, values.to_vec()));
    }

    fn take(&mut self, emit_to: EmitTo) -> Vec<Vec<(i64, Vec<T>)>> {
        let taken = emit_to.take_needed(&mut self.parts);
        self.held -=
            taken.iter().flatten().map(|(_, v)| v.len() * size_of::<T>() + size_of::<(i64, Vec<T>)>()).sum::<usize>();
        taken
    }
}

/// A group's parts in key order, concatenated; `None` without parts.
fn concatenate<T: Element>(mut parts: Vec<(i64, Vec<T>)>) -> Result<Option<Vec<T>>> {
    if parts.is_empty() {
        return Ok(None);
    }
    parts.sort_unstable_by_key(|(k, _)| *k);
    if let Some(w) = parts.windows(2).find(|w| w[0].0 == w[1].0) {
        return exec_err!("{NAME}: two vectors of one group have the key {}", w[0].0);
    }
    let mut out = Vec::with_capacity(parts.iter().map(|(_, v)| v.len()).sum());
    for (_, v) in parts {
        out.extend(v);
    }
    Ok(Some(out))
}

/// A `List<T>` array from optional vectors.
fn lists<T: Element>(rows: Vec<Option<Vec<T>>>) -> ListArray {
    let mut lengths = Vec::with_capacity(rows.len());
    let mut valid = Vec::with_capacity(rows.len());
    let mut flat = Vec::new();
    for r in rows {
        valid.push(r.is_some());
        let r = r.unwrap_or_default();
        lengths.push(r.len());
        flat.extend(r);
    }
    ListArray::new(
        Arc::new(Field::new_list_field(T::DATA_TYPE, true)),
        OffsetBuffer::from_lengths(lengths),
        Arc::new(PrimitiveArray::<T::Arrow>::from_iter_values(flat)),
        Some(valid.into()),
    )
}

impl<T: Element> GroupsAccumulator for ConcatGroups<T> {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.resize(total_num_groups);
        let keys = values[1].as_primitive::<Int64Type>();
        for_each_vector::<T>(&values[0], |row, v| {
            if let Some(v) = v.filter(|_| passes(opt_filter, row)) {
                if keys.is_null(row) {
                    return exec_err!("{NAME}: argument key is NULL");
                }
                self.add(group_indices[row], keys.value(row), v);
            }
            Ok(())
        })
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let rows = self.take(emit_to).into_iter().map(concatenate).collect::<Result<Vec<_>>>()?;
        Ok(Arc::new(lists(rows)))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let groups = self.take(emit_to);
        let mut key_lengths = Vec::with_capacity(groups.len());
        let mut keys = Vec::new();
        let mut parts = Vec::new();
        for g in groups {
            key_lengths.push(g.len());
            for (k, v) in g {
                keys.push(k);
                parts.push(Some(v));
            }
        }
        let keys = ListArray::new(
            Arc::new(Field::new_list_field(DataType::Int64, true)),
            OffsetBuffer::from_lengths(key_lengths.iter().copied()),
            Arc::new(Int64Array::from(keys)),
            None,
        );
        let inner = lists(parts);
        let parts = ListArray::new(
            Arc::new(Field::new_list_field(inner.data_type().clone(), true)),
            OffsetBuffer::from_lengths(key_lengths),
            Arc::new(inner),
            None,
        );
        Ok(vec![Arc::new(keys), Arc::new(parts)])
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> Result<()> {
        self.resize(total_num_groups);
        let keys = values[0].as_list::<i32>();
        let parts = values[1].as_list::<i32>();
        for (row, &g) in group_indices.iter().enumerate() {
            if keys.is_null(row) || parts.is_null(row) {
                continue;
            }
            let k = keys.value(row);
            let k = k.as_primitive::<Int64Type>();
            let p: ArrayRef = parts.value(row);
            let mut i = 0;
            for_each_vector::<T>(&p, |_, v| {
                if let Some(v) = v {
                    self.add(g, k.value(i), v);
                }
                i += 1;
                Ok(())
            })?;
        }
        Ok(())
    }

    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        // Each input row becomes a group of one part (or none).
        let mut one = ConcatGroups::<T>::default();
        let rows = values[0].len();
        let identity: Vec<usize> = (0..rows).collect();
        one.update_batch(values, &identity, opt_filter, rows)?;
        one.state(EmitTo::All)
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.held + self.parts.capacity() * size_of::<Vec<(i64, Vec<T>)>>()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, ListArray};
    use datafusion::arrow::datatypes::Float32Type;
    use datafusion::logical_expr::{EmitTo, GroupsAccumulator};

    use super::ConcatGroups;

    fn vectors(out: &ArrayRef) -> Vec<Vec<f32>> {
        let lists = out.as_list::<i32>();
        (0..lists.len()).map(|i| lists.value(i).as_primitive::<Float32Type>().values().to_vec()).collect()
    }

    /// EmitTo::First hands out the first groups and keeps the rest, renumbered from 0;
    /// the rest's state merges into the same vectors.
    #[test]
    fn emitting_the_first_groups_keeps_the_rest() {
        // Group g: parts [g, g] (key 1) and [10g] (key 0), fed key 1 first.
        let (mut parts, mut keys, mut groups) = (Vec::new(), Vec::new(), Vec::new());
        for g in 0..3 {
            let g32 = g as f32;
            parts.push(Some(vec![Some(g32), Some(g32)]));
            keys.push(1i64);
            groups.push(g);
            parts.push(Some(vec![Some(10.0 * g32)]));
            keys.push(0);
            groups.push(g);
        }
        let want = |g: usize| vec![10.0 * g as f32, g as f32, g as f32];
        let input: [ArrayRef; 2] =
            [Arc::new(ListArray::from_iter_primitive::<Float32Type, _, _>(parts)), Arc::new(Int64Array::from(keys))];
        let mut acc = ConcatGroups::<f32>::default();
        acc.update_batch(&input, &groups, None, 3).unwrap();
        assert_eq!(vectors(&acc.evaluate(EmitTo::First(1)).unwrap()), [want(0)]);
        let state = acc.state(EmitTo::First(1)).unwrap();
        let mut merged = ConcatGroups::<f32>::default();
        merged.merge_batch(&state, &[0], 1).unwrap();
        assert_eq!(vectors(&merged.evaluate(EmitTo::All).unwrap()), [want(1)]);
        assert_eq!(vectors(&acc.evaluate(EmitTo::All).unwrap()), [want(2)]);
    }
}
