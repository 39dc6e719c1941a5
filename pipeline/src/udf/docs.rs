//! What DataFusion shows of gradlake's SQL functions: `SHOW FUNCTIONS`,
//! `information_schema.routines` and `.parameters`.
//!
//! Each function's text lives next to its code, as a [`FunctionDoc`]; its
//! syntax is the usage string its error messages quote, so the two cannot
//! drift. `pipeline/tests/function_docs.rs` checks that every registered
//! function is documented and that the README names each by that syntax.

use datafusion::logical_expr::{DocSection, Documentation};

/// The documentation of one SQL function.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FunctionDoc {
    /// Where it is listed.
    pub section: Section,
    /// What it computes and returns (result fields included).
    pub description: &'static str,
    /// Each argument, in call order: name, meaning.
    pub arguments: &'static [(&'static str, &'static str)],
    /// A query over a lake's tables that uses it.
    pub example: &'static str,
}

/// The families of gradlake functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    /// Tests and estimators over a sample of numbers.
    Statistics,
    /// Covariance spectra and sketches over vectors.
    Spectra,
    /// Building and combining vectors.
    Vectors,
}

impl Section {
    fn doc_section(self) -> DocSection {
        let (label, description) = match self {
            Section::Statistics => {
                ("gradlake statistics", "Power-law, Gaussianity and tail-index tests over a sample of numbers.")
            }
            Section::Spectra => {
                ("gradlake spectra", "Covariance spectra, Frequent Directions sketches and spectrum fits over vectors.")
            }
            Section::Vectors => ("gradlake vectors", "Vectors built from rows and combined."),
        };
        DocSection { include: true, label, description: Some(description) }
    }
}

impl FunctionDoc {
    /// DataFusion's form of it, for a function called as `usage`.
    pub fn build(&self, usage: &str) -> Documentation {
        let mut builder = Documentation::builder(self.section.doc_section(), self.description, usage)
            .with_sql_example(format!("```sql\n{}\n```", self.example));
        for (name, meaning) in self.arguments {
            builder = builder.with_argument(*name, *meaning);
        }
        builder.build()
    }
}
