//! How gradlake's operators cross the network: a [`PhysicalExtensionCodec`]
//! for `grad_values`' explode, `grad_vectors`' assembly and the verification
//! of `grads` values.
//!
//! Both are a [`GradsExec`] over a `grads` scan; the scan is DataFusion's own
//! Parquet node, which DataFusion encodes, so the codec only carries the
//! operator's settings: which output columns, whether values are assembled,
//! and the lake's param index (the `param` names), as a small JSON document
//! with a version. The output schema is the derived table's, projected.
//!
//! Every gradlake function is stateless beyond its literal arguments, so
//! workers resolve them by name from [`crate::register_all`]'s set; no
//! function needs a codec.

use std::sync::Arc;

use datafusion::common::{Result, internal_err, plan_err};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use serde::{Deserialize, Serialize};

use crate::tables::{Assemble, Derived, Explode, GradsExec, ParamIndex, Verify, derived_schema};

/// Version of the encoded form; a worker refuses any other.
const VERSION: u32 = 1;

/// The codec for gradlake's physical operators; register it on the coordinator
/// and on every worker.
#[derive(Debug, Default, Clone, Copy)]
pub struct GradlakeCodec;

/// What an encoded operator holds.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Encoded {
    version: u32,
    operator: Operator,
    /// Output columns: indices into the derived table's full schema.
    output: Vec<usize>,
    /// (run, param_id, param, numel) of every tensor of the lake.
    params: Vec<(String, i32, String, u64)>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
enum Operator {
    Explode,
    Assemble {
        with_values: bool,
    },
    /// `output` indexes the input's columns; `params` is empty.
    Verify,
}

impl PhysicalExtensionCodec for GradlakeCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        _ctx: &TaskContext,
        _converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let encoded: Encoded = serde_json::from_slice(buf)
            .or_else(|e| plan_err!("gradlake codec: not an encoded gradlake operator ({e})"))?;
        if encoded.version != VERSION {
            return plan_err!(
                "gradlake codec: operator encoded in version {}, this worker reads version {VERSION} (mixed gradlake versions?)",
                encoded.version
            );
        }
        let [input] = inputs else {
            return internal_err!("gradlake codec: an operator over grads has one input, got {}", inputs.len());
        };
        let params = Arc::new(ParamIndex::from_entries(&encoded.params));
        let project = |derived| {
            let schema = derived_schema(derived);
            if let Some(&bad) = encoded.output.iter().find(|&&i| i >= schema.fields().len()) {
                return plan_err!("gradlake codec: output column {bad} out of range");
            }
            Ok(Arc::new(schema.project(&encoded.output)?))
        };
        Ok(match encoded.operator {
            Operator::Explode => {
                let operator = Arc::new(Explode::new(params, encoded.output.clone()));
                Arc::new(GradsExec::new(input.clone(), operator, project(Derived::Values)?))
            }
            Operator::Assemble { with_values } => {
                let operator = Arc::new(Assemble::new(params, encoded.output.clone(), with_values));
                Arc::new(GradsExec::new(input.clone(), operator, project(Derived::Vectors)?))
            }
            Operator::Verify => Verify::plan(input.clone(), encoded.output)?,
        })
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        _converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let encoded = if let Some(exec) = node.downcast_ref::<GradsExec<Explode>>() {
            let (params, output) = exec.operator().parts();
            Encoded { version: VERSION, operator: Operator::Explode, output: output.to_vec(), params: params.entries() }
        } else if let Some(exec) = node.downcast_ref::<GradsExec<Assemble>>() {
            let (params, output, with_values) = exec.operator().parts();
            Encoded {
                version: VERSION,
                operator: Operator::Assemble { with_values },
                output: output.to_vec(),
                params: params.entries(),
            }
        } else if let Some(exec) = node.downcast_ref::<GradsExec<Verify>>() {
            Encoded {
                version: VERSION,
                operator: Operator::Verify,
                output: exec.operator().output().to_vec(),
                params: Vec::new(),
            }
        } else {
            return internal_err!("gradlake codec: cannot encode {}", node.name());
        };
        serde_json::to_writer(buf, &encoded).or_else(|e| internal_err!("gradlake codec: {e}"))
    }
}
