//! A scalar function computed row by row, generic over the function.
//!
//! The spectrum and vector helpers take whole columns of vectors (or sketches)
//! and give one value per row. [`RowUdf`] handles arity, coercion and the
//! scalar/array distinction once; each file says only what is particular.

use std::fmt::Debug;
use std::hash::Hash;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::args::check_arity;
use super::docs::FunctionDoc;

/// A scalar function of whole columns.
pub(crate) trait RowFunction: Debug + Default + PartialEq + Eq + Hash + Send + Sync + 'static {
    /// SQL name.
    const NAME: &'static str;
    /// Call syntax, for error messages.
    const USAGE: &'static str;
    /// What `SHOW FUNCTIONS` and `information_schema` tell of it.
    const DOC: FunctionDoc;
    /// Fewest arguments.
    const MIN_ARGS: usize;
    /// Most arguments.
    const MAX_ARGS: usize;

    /// The types the arguments are cast to.
    fn coerce(types: &[DataType]) -> Result<Vec<DataType>>;
    /// The result type for coerced argument types.
    fn return_type(types: &[DataType]) -> Result<DataType>;
    /// The result column for argument columns of `rows` rows.
    fn invoke(args: &[ArrayRef], rows: usize, return_type: &DataType) -> Result<ArrayRef>;
}

/// The scalar UDF for a [`RowFunction`].
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct RowUdf<F> {
    signature: Signature,
    documentation: Documentation,
    function: F,
}

impl<F: RowFunction> RowUdf<F> {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
            documentation: F::DOC.build(F::USAGE),
            function: F::default(),
        }
    }
}

impl<F: RowFunction> ScalarUDFImpl for RowUdf<F> {
    fn name(&self) -> &str {
        F::NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&self.documentation)
    }

    fn coerce_types(&self, types: &[DataType]) -> Result<Vec<DataType>> {
        check_arity(F::NAME, types, F::MIN_ARGS, F::MAX_ARGS, F::USAGE)?;
        F::coerce(types)
    }

    fn return_type(&self, types: &[DataType]) -> Result<DataType> {
        F::return_type(types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let all_scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let rows = if all_scalar { 1 } else { args.number_rows };
        let arrays = args.args.iter().map(|a| a.to_array(rows)).collect::<Result<Vec<_>>>()?;
        let out = F::invoke(&arrays, rows, args.return_field.data_type())?;
        if all_scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
        } else {
            Ok(ColumnarValue::Array(out))
        }
    }
}
