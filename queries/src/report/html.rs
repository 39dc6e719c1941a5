//! HTML pieces: escaping, compact numbers, and record batches as tables.

use std::fmt::Write as _;

use arrow::array::{Array, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type};
use arrow::util::display::{ArrayFormatter, FormatOptions};

/// `s` with the characters that are markup in HTML text and attribute values escaped.
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `x` to `digits` significant digits, without trailing zeros: fixed notation
/// from 1e-3 to 1e6, scientific (`1.23e-5`) outside, so a column of statistics
/// that span many decades stays narrow.
pub(super) fn num_sig(x: f64, digits: usize) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "∞".into() } else { "−∞".into() };
    }
    if x == 0.0 {
        return "0".into();
    }
    let digits = digits.max(1);
    let exp = x.abs().log10().floor() as i32;
    if (-3..6).contains(&exp) {
        let decimals = (digits as i32 - 1 - exp).max(0) as usize;
        trim_zeros(format!("{x:.decimals$}"))
    } else {
        let s = format!("{x:.prec$e}", prec = digits - 1);
        match s.split_once('e') {
            Some((mantissa, e)) => format!("{}e{e}", trim_zeros(mantissa.to_string())),
            None => s,
        }
    }
}

/// `x` to 4 significant digits, the report's default.
pub(super) fn num(x: f64) -> String {
    num_sig(x, 4)
}

/// A share in [0, 1] with three decimals, so rates line up in a column.
pub(super) fn rate(x: f64) -> String {
    format!("{x:.3}")
}

fn trim_zeros(s: String) -> String {
    if !s.contains('.') {
        return s;
    }
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A table cell for an optional number: `—` when there is none.
pub(super) fn opt_cell(x: Option<f64>, f: fn(f64) -> String) -> String {
    match x {
        Some(v) => format!("<td class=\"num\">{}</td>", esc(&f(v))),
        None => "<td class=\"na\">—</td>".into(),
    }
}

/// The batches of a query result as an HTML table, at most `max_rows` rows
/// (a note says how many were left out). Floating-point columns are
/// formatted compactly, everything else as arrow displays it.
pub(super) fn batches_table(batches: &[RecordBatch], max_rows: usize) -> String {
    let Some(first) = batches.first() else {
        return "<p class=\"note\">No rows.</p>\n".into();
    };
    let schema = first.schema();
    let mut out = String::from("<div class=\"scroll\"><table class=\"data\">\n<thead><tr>");
    for f in schema.fields() {
        let dt = f.data_type();
        let class = if dt.is_numeric() { " class=\"num\"" } else { "" };
        let _ = write!(out, "<th{class}>{}</th>", esc(f.name()));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let mut shown = 0;
    'batches: for b in batches {
        let cols: Vec<Column> = b.columns().iter().map(|c| Column::new(c.as_ref())).collect();
        for row in 0..b.num_rows() {
            if shown == max_rows {
                break 'batches;
            }
            out.push_str("<tr>");
            for c in &cols {
                out.push_str(&c.cell(row));
            }
            out.push_str("</tr>\n");
            shown += 1;
        }
    }
    out.push_str("</tbody>\n</table></div>\n");
    if total == 0 {
        out.push_str("<p class=\"note\">No rows.</p>\n");
    } else if shown < total {
        let _ = writeln!(
            out,
            "<p class=\"note\">{} more rows are not shown (<code>gradlake analyze</code> prints them all).</p>",
            total - shown
        );
    }
    out
}

/// One column prepared for rendering: numbers as f64, the rest through arrow's formatter.
enum Column<'a> {
    Float(arrow::array::Float64Array),
    Other { array: &'a dyn Array, numeric: bool, formatter: Option<ArrayFormatter<'a>> },
}

impl<'a> Column<'a> {
    fn new(array: &'a dyn Array) -> Self {
        let dt = array.data_type();
        if (dt.is_floating() || matches!(dt, DataType::Decimal128(..) | DataType::Decimal256(..)))
            && let Ok(c) = cast(array, &DataType::Float64)
            && let Some(f) = c.as_any().downcast_ref::<arrow::array::PrimitiveArray<Float64Type>>()
        {
            return Self::Float(f.clone());
        }
        // Formatter options must outlive the formatter; the defaults are 'static.
        static OPTIONS: std::sync::LazyLock<FormatOptions<'static>> = std::sync::LazyLock::new(FormatOptions::default);
        let formatter = ArrayFormatter::try_new(array, &OPTIONS).ok();
        Self::Other { array, numeric: dt.is_integer(), formatter }
    }

    fn cell(&self, row: usize) -> String {
        match self {
            Self::Float(a) if a.is_null(row) => "<td class=\"na\">—</td>".into(),
            Self::Float(a) => format!("<td class=\"num\">{}</td>", esc(&num(a.value(row)))),
            Self::Other { array, .. } if array.is_null(row) => "<td class=\"na\">—</td>".into(),
            Self::Other { numeric, formatter: Some(f), .. } => {
                let class = if *numeric { " class=\"num\"" } else { "" };
                format!("<td{class}>{}</td>", esc(&f.value(row).to_string()))
            }
            Self::Other { formatter: None, array, .. } => {
                format!("<td class=\"na\">({})</td>", esc(&array.data_type().to_string()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_compact() {
        assert_eq!(num(1.0), "1");
        assert_eq!(num(2.583679), "2.584");
        assert_eq!(num(0.000998), "9.98e-4");
        assert_eq!(num(0.00123456), "0.001235");
        assert_eq!(num(123456.7), "123457");
        assert_eq!(num(1.5e7), "1.5e7");
        assert_eq!(num(-0.5), "-0.5");
        assert_eq!(num(9.99996), "10");
        assert_eq!(num(f64::NAN), "NaN");
        assert_eq!(num(f64::NEG_INFINITY), "−∞");
        assert_eq!(num_sig(3.16227, 2), "3.2");
        assert_eq!(rate(0.953125), "0.953");
    }

    #[test]
    fn markup_is_escaped() {
        assert_eq!(esc("<a href=\"x\">&'</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
    }
}
