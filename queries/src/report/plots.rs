//! The report's figures for one run: what each plot shows, built from [`data`](super::data).

use datafusion::prelude::SessionContext;

use super::Tables;
use super::chart::{self, Axis, Chart, Legend, Mark, Series};
use super::data::{self, Ccdf, Fit, Named, Param, Spectrum};
use super::error::ReportError;
use super::html::num;

/// Params shown at most in a plot (largest first): legends stay readable for deep models.
pub(super) const MAX_PARAMS: usize = 6;

/// Series longer than this are drawn as lines without markers.
const MARKERS_UP_TO: usize = 64;

/// Palette entry of the legend key for dashed fits drawn in their series' colours.
const FIT_KEY_COLOR: usize = 7;

/// One rendered plot.
pub(super) struct Figure {
    /// File stem under `plots/` (made unique and safe by the caller).
    pub name: String,
    /// One line under the plot.
    pub caption: String,
    /// The SVG document.
    pub svg: String,
}

/// Plots under one heading.
pub(super) struct Group {
    pub heading: &'static str,
    pub note: String,
    pub figures: Vec<Figure>,
}

/// Every figure of `run`, by heading; headings without a figure are left out.
pub(super) async fn figures(ctx: &SessionContext, tables: &Tables, run: &str) -> Result<Vec<Group>, ReportError> {
    let params = data::params(ctx, run).await?;
    let mut groups = Vec::new();
    if tables.has("dimension_wise") {
        groups.push(ccdf_group(ctx, tables, run, &params).await?);
    }
    if tables.has("spectrum") {
        groups.push(spectrum_group(ctx, run, &params).await?);
    }
    groups.push(trend_group(ctx, tables, run, &params).await?);
    groups.retain(|g| !g.figures.is_empty());
    Ok(groups)
}

/// Renders `chart` as figure `name`, or nothing when it has no drawable point.
fn figure(name: String, caption: String, chart: &Chart) -> Result<Option<Figure>, ReportError> {
    let svg = chart::render(chart).map_err(|detail| ReportError::Plot { file: format!("{name}.svg"), detail })?;
    Ok(svg.map(|svg| Figure { name, caption, svg }))
}

/// Palette index of a gradient kind, the same in every plot.
fn kind_color(kind: &str) -> usize {
    match kind {
        "minibatch" => 0,
        "full" => 1,
        "sample" => 2,
        "noise" => 3,
        "draw" => 4,
        _ => 5,
    }
}

fn line_mark(points: usize) -> Mark {
    if points <= MARKERS_UP_TO { Mark::LinePoints } else { Mark::Line }
}

/// `(model)` first, then the largest params that `has` accepts, at most [`MAX_PARAMS`] of them.
fn chosen(params: &[Param], has: impl Fn(&str) -> bool) -> Vec<&str> {
    let mut out = vec!["(model)"];
    out.extend(params.iter().map(|p| p.name.as_str()).filter(|p| has(p)).take(MAX_PARAMS));
    out.retain(|p| has(p));
    out
}

async fn ccdf_group(ctx: &SessionContext, tables: &Tables, run: &str, params: &[Param]) -> Result<Group, ReportError> {
    let kinds = data::dimension_kinds(ctx, run).await?;
    // The full-batch gradient is the paper's cleanest case; minibatch when there is none.
    let pick = kinds.iter().find(|k| k.0 == "full").or_else(|| kinds.iter().find(|k| k.0 == "minibatch"));
    let mut figures = Vec::new();
    let mut note = String::new();
    if let Some((kind, first, last)) = pick {
        let steps = if first == last { vec![*first] } else { vec![*first, *last] };
        let shown = params.len().min(MAX_PARAMS);
        note = format!(
            "Empirical CCDF of |g| of the {kind} gradient (thinned to at most {} points on a log grid) and the fitted \
             power law (n<sub>tail</sub>/n)·(x/x<sub>min</sub>)<sup>1−α</sup> for x ≥ x<sub>min</sub>, \
             at the first and last recorded step; the {shown} largest of {} params.",
            data::CCDF_POINTS,
            params.len()
        );
        if let [rule, _, ..] = tables.xmin_rules() {
            note += &format!(" The fits use the xmin rule <code>{}</code>.", super::html::esc(rule));
        }
        for &step in &steps {
            for p in params.iter().take(MAX_PARAMS) {
                let Some(ccdf) = data::ccdf(ctx, run, kind, step, p.id).await? else { continue };
                let fit = data::dimension_fit(ctx, tables, run, kind, step, &p.name).await?;
                let name = format!("{run}-ccdf-{kind}-step{step}-{}", p.name);
                let caption = ccdf_caption(p, kind, step, &ccdf, fit);
                figures.extend(figure(name, caption, &ccdf_chart(p, kind, step, &ccdf, fit))?);
            }
        }
    }
    Ok(Group { heading: "Dimension-wise: CCDF of |gradient|", note, figures })
}

