//! The queries that fetch what the plots draw, each filtered to one run.
//!
//! Raw gradient values are only read for one (run, kind, step, param) at a
//! time, and are reduced in SQL (a log-spaced histogram) before they reach
//! the report, so a layer of millions of coordinates costs a scan, not memory.

use std::collections::BTreeSet;

use datafusion::prelude::SessionContext;

use super::Tables;
use super::error::ReportError;
use super::frame::{lit, query};

/// Points of an empirical CCDF at most; SVGs stay small.
pub(super) const CCDF_POINTS: usize = 1000;

/// The runs that any available analysis table has rows for.
pub(super) async fn runs(ctx: &SessionContext, tables: &Tables) -> Result<Vec<String>, ReportError> {
    let mut runs = BTreeSet::new();
    for table in tables.iter() {
        let f = query(ctx, table, &format!("SELECT DISTINCT CAST(run AS VARCHAR) AS run FROM {table}")).await?;
        runs.extend(f.strings("run")?.into_iter().flatten());
    }
    Ok(runs.into_iter().collect())
}

/// A tensor of the model.
#[derive(Debug, Clone)]
pub(super) struct Param {
    pub name: String,
    pub id: i64,
}

/// The run's params, largest first (ties in model order).
pub(super) async fn params(ctx: &SessionContext, run: &str) -> Result<Vec<Param>, ReportError> {
    let f = query(
        ctx,
        "params",
        &format!(
            "SELECT CAST(param AS VARCHAR) AS param, min(param_id) AS param_id, max(numel) AS numel
             FROM params WHERE run = {} GROUP BY CAST(param AS VARCHAR) ORDER BY numel DESC, param_id",
            lit(run)
        ),
    )
    .await?;
    let names = f.strings("param")?;
    let ids = f.i64s("param_id")?;
    Ok(names.into_iter().zip(ids).filter_map(|(n, id)| Some(Param { name: n?, id: id? })).collect())
}

/// The gradient kinds of `dimension_wise` for a run, each with its first and last step.
pub(super) async fn dimension_kinds(ctx: &SessionContext, run: &str) -> Result<Vec<(String, i64, i64)>, ReportError> {
    let f = query(
        ctx,
        "dimension_wise",
        &format!(
            "SELECT CAST(kind AS VARCHAR) AS kind, min(step) AS first, max(step) AS last
             FROM dimension_wise WHERE run = {} GROUP BY CAST(kind AS VARCHAR) ORDER BY kind",
            lit(run)
        ),
    )
    .await?;
    let (kinds, first, last) = (f.strings("kind")?, f.i64s("first")?, f.i64s("last")?);
    Ok(kinds.into_iter().zip(first).zip(last).filter_map(|((k, a), b)| Some((k?, a?, b?))).collect())
}

/// A power-law fit of `dimension_wise`, and its KS test.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fit {
    pub alpha: f64,
    pub xmin: f64,
    pub n_tail: f64,
    pub ks: Option<f64>,
    pub ks_critical: Option<f64>,
    pub power_law: Option<bool>,
}

/// The dimension-wise fit of one (run, kind, step, param), if the test gave one.
pub(super) async fn dimension_fit(
    ctx: &SessionContext,
    tables: &Tables,
    run: &str,
    kind: &str,
    step: i64,
    param: &str,
) -> Result<Option<Fit>, ReportError> {
    let f = query(
        ctx,
        "dimension_wise",
        &format!(
            "SELECT alpha, xmin, n_tail, ks, ks_critical, CAST(power_law AS BIGINT) AS power_law FROM dimension_wise
             WHERE run = {} AND kind = {} AND step = {step} AND param = {} AND {} LIMIT 1",
            lit(run),
            lit(kind),
            lit(param),
            tables.plotted_rule()
        ),
    )
    .await?;
    let (a, x, n) = (f.f64s("alpha")?, f.f64s("xmin")?, f.f64s("n_tail")?);
    let (ks, crit, pl) = (f.f64s("ks")?, f.f64s("ks_critical")?, f.i64s("power_law")?);
    Ok(match (a.first(), x.first(), n.first()) {
        (Some(&Some(alpha)), Some(&Some(xmin)), Some(&Some(n_tail))) => {
            Some(Fit { alpha, xmin, n_tail, ks: ks[0], ks_critical: crit[0], power_law: pl[0].map(|v| v != 0) })
        }
        _ => None,
    })
}

