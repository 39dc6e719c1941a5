//! The columns of each lake table (format version 2; version 1 lacks `grads.values_crc32`).
//!
//! These schemas are the public contract of the lake (`docs/FORMAT.md`): readers in any
//! language rely on the names and types. Every file also carries the key–value
//! metadata [`META_FORMAT_VERSION`] and [`META_TABLE`], which `gradlake check` verifies.

use std::fmt;
use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// The lake format version written by this crate. Version 2 added
/// `grads.values_crc32`; files of version 1 are still read, their values unverified.
pub const FORMAT_VERSION: i32 = 2;

/// The oldest format version this crate reads.
pub const OLDEST_READABLE_VERSION: i32 = 1;

/// The `grads` column holding each chunk's checksum (format v2).
pub const VALUES_CRC32: &str = "values_crc32";

/// The scalar a finished run logs last (`LakeWriter::finish`): `watch` stops on it.
pub const RUN_FINISHED_SCALAR: &str = "run_finished";

/// Values per gradient chunk: the width of the `values` FixedSizeList column.
pub const CHUNK_LEN: usize = 4096;

/// Parquet key–value metadata key holding the format version.
pub const META_FORMAT_VERSION: &str = "gradlake.format_version";

/// Parquet key–value metadata key holding the table name (`runs`, `params`, ...).
pub const META_TABLE: &str = "gradlake.table";

/// What a gradient row is a gradient of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// An extra minibatch gradient drawn at fixed weights, to measure noise.
    Draw,
    /// The full-batch gradient.
    Full,
    /// The minibatch gradient the optimizer used.
    Minibatch,
    /// A draw (or the minibatch) minus the full-batch gradient.
    Noise,
    /// A per-example gradient.
    Sample,
}

impl Kind {
    /// Every kind, in the order of their names (the order the `kind` column sorts in).
    pub const ALL: [Kind; 5] = [Kind::Draw, Kind::Full, Kind::Minibatch, Kind::Noise, Kind::Sample];

    /// The name stored in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Draw => "draw",
            Kind::Full => "full",
            Kind::Minibatch => "minibatch",
            Kind::Noise => "noise",
            Kind::Sample => "sample",
        }
    }

    /// Position in [`Kind::ALL`]; also the dictionary key written for this kind.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown gradient kind {s:?} (expected draw, full, minibatch, noise or sample)"))
    }
}

/// The four tables of a lake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// One row of run metadata per run.
    Runs,
    /// One row per tensor of the model.
    Params,
    /// Per-step scalars (loss, accuracy, learning rate, norms).
    Scalars,
    /// Gradient chunks.
    Grads,
}

impl Table {
    /// Every table.
    pub const ALL: [Table; 4] = [Table::Runs, Table::Params, Table::Scalars, Table::Grads];

    /// The table's directory name under the lake root, also its SQL name.
    pub fn name(self) -> &'static str {
        match self {
            Table::Runs => "runs",
            Table::Params => "params",
            Table::Scalars => "scalars",
            Table::Grads => "grads",
        }
    }

    /// The table whose directory is called `name`.
    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The schema of the table's files (without the `run` column, which comes
    /// from the `run=<id>` directory).
    pub fn schema(self) -> SchemaRef {
        match self {
            Table::Runs => RUNS.clone(),
            Table::Params => PARAMS.clone(),
            Table::Scalars => SCALARS.clone(),
            Table::Grads => GRADS.clone(),
        }
    }
}

/// The data type of the `kind` column.
pub fn kind_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// The data type of the `values` column: `FixedSizeList<Float32, 4096>`.
pub fn values_type() -> DataType {
    DataType::FixedSizeList(Arc::new(Field::new("item", DataType::Float32, true)), CHUNK_LEN as i32)
}

static GRADS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("step", DataType::Int64, false),
        Field::new("kind", kind_type(), false),
        Field::new("sample", DataType::Int64, false),
        Field::new("param_id", DataType::Int32, false),
        Field::new("chunk", DataType::Int32, false),
        Field::new("numel", DataType::Int32, false),
        Field::new("l2", DataType::Float32, false),
        Field::new("max_abs", DataType::Float32, false),
        Field::new("values", values_type(), false),
        Field::new(VALUES_CRC32, DataType::UInt32, false),
    ]))
});

