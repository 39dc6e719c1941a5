//! The derived tables of DESIGN §2: `grad_values` and `grad_vectors`, both
//! table providers over `grads` with their own operators.

use std::sync::Arc;

use datafusion::prelude::SessionContext;

use crate::error::Result;
use crate::grad_values::GradValuesTable;
use crate::grad_vectors::GradVectorsTable;
use crate::grads_scan::{PARAMS_QUERY, ParamIndex};

/// Registers `grad_values` and `grad_vectors`.
pub(crate) async fn register(ctx: &SessionContext) -> Result<()> {
    let params = ctx.sql(PARAMS_QUERY).await?.collect().await?;
    let params = Arc::new(ParamIndex::from_batches(&params)?);
    let grads = ctx.table_provider("grads").await?;
    ctx.register_table("grad_values", Arc::new(GradValuesTable::new(grads.clone(), params.clone())))?;
    ctx.register_table("grad_vectors", Arc::new(GradVectorsTable::new(grads, params)))?;
    Ok(())
}
