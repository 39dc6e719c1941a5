-- iteration_wise: is one coordinate of the minibatch gradient heavy-tailed across steps?
--
-- A deterministic sample of coordinates (the smallest values of a Lehmer-style
-- multiplicative hash of param_id and index, so the same model gives the same
-- sample in every run and lake) is followed
-- across the recorded minibatch gradients of each training phase. Per coordinate:
-- the paper's power-law test on |g| and, beside it, gaussian_test on g. The rates
-- are the shares of coordinates where a power law (resp. a Gaussian, by the
-- Lilliefors KS test) is not rejected.
--
-- Beside the paper's test, which with a free xmin rarely rejects on small samples,
-- powerlaw_compare(|g|, 'exponential') asks whether the tail is heavier than an
-- exponential one: heavy_tail_rate is the share where the likelihood ratio favours
-- the power law significantly.
--
-- param run = '' : the run to analyse ('' = every run)
-- param coordinates = 256 : coordinates sampled from the whole model
-- param significance = 0.05 : level of both tests
-- param lr_significance = 0.1 : a power law is called heavier than an exponential when the likelihood ratio favours it with p below this (Clauset et al. 2009)
-- param xmin = 'csn' : the tail the power-law tests fit: csn (CSN's free xmin), csn:K (over K quantile candidates), top:F (the largest fraction F of the values), value:X, all (the whole sample); analyze --xmin compares several
-- param phases = 1 : training phases the steps are cut into (1 = the whole run)
-- param first_coordinate = 0 : rank of the first sampled coordinate analysed (analyze runs a window of coordinates at a time)
-- param last_coordinate = 9223372036854775807 : rank of the last sampled coordinate analysed
CREATE OR REPLACE TABLE iteration_wise AS
WITH model AS (
    -- One row per tensor, whatever the number of runs that share the model.
    SELECT DISTINCT param_id, param, numel FROM params WHERE ($run = '' OR run = $run)
),
coordinates AS (
    SELECT param_id, param, idx
    FROM (
        SELECT param_id, param, idx, row_number() OVER (ORDER BY h, param_id, idx) - 1 AS rank
        FROM (
            SELECT param_id, param, idx,
                   (((idx % 2147483647 + 1) * 48271 % 2147483647 + (param_id + 1) * 69621) * 48271) % 2147483647 AS h
            FROM (SELECT param_id, param, unnest(range(numel)) AS idx FROM model)
            ORDER BY h, param_id, idx
            LIMIT $coordinates
        )
    )
    WHERE rank BETWEEN $first_coordinate AND $last_coordinate
),
last_steps AS (
    -- Each run's last step, from the key columns only, for the phase.
    SELECT run, max(step) AS last_step FROM grads WHERE kind = 'minibatch' AND ($run = '' OR run = $run) GROUP BY run
),
phased AS (
    SELECT g.run, g.step, c.param, c.idx, g.value,
           CAST(g.step * $phases / (l.last_step + 1) AS BIGINT) AS phase
    FROM coordinates c
    JOIN grad_values g ON g.param_id = c.param_id AND g.idx = c.idx
    JOIN last_steps l ON l.run = g.run
    WHERE g.kind = 'minibatch' AND ($run = '' OR g.run = $run)
)
SELECT run, phase, param, idx, steps, $xmin AS xmin_rule,
       t['alpha'] AS alpha, t['xmin'] AS xmin, t['ks'] AS ks, t['ks_critical'] AS ks_critical,
       t['n_tail'] AS n_tail, t['power_law'] AS power_law,
       gauss['ks_p_value'] AS gaussian_p_value, gauss['excess_kurtosis'] AS excess_kurtosis,
       gauss['ks_p_value'] >= $significance AS gaussian,
       vs_exp['loglik_ratio'] AS lr_exponential, vs_exp['p_value'] AS lr_p_value,
       COALESCE(vs_exp['loglik_ratio'] > 0 AND vs_exp['p_value'] < $lr_significance, false) AS heavier_than_exponential
FROM (
    SELECT run, phase, param, idx, count(*) AS steps, powerlaw_ks_test(abs(value), $significance, 'xmin=' || $xmin) AS t,
           gaussian_test(value) AS gauss, powerlaw_compare(abs(value), 'exponential', 'xmin=' || $xmin) AS vs_exp
    FROM phased
    GROUP BY run, phase, param, idx
);

SELECT run, phase, xmin_rule, count(*) AS coordinates, min(steps) AS min_steps,
       avg(CASE WHEN power_law THEN 1.0 ELSE 0.0 END) AS power_law_rate,
       avg(CASE WHEN heavier_than_exponential THEN 1.0 ELSE 0.0 END) AS heavy_tail_rate,
       avg(CASE WHEN gaussian THEN 1.0 ELSE 0.0 END) AS gaussian_rate
FROM iteration_wise
GROUP BY run, phase, xmin_rule
ORDER BY run, phase, xmin_rule;
