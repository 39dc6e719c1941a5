//! CSV and Parquet datasets, on small files written here.

use std::sync::Arc;

use arrow::array::{Float64Array, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use gradlake_recorder::tabular::read_tabular;

#[test]
fn csv_with_string_labels() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv");
    std::fs::write(&path, "x,label,y\n1.5,dog,2\n-1,cat,0.25\n3,dog,4\n").unwrap();
    let d = read_tabular(&path).unwrap();
    assert_eq!((d.len(), d.feature_count(), d.classes), (3, 2, 2));
    assert_eq!(Vec::<f32>::try_from(d.features.flatten(0, -1)).unwrap(), vec![1.5, 2.0, -1.0, 0.25, 3.0, 4.0]);
    // Sorted distinct labels: cat = 0, dog = 1.
    assert_eq!(Vec::<i64>::try_from(&d.labels).unwrap(), vec![1, 0, 1]);
}

#[test]
fn parquet_with_integer_labels_in_the_last_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.parquet");
    let schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Float64, true),
        Field::new("b", DataType::Float64, true),
        Field::new("class", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Float64Array::from(vec![0.5, 1.0, 2.0, 4.0])),
            Arc::new(Float64Array::from(vec![8.0, 16.0, 32.0, 64.0])),
            Arc::new(Int64Array::from(vec![7, 3, 7, 9])),
        ],
    )
    .unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let d = read_tabular(&path).unwrap();
    assert_eq!((d.len(), d.feature_count(), d.classes, d.image_side), (4, 2, 3, None));
    assert_eq!(Vec::<i64>::try_from(&d.labels).unwrap(), vec![1, 0, 1, 2]);
}

#[test]
fn a_missing_value_is_named_with_its_column_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv");
    std::fs::write(&path, "x,y,label\n1,2,0\n3,,1\n").unwrap();
    let err = read_tabular(&path).unwrap_err().to_string();
    assert!(err.contains("t.csv") && err.contains("column 'y'") && err.contains("row 1"), "{err}");
    let other = dir.path().join("t.json");
    std::fs::write(&other, "{}").unwrap();
    assert!(read_tabular(&other).unwrap_err().to_string().contains(".csv or .parquet"));
}
