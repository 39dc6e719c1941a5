//! Where each file of a lake lives, and how names are validated and parsed.

use std::path::{Path, PathBuf};

use crate::error::{IngestError, Result};
use crate::schema::Table;

/// Suffix of a file being written. Readers list `*.parquet` only, so they never
/// see a file under this name; `gradlake check` reports leftovers of a killed writer.
pub const IN_PROGRESS_SUFFIX: &str = ".inprogress";

/// Checks that `run` can name a `run=<id>` directory on every file system and object store.
pub fn validate_run_id(run: &str) -> Result<()> {
    let ok = !run.is_empty()
        && run.len() <= 128
        && !run.starts_with('.')
        && run.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok { Ok(()) } else { Err(IngestError::InvalidRunId(run.to_string())) }
}

/// The partition directory of `run` in `table`: `LAKE/<table>/run=<id>`.
pub fn run_dir(lake: &Path, table: Table, run: &str) -> PathBuf {
    lake.join(table.name()).join(format!("run={run}"))
}

/// The single file of a one-file table (`runs` → `run.parquet`, `params` → `params.parquet`).
pub fn single_file(lake: &Path, table: Table, run: &str) -> PathBuf {
    let name = match table {
        Table::Runs => "run.parquet",
        Table::Params => "params.parquet",
        Table::Scalars | Table::Grads => unreachable!("{} is split into parts", table.name()),
    };
    run_dir(lake, table, run).join(name)
}

/// The name of part `n` of a multi-file table.
pub fn part_name(n: u64) -> String {
    format!("part-{n:06}.parquet")
}

/// The part number encoded in a file name, if it is a part file.
pub fn parse_part_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("part-")?.strip_suffix(".parquet")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The run id of a `run=<id>` directory name.
pub fn parse_run_dir(name: &str) -> Option<&str> {
    name.strip_prefix("run=").filter(|r| validate_run_id(r).is_ok())
}

/// The temporary name a file is written under before it is renamed into place.
pub fn in_progress_path(final_path: &Path) -> PathBuf {
    let name = final_path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    final_path.with_file_name(format!(".{name}{IN_PROGRESS_SUFFIX}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids() {
        for good in ["a", "run-1", "2026.11.28_x"] {
            validate_run_id(good).unwrap();
        }
        for bad in ["", ".hidden", "a/b", "a=b", "x y", &"r".repeat(129)] {
            assert!(validate_run_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn part_names_round_trip() {
        assert_eq!(part_name(7), "part-000007.parquet");
        assert_eq!(parse_part_name(&part_name(1234567)), Some(1234567));
        assert_eq!(parse_part_name("part-.parquet"), None);
        assert_eq!(parse_part_name("part-1.parquet.inprogress"), None);
        assert_eq!(parse_run_dir("run=abc"), Some("abc"));
        assert_eq!(parse_run_dir("run=a b"), None);
    }

    #[test]
    fn in_progress_name_is_hidden_and_not_parquet() {
        let p = in_progress_path(Path::new("/l/grads/run=a/part-000001.parquet"));
        assert_eq!(p, Path::new("/l/grads/run=a/.part-000001.parquet.inprogress"));
    }
}
