//! The named analyses, embedded from `queries/sql/*.sql` so that the binary
//! and a user running the file by hand execute the same text.

/// A named analysis: its name and SQL.
#[derive(Debug, Clone, Copy)]
pub struct NamedQuery {
    /// The name, also the file name without `.sql`.
    pub name: &'static str,
    /// The SQL text.
    pub sql: &'static str,
}

/// `summary`: gradient norms per kind and loss over steps.
pub const SUMMARY: NamedQuery = NamedQuery { name: "summary", sql: include_str!("../sql/summary.sql") };

/// Every named analysis available in this build.
pub const ALL: &[NamedQuery] = &[SUMMARY];

/// The analysis called `name`.
pub fn find(name: &str) -> Option<NamedQuery> {
    ALL.iter().copied().find(|q| q.name == name)
}