/// What the fit and its test say, in one line.
fn ccdf_caption(p: &Param, kind: &str, step: i64, ccdf: &Ccdf, fit: Option<Fit>) -> String {
    let head = format!("{}, {kind} gradient, step {step}", p.name);
    let Some(f) = fit else {
        return format!("{head}: no power-law fit ({} positive values)", ccdf.n);
    };
    let verdict = match (f.ks, f.ks_critical, f.power_law) {
        (Some(ks), Some(c), Some(pl)) => format!(
            "; KS distance {} {} critical {}: power law {}",
            num(ks),
            if pl { "≤" } else { ">" },
            num(c),
            if pl { "not rejected" } else { "rejected" }
        ),
        _ => String::new(),
    };
    format!("{head}: tail of {} of {} values above xmin{verdict}", num(f.n_tail), ccdf.n)
}

fn ccdf_chart(p: &Param, kind: &str, step: i64, ccdf: &Ccdf, fit: Option<Fit>) -> Chart {
    let mut series = vec![Series::new(Some(format!("empirical (n = {})", ccdf.n)), 0, Mark::Line, ccdf.points.clone())];
    if let Some(f) = fit.filter(|f| f.xmin > 0.0 && f.xmin.is_finite() && ccdf.n > 0) {
        let at = |x: f64| f.n_tail / ccdf.n as f64 * (x / f.xmin).powf(1.0 - f.alpha);
        let top = ccdf.max.max(f.xmin);
        series.push(Series::new(
            Some(format!("fit α = {}, xmin = {}", num(f.alpha), num(f.xmin))),
            3,
            Mark::Dashed,
            vec![(f.xmin, at(f.xmin)), (top, at(top))],
        ));
    }
    Chart {
        title: format!("CCDF of |g|: {}, {kind}, step {step}", p.name),
        x: Axis::log("|g|"),
        y: Axis::log("P(|g| ≥ x)"),
        series,
        legend: Legend::LowerLeft,
    }
}

async fn spectrum_group(ctx: &SessionContext, run: &str, params: &[Param]) -> Result<Group, ReportError> {
    let mut figures = Vec::new();
    for (kind, step) in data::spectrum_last_steps(ctx, run).await? {
        let rows = data::spectra(ctx, run, &kind, step).await?;
        let shown = chosen(params, |p| rows.iter().any(|r| r.param == p));
        let chart = spectrum_chart(&kind, step, &rows, &shown);
        let in_plot = shown.iter().filter(|p| **p != "(model)").count();
        let total = rows.iter().filter(|r| r.param != "(model)").count();
        let caption =
            format!("{kind} gradients at step {step}: the whole model and the {in_plot} largest of {total} params");
        figures.extend(figure(format!("{run}-spectrum-{kind}-step{step}"), caption, &chart)?);
    }
    let note = "Eigenvalues λ̂<sub>k</sub> of the gradient covariance against their rank k at the last noise point, \
                with the least-squares fit λ<sub>1</sub>·k<sup>−s</sup> (dashed) over the ranks it used. Where the \
                spectrum comes from a Frequent Directions sketch, bars show the interval \
                [λ̂<sub>k</sub>, λ̂<sub>k</sub> + error bound] that holds each true eigenvalue."
        .to_string();
    Ok(Group { heading: "Covariance spectrum: eigenvalue against rank", note, figures })
}

