//! The spectrum and vector functions in SQL: results against numpy
//! (`fixtures/spectrum`), merges across partitions and groups, and errors.

mod common;

use std::sync::Arc;

use common::{error, field_f64, field_i64, rows};
use datafusion::arrow::array::{Array, AsArray, FixedSizeListArray, Float32Array, Int64Array, ListArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Float32Type, Float64Type, Schema};
use datafusion::datasource::MemTable;
use gradlake_pipeline::{LakeSession, SessionOptions};

struct Case {
    d: usize,
    rows: Vec<Vec<f64>>,
    eigvalsh: Vec<f64>,
}

fn case(name: &str) -> Case {
    let path = common::fixtures().join("spectrum/reference.json");
    let all: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let c = all.as_array().unwrap().iter().find(|c| c["name"] == name).unwrap();
    let floats = |v: &serde_json::Value| v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect::<Vec<_>>();
    Case {
        d: c["d"].as_u64().unwrap() as usize,
        rows: c["rows"].as_array().unwrap().iter().map(floats).collect(),
        eigvalsh: floats(&c["eigvalsh"]),
    }
}

/// Table t(g, v List<Float64>, v32 List<Float32>) with one group per entry,
/// each group's rows dealt over 3 partitions so partial states merge.
fn session(groups: &[Vec<Option<Vec<f64>>>]) -> LakeSession {
    let list = |t: DataType| DataType::List(Arc::new(Field::new_list_field(t, true)));
    let schema = Arc::new(Schema::new(vec![
        Field::new("g", DataType::Int64, false),
        Field::new("v", list(DataType::Float64), true),
        Field::new("v32", list(DataType::Float32), true),
    ]));
    let mut partitions = vec![Vec::new(), Vec::new(), Vec::new()];
    for (g, rows) in groups.iter().enumerate() {
        for (k, partition) in partitions.iter_mut().enumerate() {
            let part: Vec<&Option<Vec<f64>>> = rows.iter().skip(k).step_by(3).collect();
            let v = ListArray::from_iter_primitive::<Float64Type, _, _>(
                part.iter().map(|r| r.as_ref().map(|r| r.iter().map(|&x| Some(x)).collect::<Vec<_>>())),
            );
            let v32 = ListArray::from_iter_primitive::<Float32Type, _, _>(
                part.iter().map(|r| r.as_ref().map(|r| r.iter().map(|&x| Some(x as f32)).collect::<Vec<_>>())),
            );
            let g = Int64Array::from(vec![g as i64; part.len()]);
            partition
                .push(RecordBatch::try_new(schema.clone(), vec![Arc::new(g), Arc::new(v), Arc::new(v32)]).unwrap());
        }
    }
    let s = LakeSession::new(&SessionOptions { target_partitions: Some(3), ..Default::default() }).unwrap();
    s.context().register_table("t", Arc::new(MemTable::try_new(schema, partitions).unwrap())).unwrap();
    s
}

fn some_rows(c: &Case) -> Vec<Option<Vec<f64>>> {
    c.rows.iter().cloned().map(Some).collect()
}

fn list_f64(b: &RecordBatch, col: usize, row: usize) -> Vec<f64> {
    b.column(col).as_list::<i32>().value(row).as_primitive::<Float64Type>().values().to_vec()
}

fn assert_close(label: &str, got: &[f64], want: &[f64], relative: f64) {
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        let floor = if relative > 1e-9 { 1e-6 } else { 1e-13 };
        assert!((g - w).abs() <= relative * w.abs() + floor * want[0], "{label}: λ_{} = {g}, numpy {w}", k + 1);
    }
}

#[tokio::test]
async fn cov_spectrum_matches_numpy_per_group_with_every_method() {
    let (tall, wide) = (case("tall"), case("wide"));
    let s = session(&[some_rows(&tall), some_rows(&wide)]);
    for method in ["exact", "gram", "auto", "fd"] {
        let rank = 64; // above both dimensions: fd is exact up to round-off
        let sql = format!("SELECT g, cov_spectrum(v, '{method}', {rank}) FROM t GROUP BY g ORDER BY g");
        let b = &rows(&s, &sql).await[0];
        for (row, c) in [(0, &tall), (1, &wide)] {
            let got = list_f64(b, 1, row);
            let expected_len = match method {
                "exact" => c.d,
                "gram" => (c.rows.len() - 1).min(c.d),
                _ => got.len(),
            };
            assert_eq!(got.len(), expected_len, "{method} g={row}");
            // Frequent Directions keeps f32 rows.
            let tolerance = if method == "fd" { 1e-5 } else { 1e-9 };
            assert_close(&format!("{method} g={row}"), &got, &c.eigvalsh, tolerance);
        }
    }
    // Float32 input: the same spectrum as the rows rounded to f32 (numpy's is of f64 rows).
    let b = &rows(&s, "SELECT cov_spectrum(v32, 'exact') FROM t WHERE g = 0").await[0];
    assert_close("f32", &list_f64(b, 0, 0), &tall.eigvalsh, 1e-5);
    // Without GROUP BY: the single-group accumulator.
    let b = &rows(&s, "SELECT cov_spectrum(v) FROM t WHERE g = 1").await[0];
    assert_close("no group by", &list_f64(b, 0, 0), &wide.eigvalsh, 1e-9);
}

