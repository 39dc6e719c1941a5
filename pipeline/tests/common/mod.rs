//! Helpers shared by the SQL function tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::array::{AsArray, Float32Array, Float64Array, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema};
use datafusion::datasource::MemTable;
use gradlake_pipeline::{LakeSession, SessionOptions};

/// `fixtures/` of the checkout being tested. Read at run time: the build directory
/// is shared between checkouts (CI), so a path baked in at compile time could
/// point at another clone.
pub fn fixtures() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo test")).join("../fixtures")
}

pub fn fixture_in(dir: &str, name: &str) -> Vec<f64> {
    let path = fixtures().join(format!("{dir}/{name}.txt"));
    std::fs::read_to_string(path).unwrap().lines().map(|l| l.parse().unwrap()).collect()
}

pub fn reference_in(dir: &str, name: &str) -> serde_json::Value {
    let path = fixtures().join(format!("{dir}/reference.json"));
    let all: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    all["sets"][name].clone()
}

pub fn fixture(name: &str) -> Vec<f64> {
    fixture_in("powerlaw", name)
}

pub fn reference(name: &str) -> serde_json::Value {
    reference_in("powerlaw", name)
}

/// A stored tied set of fixtures/powerlaw ("value count" lines), expanded in stored order.
pub fn tied_fixture(name: &str) -> Vec<f64> {
    let text = std::fs::read_to_string(fixtures().join(format!("powerlaw/tied_{name}.txt"))).unwrap();
    let mut v = Vec::new();
    for line in text.lines() {
        let (value, count) = line.split_once(' ').unwrap();
        v.extend(std::iter::repeat_n(value.parse::<f64>().unwrap(), count.parse().unwrap()));
    }
    v
}

/// The reference fits of a tied set (fixtures/powerlaw/tied_reference.json).
pub fn tied_reference(name: &str) -> serde_json::Value {
    let path = fixtures().join("powerlaw/tied_reference.json");
    let all: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    all["sets"][name].clone()
}

/// Table t(g Int64, x Float64, x32 Float32) over `groups`, spread over 3 partitions so that
/// partial states are merged.
pub fn session(groups: &[Vec<Option<f64>>]) -> LakeSession {
    let schema = Arc::new(Schema::new(vec![
        Field::new("g", DataType::Int64, false),
        Field::new("x", DataType::Float64, true),
        Field::new("x32", DataType::Float32, true),
    ]));
    let mut partitions = vec![Vec::new(), Vec::new(), Vec::new()];
    for (g, values) in groups.iter().enumerate() {
        for (k, part) in values.chunks(values.len().div_ceil(3)).enumerate() {
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from(vec![g as i64; part.len()])),
                    Arc::new(Float64Array::from(part.to_vec())),
                    Arc::new(Float32Array::from(part.iter().map(|v| v.map(|v| v as f32)).collect::<Vec<_>>())),
                ],
            )
            .unwrap();
            partitions[k].push(batch);
        }
    }
    let s = LakeSession::new(&SessionOptions { target_partitions: Some(3), ..Default::default() }).unwrap();
    s.context().register_table("t", Arc::new(MemTable::try_new(schema, partitions).unwrap())).unwrap();
    s
}

pub async fn rows(s: &LakeSession, sql: &str) -> Vec<RecordBatch> {
    s.context().sql(sql).await.unwrap().collect().await.unwrap()
}

pub async fn error(s: &LakeSession, sql: &str) -> String {
    match s.context().sql(sql).await {
        Err(e) => e.to_string(),
        Ok(df) => df.collect().await.expect_err("query must fail").to_string(),
    }
}

pub fn field_f64(b: &RecordBatch, row: usize, col: usize, name: &str) -> f64 {
    b.column(col).as_struct().column_by_name(name).unwrap().as_primitive::<Float64Type>().value(row)
}

pub fn field_i64(b: &RecordBatch, row: usize, col: usize, name: &str) -> i64 {
    b.column(col).as_struct().column_by_name(name).unwrap().as_primitive::<Int64Type>().value(row)
}