fn spectrum_chart(kind: &str, step: i64, rows: &[Spectrum], shown: &[&str]) -> Chart {
    let mut series = Vec::new();
    for (color, name) in shown.iter().enumerate() {
        let Some(r) = rows.iter().find(|r| r.param == *name) else { continue };
        let points: Vec<(f64, f64)> = r.eigenvalues.iter().enumerate().map(|(k, &l)| ((k + 1) as f64, l)).collect();
        let label = match r.s {
            Some(s) => format!("{} (s = {})", r.param, num(s)),
            None => r.param.clone(),
        };
        let mut data = Series::new(Some(label), color, line_mark(points.len()), points);
        if r.error_bound > 0.0 && r.error_bound.is_finite() {
            data.bars = data.points.iter().map(|&(k, l)| (k, l, l + r.error_bound)).collect();
        }
        series.push(data);
        if let (Some(s), Some(l1), Some(kmin), Some(kmax)) = (r.s, r.lambda1, r.kmin, r.kmax) {
            let line = |k: i64| (k as f64, l1 * (k as f64).powf(-s));
            series.push(Series::new(None, color, Mark::Dashed, vec![line(kmin), line(kmax)]));
        }
    }
    if series.iter().any(|s| s.label.is_none()) {
        series.push(Series::new(Some("fit λ1·k^−s".into()), FIT_KEY_COLOR, Mark::Dashed, Vec::new()));
    }
    Chart {
        title: format!("Covariance spectrum, {kind} gradients, step {step}"),
        x: Axis::log("rank k"),
        y: Axis::log("eigenvalue λ̂k"),
        series,
        legend: Legend::Beside,
    }
}

async fn trend_group(ctx: &SessionContext, tables: &Tables, run: &str, params: &[Param]) -> Result<Group, ReportError> {
    let mut figures = Vec::new();
    if tables.has("dimension_wise") {
        let kinds = data::dimension_kinds(ctx, run).await?;
        let kind = if kinds.iter().any(|k| k.0 == "minibatch") { "minibatch" } else { "full" };
        let all = data::alpha_over_steps(ctx, tables, run, kind).await?;
        let shown = chosen(params, |p| all.iter().any(|(name, _)| name == p));
        let series = shown
            .iter()
            .enumerate()
            .filter_map(|(color, name)| {
                let (name, points) = all.iter().find(|(n, _)| n == name)?;
                Some(Series::new(Some(name.clone()), color, line_mark(points.len()), points.clone()))
            })
            .collect();
        let chart = Chart {
            title: format!("Dimension-wise tail index α, {kind} gradient"),
            x: Axis::linear("step"),
            y: Axis::linear("α (power-law exponent of |g|)"),
            series,
            legend: Legend::Beside,
        };
        let caption = format!("Fitted α of |g| across each param's coordinates, per {kind} step");
        figures.extend(figure(format!("{run}-alpha-{kind}"), caption, &chart)?);
    }
    if tables.has("spectrum") {
        let chart = Chart {
            title: "Spectrum exponent s, whole model".into(),
            x: Axis::linear("step"),
            y: Axis::linear("s (λk ∝ k^−s)"),
            series: per_kind(data::s_over_steps(ctx, run).await?),
            legend: Legend::Beside,
        };
        let caption = "Least-squares exponent s of the whole model's covariance spectrum at each noise point".into();
        figures.extend(figure(format!("{run}-spectrum-s"), caption, &chart)?);
    }
    if tables.has("summary") {
        let loss = data::summary_over_steps(ctx, run, "loss", false).await?;
        let chart = Chart {
            title: "Training loss".into(),
            x: Axis::linear("step"),
            y: Axis::linear("loss"),
            series: single(loss, 0),
            legend: Legend::Beside,
        };
        figures.extend(figure(format!("{run}-loss"), "The loss recorded at each step".into(), &chart)?);
        let accuracy = data::summary_over_steps(ctx, run, "accuracy", false).await?;
        let chart = Chart {
            title: "Accuracy".into(),
            x: Axis::linear("step"),
            y: Axis::linear("accuracy"),
            series: single(accuracy, 2),
            legend: Legend::Beside,
        };
        figures.extend(figure(format!("{run}-accuracy"), "The accuracy recorded at each step".into(), &chart)?);
        let chart = Chart {
            title: "Gradient norm".into(),
            x: Axis::linear("step"),
            y: Axis::log("‖g‖ (RMS over samples)"),
            series: per_kind(data::summary_over_steps(ctx, run, "rms_model_norm", true).await?),
            legend: Legend::Beside,
        };
        let caption = "Whole-model gradient norm per kind (root mean square over a step's samples or draws)".into();
        figures.extend(figure(format!("{run}-grad-norm"), caption, &chart)?);
    }
    Ok(Group { heading: "Over training steps", note: String::new(), figures })
}

/// One series per gradient kind, in the kind's colour.
fn per_kind(named: Named) -> Vec<Series> {
    named
        .into_iter()
        .map(|(kind, points)| Series::new(Some(kind.clone()), kind_color(&kind), line_mark(points.len()), points))
        .collect()
}

/// The series of a one-key query, without a legend (the axis names it).
fn single(named: Named, color: usize) -> Vec<Series> {
    named.into_iter().map(|(_, points)| Series::new(None, color, line_mark(points.len()), points)).collect()
}