#[tokio::test]
async fn fixed_size_lists_nulls_and_non_finite_rows() {
    let c = case("powerlaw");
    let mut rows_with_junk = some_rows(&c);
    rows_with_junk.push(None);
    let mut nan = c.rows[0].clone();
    nan[3] = f64::NAN;
    rows_with_junk.push(Some(nan));
    let s = session(&[rows_with_junk]);
    let b = &rows(&s, "SELECT cov_spectrum(v, 'exact'), sketch_info(cov_sketch(v, 4)) FROM t").await[0];
    assert_close("skipped rows", &list_f64(b, 0, 0), &c.eigvalsh, 1e-9);
    assert_eq!(field_i64(b, 0, 1, "n"), c.rows.len() as i64);
    assert_eq!(field_i64(b, 0, 1, "n_skipped"), 2);
    assert_eq!(field_i64(b, 0, 1, "rank"), 4);
    let trace: f64 = c.eigvalsh.iter().sum();
    assert!((field_f64(b, 0, 1, "total_variance") - trace).abs() < 1e-9 * trace);
    assert!(field_f64(b, 0, 1, "error_bound") > 0.0);

    // A FixedSizeList column of Float32 (what `grads` chunks are); values near 3
    // so that rounding to f32 moves the spectrum by ~1e-7 only.
    let c = case("tall");
    let d = c.d as i32;
    let flat: Vec<f32> = c.rows.iter().flatten().map(|&v| v as f32).collect();
    let fsl = FixedSizeListArray::new(
        Arc::new(Field::new_list_field(DataType::Float32, true)),
        d,
        Arc::new(Float32Array::from(flat)),
        None,
    );
    let schema = Arc::new(Schema::new(vec![Field::new("v", fsl.data_type().clone(), true)]));
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(fsl)]).unwrap();
    s.context().register_table("f", Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap())).unwrap();
    let b = &rows(&s, "SELECT cov_spectrum(v, 'gram') FROM f").await[0];
    assert_close("fixed size list", &list_f64(b, 0, 0), &c.eigvalsh, 1e-5);
}

#[tokio::test]
async fn sketches_merge_in_sql_like_one_pass() {
    let c = case("tall");
    let s = session(&[some_rows(&c)]);
    // One sketch per partition-ish bucket, merged later.
    let sql = "SELECT sketch_spectrum(sketch_merge(s)) AS eig, sketch_info(sketch_merge(s)) AS info FROM (
                 SELECT cov_sketch(v, 64) AS s FROM (SELECT v, row_number() OVER () % 4 AS bucket FROM t) GROUP BY bucket)";
    let b = &rows(&s, sql).await[0];
    assert_close("merged sketches", &list_f64(b, 0, 0), &c.eigvalsh, 1e-5);
    assert_eq!(field_i64(b, 0, 1, "n"), c.rows.len() as i64);
    // Ranks that differ do not merge.
    let e = error(
        &s,
        "SELECT sketch_merge(s) FROM (SELECT cov_sketch(v, 4) s FROM t UNION ALL SELECT cov_sketch(v, 5) FROM t)",
    )
    .await;
    assert!(e.contains("sketch_merge") && e.contains("rank 4") && e.contains("rank 5"), "{e}");
    let e = error(&s, "SELECT sketch_spectrum(arrow_cast('nonsense', 'LargeBinary'))").await;
    assert!(e.contains("sketch_spectrum") && e.contains("bad sketch"), "{e}");
}

