//! Aggregates over `grad_values` grouped by chunk-constant columns run a chunk
//! at a time (`AggregateGradValuesByChunkExec`) and give what DataFusion's own
//! hash aggregation gives element by element: integers, strings and verdicts
//! equal, floats within 1e-12 relative (only the order of additions differs).
//! Queries the operator cannot take keep DataFusion's plan.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::physical_plan::{ExecutionPlan, displayable};
use gradlake_ingest::WriterOptions;
use gradlake_ingest::synth::{SynthConfig, generate};
use gradlake_pipeline::{LakeSession, SessionOptions};

const NODE: &str = "AggregateGradValuesByChunkExec";

fn write_lake(dir: &Path) {
    // Tensors that end in padded chunks (50×100, 7) and one that spans chunks (5000).
    let mut cfg = SynthConfig::small("r", 4, 3);
    cfg.params = vec![
        gradlake_ingest::ParamSpec::new("w", vec![50, 100]),
        gradlake_ingest::ParamSpec::new("b", vec![7]),
        gradlake_ingest::ParamSpec::new("e", vec![5000]),
    ];
    cfg.samples = 5;
    cfg.draws = 3;
    let dir = dir.to_path_buf();
    std::thread::spawn(move || generate(&dir, &cfg, WriterOptions::default(), &mut |_| {}).unwrap()).join().unwrap();
}

