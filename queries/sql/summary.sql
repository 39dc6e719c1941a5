-- summary: gradient norms and loss over steps, per run.
-- The norm of each gradient tensor is recomputed from the per-chunk l2 column
-- (sqrt of the sum of squared chunk norms), so no gradient values are decoded.
SELECT t.run, t.step, t.kind,
       count(*) AS tensors,
       avg(t.norm) AS mean_param_norm,
       sqrt(sum(t.norm * t.norm) / count(DISTINCT t.sample)) AS rms_model_norm,
       max(s.value) AS loss
FROM (
    SELECT run, step, kind, sample, param_id, sqrt(sum(CAST(l2 AS DOUBLE) * l2)) AS norm
    FROM grads
    GROUP BY run, step, kind, sample, param_id
) t
LEFT JOIN scalars s ON s.run = t.run AND s.step = t.step AND s.name = 'loss'
GROUP BY t.run, t.step, t.kind
ORDER BY t.run, t.step, t.kind;
