-- spectrum: does the covariance spectrum of stochastic gradients follow a power law λ_k ∝ k^−s?
--
-- Covariance of the per-sample gradients (kind 'sample') and of the minibatch noise
-- (kind 'noise') at each noise point, per param and for the whole model (every
-- param's vector concatenated in param_id order). Eigenvalues come from a
-- Frequent Directions sketch of rank sketch_rank (cov_spectrum_info with 'fd': exact while a group
-- has at most 2·sketch_rank vectors, memory O(sketch_rank · d) beyond, each true
-- eigenvalue within [λ̂, λ̂ + error_bound]). Two fits, both stated with their ranks:
--   spectrum_fit      — least squares of log λ_k on log k for k in [1, kmax]: kmax is
--                       at most max_rank, at most n / 4 (a sample covariance of n vectors
--                       has n − 1 nonzero eigenvalues and only its top ranks are close to
--                       the population's), and only ranks whose sketch error bound is
--                       below max_relative_error of the eigenvalue (Frequent Directions
--                       lowers eigenvalues by up to error_bound, which steepens a fit);
--                       the fit is NULL when fewer than two ranks qualify;
--   spectrum_ks_test  — the paper's test on the eigenvalues above round-off: their density fitted as a
--                       power law p(λ) ∝ λ^−β, s = 1/(β − 1), KS against 1.358/sqrt(n_tail).
--
-- param run = '' : the run to analyse ('' = every run)
-- param max_rank = 64 : the highest rank spectrum_fit uses
-- param sketch_rank = 128 : rank of the Frequent Directions sketch when one is used
-- param max_relative_error = 0.1 : fit only ranks with error_bound below this share of the eigenvalue
-- param min_relative_eigenvalue = 1e-6 : ranks below this share of the largest eigenvalue are f32 round-off (e.g. a softmax layer's bias gradients sum to zero: one eigenvalue is 0)
-- param significance = 0.05 : level of the KS test
-- param first_step = 0 : the first step analysed (analyze runs a window of steps at a time)
-- param last_step = 9223372036854775807 : the last step analysed
CREATE OR REPLACE TABLE spectrum AS
WITH whole_model AS (
    SELECT run, step, kind, sample, '(model)' AS param, vec_concat("values", param_id) AS v
    FROM grad_vectors
    WHERE kind IN ('sample', 'noise') AND ($run = '' OR run = $run) AND step BETWEEN $first_step AND $last_step
    GROUP BY run, step, kind, sample
),
vectors AS (
    SELECT run, step, kind, sample, param, "values" AS v
    FROM grad_vectors
    WHERE kind IN ('sample', 'noise') AND ($run = '' OR run = $run) AND step BETWEEN $first_step AND $last_step
    UNION ALL
    SELECT * FROM whole_model
),
spectra AS (
    SELECT run, step, kind, param, n, info['eigenvalues'] AS eigenvalues,
           info['error_bound'] AS error_bound, info['total_variance'] AS total_variance
    FROM (
        SELECT run, step, kind, param, count(*) AS n, cov_spectrum_info(v, 'fd', $sketch_rank) AS info
        FROM vectors
        GROUP BY run, step, kind, param
    )
),
ranks AS (
    -- Eigenvalues are descending, so both sets of ranks are prefixes: those above f32
    -- round-off (the KS test's sample) and, among them, those the sketch holds accurately
    -- enough (the least-squares fit's range).
    SELECT run, step, kind, param, count(*) AS above_round_off,
           sum(CASE WHEN error_bound <= $max_relative_error * eigenvalue THEN 1 ELSE 0 END) AS accurate
    FROM (SELECT run, step, kind, param, error_bound, eigenvalues[1] AS largest, unnest(eigenvalues) AS eigenvalue
          FROM spectra)
    WHERE eigenvalue > 0 AND eigenvalue >= $min_relative_eigenvalue * largest
    GROUP BY run, step, kind, param
)
SELECT run, step, kind, param, n, eigenvalues, error_bound, total_variance,
       f['s'] AS s, f['lambda1'] AS lambda1, f['r2'] AS r2, f['kmin'] AS kmin, f['kmax'] AS kmax,
       ks['s'] AS ks_s, ks['ks'] AS ks, ks['ks_critical'] AS ks_critical, ks['power_law'] AS power_law
FROM (
    SELECT s.*, spectrum_fit(s.eigenvalues, 1, greatest(1, least($max_rank, s.n / 4, COALESCE(r.accurate, 0)))) AS f,
           spectrum_ks_test(array_slice(s.eigenvalues, 1, COALESCE(r.above_round_off, 0)), $significance) AS ks
    FROM spectra s
    LEFT JOIN ranks r ON r.run = s.run AND r.step = s.step AND r.kind = s.kind AND r.param = s.param
);

SELECT run, kind, step, param, n, kmin, kmax, s, r2, ks_s AS ks_test_s, power_law, error_bound
FROM spectrum
ORDER BY run, kind, step, param;
