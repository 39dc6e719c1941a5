//! Every gradlake SQL function describes itself: DataFusion's
//! `information_schema.routines` lists it with its description and syntax; its
//! example runs on a lake; and the README names it by the same syntax.
//! (`information_schema.parameters`, and `SHOW FUNCTIONS` which joins it, list
//! only functions with fixed signatures; gradlake's coerce their own arguments.)

use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion::logical_expr::Documentation;
use gradlake_ingest::WriterOptions;
use gradlake_ingest::synth::{SynthConfig, generate};
use gradlake_pipeline::udf::{aggregates, scalars};
use gradlake_pipeline::{LakeSession, SessionOptions};

fn documented() -> Vec<(String, Documentation)> {
    let mut out: Vec<(String, Documentation)> = Vec::new();
    for f in aggregates() {
        out.push((
            f.name().to_string(),
            f.documentation().cloned().unwrap_or_else(|| panic!("{} lacks docs", f.name())),
        ));
    }
    for f in scalars() {
        out.push((
            f.name().to_string(),
            f.documentation().cloned().unwrap_or_else(|| panic!("{} lacks docs", f.name())),
        ));
    }
    out
}

fn strings(session_rows: &[arrow::array::RecordBatch], column: usize) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for b in session_rows {
        let c = cast(b.column(column), &DataType::Utf8).unwrap();
        let c = c.as_string::<i32>();
        out.extend((0..c.len()).map(|i| c.is_valid(i).then(|| c.value(i).to_string())));
    }
    out
}

#[test]
fn every_function_has_a_description_a_syntax_arguments_and_an_example() {
    let docs = documented();
    assert_eq!(docs.len(), 20, "{:?}", docs.iter().map(|d| &d.0).collect::<Vec<_>>());
    for (name, doc) in &docs {
        assert!(doc.description.len() > 20, "{name}: {}", doc.description);
        assert!(doc.syntax_example.starts_with(&format!("{name}(")), "{name}: {}", doc.syntax_example);
        let arguments = doc.arguments.as_ref().unwrap_or_else(|| panic!("{name} documents no argument"));
        // Every argument the syntax names is described, in order.
        let named: Vec<&str> = doc.syntax_example[name.len() + 1..]
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .collect();
        let described: Vec<&str> = arguments.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(named, described, "{name}");
        assert!(doc.sql_example.as_deref().is_some_and(|e| e.contains(&format!("{name}("))), "{name}");
    }
}

#[test]
fn the_readme_names_every_function_by_its_documented_syntax() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    for (name, doc) in documented() {
        assert!(
            readme.contains(&format!("`{}`", doc.syntax_example)),
            "README lacks `{}` ({name})",
            doc.syntax_example
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_lists_the_functions_and_every_example_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SynthConfig::small("r", 3, 3);
    cfg.samples = 8;
    cfg.draws = 4;
    let lake = dir.path().to_path_buf();
    std::thread::spawn(move || generate(&lake, &cfg, WriterOptions::default(), &mut |_| {}).unwrap()).join().unwrap();
    let session = LakeSession::open(dir.path(), &SessionOptions::default()).await.unwrap();
    let ctx = session.context();
    let routines = ctx
        .sql("SELECT routine_name, description, syntax_example FROM information_schema.routines")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let names = strings(&routines, 0);
    let descriptions = strings(&routines, 1);
    let syntaxes = strings(&routines, 2);
    for (name, doc) in documented() {
        let at = names.iter().position(|n| n.as_deref() == Some(name.as_str()));
        let at = at.unwrap_or_else(|| panic!("information_schema.routines lacks {name}"));
        assert_eq!(descriptions[at].as_deref(), Some(doc.description.as_str()), "{name}");
        assert_eq!(syntaxes[at].as_deref(), Some(doc.syntax_example.as_str()), "{name}");
        let example = doc.sql_example.unwrap();
        let sql = example.trim_start_matches("```sql\n").trim_end_matches("\n```");
        let rows: usize = ctx
            .sql(sql)
            .await
            .unwrap_or_else(|e| panic!("{name} example: {e}\n{sql}"))
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{name} example: {e}\n{sql}"))
            .iter()
            .map(|b| b.num_rows())
            .sum();
        assert!(rows > 0, "{name} example returned no rows: {sql}");
    }
}
