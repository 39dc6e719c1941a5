//! A small chart description and its rendering to SVG with plotters.
//!
//! Log axes are drawn as linear axes over log10 of the data, labelled with
//! 10^v: a power law is then a straight line between two points, ticks fall
//! on decades when the range spans several, and one coordinate type serves
//! every chart. Values a scale cannot show (non-finite, or ≤ 0 on a log axis)
//! are dropped before drawing; a chart left with no points is not drawn.

use std::ops::Range;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Width and height of every plot, in SVG pixels (the page scales them down).
pub(super) const SIZE: (u32, u32) = (760, 440);

const FONT: &str = "sans-serif";

// Font sizes as plotters takes them: its SVG backend writes size / 1.24 as the CSS size.
const TITLE_SIZE: f64 = 23.0;
const LABEL_SIZE: f64 = 17.0;
const AXIS_SIZE: f64 = 19.0;
const LEGEND_SIZE: f64 = 17.0;

/// How an axis maps values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Scale {
    /// Linear.
    Linear,
    /// Logarithmic (base 10).
    Log,
}

/// One axis.
#[derive(Debug, Clone)]
pub(super) struct Axis {
    pub label: String,
    pub scale: Scale,
}

impl Axis {
    pub(super) fn linear(label: impl Into<String>) -> Self {
        Self { label: label.into(), scale: Scale::Linear }
    }

    pub(super) fn log(label: impl Into<String>) -> Self {
        Self { label: label.into(), scale: Scale::Log }
    }

    /// The value as drawn, or `None` when this axis cannot show it.
    fn map(&self, v: f64) -> Option<f64> {
        match self.scale {
            Scale::Linear => v.is_finite().then_some(v),
            Scale::Log => (v.is_finite() && v > 0.0).then(|| v.log10()),
        }
    }
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Mark {
    /// A solid line through the points.
    Line,
    /// A dashed line (fits).
    Dashed,
    /// A solid line and a marker at each point.
    LinePoints,
}

/// One series.
#[derive(Debug, Clone)]
pub(super) struct Series {
    /// Legend text; `None` keeps the series out of the legend.
    pub label: Option<String>,
    /// Index into the palette.
    pub color: usize,
    pub mark: Mark,
    pub points: Vec<(f64, f64)>,
    /// Vertical intervals `(x, low, high)`, drawn as bars.
    pub bars: Vec<(f64, f64, f64)>,
}

impl Series {
    pub(super) fn new(label: Option<String>, color: usize, mark: Mark, points: Vec<(f64, f64)>) -> Self {
        Self { label, color, mark, points, bars: Vec::new() }
    }
}

/// Where the legend goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Legend {
    /// In a column right of the plot: never hides data.
    Beside,
    /// In the plot's lower left corner, for curves that fall from the upper left
    /// (CCDFs), leaving the plot its full width.
    LowerLeft,
}

/// A chart: title, axes and series.
#[derive(Debug, Clone)]
pub(super) struct Chart {
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub series: Vec<Series>,
    pub legend: Legend,
}

/// Tableau 10: distinguishable, and readable for the common colour-vision deficiencies.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// A series with its values mapped onto the axes.
struct Mapped<'a> {
    series: &'a Series,
    points: Vec<(f64, f64)>,
    bars: Vec<(f64, f64, f64)>,
}

/// Draws `chart` as an SVG document; `Ok(None)` when no series has a point
/// the axes can show. Errors are plotters' messages.
pub(super) fn render(chart: &Chart) -> Result<Option<String>, String> {
    let mapped: Vec<Mapped> = chart
        .series
        .iter()
        .map(|s| Mapped {
            series: s,
            points: s.points.iter().filter_map(|&(x, y)| Some((chart.x.map(x)?, chart.y.map(y)?))).collect(),
            bars: s
                .bars
                .iter()
                .filter_map(|&(x, lo, hi)| Some((chart.x.map(x)?, chart.y.map(lo)?, chart.y.map(hi)?)))
                .collect(),
        })
        .collect();
    if mapped.iter().all(|m| m.points.is_empty()) {
        return Ok(None);
    }
    let xs = mapped.iter().flat_map(|m| m.points.iter().map(|p| p.0).chain(m.bars.iter().map(|b| b.0)));
    let (x0, x1) = padded_range(xs, chart.x.scale);
    let ys = mapped.iter().flat_map(|m| m.points.iter().map(|p| p.1).chain(m.bars.iter().flat_map(|b| [b.1, b.2])));
    let (y0, y1) = padded_range(ys, chart.y.scale);

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        draw(&root, chart, &mapped, (x0..x1, y0..y1)).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(Some(svg))
}

