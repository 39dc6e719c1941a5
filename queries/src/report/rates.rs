//! The paper's table for one run: how often each test finds a power law (or a
//! Gaussian), and the covariance spectrum's exponent, computed with SQL from
//! the analyses' tables.
//!
//! A NULL verdict (a test that could not run, e.g. too few values) counts as
//! "not found", as in the analyses' own summary SELECTs, so the two agree.

use std::fmt::Write as _;

use datafusion::prelude::SessionContext;

use super::Tables;
use super::error::ReportError;
use super::frame::{lit, query};
use super::html::{esc, num, opt_cell, rate};

/// One row of the heavy-tail table.
struct Test {
    /// `data-test` attribute, stable for scripts and tests.
    key: &'static str,
    label: &'static str,
    table: &'static str,
    /// Extra WHERE condition.
    filter: &'static str,
    /// Whether the table has a `gaussian` verdict.
    gaussian: bool,
}

const TESTS: &[Test] = &[
    Test {
        key: "dimension_wise-minibatch",
        label: "Dimension-wise, minibatch",
        table: "dimension_wise",
        filter: "kind = 'minibatch'",
        gaussian: false,
    },
    Test {
        key: "dimension_wise-full",
        label: "Dimension-wise, full batch",
        table: "dimension_wise",
        filter: "kind = 'full'",
        gaussian: false,
    },
    Test {
        key: "iteration_wise",
        label: "Iteration-wise (minibatch)",
        table: "iteration_wise",
        filter: "TRUE",
        gaussian: true,
    },
    Test {
        key: "noise_across_params",
        label: "Noise across parameters",
        table: "noise_across_params",
        filter: "TRUE",
        gaussian: true,
    },
    Test {
        key: "noise_across_draws",
        label: "Noise across draws",
        table: "noise_across_draws",
        filter: "TRUE",
        gaussian: true,
    },
];

const SHARE_POWER_LAW: &str = "avg(CASE WHEN power_law THEN 1.0 ELSE 0.0 END)";
const SHARE_GAUSSIAN: &str = "avg(CASE WHEN gaussian THEN 1.0 ELSE 0.0 END)";
const SHARE_HEAVY: &str = "avg(CASE WHEN heavier_than_exponential THEN 1.0 ELSE 0.0 END)";

/// Both tables of the run, side by side, as HTML.
pub(super) async fn tables_html(ctx: &SessionContext, tables: &Tables, run: &str) -> Result<String, ReportError> {
    let mut out = String::from("<div class=\"side\">\n");
    out.push_str(&heavy_tails(ctx, tables, run).await?);
    if tables.has("spectrum") {
        out.push_str(&spectrum(ctx, run).await?);
    }
    out.push_str("</div>\n");
    Ok(out)
}

async fn heavy_tails(ctx: &SessionContext, tables: &Tables, run: &str) -> Result<String, ReportError> {
    if let rules @ [_, _, ..] = tables.xmin_rules() {
        return heavy_tails_by_rule(ctx, tables, run, rules).await;
    }
    let mut out = String::from(
        "<table class=\"data rates\">\n<caption>Share of tests in which a power law (KS test of Xie et al. 2023) \
         or a Gaussian (Lilliefors) is not rejected, and in which the likelihood ratio finds the tail \
         significantly heavier than an exponential one (p &lt; 0.1)</caption>\n\
         <thead><tr><th>Test</th><th class=\"num\">Power law</th><th class=\"num\">Heavier than exp.</th>\
         <th class=\"num\">Gaussian</th><th class=\"num\">Tests</th></tr></thead>\n<tbody>\n",
    );
    for t in TESTS {
        let _ = write!(out, "<tr data-test=\"{}\"><th>{}</th>", t.key, esc(t.label));
        if !tables.has(t.table) {
            out.push_str("<td class=\"na\" colspan=\"4\">not analysed</td></tr>\n");
            continue;
        }
        let gaussian = if t.gaussian { SHARE_GAUSSIAN } else { "CAST(NULL AS DOUBLE)" };
        let sql = format!(
            "SELECT count(*) AS tests, {SHARE_POWER_LAW} AS power_law_rate, {SHARE_HEAVY} AS heavy_tail_rate,
                    {gaussian} AS gaussian_rate
             FROM {} WHERE run = {} AND {}",
            t.table,
            lit(run),
            t.filter
        );
        let f = query(ctx, t.table, &sql).await?;
        let tests = f.i64s("tests")?.first().copied().flatten().unwrap_or(0);
        let pl = f.f64s("power_law_rate")?.first().copied().flatten();
        let heavy = f.f64s("heavy_tail_rate")?.first().copied().flatten();
        let ga = f.f64s("gaussian_rate")?.first().copied().flatten();
        let _ = writeln!(
            out,
            "{}{}{}<td class=\"num\">{tests}</td></tr>",
            opt_cell(pl, rate),
            opt_cell(heavy, rate),
            opt_cell(ga, rate)
        );
    }
    out.push_str("</tbody>\n</table>\n");
    Ok(out)
}

