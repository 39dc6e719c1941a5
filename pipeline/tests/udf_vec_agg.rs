//! `vec_agg(value, idx [, d])` in SQL: long rows placed into vectors, whatever
//! order they arrive in and however they are split over partitions, against
//! vectors built directly; each kind of bad index named.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Float32Array, Float64Array, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Float32Type, Float64Type, Schema};
use datafusion::datasource::MemTable;
use gradlake_pipeline::{LakeSession, SessionOptions};

/// The value of group `g` at index `i` (exact in f32).
fn value(g: i64, i: i64) -> f64 {
    (g * 1000 + i) as f64 * 0.5 - 7.0
}

/// Table t(g, i, x Float64, x32 Float32): `lengths[g]` rows per group g, in a scrambled
/// order, dealt round-robin over 3 partitions (so partial states are merged), plus `extra`
/// rows (g, i, x) at the end.
fn session(lengths: &[i64], extra: &[(i64, Option<i64>, Option<f64>)]) -> LakeSession {
    let mut rows: Vec<(i64, Option<i64>, Option<f64>)> = Vec::new();
    for (g, &len) in lengths.iter().enumerate() {
        let g = g as i64;
        // i ↦ 7i mod len visits every index once when gcd(7, len) = 1, out of order.
        assert_ne!(len % 7, 0);
        rows.extend((0..len).map(|k| (g, Some(k * 7 % len), Some(value(g, k * 7 % len)))));
    }
    rows.extend_from_slice(extra);
    let schema = Arc::new(Schema::new(vec![
        Field::new("g", DataType::Int64, false),
        Field::new("i", DataType::Int64, true),
        Field::new("x", DataType::Float64, true),
        Field::new("x32", DataType::Float32, true),
    ]));
    let mut partitions = vec![Vec::new(), Vec::new(), Vec::new()];
    for (k, part) in partitions.iter_mut().enumerate() {
        let mine: Vec<_> = rows.iter().skip(k).step_by(3).collect();
        part.push(
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from(mine.iter().map(|r| r.0).collect::<Vec<_>>())),
                    Arc::new(Int64Array::from(mine.iter().map(|r| r.1).collect::<Vec<_>>())),
                    Arc::new(Float64Array::from(mine.iter().map(|r| r.2).collect::<Vec<_>>())),
                    Arc::new(Float32Array::from(mine.iter().map(|r| r.2.map(|v| v as f32)).collect::<Vec<_>>())),
                ],
            )
            .unwrap(),
        );
    }
    let s = LakeSession::new(&SessionOptions { target_partitions: Some(3), ..Default::default() }).unwrap();
    s.context().register_table("t", Arc::new(MemTable::try_new(schema, partitions).unwrap())).unwrap();
    s
}

async fn rows(s: &LakeSession, sql: &str) -> Vec<RecordBatch> {
    s.context().sql(sql).await.unwrap().collect().await.unwrap()
}

async fn error(s: &LakeSession, sql: &str) -> String {
    match s.context().sql(sql).await {
        Err(e) => e.to_string(),
        Ok(df) => df.collect().await.expect_err("query must fail").to_string(),
    }
}

#[tokio::test]
async fn places_every_value_at_its_index_in_any_order_and_partitioning() {
    let lengths = [1, 12, 1000, 33];
    let s = session(&lengths, &[]);
    let sql = "SELECT g, vec_agg(x, i) AS v, vec_agg(x32, i) AS v32, vec_agg(x, i, len) AS vd \
               FROM t JOIN (SELECT g AS h, max(i) + 1 AS len FROM t GROUP BY g) ON g = h GROUP BY g ORDER BY g";
    // `len` is not a constant: refused, naming the argument.
    assert!(error(&s, sql).await.contains("vec_agg: argument d must be a constant"));
    let sql = "SELECT g, vec_agg(x, i) AS v, vec_agg(x32, i) AS v32 FROM t GROUP BY g ORDER BY g";
    let b = &rows(&s, sql).await[0];
    assert_eq!(b.num_rows(), lengths.len());
    assert_eq!(
        b.schema().field(2).data_type(),
        &DataType::List(Arc::new(Field::new_list_field(DataType::Float32, true)))
    );
    for (row, &len) in lengths.iter().enumerate() {
        let g = row as i64;
        let v = b.column(1).as_list::<i32>().value(row);
        let want: Vec<f64> = (0..len).map(|i| value(g, i)).collect();
        assert_eq!(v.as_primitive::<Float64Type>().values().to_vec(), want, "group {g}");
        let v32 = b.column(2).as_list::<i32>().value(row);
        let want32: Vec<f32> = want.iter().map(|&v| v as f32).collect();
        assert_eq!(v32.as_primitive::<Float32Type>().values().to_vec(), want32, "group {g}");
        assert_eq!(v.null_count() + v32.null_count(), 0);
    }
    // With d = 1000 only group 2 is complete; the others name their first missing index.
    let e = error(&s, "SELECT vec_agg(x, i, 1000) FROM t WHERE g = 1").await;
    assert!(e.contains("a group of 12 values has no value at index 12 (expected indices 0..1000)"), "{e}");
    let b = &rows(&s, "SELECT vec_agg(x, i, 1000) AS v FROM t WHERE g = 2").await[0];
    let v = b.column(0).as_list::<i32>().value(0);
    assert_eq!(v.as_primitive::<Float64Type>().value(999), value(2, 999));

    // No rows: NULL, as array_agg.
    let b = &rows(&s, "SELECT vec_agg(x, i) AS v FROM t WHERE g > 10").await[0];
    assert!(b.column(0).is_null(0));
}