type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

fn draw(
    root: &DrawingArea<SVGBackend, Shift>,
    chart: &Chart,
    mapped: &[Mapped],
    (xr, yr): (Range<f64>, Range<f64>),
) -> DrawResult {
    root.fill(&WHITE)?;
    let body = root.titled(&chart.title, (FONT, TITLE_SIZE).into_font().style(FontStyle::Bold))?;
    let legend: Vec<&Series> = chart.series.iter().filter(|s| s.label.is_some()).collect();
    let beside = if chart.legend == Legend::Beside { legend_width(&legend) } else { 0 };
    let (plot, legend_area) = body.split_horizontally(SIZE.0 - beside);

    let (xb, xl) = ticks(xr.start, xr.end, chart.x.scale);
    let (yb, yl) = ticks(yr.start, yr.end, chart.y.scale);
    let mut ctx = ChartBuilder::on(&plot)
        .margin_left(8)
        .margin_right(20)
        .margin_top(10)
        .margin_bottom(6)
        .x_label_area_size(56)
        .y_label_area_size(84)
        .build_cartesian_2d(Ticked::new(xr, xb, xl), Ticked::new(yr, yb, yl))?;
    let (x_scale, y_scale) = (chart.x.scale, chart.y.scale);
    let x_fmt = move |v: &f64| tick(*v, x_scale);
    let y_fmt = move |v: &f64| tick(*v, y_scale);
    ctx.configure_mesh()
        .x_desc(chart.x.label.as_str())
        .y_desc(chart.y.label.as_str())
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(BLACK.mix(0.05))
        .label_style((FONT, LABEL_SIZE))
        .axis_desc_style((FONT, AXIS_SIZE))
        .draw()?;

    // Series with bars at the same x are spread 3 px apart so that each stays visible.
    let with_bars = mapped.iter().filter(|m| !m.bars.is_empty()).count() as i32;
    let mut bar_index = 0;
    for m in mapped {
        let c = color(m.series.color);
        if matches!(m.series.mark, Mark::Line | Mark::LinePoints) && m.points.len() > 1 {
            ctx.draw_series(LineSeries::new(m.points.iter().copied(), c.stroke_width(2)))?;
        }
        if m.series.mark == Mark::Dashed && m.points.len() > 1 {
            ctx.draw_series(DashedLineSeries::new(m.points.iter().copied(), 8, 5, c.stroke_width(2)))?;
        }
        if m.series.mark == Mark::LinePoints || m.points.len() == 1 {
            ctx.draw_series(m.points.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
        }
        if !m.bars.is_empty() {
            let dx = 3 * (2 * bar_index - (with_bars - 1)) / 2;
            bar_index += 1;
            for &(x, lo, hi) in &m.bars {
                let (px, plo) = ctx.backend_coord(&(x, lo));
                let (_, phi) = ctx.backend_coord(&(x, hi));
                root.draw(&PathElement::new(vec![(px + dx, plo), (px + dx, phi)], c.mix(0.6).stroke_width(1)))?;
            }
        }
    }
    match chart.legend {
        Legend::Beside => draw_legend(&legend_area, &legend, (0, 12)),
        Legend::LowerLeft if !legend.is_empty() => {
            let area = ctx.plotting_area().strip_coord_spec();
            let (_, h) = area.dim_in_pixel();
            let (w, lh) = (legend_width(&legend) as i32, LEGEND_ROW * legend.len() as i32 + 8);
            let (x0, y0) = (10, h as i32 - lh - 10);
            area.draw(&Rectangle::new([(x0, y0), (x0 + w, y0 + lh)], WHITE.mix(0.9).filled()))?;
            area.draw(&Rectangle::new([(x0, y0), (x0 + w, y0 + lh)], BLACK.mix(0.25)))?;
            draw_legend(&area, &legend, (x0 + 4, y0 + 4 - LEGEND_ROW / 2))
        }
        Legend::LowerLeft => Ok(()),
    }
}

/// Height of a legend row, in pixels.
const LEGEND_ROW: i32 = 26;

/// Draws legend entries from `origin` down, one a row: a sample of the mark, then the label.
fn draw_legend(area: &DrawingArea<SVGBackend, Shift>, entries: &[&Series], origin: (i32, i32)) -> DrawResult {
    let font = (FONT, LEGEND_SIZE).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, s) in entries.iter().enumerate() {
        let (ox, y) = (origin.0, origin.1 + LEGEND_ROW * (i as i32 + 1));
        let c = color(s.color);
        match s.mark {
            Mark::Line | Mark::LinePoints => {
                area.draw(&PathElement::new(vec![(ox + 4, y), (ox + 30, y)], c.stroke_width(2)))?;
            }
            Mark::Dashed => {
                for x in [ox + 4, ox + 15, ox + 26] {
                    area.draw(&PathElement::new(vec![(x, y), (x + 7, y)], c.stroke_width(2)))?;
                }
            }
        }
        if s.mark == Mark::LinePoints {
            area.draw(&Circle::new((ox + 17, y), 3, c.filled()))?;
        }
        area.draw(&Text::new(legend_text(s.label.as_deref().unwrap_or("")), (ox + 38, y), font.clone()))?;
    }
    Ok(())
}