/// The heavy-tail table with one power-law and one likelihood-ratio column per
/// xmin rule, side by side, so that how much a verdict owes to the rule is seen
/// at a glance. The Gaussian test does not depend on the rule; its column and
/// the number of tests are those of the first rule.
async fn heavy_tails_by_rule(
    ctx: &SessionContext,
    tables: &Tables,
    run: &str,
    rules: &[String],
) -> Result<String, ReportError> {
    let heads = |what: &str| {
        rules.iter().map(|r| format!("<th class=\"num\">{what}<br><code>{}</code></th>", esc(r))).collect::<String>()
    };
    let mut out = format!(
        "<table class=\"data rates\">\n<caption>Share of tests in which a power law (KS test of Xie et al. 2023) \
         is not rejected, and in which the likelihood ratio finds the tail significantly heavier than an \
         exponential one (p &lt; 0.1), with the tail chosen by each xmin rule; and the share in which a \
         Gaussian (Lilliefors) is not rejected</caption>\n\
         <thead><tr><th>Test</th>{}{}<th class=\"num\">Gaussian</th><th class=\"num\">Tests</th></tr></thead>\n<tbody>\n",
        heads("Power law"),
        heads("Heavier than exp.")
    );
    for t in TESTS {
        let _ = write!(out, "<tr data-test=\"{}\"><th>{}</th>", t.key, esc(t.label));
        if !tables.has(t.table) {
            let _ = writeln!(out, "<td class=\"na\" colspan=\"{}\">not analysed</td></tr>", 2 * rules.len() + 2);
            continue;
        }
        let gaussian = if t.gaussian { SHARE_GAUSSIAN } else { "CAST(NULL AS DOUBLE)" };
        let sql = format!(
            "SELECT CAST(xmin_rule AS VARCHAR) AS rule, count(*) AS tests, {SHARE_POWER_LAW} AS power_law_rate,
                    {SHARE_HEAVY} AS heavy_tail_rate, {gaussian} AS gaussian_rate
             FROM {} WHERE run = {} AND {} GROUP BY CAST(xmin_rule AS VARCHAR)",
            t.table,
            lit(run),
            t.filter
        );
        let f = query(ctx, t.table, &sql).await?;
        let found = f.strings("rule")?;
        let (tests, pl, heavy, ga) =
            (f.i64s("tests")?, f.f64s("power_law_rate")?, f.f64s("heavy_tail_rate")?, f.f64s("gaussian_rate")?);
        let row = |rule: &str| found.iter().position(|r| r.as_deref() == Some(rule));
        let cells = |values: &[Option<f64>]| {
            rules
                .iter()
                .map(|r| {
                    let cell = opt_cell(row(r).and_then(|i| values[i]), rate);
                    cell.replacen("<td ", &format!("<td data-rule=\"{}\" ", esc(r)), 1)
                })
                .collect::<String>()
        };
        let first = row(&rules[0]);
        let _ = writeln!(
            out,
            "{}{}{}<td class=\"num\">{}</td></tr>",
            cells(&pl),
            cells(&heavy),
            opt_cell(first.and_then(|i| ga[i]), rate),
            first.and_then(|i| tests[i]).unwrap_or(0)
        );
    }
    out.push_str("</tbody>\n</table>\n");
    Ok(out)
}

async fn spectrum(ctx: &SessionContext, run: &str) -> Result<String, ReportError> {
    // Params in model order after the whole model, sample gradients before noise.
    let sql = format!(
        "SELECT CAST(sp.kind AS VARCHAR) AS kind, CAST(sp.param AS VARCHAR) AS param, count(*) AS tests,
                median(sp.s) AS median_s, {SHARE_POWER_LAW} AS power_law_rate, median(sp.r2) AS median_r2,
                min(p.param_id) AS param_id
         FROM spectrum sp
         LEFT JOIN (SELECT CAST(param AS VARCHAR) AS name, min(param_id) AS param_id FROM params
                    WHERE run = {r} GROUP BY CAST(param AS VARCHAR)) p ON CAST(sp.param AS VARCHAR) = p.name
         WHERE sp.run = {r}
         GROUP BY CAST(sp.kind AS VARCHAR), CAST(sp.param AS VARCHAR)
         ORDER BY CASE WHEN kind = 'sample' THEN 0 ELSE 1 END, kind, param_id NULLS FIRST, param",
        r = lit(run)
    );
    let f = query(ctx, "spectrum", &sql).await?;
    let (kinds, params, tests) = (f.strings("kind")?, f.strings("param")?, f.i64s("tests")?);
    let (s, pl, r2) = (f.f64s("median_s")?, f.f64s("power_law_rate")?, f.f64s("median_r2")?);
    let mut out = String::from(
        "<table class=\"data rates\">\n<caption>Covariance spectrum λ<sub>k</sub> ∝ k<sup>−s</sup>: \
         median exponent of the least-squares fit, and share of KS tests not rejecting a power law</caption>\n\
         <thead><tr><th>Kind</th><th>Param</th><th class=\"num\">median s</th><th class=\"num\">median R²</th>\
         <th class=\"num\">Power law</th><th class=\"num\">Points</th></tr></thead>\n<tbody>\n",
    );
    for i in 0..f.len() {
        let kind = kinds[i].as_deref().unwrap_or("");
        let param = params[i].as_deref().unwrap_or("");
        let class = if param == "(model)" { " class=\"model\"" } else { "" };
        let _ = writeln!(
            out,
            "<tr data-test=\"spectrum-{k}-{p}\"{class}><td>{k}</td><td>{p}</td>{}{}{}<td class=\"num\">{}</td></tr>",
            opt_cell(s[i], num),
            opt_cell(r2[i], num),
            opt_cell(pl[i], rate),
            tests[i].unwrap_or(0),
            k = esc(kind),
            p = esc(param),
        );
    }
    out.push_str("</tbody>\n</table>\n");
    Ok(out)
}
