-- noise: is minibatch gradient noise (draw − full, at the same weights) Gaussian?
--
-- At each noise point the lake holds M minibatch draws and their noise
-- (kind 'noise' = draw − full). Two views, each with the paper's power-law test on
-- |noise|, gaussian_test and stable_alpha (the α-stable tail index earlier work used;
-- α = 2 is Gaussian):
--   across parameters  — per (step, draw, param) and per (step, draw) for the whole model;
--   across draws       — per (step, coordinate), for a deterministic sample of coordinates
--                        (the same Lehmer-style hash as iteration_wise).
--
-- Beside the paper's test, which with a free xmin rarely rejects on small samples,
-- powerlaw_compare(|g|, 'exponential') asks whether the tail is heavier than an
-- exponential one: heavy_tail_rate is the share where the likelihood ratio favours
-- the power law significantly.
--
-- param run = '' : the run to analyse ('' = every run)
-- param coordinates = 256 : coordinates sampled from the whole model for the across-draws view
-- param significance = 0.05 : level of the tests
-- param lr_significance = 0.1 : a power law is called heavier than an exponential when the likelihood ratio favours it with p below this (Clauset et al. 2009)
-- param xmin = 'csn' : the tail the power-law tests fit: csn (CSN's free xmin), csn:K (over K quantile candidates), top:F (the largest fraction F of the values), value:X, all (the whole sample); analyze --xmin compares several
-- param first_step = 0 : the first step analysed (analyze runs a window of steps at a time)
-- param last_step = 9223372036854775807 : the last step analysed
CREATE OR REPLACE TABLE noise_across_params AS
SELECT run, step, sample AS draw, COALESCE(param, '(model)') AS param, $xmin AS xmin_rule, n,
       t['alpha'] AS alpha, t['ks'] AS ks, t['ks_critical'] AS ks_critical, t['power_law'] AS power_law,
       gauss['ks_p_value'] AS gaussian_p_value, gauss['excess_kurtosis'] AS excess_kurtosis,
       gauss['ks_p_value'] >= $significance AS gaussian, stable,
       vs_exp['loglik_ratio'] AS lr_exponential, vs_exp['p_value'] AS lr_p_value,
       COALESCE(vs_exp['loglik_ratio'] > 0 AND vs_exp['p_value'] < $lr_significance, false) AS heavier_than_exponential
FROM (
    SELECT run, step, sample, param, count(value) AS n,
           powerlaw_ks_test(abs(value), $significance, 'xmin=' || $xmin) AS t, gaussian_test(value) AS gauss,
           stable_alpha(value) AS stable, powerlaw_compare(abs(value), 'exponential', 'xmin=' || $xmin) AS vs_exp
    FROM grad_values
    WHERE kind = 'noise' AND ($run = '' OR run = $run) AND step BETWEEN $first_step AND $last_step
    GROUP BY GROUPING SETS ((run, step, sample, param), (run, step, sample))
);

CREATE OR REPLACE TABLE noise_across_draws AS
WITH model AS (
    -- One row per tensor, whatever the number of runs that share the model.
    SELECT DISTINCT param_id, param, numel FROM params WHERE ($run = '' OR run = $run)
),
coordinates AS (
    SELECT param_id, param, idx
    FROM (SELECT param_id, param, unnest(range(numel)) AS idx FROM model)
    ORDER BY (((idx % 2147483647 + 1) * 48271 % 2147483647 + (param_id + 1) * 69621) * 48271) % 2147483647, param_id, idx
    LIMIT $coordinates
)
SELECT run, step, param, idx, $xmin AS xmin_rule, n,
       t['alpha'] AS alpha, t['ks'] AS ks, t['ks_critical'] AS ks_critical, t['power_law'] AS power_law,
       gauss['ks_p_value'] AS gaussian_p_value, gauss['excess_kurtosis'] AS excess_kurtosis,
       gauss['ks_p_value'] >= $significance AS gaussian, stable,
       vs_exp['loglik_ratio'] AS lr_exponential, vs_exp['p_value'] AS lr_p_value,
       COALESCE(vs_exp['loglik_ratio'] > 0 AND vs_exp['p_value'] < $lr_significance, false) AS heavier_than_exponential
FROM (
    SELECT g.run, g.step, c.param, c.idx, count(g.value) AS n,
           powerlaw_ks_test(abs(g.value), $significance, 'xmin=' || $xmin) AS t, gaussian_test(g.value) AS gauss,
           stable_alpha(g.value) AS stable, powerlaw_compare(abs(g.value), 'exponential', 'xmin=' || $xmin) AS vs_exp
    FROM coordinates c JOIN grad_values g ON g.param_id = c.param_id AND g.idx = c.idx
    WHERE g.kind = 'noise' AND ($run = '' OR g.run = $run) AND g.step BETWEEN $first_step AND $last_step
    GROUP BY g.run, g.step, c.param, c.idx
);

SELECT run, 'across parameters' AS view, step, xmin_rule, count(*) AS tests,
       avg(CASE WHEN power_law THEN 1.0 ELSE 0.0 END) AS power_law_rate,
       avg(CASE WHEN heavier_than_exponential THEN 1.0 ELSE 0.0 END) AS heavy_tail_rate,
       avg(CASE WHEN gaussian THEN 1.0 ELSE 0.0 END) AS gaussian_rate,
       median(stable) AS median_stable_alpha
FROM noise_across_params GROUP BY run, step, xmin_rule
UNION ALL
SELECT run, 'across draws' AS view, step, xmin_rule, count(*) AS tests,
       avg(CASE WHEN power_law THEN 1.0 ELSE 0.0 END) AS power_law_rate,
       avg(CASE WHEN heavier_than_exponential THEN 1.0 ELSE 0.0 END) AS heavy_tail_rate,
       avg(CASE WHEN gaussian THEN 1.0 ELSE 0.0 END) AS gaussian_rate,
       median(stable) AS median_stable_alpha
FROM noise_across_draws GROUP BY run, step, xmin_rule
ORDER BY run, view, step, xmin_rule;
