//! The named analyses, embedded from `queries/sql/*.sql` so that the binary
//! and a user running the file by hand (`gradlake sql --file`) execute the same text.
//!
//! Each script first materialises its per-test rows in a table named after
//! the analysis (plots and JSON output read it), then ends with one SELECT that
//! summarises them: the table a user sees.

/// A named analysis.
#[derive(Debug, Clone, Copy)]
pub struct NamedQuery {
    /// The name, also the file name without `.sql`.
    pub name: &'static str,
    /// One line on what it answers.
    pub title: &'static str,
    /// The gradient kinds it reads; without any of them it has nothing to say.
    pub kinds: &'static [&'static str],
    /// The tables its script creates, in order.
    pub tables: &'static [&'static str],
    /// Plan it on one partition: its aggregates are exact tests, whose partial
    /// states would only concatenate values, or sketches of few rows, whose
    /// partial states are copies; a partial aggregate adds copies and no
    /// reduction (the groups are still fitted on every core, and a sketch's
    /// shrink runs its matrix product in parallel).
    pub one_partition: bool,
    /// The SQL text.
    pub sql: &'static str,
}

/// `dimension_wise`: the power-law test on |g| across the parameters of each step.
pub const DIMENSION_WISE: NamedQuery = NamedQuery {
    name: "dimension_wise",
    title: "Dimension-wise: is |gradient| power-law heavy-tailed across parameters?",
    kinds: &["minibatch", "full"],
    tables: &["dimension_wise"],
    one_partition: true,
    sql: include_str!("../sql/dimension_wise.sql"),
};

/// `iteration_wise`: sampled coordinates tested across steps.
pub const ITERATION_WISE: NamedQuery = NamedQuery {
    name: "iteration_wise",
    title: "Iteration-wise: is one coordinate heavy-tailed (or Gaussian) across steps?",
    kinds: &["minibatch"],
    tables: &["iteration_wise"],
    one_partition: true,
    sql: include_str!("../sql/iteration_wise.sql"),
};

/// `noise`: draw − full, across parameters and across draws.
pub const NOISE: NamedQuery = NamedQuery {
    name: "noise",
    title: "Noise: is minibatch gradient noise Gaussian, across parameters and across draws?",
    kinds: &["noise"],
    tables: &["noise_across_params", "noise_across_draws"],
    one_partition: true,
    sql: include_str!("../sql/noise.sql"),
};

/// `spectrum`: covariance spectra of per-sample gradients and noise.
pub const SPECTRUM: NamedQuery = NamedQuery {
    name: "spectrum",
    title: "Spectrum: does the gradient covariance spectrum follow a power law?",
    kinds: &["sample", "noise"],
    tables: &["spectrum"],
    one_partition: true,
    sql: include_str!("../sql/spectrum.sql"),
};

/// `summary`: loss, accuracy and gradient norms over steps.
pub const SUMMARY: NamedQuery = NamedQuery {
    name: "summary",
    title: "Summary: loss, accuracy and gradient norms over steps",
    kinds: &["minibatch", "full", "sample", "draw", "noise"],
    tables: &["summary"],
    one_partition: false,
    sql: include_str!("../sql/summary.sql"),
};

/// Every named analysis, in the order `gradlake analyze` runs them.
pub const ALL: &[NamedQuery] = &[SUMMARY, DIMENSION_WISE, ITERATION_WISE, NOISE, SPECTRUM];

/// The analysis called `name`.
pub fn find(name: &str) -> Option<NamedQuery> {
    ALL.iter().copied().find(|q| q.name == name)
}

/// The analyses called `names`, in that order; every one ([`ALL`]) when `names` is empty.
/// The error names the first unknown name and the known ones.
pub fn select(names: &[String]) -> Result<Vec<NamedQuery>, String> {
    if names.is_empty() {
        return Ok(ALL.to_vec());
    }
    names
        .iter()
        .map(|name| {
            find(name).ok_or_else(|| {
                let known: Vec<_> = ALL.iter().map(|q| q.name).collect();
                format!("no analysis {name:?} (there are: {})", known.join(", "))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_declares_what_it_uses_and_creates_its_tables() {
        for q in ALL {
            let bound = crate::params::bind(q.sql, &[]).unwrap_or_else(|e| panic!("{}: {e}", q.name));
            for table in q.tables {
                assert!(bound.contains(&format!("CREATE OR REPLACE TABLE {table} AS")), "{}: {table}", q.name);
            }
            assert!(crate::params::declared(q.sql).unwrap().iter().any(|p| p.name == "run"), "{}", q.name);
        }
    }
}
