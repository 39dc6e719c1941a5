//! gradlake's named analyses and how query results are rendered.
//!
//! * [`output`] writes a stream of record batches as a terminal table, CSV,
//!   JSON or Parquet, in constant memory for the file formats.
//! * [`run`] executes a string of `;`-separated SQL statements against a
//!   session and renders every result.
//! * [`named`] holds the analyses shipped as `.sql` files.

pub mod named;
pub mod output;
pub mod run;

pub use output::{OutputFormat, ResultWriter};
pub use run::run_statements;