/// Longest legend label kept: params of deep models have long dotted names,
/// whose end (".conv2.weight") says more than their start.
const LEGEND_CHARS: usize = 30;

fn legend_text(label: &str) -> String {
    let n = label.chars().count();
    if n <= LEGEND_CHARS {
        return label.to_string();
    }
    let tail: String = label.chars().skip(n - (LEGEND_CHARS - 1)).collect();
    format!("…{tail}")
}

/// Width of the legend column: an average sans-serif character is about 0.56 em.
fn legend_width(entries: &[&Series]) -> u32 {
    let chars = entries.iter().map(|s| legend_text(s.label.as_deref().unwrap_or("")).chars().count()).max();
    let per_char = 0.56 * LEGEND_SIZE / 1.24;
    match chars {
        None => 0,
        Some(c) => (44.0 + per_char * c as f64).ceil().min(f64::from(SIZE.0) / 2.0) as u32,
    }
}

/// The axis range over `values` (already mapped), with a margin, never empty.
fn padded_range(values: impl Iterator<Item = f64>, scale: Scale) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    let span = hi - lo;
    if span <= f64::EPSILON * lo.abs().max(hi.abs()).max(1.0) {
        // One value: give it room (half a decade on a log axis).
        let pad = match scale {
            Scale::Log => 0.5,
            Scale::Linear => (lo.abs() * 0.1).max(1e-9),
        };
        return (lo - pad, hi + pad);
    }
    (lo - 0.04 * span, hi + 0.04 * span)
}

/// A linear axis whose ticks are chosen here ([`ticks`]), not by plotters.
struct Ticked {
    range: Range<f64>,
    bold: Vec<f64>,
    light: Vec<f64>,
}

impl Ticked {
    fn new(range: Range<f64>, bold: Vec<f64>, light: Vec<f64>) -> Self {
        Self { range, bold, light }
    }
}