#[tokio::test]
async fn spectrum_fits_in_sql() {
    let s = session(&[]);
    // λ_k = 2·k^-1.5 for k = 1..6, then an exact zero.
    let eigs: Vec<String> = (1..=6).map(|k| format!("{:e}", 2.0 * f64::powf(k as f64, -1.5))).collect();
    let list = format!("[{}, 0.0]", eigs.join(", "));
    let b = &rows(&s, &format!("SELECT spectrum_fit({list}), spectrum_fit({list}, 2, 4)")).await[0];
    assert!((field_f64(b, 0, 0, "s") - 1.5).abs() < 1e-12);
    assert!((field_f64(b, 0, 0, "lambda1") - 2.0).abs() < 1e-12);
    assert!((field_f64(b, 0, 0, "r2") - 1.0).abs() < 1e-12);
    assert_eq!((field_i64(b, 0, 0, "kmin"), field_i64(b, 0, 0, "kmax")), (1, 6));
    assert_eq!((field_i64(b, 0, 1, "kmin"), field_i64(b, 0, 1, "kmax")), (2, 4));
    let e = error(&s, &format!("SELECT spectrum_fit({list}, 0)")).await;
    assert!(e.contains("spectrum_fit") && e.contains("kmin"), "{e}");

    // The KS view of an exact k^-1 spectrum: beta = 2, s = 1.
    let eigs: Vec<String> = (1..=2000).map(|k| format!("{:e}", 1.0 / k as f64)).collect();
    let b = &rows(&s, &format!("SELECT spectrum_ks_test([{}])", eigs.join(","))).await[0];
    let beta = field_f64(b, 0, 0, "beta");
    assert!((beta - 2.0).abs() < 0.05 && (field_f64(b, 0, 0, "s") - 1.0 / (beta - 1.0)).abs() < 1e-12, "{beta}");
    assert!(b.column(0).as_struct().column_by_name("power_law").unwrap().as_boolean().value(0));

    // Tied eigenvalues with every one in the tail (xmin=all): beta = 1 + 6/(4 ln 1.1 + ln 10)
    // and D in each convention, computed by hand (numpy) from P(λ) = 1 − λ^(1−β).
    let sql = "SELECT spectrum_ks_test([10.0, 1.1, 1.1, 1.1, 1.1, 1.0], 0.05, 'xmin=all'), \
               spectrum_ks_test([10.0, 1.1, 1.1, 1.1, 1.1, 1.0], 'xmin=all, ks=powerlaw')";
    let b = &rows(&s, sql).await[0];
    let beta = 1.0 + 6.0 / (4.0 * 1.1f64.ln() + 10f64.ln());
    for col in 0..2 {
        assert!((field_f64(b, 0, col, "beta") - beta).abs() < 1e-14);
        assert_eq!(field_i64(b, 0, col, "n_tail"), 6);
    }
    assert!((field_f64(b, 0, 0, "ks") - 0.47476072090517407).abs() < 1e-14, "CSN: the tie group's top counts");
    assert!((field_f64(b, 0, 1, "ks") - 0.1608538655599271).abs() < 1e-14, "powerlaw: only its left limit");
    let e = error(&s, "SELECT spectrum_ks_test([1.0, 2.0], 'xmin=middle')").await;
    assert!(e.contains("spectrum_ks_test") && e.contains("unknown xmin rule"), "{e}");
}

#[tokio::test]
async fn vector_helpers_and_their_errors() {
    let s = session(&[]);
    let b = &rows(
        &s,
        "SELECT vec_sub([3.0, 5.0], [1.0, 1.5]), vec_norm([3.0, 4.0]), vec_dot([1.0, 2.0, 3.0], [4.0, -5.0, 6.0]),
                vec_norm(NULL), vec_norm([1e200, 1e200]),
                vec_sub(arrow_cast([1.5, 2.0], 'List(Float32)'), arrow_cast([0.5, 4.0], 'List(Float32)'))",
    )
    .await[0];
    assert_eq!(list_f64(b, 0, 0), vec![2.0, 3.5]);
    assert_eq!(b.column(1).as_primitive::<Float64Type>().value(0), 5.0);
    assert_eq!(b.column(2).as_primitive::<Float64Type>().value(0), 12.0);
    assert!(b.column(3).is_null(0));
    assert!((b.column(4).as_primitive::<Float64Type>().value(0) / (1e200 * 2f64.sqrt()) - 1.0).abs() < 1e-15);
    let f32_list = b.column(5).as_list::<i32>().value(0);
    assert_eq!(f32_list.as_primitive::<Float32Type>().values().to_vec(), vec![1.0f32, -2.0]);

    let e = error(&s, "SELECT vec_dot([1.0, 2.0], [1.0])").await;
    assert!(e.contains("vec_dot") && e.contains("different lengths"), "{e}");
    let e = error(&s, "SELECT vec_norm('abc')").await;
    assert!(e.contains("vec_norm") && e.contains("argument a"), "{e}");
}

#[tokio::test]
async fn bad_arguments_are_errors_naming_the_function() {
    let c = case("tall");
    let mut rows_mixed = some_rows(&c);
    rows_mixed.push(Some(vec![1.0; c.d + 1]));
    let s = session(&[rows_mixed]);
    let e = error(&s, "SELECT cov_spectrum(v) FROM t").await;
    assert!(e.contains("cov_spectrum") && e.contains("different lengths"), "{e}");
    let e = error(&s, "SELECT cov_spectrum(v, 'svd') FROM t").await;
    assert!(e.contains("cov_spectrum") && e.contains("unknown method 'svd'"), "{e}");
    let e = error(&s, "SELECT cov_spectrum(v, 'fd', 0) FROM t").await;
    assert!(e.contains("cov_spectrum") && e.contains("rank"), "{e}");
    let e = error(&s, "SELECT cov_spectrum(g) FROM t").await;
    assert!(e.contains("cov_spectrum") && e.contains("argument v"), "{e}");
    // An empty group: NULL, not an error.
    let b = &rows(&s, "SELECT cov_spectrum(v) FROM t WHERE g < 0").await[0];
    assert!(b.column(0).is_null(0));
}
