//! The derived views of DESIGN §2: `grad_values` and `grad_vectors`.

use datafusion::prelude::SessionContext;

use crate::error::Result;

/// One row per gradient element. Padding of the last chunk is dropped by
/// zipping each chunk's values with `range(numel)`: positions past `numel` come out NULL.
const GRAD_VALUES: &str = "
CREATE VIEW grad_values AS
SELECT e.run, e.step, e.kind, e.sample, e.param_id, p.param,
       CAST(e.chunk AS BIGINT) * 4096 + e.pos AS idx, e.value
FROM (
    SELECT run, step, kind, sample, param_id, chunk,
           unnest(values) AS value, unnest(range(numel)) AS pos
    FROM grads
) e
JOIN params p ON p.run = e.run AND p.param_id = e.param_id
WHERE e.pos IS NOT NULL";

/// One row per (run, step, kind, sample, param): the whole flattened tensor,
/// chunks concatenated in order and the padding cut off.
const GRAD_VECTORS: &str = "
CREATE VIEW grad_vectors AS
SELECT g.run, g.step, g.kind, g.sample, g.param_id, p.param,
       array_slice(flatten(array_agg(g.values ORDER BY g.chunk)), 1, p.numel) AS values
FROM grads g
JOIN params p ON p.run = g.run AND p.param_id = g.param_id
GROUP BY g.run, g.step, g.kind, g.sample, g.param_id, p.param, p.numel";

pub(crate) async fn register(ctx: &SessionContext) -> Result<()> {
    for sql in [GRAD_VALUES, GRAD_VECTORS] {
        ctx.sql(sql).await?.collect().await?;
    }
    Ok(())
}