#[tokio::test]
async fn gives_what_array_agg_ordered_by_index_gives() {
    let s = session(&[40, 55], &[]);
    let b = &rows(
        &s,
        "SELECT bool_and(a = b) AS same, count(*) AS n FROM \
         (SELECT g, vec_agg(x, i) AS a, array_agg(x ORDER BY i) AS b FROM t GROUP BY g)",
    )
    .await[0];
    assert!(b.column(0).as_boolean().value(0));
    assert_eq!(b.column(1).as_primitive::<datafusion::arrow::datatypes::Int64Type>().value(0), 2);
}

#[tokio::test]
async fn a_null_value_keeps_its_place_as_a_null_item() {
    let s = session(&[], &[(0, Some(1), Some(2.0)), (0, Some(0), None), (0, Some(2), Some(4.0))]);
    let b = &rows(&s, "SELECT vec_agg(x, i) AS v FROM t").await[0];
    let v = b.column(0).as_list::<i32>().value(0);
    let v = v.as_primitive::<Float64Type>();
    assert_eq!((v.len(), v.null_count()), (3, 1));
    assert!(v.is_null(0));
    assert_eq!((v.value(1), v.value(2)), (2.0, 4.0));
}

#[tokio::test]
async fn bad_indices_are_errors_naming_the_index_and_the_group() {
    // Group 0 (length 12) with index 5 removed and index 3 repeated: an error either way.
    let s = session(&[12], &[]);
    let e = error(&s, "SELECT vec_agg(x, i) FROM t WHERE i <> 5").await;
    assert!(e.contains("vec_agg: a group of 11 values has no value at index 5 (expected indices 0..12)"), "{e}");
    let s = session(&[12], &[(0, Some(3), Some(1.0))]);
    let e = error(&s, "SELECT vec_agg(x, i) FROM t").await;
    assert!(e.contains("vec_agg: index 3 appears more than once in a group of 13 values"), "{e}");
    // A repeated index that also leaves one out (same count as the length).
    let e = error(&s, "SELECT vec_agg(x, i) FROM t WHERE i <> 11").await;
    assert!(e.contains("no value at index 11") || e.contains("index 3 appears more than once"), "{e}");
    let e = error(&s, "SELECT vec_agg(x, i, 10) FROM t").await;
    assert!(e.contains("vec_agg: index 1") && e.contains("is outside 0..10"), "{e}");
    let s = session(&[], &[(0, Some(0), Some(1.0)), (0, Some(-2), Some(1.0))]);
    assert!(error(&s, "SELECT vec_agg(x, i) FROM t").await.contains("vec_agg: index -2 is negative"));
    let s = session(&[], &[(0, None, Some(1.0))]);
    assert!(error(&s, "SELECT vec_agg(x, i) FROM t").await.contains("vec_agg: argument idx is NULL"));
    // A huge index with few rows: an error, without allocating its length.
    let s = session(&[], &[(0, Some(1 << 50), Some(1.0))]);
    let e = error(&s, "SELECT vec_agg(x, i) FROM t").await;
    assert!(e.contains("a group of 1 values has no value at index 0"), "{e}");
    let s = session(&[7 + 1], &[]);
    assert!(error(&s, "SELECT vec_agg(x, 'a') FROM t").await.contains("vec_agg: argument idx must be an integer"));
    assert!(error(&s, "SELECT vec_agg(x) FROM t").await.contains("vec_agg(value, idx [, d])"));
}
