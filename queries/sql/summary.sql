-- summary: loss, accuracy and gradient norms over steps, per run and kind.
-- The norm of each gradient tensor is recomputed from the per-chunk l2 column
-- (sqrt of the sum of squared chunk norms), so no gradient values are decoded.
-- rms_model_norm is the root mean square, over the tensors' samples/draws, of the
-- whole model's gradient norm.
--
-- param run = '' : the run to analyse ('' = every run)
CREATE OR REPLACE TABLE summary AS
SELECT t.run, t.step, t.kind,
       count(DISTINCT t.sample) AS gradients,
       sqrt(sum(t.norm * t.norm) / count(DISTINCT t.sample)) AS rms_model_norm,
       max(loss.value) AS loss,
       max(accuracy.value) AS accuracy
FROM (
    SELECT run, step, kind, sample, param_id, sqrt(sum(CAST(l2 AS DOUBLE) * l2)) AS norm
    FROM grads
    WHERE ($run = '' OR run = $run)
    GROUP BY run, step, kind, sample, param_id
) t
LEFT JOIN scalars loss ON loss.run = t.run AND loss.step = t.step AND loss.name = 'loss'
LEFT JOIN scalars accuracy ON accuracy.run = t.run AND accuracy.step = t.step AND accuracy.name = 'accuracy'
GROUP BY t.run, t.step, t.kind;

SELECT * FROM summary ORDER BY run, step, kind;
