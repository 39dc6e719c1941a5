//! The derived tables of DESIGN §2: `grad_values` and `grad_vectors`.

use std::sync::Arc;

use datafusion::prelude::SessionContext;

use crate::error::Result;
use crate::grad_values::{GradValuesTable, ParamNames};

/// One row per (run, step, kind, sample, param): the whole flattened tensor,
/// chunks concatenated in order and the padding cut off.
const GRAD_VECTORS: &str = "
CREATE VIEW grad_vectors AS
SELECT g.run, g.step, g.kind, g.sample, g.param_id, p.param,
       array_slice(flatten(array_agg(g.values ORDER BY g.chunk)), 1, p.numel) AS values
FROM grads g
JOIN params p ON p.run = g.run AND p.param_id = g.param_id
GROUP BY g.run, g.step, g.kind, g.sample, g.param_id, p.param, p.numel";

/// Registers `grad_values` (a table provider over `grads`) and `grad_vectors` (a view).
pub(crate) async fn register(ctx: &SessionContext) -> Result<()> {
    let params = ctx.sql("SELECT run, param_id, param FROM params").await?.collect().await?;
    let grads = ctx.table_provider("grads").await?;
    let table = GradValuesTable::new(grads, ParamNames::from_batches(&params)?);
    ctx.register_table("grad_values", Arc::new(table))?;
    ctx.sql(GRAD_VECTORS).await?.collect().await?;
    Ok(())
}
