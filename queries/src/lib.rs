//! gradlake's named analyses and how query results are rendered.
//!
//! * [`named`] holds the analyses shipped as `.sql` files, and [`params`] the
//!   `-- param NAME = DEFAULT` convention their options use.
//! * [`analyze`] runs them on a lake, skipping those whose gradient kinds it lacks,
//!   in [`windows`] sized to the memory budget.
//! * [`output`] writes a stream of record batches as a terminal table, CSV,
//!   JSON or Parquet, in constant memory for the file formats.
//! * [`watch`] follows a run while it is recorded, reading each new file once.
//! * [`run`] executes a string of `;`-separated SQL statements against a
//!   session and renders every result.

pub mod analyze;
pub mod named;
pub mod output;
pub mod params;
pub mod report;
pub mod run;
pub mod watch;
pub mod windows;

pub use output::{OutputFormat, ResultWriter};
pub use run::run_statements;
