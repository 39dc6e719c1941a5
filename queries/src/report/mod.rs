//! The HTML report of `gradlake analyze --report DIR`.
//!
//! [`write_report`] reads the tables the named analyses left in a session and
//! writes one self-contained page, `DIR/index.html` (inline CSS, SVG plots
//! inlined, no script, nothing fetched from anywhere), and each plot again as
//! `DIR/plots/<name>.svg` for use elsewhere. Per run the page shows the
//! paper's table (power-law and Gaussian rates of every test, the spectrum
//! exponent), then the plots; after the runs, every analysis' summary table
//! or the reason it was skipped.

mod chart;
mod data;
mod error;
mod frame;
mod html;
mod plots;
mod rates;

use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use datafusion::prelude::SessionContext;

pub use error::ReportError;

use crate::analyze::Outcome;
use crate::named::NamedQuery;
use html::esc;

/// One analysis as the report shows it: what it is, and what running it gave.
#[derive(Debug, Clone, Copy)]
pub struct Section<'a> {
    /// The analysis.
    pub query: NamedQuery,
    /// Its result: the summary rows, or why it was skipped.
    pub outcome: &'a Outcome,
}

/// What [`write_report`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSummary {
    /// The page, `DIR/index.html`.
    pub index: PathBuf,
    /// Every plot file, `DIR/plots/<name>.svg`, in page order.
    pub plots: Vec<PathBuf>,
}

/// Summary rows shown at most per analysis; the terminal output has them all.
const MAX_SUMMARY_ROWS: usize = 500;

/// The analysis tables the report may read: those of analyses that ran and are
/// still in the session. A skipped analysis' table is ignored even when an
/// earlier run left one behind, so the page never mixes in stale results.
pub(crate) struct Tables {
    names: BTreeSet<&'static str>,
    /// The xmin rules the paper-style analyses ran under, when more than the
    /// script's default (`analyze --xmin`): the heavy-tail table shows each.
    xmin_rules: Vec<String>,
}