impl Ranged for Ticked {
    // The labels come from the mesh's formatter; this only satisfies its bound.
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let t = (v - self.range.start) / (self.range.end - self.range.start);
        if !t.is_finite() {
            return limit.0;
        }
        // `as` saturates, so a value far outside the range cannot overflow.
        limit.0 + (f64::from(limit.1 - limit.0) * t).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() { self.light.clone() } else { self.bold.clone() }
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

/// Tick positions (bold, with labels) and minor grid positions (light) over
/// `[lo, hi]`, in drawn coordinates. Log axes get ticks at 1, 2, 5 or 1–9 times
/// powers of ten, so that every label is a round number; linear axes at
/// multiples of 1, 2, 2.5 or 5 times a power of ten.
fn ticks(lo: f64, hi: f64, scale: Scale) -> (Vec<f64>, Vec<f64>) {
    if scale == Scale::Log {
        let decades = (lo.floor() as i64, hi.ceil() as i64);
        if decades.1 - decades.0 > 400 {
            return (vec![lo, hi], Vec::new());
        }
        let at = |mantissas: &[f64]| -> Vec<f64> {
            (decades.0..=decades.1)
                .flat_map(|d| mantissas.iter().map(move |m| m.log10() + d as f64))
                .filter(|v| (lo..=hi).contains(v))
                .collect()
        };
        let powers = at(&[1.0]);
        if powers.len() > 8 {
            // Many decades: label every n-th power, grid the others.
            let every = powers.len().div_ceil(8);
            let bold = powers.iter().copied().filter(|v| (v.round() as i64).rem_euclid(every as i64) == 0).collect();
            return (bold, powers);
        }
        if powers.len() >= 3 {
            return (powers, at(&[2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]));
        }
        for mantissas in [&[1.0, 2.0, 5.0][..], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0][..]] {
            let bold = at(mantissas);
            if bold.len() >= 3 {
                return (bold, Vec::new());
            }
        }
        // Less than a third of a decade: round numbers of the values themselves.
        let (b, _) = ticks(10f64.powf(lo), 10f64.powf(hi), Scale::Linear);
        return (b.into_iter().filter(|v| *v > 0.0).map(f64::log10).collect(), Vec::new());
    }
    let raw = (hi - lo) / 5.0;
    if !(raw.is_finite() && raw > 0.0) {
        return (vec![lo, hi], Vec::new());
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(10.0 * magnitude);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    if last.saturating_sub(first) > 50 {
        // Only where float rounding defeats the step (a span near the precision of the values).
        return (vec![lo, hi], Vec::new());
    }
    // Multiples of the step, not repeated additions, so 0.1·3 prints as 0.3.
    ((first..=last).map(|i| i as f64 * step).collect(), Vec::new())
}

/// A tick label: the value itself, or 10^v on a log axis.
fn tick(v: f64, scale: Scale) -> String {
    match scale {
        Scale::Linear => super::html::num_sig(v, 3),
        Scale::Log => super::html::num_sig(10f64.powf(v), 3),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(series: Vec<Series>) -> Chart {
        Chart { title: "t <&>".into(), x: Axis::log("x"), y: Axis::log("y"), series, legend: Legend::LowerLeft }
    }

    #[test]
    fn nothing_drawable_gives_no_plot() {
        let c =
            chart(vec![Series::new(Some("a".into()), 0, Mark::Line, vec![(0.0, 1.0), (f64::NAN, 2.0), (1.0, -1.0)])]);
        assert!(render(&c).unwrap().is_none());
        assert!(render(&chart(vec![])).unwrap().is_none());
    }

    #[test]
    fn a_single_point_and_text_are_drawn_escaped() {
        let c = chart(vec![Series::new(Some("<b>".into()), 0, Mark::Line, vec![(1e-3, 0.5)])]);
        let svg = render(&c).unwrap().unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("<circle"));
        assert!(svg.contains("t &lt;&amp;&gt;") && svg.contains("&lt;b&gt;"));
        assert!(!svg.contains("<b>"));
    }

    #[test]
    fn log_ticks_read_as_numbers() {
        assert_eq!(tick(-3.0, Scale::Log), "0.001");
        assert_eq!(tick(2.0, Scale::Log), "100");
        assert_eq!(tick(-7.0, Scale::Log), "1e-7");
        assert_eq!(tick(5f64.log10() - 5.0, Scale::Log), "5e-5");
        assert_eq!(tick(12.5, Scale::Linear), "12.5");
        assert_eq!(tick(0.1 * 3.0, Scale::Linear), "0.3");
    }

    #[test]
    fn ticks_are_round_numbers() {
        let labels =
            |lo: f64, hi: f64, scale| ticks(lo, hi, scale).0.iter().map(|v| tick(*v, scale)).collect::<Vec<_>>();
        assert_eq!(labels(-0.1, 1.85, Scale::Log), ["1", "2", "5", "10", "20", "50"]);
        assert_eq!(labels(-8.2, -1.9, Scale::Log), ["1e-8", "1e-7", "1e-6", "1e-5", "1e-4", "0.001", "0.01"]);
        assert_eq!(labels(-20.5, 0.5, Scale::Log), ["1e-18", "1e-15", "1e-12", "1e-9", "1e-6", "0.001", "1"]);
        assert_eq!(labels(-3.1, -2.95, Scale::Log), ["8e-4", "9e-4", "0.001"]);
        assert_eq!(labels(-2.4, 61.2, Scale::Linear), ["0", "20", "40", "60"]);
        assert_eq!(labels(0.27, 0.49, Scale::Linear), ["0.3", "0.35", "0.4", "0.45"]);
        assert_eq!(labels(5.0, 5.0, Scale::Linear), ["5", "5"]);
    }

    #[test]
    fn long_legend_labels_keep_their_end() {
        let t = legend_text("features.denseblock4.denselayer16.conv2.weight");
        assert_eq!(t.chars().count(), LEGEND_CHARS);
        assert!(t.ends_with(".conv2.weight") && t.starts_with('…'));
    }
}
