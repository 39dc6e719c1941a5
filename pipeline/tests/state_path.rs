//! The path DataFusion takes when it stops aggregating partially (many groups,
//! few rows each): every input row becomes a state of its own
//! (`GroupsAccumulator::convert_to_state`) and the final stage merges them
//! (`merge_batch`). Every gradlake aggregate must give there what the usual
//! path gives, FILTER included, and an exact covariance must not build a d × d
//! matrix per row to do it.

use std::path::Path;

use arrow::array::RecordBatch;
use arrow::util::pretty::pretty_format_batches;
use gradlake_ingest::synth::{SynthConfig, generate};
use gradlake_ingest::{ParamSpec, WriterOptions};
use gradlake_pipeline::{LakeSession, SessionOptions};

fn write_lake(dir: &Path) {
    let mut cfg = SynthConfig::small("r", 11, 4);
    // d = 1800: one row's exact scatter would be 26 MB.
    cfg.params = vec![ParamSpec::new("w", vec![30, 60]), ParamSpec::new("b", vec![9])];
    cfg.samples = 6;
    cfg.draws = 3;
    let dir = dir.to_path_buf();
    std::thread::spawn(move || generate(&dir, &cfg, WriterOptions::default(), &mut |_| {}).unwrap()).join().unwrap();
}

/// DataFusion's own aggregation (not gradlake's chunk-wise one), and with
/// `skipping` its partial stage gives up at once and converts rows to states.
async fn session(dir: &Path, skipping: bool) -> LakeSession {
    let options = SessionOptions { element_wise_aggregation: true, target_partitions: Some(2), ..Default::default() };
    let session = LakeSession::open(dir, &options).await.unwrap();
    if skipping {
        for set in [
            "SET datafusion.execution.skip_partial_aggregation_probe_rows_threshold = 1",
            "SET datafusion.execution.skip_partial_aggregation_probe_ratio_threshold = 0.0",
            // Small batches: the stage decides after its first one.
            "SET datafusion.execution.batch_size = 8",
        ] {
            session.context().sql(set).await.unwrap().collect().await.unwrap();
        }
    }
    session
}

async fn run(session: &LakeSession, sql: &str) -> Vec<RecordBatch> {
    let df = session.context().sql(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    df.collect().await.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Results printed with floats rounded to 9 significant digits: merging one-row
/// states adds in another order than updating does.
fn text(batches: &[RecordBatch]) -> String {
    let printed = pretty_format_batches(batches).unwrap().to_string();
    let mut out = String::new();
    for token in printed.split_inclusive([' ', ',', '|', '[', ']']) {
        let (word, sep) = token.split_at(token.len() - token.chars().last().map_or(0, char::len_utf8));
        match word.parse::<f64>() {
            Ok(v) if word.contains('.') || word.contains('e') => out.push_str(&format!("{v:.9e}")),
            _ => out.push_str(word),
        }
        out.push_str(sep);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_aggregate_gives_the_same_when_rows_become_states() {
    let dir = tempfile::tempdir().unwrap();
    write_lake(dir.path());
    let usual = session(dir.path(), false).await;
    let skipping = session(dir.path(), true).await;
    // Keys hold `step` as text: the files are sorted by step, and DataFusion never
    // gives up on a partial stage whose input arrives in group order. (sql, whether
    // the stage must give up: over grad_vectors it keeps aggregating here, but its
    // groups hold one vector each, so its states are one-row states all the same.)
    let queries = [
        (
            "SELECT kind, CAST(step AS VARCHAR) AS st, param, powerlaw_fit(abs(value))['alpha'] AS a, \
             powerlaw_ks_test(abs(value))['ks'] AS ks, powerlaw_compare(abs(value), 'exponential')['loglik_ratio'] AS lr, \
             gaussian_test(value)['ks'] AS g, hill_index(abs(value), 10) AS h, stable_alpha(value) AS s, \
             powerlaw_gof(abs(value), 10, 3)['p_value'] AS p \
             FROM grad_values GROUP BY kind, st, param ORDER BY kind, st, param",
            true,
        ),
        (
            "SELECT kind, CAST(step AS VARCHAR) AS st, powerlaw_fit(abs(value)) FILTER (WHERE value > 0) AS positive_only \
             FROM grad_values GROUP BY kind, st ORDER BY kind, st",
            true,
        ),
        (
            "SELECT kind, CAST(step AS VARCHAR) AS st, sample, param, vec_norm(vec_agg(value, idx)) AS norm, \
             vec_norm(vec_agg(value, idx, 9) FILTER (WHERE idx < 9)) AS head FROM grad_values \
             GROUP BY kind, st, sample, param ORDER BY kind, st, sample, param",
            true,
        ),
        // One vector per group: an exact state must not be a d × d matrix (d = 1800).
        (
            "SELECT kind, CAST(step AS VARCHAR) AS st, sample, param, cov_spectrum(\"values\", 'exact') AS exact \
             FROM grad_vectors GROUP BY kind, st, sample, param ORDER BY kind, st, sample, param",
            false,
        ),
        (
            "SELECT kind, CAST(step AS VARCHAR) AS st, param, \
             cov_spectrum(CASE WHEN param = 'b' THEN \"values\" END, 'exact') AS exact, \
             cov_spectrum(\"values\", 'gram') AS gram, sketch_info(cov_sketch(\"values\", 4))['n'] AS n, \
             cov_spectrum_info(\"values\", 'fd', 4)['error_bound'] AS bound \
             FROM grad_vectors GROUP BY kind, st, param ORDER BY kind, st, param",
            false,
        ),
        (
            "SELECT kind, CAST(step AS VARCHAR) AS st, sample, vec_norm(vec_concat(\"values\", param_id)) AS norm \
             FROM grad_vectors GROUP BY kind, st, sample ORDER BY kind, st, sample",
            false,
        ),
        (
            "SELECT kind, sketch_info(sketch_merge(s))['n'] AS n FROM (SELECT kind, CAST(step AS VARCHAR) AS st, \
             cov_sketch(\"values\", 4) AS s FROM grad_vectors WHERE param_id = 1 GROUP BY kind, st) \
             GROUP BY kind ORDER BY kind",
            false,
        ),
    ];
    for (sql, must_skip) in queries {
        let explain = run(&skipping, &format!("EXPLAIN ANALYZE {sql}")).await;
        let plan = pretty_format_batches(&explain).unwrap().to_string();
        let skipped: u64 = plan
            .match_indices("skipped_aggregation_rows=")
            .map(|(at, key)| plan[at + key.len()..].chars().take_while(char::is_ascii_digit).collect::<String>())
            .filter_map(|n| n.parse::<u64>().ok())
            .sum();
        assert!(!must_skip || skipped > 0, "the partial stage did not skip: {sql}\n{plan}");
        assert_eq!(text(&run(&skipping, sql).await), text(&run(&usual, sql).await), "{sql}");
    }
}