static PARAMS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("param_id", DataType::Int32, false),
        Field::new("param", DataType::Utf8, false),
        Field::new("shape", DataType::List(Arc::new(Field::new("item", DataType::Int64, true))), false),
        Field::new("numel", DataType::Int64, false),
        Field::new("chunks", DataType::Int32, false),
    ]))
});

static SCALARS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("step", DataType::Int64, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("value", DataType::Float64, false),
    ]))
});

static RUNS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("model", DataType::Utf8, false),
        Field::new("dataset", DataType::Utf8, false),
        Field::new("optimizer", DataType::Utf8, false),
        Field::new("lr", DataType::Float64, false),
        Field::new("batch_size", DataType::Int64, false),
        Field::new("seed", DataType::Int64, false),
        Field::new("format_version", DataType::Int32, false),
        Field::new("start_time", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        Field::new("config", DataType::Utf8, false),
    ]))
});

/// Whether a file schema read back from Parquet is the table's schema: same
/// names and types in the same order. Field metadata is ignored.
pub fn schema_matches(table: Table, found: &Schema) -> Result<(), String> {
    schema_matches_version(table, found, FORMAT_VERSION)
}

/// The schema of `table` in files of format `version` (≤ [`FORMAT_VERSION`]).
pub fn schema_of_version(table: Table, version: i32) -> SchemaRef {
    match (table, version) {
        (Table::Grads, 1) => {
            let fields: Vec<_> = GRADS.fields().iter().filter(|f| f.name() != VALUES_CRC32).cloned().collect();
            Arc::new(Schema::new(fields))
        }
        _ => table.schema(),
    }
}

/// [`schema_matches`] for a file of format `version`.
pub fn schema_matches_version(table: Table, found: &Schema, version: i32) -> Result<(), String> {
    let want = schema_of_version(table, version);
    let names = |s: &Schema| s.fields().iter().map(|f| f.name().clone()).collect::<Vec<_>>();
    if want.fields().len() != found.fields().len() {
        return Err(format!(
            "not a gradlake {} file: columns {:?}, expected {:?}",
            table.name(),
            names(found),
            names(&want)
        ));
    }
    for (w, f) in want.fields().iter().zip(found.fields()) {
        if w.name() != f.name() || !types_equal(w.data_type(), f.data_type()) {
            return Err(format!(
                "column {:?} has type {} where {} {} was expected",
                f.name(),
                f.data_type(),
                w.name(),
                w.data_type()
            ));
        }
    }
    Ok(())
}

/// Type equality that ignores the names and nullability of list item fields:
/// other writers (pyarrow, DuckDB) call them `element`.
fn types_equal(a: &DataType, b: &DataType) -> bool {
    match (a, b) {
        (DataType::List(x), DataType::List(y)) => types_equal(x.data_type(), y.data_type()),
        (DataType::FixedSizeList(x, n), DataType::FixedSizeList(y, m)) => {
            n == m && types_equal(x.data_type(), y.data_type())
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_round_trip_and_sort_like_their_strings() {
        for k in Kind::ALL {
            assert_eq!(k.as_str().parse::<Kind>().unwrap(), k);
        }
        let mut names: Vec<_> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        names.sort();
        assert_eq!(names, Kind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>());
        assert!("grad".parse::<Kind>().unwrap_err().contains("grad"));
    }

    #[test]
    fn schema_mismatch_names_the_column() {
        let other = Schema::new(vec![Field::new("step", DataType::Utf8, false)]);
        assert!(schema_matches(Table::Scalars, &other).unwrap_err().contains("not a gradlake scalars"));
        let mut fields: Vec<Field> = SCALARS.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields[2] = Field::new("value", DataType::Float32, false);
        let err = schema_matches(Table::Scalars, &Schema::new(fields)).unwrap_err();
        assert!(err.contains("\"value\""), "{err}");
    }
}