impl Tables {
    fn new(ctx: &SessionContext, sections: &[Section<'_>], xmin_rules: &[String]) -> Self {
        let mut set = BTreeSet::new();
        for s in sections.iter().filter(|s| matches!(s.outcome, Outcome::Ran(_))) {
            for &t in s.query.tables {
                if ctx.table_exist(t).unwrap_or(false) {
                    set.insert(t);
                }
            }
        }
        Self { names: set, xmin_rules: xmin_rules.to_vec() }
    }

    /// Whether `table` may be read.
    pub(crate) fn has(&self, table: &str) -> bool {
        self.names.contains(table)
    }

    fn iter(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.names.iter().copied()
    }

    /// The rules the heavy-tail tests ran under, in the user's order (empty: one, the script's).
    pub(crate) fn xmin_rules(&self) -> &[String] {
        &self.xmin_rules
    }

    /// A SQL condition keeping the rows of the rule the plots show (the first
    /// of several); `TRUE` when the tables hold one rule only.
    pub(crate) fn plotted_rule(&self) -> String {
        match self.xmin_rules.first() {
            Some(rule) if self.xmin_rules.len() > 1 => format!("xmin_rule = {}", frame::lit(rule)),
            _ => "TRUE".to_string(),
        }
    }
}

/// Writes the report of `sections` (run by [`run_named`](crate::analyze::run_named)
/// on `ctx`, whose tables are still registered) into `dir`, created if missing:
/// `index.html` and `plots/*.svg`. Existing files of the same names are replaced.
/// `xmin_rules` are the rules the analyses ran under
/// ([`RunOptions::xmin_rules`](crate::analyze::RunOptions::xmin_rules)): with
/// several, the paper's table shows the verdicts under each side by side, and
/// the plots show the first.
pub async fn write_report(
    ctx: &SessionContext,
    dir: &Path,
    title: &str,
    sections: &[Section<'_>],
    xmin_rules: &[String],
) -> Result<ReportSummary, ReportError> {
    let plots_dir = dir.join("plots");
    std::fs::create_dir_all(&plots_dir).map_err(ReportError::io(&plots_dir))?;
    let tables = Tables::new(ctx, sections, xmin_rules);
    let runs = data::runs(ctx, &tables).await?;

    let mut body = String::new();
    let mut names = FileNames::default();
    let mut plots = Vec::new();
    for run in &runs {
        let _ = writeln!(body, "<section class=\"run\" id=\"run-{}\">\n<h2>Run {}</h2>", names.anchor(run), esc(run));
        body.push_str(&rates::tables_html(ctx, &tables, run).await?);
        for group in plots::figures(ctx, &tables, run).await? {
            let _ = writeln!(body, "<h3>{}</h3>", esc(group.heading));
            if !group.note.is_empty() {
                // Notes are written in this module with their markup (sub/sup); they hold no data.
                let _ = writeln!(body, "<p class=\"note\">{}</p>", group.note);
            }
            body.push_str("<div class=\"grid\">\n");
            for fig in group.figures {
                let file = plots_dir.join(format!("{}.svg", names.unique(&fig.name)));
                std::fs::write(&file, &fig.svg).map_err(ReportError::io(&file))?;
                let _ = writeln!(
                    body,
                    "<figure>{}<figcaption>{}</figcaption></figure>",
                    labelled(&fig.svg, &fig.caption),
                    esc(&fig.caption)
                );
                plots.push(file);
            }
            body.push_str("</div>\n");
        }
        body.push_str("</section>\n");
    }
    if runs.is_empty() {
        body.push_str("<p class=\"note\">No analysis produced results, so there is nothing to plot.</p>\n");
    }
    body.push_str(&sections_html(sections));

    let index = dir.join("index.html");
    std::fs::write(&index, page(title, &runs, &body)).map_err(ReportError::io(&index))?;
    Ok(ReportSummary { index, plots })
}

/// Every analysis: its summary table, or why it was skipped.
fn sections_html(sections: &[Section<'_>]) -> String {
    let mut out = String::from("<section id=\"analyses\">\n<h2>Analyses</h2>\n");
    for s in sections {
        let _ = writeln!(
            out,
            "<h3 id=\"analysis-{name}\">{}</h3>\n<p class=\"note\">Named analysis <code>{name}</code>; \
             rows of its summary query.</p>",
            esc(s.query.title),
            name = esc(s.query.name)
        );
        match s.outcome {
            Outcome::Ran(batches) => out.push_str(&html::batches_table(batches, MAX_SUMMARY_ROWS)),
            Outcome::Skipped { reason } => {
                let _ = writeln!(out, "<p class=\"skipped\">Skipped: {}.</p>", esc(reason));
            }
        }
    }
    out.push_str("</section>\n");
    out
}

/// The SVG with an accessible name, for the copy inlined in the page.
fn labelled(svg: &str, caption: &str) -> String {
    match svg.strip_prefix("<svg ") {
        Some(rest) => format!("<svg role=\"img\" aria-label=\"{}\" {rest}", esc(caption)),
        None => svg.to_string(),
    }
}

/// File names (and anchors) safe on every file system and unique within the report.
#[derive(Default)]
struct FileNames(HashSet<String>);

impl FileNames {
    fn safe(name: &str) -> String {
        let s: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
            .collect();
        // No hidden files, no `..`.
        s.trim_start_matches('.').to_string()
    }

    /// `name` made safe, with a numeric suffix when it was taken.
    fn unique(&mut self, name: &str) -> String {
        let base = Self::safe(name);
        let base = if base.is_empty() { "plot".to_string() } else { base };
        let mut candidate = base.clone();
        let mut i = 2;
        while !self.0.insert(candidate.to_ascii_lowercase()) {
            candidate = format!("{base}-{i}");
            i += 1;
        }
        candidate
    }

    /// An id attribute value for a run (not reserved as a file name).
    fn anchor(&self, run: &str) -> String {
        Self::safe(run)
    }
}

const CSS: &str = "
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif; color: #1b1f24;
       margin: 0 auto; max-width: 1560px; padding: 1.5rem 2rem 4rem; line-height: 1.45; }
h1 { font-size: 1.7rem; margin: 0 0 .3rem; }
h2 { font-size: 1.35rem; margin: 2.2rem 0 .6rem; padding-bottom: .25rem; border-bottom: 2px solid #d0d7de; }
h3 { font-size: 1.1rem; margin: 1.6rem 0 .4rem; }
nav { color: #57606a; } nav a { color: #0969da; text-decoration: none; margin-right: .8rem; }
.note { color: #57606a; font-size: .92rem; margin: .2rem 0 .6rem; max-width: 75rem; }
.skipped { background: #fff8c5; border-left: 4px solid #d4a72c; padding: .4rem .8rem; }
.side { display: flex; flex-wrap: wrap; gap: 2rem; align-items: flex-start; }
.scroll { overflow-x: auto; max-height: 32rem; overflow-y: auto; }
table.data { border-collapse: collapse; font-size: .9rem; font-variant-numeric: tabular-nums; }
table.data caption { caption-side: top; text-align: left; color: #57606a; font-size: .88rem; padding-bottom: .3rem;
                     max-width: 34rem; }
table.data th, table.data td { border-bottom: 1px solid #d8dee4; padding: .25rem .7rem; text-align: left; }
table.data thead th { background: #f6f8fa; border-bottom: 2px solid #d0d7de; position: sticky; top: 0; }
table.data tbody th { font-weight: 600; }
table.data td.num, table.data th.num { text-align: right; }
table.data td.na { color: #8c959f; text-align: center; }
table.data tr.model td { font-weight: 600; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(440px, 1fr)); gap: 1rem 1.5rem; }
figure { margin: 0; }
figure svg { width: 100%; height: auto; border: 1px solid #eaeef2; }
figcaption { font-size: .85rem; color: #57606a; margin-top: .2rem; }
code { font-size: .9em; background: #f6f8fa; padding: 0 .25em; border-radius: 3px; }
";

/// The whole page around `body`.
fn page(title: &str, runs: &[String], body: &str) -> String {
    let mut nav = String::new();
    for run in runs {
        let _ = write!(nav, "<a href=\"#run-{}\">Run {}</a>", esc(&FileNames::safe(run)), esc(run));
    }
    nav.push_str("<a href=\"#analyses\">Analyses</a>");
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"gradlake {version}\">\n<title>{t}</title>\n<style>{CSS}</style>\n</head>\n\
         <body>\n<header>\n<h1>{t}</h1>\n<p class=\"note\">Gradient structure report written by gradlake {version}: \
         the tests of Xie et al., <i>On the Overlooked Structure of Stochastic Gradients</i> (NeurIPS 2023), \
         on a gradient lake.</p>\n<nav>{nav}</nav>\n</header>\n<main>\n{body}</main>\n</body>\n</html>\n",
        t = esc(title),
        version = env!("CARGO_PKG_VERSION"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe_and_unique() {
        let mut n = FileNames::default();
        assert_eq!(n.unique("r-ccdf-full-step0-fc1.weight"), "r-ccdf-full-step0-fc1.weight");
        assert_eq!(n.unique("../a b/é"), "_a_b__");
        assert_eq!(n.unique("../a b/é"), "_a_b__-2");
        assert_eq!(n.unique("R-CCDF-full-step0-fc1.weight"), "R-CCDF-full-step0-fc1.weight-2");
        assert_eq!(n.unique(""), "plot");
    }

    #[test]
    fn inlined_svgs_get_an_accessible_name() {
        assert_eq!(
            labelled("<svg width=\"1\">", "a \"b\""),
            "<svg role=\"img\" aria-label=\"a &quot;b&quot;\" width=\"1\">"
        );
    }
}