/// An empirical CCDF P(|g| ≥ x) of the positive finite |g|.
#[derive(Debug, Clone)]
pub(super) struct Ccdf {
    /// How many values it is over.
    pub n: u64,
    /// (x, P(|g| ≥ x)), x ascending.
    pub points: Vec<(f64, f64)>,
    /// The largest |g|.
    pub max: f64,
}

/// The CCDF of |g| for one (run, kind, step, param), thinned to at most
/// [`CCDF_POINTS`] points: values are binned on a log grid and the CCDF is
/// evaluated exactly at each bin's smallest value. `None` without positive values.
pub(super) async fn ccdf(
    ctx: &SessionContext,
    run: &str,
    kind: &str,
    step: i64,
    param_id: i64,
) -> Result<Option<Ccdf>, ReportError> {
    // Zeros, NaN and infinities are skipped, as the power-law fit skips them.
    let values = format!(
        "(SELECT a FROM (SELECT abs(CAST(value AS DOUBLE)) AS a FROM grad_values
                         WHERE run = {} AND kind = {} AND step = {step} AND param_id = {param_id})
          WHERE a > 0 AND NOT isnan(a) AND a <= 1.7976931348623157e308)",
        lit(run),
        lit(kind)
    );
    let f =
        query(ctx, "grad_values", &format!("SELECT count(*) AS n, min(a) AS lo, max(a) AS hi FROM {values}")).await?;
    let (n, lo, hi) = (f.i64s("n")?, f.f64s("lo")?, f.f64s("hi")?);
    let (Some(&Some(n)), Some(&Some(lo)), Some(&Some(hi))) = (n.first(), lo.first(), hi.first()) else {
        return Ok(None);
    };
    if n <= 0 {
        return Ok(None);
    }
    let (llo, lhi) = (lo.ln(), hi.ln());
    // Bins per unit of ln(x); a single value gives a single bin.
    let scale = if lhi > llo { (CCDF_POINTS - 1) as f64 / (lhi - llo) } else { 0.0 };
    let f = query(
        ctx,
        "grad_values",
        &format!(
            "SELECT CAST(floor((ln(a) - ({llo:?})) * {scale:?}) AS BIGINT) AS bin, min(a) AS x, count(*) AS c
             FROM {values} GROUP BY 1 ORDER BY 1"
        ),
    )
    .await?;
    let (xs, cs) = (f.f64s("x")?, f.i64s("c")?);
    let mut points = Vec::with_capacity(xs.len());
    let mut at_least = 0i64;
    // From the top bin down: every value in this bin or above is ≥ its smallest value.
    for (x, c) in xs.into_iter().zip(cs).rev() {
        let (Some(x), Some(c)) = (x, c) else { continue };
        at_least += c;
        points.push((x, at_least as f64 / n as f64));
    }
    points.reverse();
    Ok(Some(Ccdf { n: n as u64, points, max: hi }))
}

/// One spectrum row of `spectrum`.
#[derive(Debug, Clone)]
pub(super) struct Spectrum {
    pub param: String,
    pub eigenvalues: Vec<f64>,
    pub error_bound: f64,
    pub s: Option<f64>,
    pub lambda1: Option<f64>,
    pub kmin: Option<i64>,
    pub kmax: Option<i64>,
}

/// The kinds of `spectrum` for a run, each with its last step (the last noise point).
pub(super) async fn spectrum_last_steps(ctx: &SessionContext, run: &str) -> Result<Vec<(String, i64)>, ReportError> {
    let f = query(
        ctx,
        "spectrum",
        &format!(
            "SELECT CAST(kind AS VARCHAR) AS kind, max(step) AS step FROM spectrum WHERE run = {}
             GROUP BY CAST(kind AS VARCHAR) ORDER BY kind DESC",
            lit(run)
        ),
    )
    .await?;
    let (kinds, steps) = (f.strings("kind")?, f.i64s("step")?);
    Ok(kinds.into_iter().zip(steps).filter_map(|(k, s)| Some((k?, s?))).collect())
}