async fn run(session: &LakeSession, sql: &str) -> (RecordBatch, String) {
    let df = session.context().sql(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let plan: Arc<dyn ExecutionPlan> = df.clone().create_physical_plan().await.unwrap();
    let text = displayable(plan.as_ref()).indent(false).to_string();
    let batches = df.collect().await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let schema = batches.first().map(|b| b.schema()).unwrap_or_else(|| Arc::new(plan.schema().as_ref().clone()));
    (concat_batches(&schema, &batches).unwrap(), text)
}

/// Cell by cell: floats within 1e-12 relative, everything else as text.
fn assert_same(sql: &str, expected: &RecordBatch, got: &RecordBatch) {
    assert_eq!(expected.num_rows(), got.num_rows(), "{sql}");
    assert_eq!(expected.schema().fields().len(), got.schema().fields().len(), "{sql}");
    for c in 0..expected.num_columns() {
        let (e, g) = (expected.column(c), got.column(c));
        assert_eq!(e.data_type(), g.data_type(), "{sql}: column {c}");
        let floats = matches!(e.data_type(), DataType::Float32 | DataType::Float64);
        let as_f64 = |a: &ArrayRef| cast(a, &DataType::Float64).unwrap();
        let (ef, gf) = if floats { (Some(as_f64(e)), Some(as_f64(g))) } else { (None, None) };
        for r in 0..expected.num_rows() {
            match (&ef, &gf) {
                (Some(ef), Some(gf)) => {
                    let (x, y) = (
                        ef.as_primitive::<datafusion::arrow::datatypes::Float64Type>(),
                        gf.as_primitive::<datafusion::arrow::datatypes::Float64Type>(),
                    );
                    assert_eq!(x.is_null(r), y.is_null(r), "{sql}: row {r} column {c}");
                    let (x, y) = (x.value(r), y.value(r));
                    let close = x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs());
                    assert!(close, "{sql}: row {r} column {c}: {x} vs {y}");
                }
                _ => assert_eq!(
                    array_value_to_string(e, r).unwrap(),
                    array_value_to_string(g, r).unwrap(),
                    "{sql}: row {r} column {c}"
                ),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunk_wise_aggregates_equal_element_wise_ones() {
    let dir = tempfile::tempdir().unwrap();
    write_lake(dir.path());
    let chunked = LakeSession::open(dir.path(), &SessionOptions::default()).await.unwrap();
    let element_wise = SessionOptions { element_wise_aggregation: true, ..SessionOptions::default() };
    let reference = LakeSession::open(dir.path(), &element_wise).await.unwrap();
    // (query, whether the chunk-wise operator takes it)
    let queries = [
        (
            "SELECT kind, count(*) AS n, avg(abs(value)) AS mean_abs, max(abs(value)) AS max_abs, min(value) AS lo, sum(value) AS s FROM grad_values GROUP BY kind ORDER BY kind",
            true,
        ),
        (
            "SELECT step, param, count(value) AS n, stddev(value) AS sd, var_pop(value) AS v, sum(value * value) AS ss, max(idx) AS last FROM grad_values GROUP BY step, param ORDER BY step, param",
            true,
        ),
        ("SELECT count(*) AS n, sum(value) AS s, max(idx) AS m, avg(idx) AS mi FROM grad_values", true),
        (
            "SELECT run, sample, param_id, count(value) AS n, avg(idx) AS mi, bool_and(value < 10) AS small FROM grad_values WHERE kind = 'sample' GROUP BY run, sample, param_id ORDER BY run, sample, param_id",
            true,
        ),
        (
            "SELECT param, step, kind, hill_index(abs(value), 20) AS h, gaussian_test(value)['ks_p_value'] AS p, powerlaw_fit(abs(value))['alpha'] AS alpha FROM grad_values WHERE kind IN ('minibatch', 'full') GROUP BY param, step, kind ORDER BY param, step, kind",
            true,
        ),
        (
            "SELECT step, param, array_length(array_agg(value)) AS n, vec_norm(vec_agg(value, idx)) AS norm FROM grad_values WHERE kind = 'full' GROUP BY step, param ORDER BY step, param",
            true,
        ),
        ("SELECT kind, count(*) AS n, sum(value) AS s FROM grad_values WHERE step < 0 GROUP BY kind", true),
        ("SELECT count(*) AS n, max(value) AS m FROM grad_values WHERE step < 0", true),
        // Grouping sets of chunk keys, as dimension_wise.sql tests each param and the whole model.
        (
            "SELECT kind, step, param, count(*) AS n, sum(value) AS s, powerlaw_ks_test(abs(value))['alpha'] AS alpha, powerlaw_compare(abs(value), 'exponential')['loglik_ratio'] AS lr FROM grad_values WHERE kind IN ('minibatch', 'full') GROUP BY GROUPING SETS ((kind, step, param), (kind, step)) ORDER BY kind, step, param NULLS FIRST",
            true,
        ),
        (
            "SELECT kind, param, count(*) AS n, max(abs(value)) AS m, grouping(param) AS g FROM grad_values GROUP BY ROLLUP (kind, param) ORDER BY kind NULLS FIRST, param NULLS FIRST",
            true,
        ),
        // A repeated set: its groups are kept apart by the occurrence in __grouping_id.
        (
            "SELECT kind, count(*) AS n FROM grad_values GROUP BY GROUPING SETS ((kind), (kind), ()) ORDER BY kind NULLS FIRST, n",
            true,
        ),
        // DISTINCT on a chunk key becomes a GROUP BY (kind, step) underneath: taken.
        ("SELECT kind, count(DISTINCT step) AS steps FROM grad_values GROUP BY kind ORDER BY kind", true),
        // Not taken: a group key or filter that varies within a chunk, FILTER on an aggregate.
        ("SELECT kind, count(DISTINCT value) AS distinct_values FROM grad_values GROUP BY kind ORDER BY kind", false),
        (
            "SELECT param, count(*) AS n, sum(value) AS s FROM grad_values WHERE value > 0 GROUP BY param ORDER BY param",
            false,
        ),
        (
            "SELECT idx % 3 AS r, count(*) AS n, sum(value) AS s FROM grad_values WHERE param = 'b' GROUP BY idx % 3 ORDER BY r",
            false,
        ),
        (
            "SELECT kind, count(*) FILTER (WHERE value > 0) AS positive FROM grad_values GROUP BY kind ORDER BY kind",
            false,
        ),
    ];
    for (sql, taken) in queries {
        let (expected, reference_plan) = run(&reference, sql).await;
        assert!(!reference_plan.contains(NODE), "{sql}: {reference_plan}");
        let (got, plan) = run(&chunked, sql).await;
        assert_eq!(plan.contains(NODE), taken, "{sql}: {plan}");
        assert!(expected.num_rows() > 0 || sql.contains("step < 0"), "{sql}: no rows");
        assert_same(sql, &expected, &got);
    }
}

/// A pool that refuses every reservation of the chunk-wise operator (and grants
/// all others): the operator then emits its partial states after every slice.
#[derive(Debug, Default)]
struct RefusingPool {
    inner: datafusion::execution::memory_pool::UnboundedMemoryPool,
}

impl std::fmt::Display for RefusingPool {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("refusing pool")
    }
}

impl datafusion::execution::memory_pool::MemoryPool for RefusingPool {
    fn name(&self) -> &str {
        "refusing"
    }

    fn grow(&self, reservation: &datafusion::execution::memory_pool::MemoryReservation, additional: usize) {
        self.inner.grow(reservation, additional)
    }

    fn shrink(&self, reservation: &datafusion::execution::memory_pool::MemoryReservation, shrink: usize) {
        self.inner.shrink(reservation, shrink)
    }

    fn try_grow(
        &self,
        reservation: &datafusion::execution::memory_pool::MemoryReservation,
        additional: usize,
    ) -> datafusion::common::Result<()> {
        if reservation.consumer().name().starts_with(NODE) && additional > 0 {
            return Err(datafusion::common::DataFusionError::ResourcesExhausted("refused for the test".into()));
        }
        self.inner.try_grow(reservation, additional)
    }

    fn reserved(&self) -> usize {
        self.inner.reserved()
    }
}

/// When the pool refuses the operator's memory, it emits the states gathered so
/// far and starts afresh; the final stage merges them into the same results.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_states_emitted_under_memory_pressure_merge_to_the_same_results() {
    let dir = tempfile::tempdir().unwrap();
    write_lake(dir.path());
    let chunked = LakeSession::open(dir.path(), &SessionOptions::default()).await.unwrap();
    let element_wise = SessionOptions { element_wise_aggregation: true, ..SessionOptions::default() };
    let reference = LakeSession::open(dir.path(), &element_wise).await.unwrap();
    let sql = "SELECT step, param, count(*) AS n, sum(value) AS s, max(abs(value)) AS m, hill_index(abs(value), 20) AS h FROM grad_values GROUP BY step, param ORDER BY step, param";
    let (expected, _) = run(&reference, sql).await;
    let plan = chunked.context().sql(sql).await.unwrap().create_physical_plan().await.unwrap();
    assert!(displayable(plan.as_ref()).indent(false).to_string().contains(NODE));
    let task = chunked.context().task_ctx();
    let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(RefusingPool::default()))
        .with_object_store_registry(task.runtime_env().object_store_registry.clone())
        .build_arc()
        .unwrap();
    let task = Arc::new(Arc::try_unwrap(task).unwrap_or_else(|_| panic!("a fresh task context")).with_runtime(runtime));
    let batches = datafusion::physical_plan::collect(plan.clone(), task).await.unwrap();
    let got = concat_batches(&plan.schema(), &batches).unwrap();
    assert_same(sql, &expected, &got);
}
