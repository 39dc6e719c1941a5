-- dimension_wise: is |gradient| power-law heavy-tailed across the parameters of one step?
--
-- For every recorded minibatch and full-batch gradient, per param and for the whole
-- model, the paper's test (Xie et al. 2023): fit a continuous power law to |g| by
-- Clauset–Shalizi–Newman and reject it when the KS distance exceeds 1.358/sqrt(n_tail)
-- (at significance 0.05). The power-law rate is the share of tests not rejected, per
-- run, kind and training phase (the run's steps cut into equal thirds by default).
--
-- Beside the paper's test, which with a free xmin rarely rejects on small samples,
-- powerlaw_compare(|g|, 'exponential') asks whether the tail is heavier than an
-- exponential one: heavy_tail_rate is the share where the likelihood ratio favours
-- the power law significantly.
--
-- param run = '' : the run to analyse ('' = every run)
-- param significance = 0.05 : level of the KS test
-- param lr_significance = 0.1 : a power law is called heavier than an exponential when the likelihood ratio favours it with p below this (Clauset et al. 2009)
-- param xmin = 'csn' : the tail the power-law tests fit: csn (CSN's free xmin), csn:K (over K quantile candidates), top:F (the largest fraction F of the values), value:X, all (the whole sample); analyze --xmin compares several
-- param step_every = 1 : test every n-th step only (steps divisible by it)
-- param phases = 3 : training phases the steps are cut into (of the run's whole step range)
-- param first_step = 0 : the first step analysed (analyze runs a window of steps at a time)
-- param last_step = 9223372036854775807 : the last step analysed
CREATE OR REPLACE TABLE dimension_wise AS
WITH last_steps AS (
    -- Each run's last step, from the key columns only, for the phase.
    SELECT run, max(step) AS last_step FROM grads WHERE ($run = '' OR run = $run) GROUP BY run
)
SELECT tests.run, tests.kind, tests.step, COALESCE(tests.param, '(model)') AS param, $xmin AS xmin_rule,
       CAST(tests.step * $phases / (l.last_step + 1) AS BIGINT) AS phase,
       t['alpha'] AS alpha, t['xmin'] AS xmin, t['ks'] AS ks, t['ks_critical'] AS ks_critical,
       t['n_tail'] AS n_tail, t['power_law'] AS power_law,
       vs_exp['loglik_ratio'] AS lr_exponential, vs_exp['p_value'] AS lr_p_value,
       COALESCE(vs_exp['loglik_ratio'] > 0 AND vs_exp['p_value'] < $lr_significance, false) AS heavier_than_exponential
FROM (
    SELECT run, kind, step, param, powerlaw_ks_test(abs(value), $significance, 'xmin=' || $xmin) AS t,
           powerlaw_compare(abs(value), 'exponential', 'xmin=' || $xmin) AS vs_exp
    FROM grad_values
    WHERE kind IN ('minibatch', 'full') AND step % $step_every = 0 AND ($run = '' OR run = $run)
      AND step BETWEEN $first_step AND $last_step
    GROUP BY GROUPING SETS ((run, kind, step, param), (run, kind, step))
) tests
JOIN last_steps l ON l.run = tests.run;

SELECT run, kind, phase, xmin_rule, min(step) AS first_step, max(step) AS last_step, count(*) AS tests,
       avg(CASE WHEN power_law THEN 1.0 ELSE 0.0 END) AS power_law_rate,
       avg(CASE WHEN heavier_than_exponential THEN 1.0 ELSE 0.0 END) AS heavy_tail_rate,
       median(alpha) AS median_alpha
FROM dimension_wise
GROUP BY run, kind, phase, xmin_rule
ORDER BY run, kind, phase, xmin_rule;