/// Every param's spectrum at one (run, kind, step).
pub(super) async fn spectra(
    ctx: &SessionContext,
    run: &str,
    kind: &str,
    step: i64,
) -> Result<Vec<Spectrum>, ReportError> {
    let f = query(
        ctx,
        "spectrum",
        &format!(
            "SELECT CAST(param AS VARCHAR) AS param, eigenvalues, error_bound, s, lambda1, kmin, kmax
             FROM spectrum WHERE run = {} AND kind = {} AND step = {step}",
            lit(run),
            lit(kind)
        ),
    )
    .await?;
    let params = f.strings("param")?;
    let eigen = f.f64_lists("eigenvalues")?;
    let (eb, s, l1) = (f.f64s("error_bound")?, f.f64s("s")?, f.f64s("lambda1")?);
    let (kmin, kmax) = (f.i64s("kmin")?, f.i64s("kmax")?);
    let mut out = Vec::new();
    for i in 0..params.len() {
        let Some(param) = params[i].clone() else { continue };
        out.push(Spectrum {
            param,
            eigenvalues: eigen[i].clone().unwrap_or_default(),
            error_bound: eb[i].unwrap_or(0.0),
            s: s[i],
            lambda1: l1[i],
            kmin: kmin[i],
            kmax: kmax[i],
        });
    }
    Ok(out)
}

/// A named series of (x, y) values.
pub(super) type Named = Vec<(String, Vec<(f64, f64)>)>;

/// Runs `sql` on `table` and groups its rows (`key`, `x`, `y`) into series,
/// in the order keys first appear; rows with a NULL are skipped.
async fn grouped(ctx: &SessionContext, table: &str, sql: &str) -> Result<Named, ReportError> {
    let f = query(ctx, table, sql).await?;
    let (keys, xs, ys) = (f.strings("key")?, f.f64s("x")?, f.f64s("y")?);
    let mut out: Named = Vec::new();
    for ((k, x), y) in keys.into_iter().zip(xs).zip(ys) {
        let (Some(k), Some(x), Some(y)) = (k, x, y) else { continue };
        match out.iter_mut().find(|(name, _)| *name == k) {
            Some((_, points)) => points.push((x, y)),
            None => out.push((k, vec![(x, y)])),
        }
    }
    Ok(out)
}

/// Dimension-wise alpha over steps, per param, for one (run, kind).
pub(super) async fn alpha_over_steps(
    ctx: &SessionContext,
    tables: &Tables,
    run: &str,
    kind: &str,
) -> Result<Named, ReportError> {
    let sql = format!(
        "SELECT CAST(param AS VARCHAR) AS key, step AS x, alpha AS y FROM dimension_wise
         WHERE run = {} AND kind = {} AND {} ORDER BY key, x",
        lit(run),
        lit(kind),
        tables.plotted_rule()
    );
    grouped(ctx, "dimension_wise", &sql).await
}

/// The whole model's spectrum exponent s over steps, per kind.
pub(super) async fn s_over_steps(ctx: &SessionContext, run: &str) -> Result<Named, ReportError> {
    let sql = format!(
        "SELECT CAST(kind AS VARCHAR) AS key, step AS x, s AS y FROM spectrum
         WHERE run = {} AND param = '(model)' ORDER BY key DESC, x",
        lit(run)
    );
    grouped(ctx, "spectrum", &sql).await
}

/// A column of `summary` over steps: per kind (`per_kind`), else one series keyed `column`.
pub(super) async fn summary_over_steps(
    ctx: &SessionContext,
    run: &str,
    column: &str,
    per_kind: bool,
) -> Result<Named, ReportError> {
    let sql = if per_kind {
        format!(
            "SELECT CAST(kind AS VARCHAR) AS key, step AS x, {column} AS y FROM summary
             WHERE run = {} ORDER BY key, x",
            lit(run)
        )
    } else {
        format!(
            "SELECT '{column}' AS key, step AS x, max({column}) AS y FROM summary
             WHERE run = {} GROUP BY step ORDER BY x",
            lit(run)
        )
    };
    grouped(ctx, "summary", &sql).await
}
