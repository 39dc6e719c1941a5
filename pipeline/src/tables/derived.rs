//! The derived tables of the lake, `grad_values` and `grad_vectors`: one
//! table provider over `grads` for both (keys, filter pushdown), each with its
//! own operator ([`super::grad_values`], [`super::grad_vectors`]).

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::Result as DfResult;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;

use super::grads_scan::{PARAMS_QUERY, ParamIndex, dict};
use super::{grad_values, grad_vectors};
use crate::error::Result;

/// Registers `grad_values` and `grad_vectors`.
pub(crate) async fn register(ctx: &SessionContext) -> Result<()> {
    let params = ctx.sql(PARAMS_QUERY).await?.collect().await?;
    let params = Arc::new(ParamIndex::from_batches(&params)?);
    let grads = ctx.table_provider("grads").await?;
    for derived in [Derived::Values, Derived::Vectors] {
        ctx.register_table(derived.name(), Arc::new(GradsTable::new(grads.clone(), params.clone(), derived)))?;
    }
    Ok(())
}

/// Which derived table.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Derived {
    /// `grad_values`: one row per element.
    Values,
    /// `grad_vectors`: one row per tensor.
    Vectors,
}

impl Derived {
    fn name(self) -> &'static str {
        match self {
            Derived::Values => "grad_values",
            Derived::Vectors => "grad_vectors",
        }
    }
}

/// A table derived from `grads`: the keys `run, step, kind, sample,
/// param_id, param`, then its own columns.
#[derive(Debug)]
pub(crate) struct GradsTable {
    pub grads: Arc<dyn TableProvider>,
    pub params: Arc<ParamIndex>,
    pub schema: SchemaRef,
    derived: Derived,
}

/// The full schema of a derived table.
pub(crate) fn derived_schema(derived: Derived) -> SchemaRef {
    let mut fields = vec![
        Field::new("run", dict(), true),
        Field::new("step", DataType::Int64, false),
        Field::new("kind", dict(), false),
        Field::new("sample", DataType::Int64, false),
        Field::new("param_id", DataType::Int32, false),
        Field::new("param", dict(), true),
    ];
    fields.extend(match derived {
        Derived::Values => grad_values::value_fields(),
        Derived::Vectors => grad_vectors::value_fields(),
    });
    Arc::new(Schema::new(fields))
}

impl GradsTable {
    fn new(grads: Arc<dyn TableProvider>, params: Arc<ParamIndex>, derived: Derived) -> Self {
        Self { grads, params, schema: derived_schema(derived), derived }
    }
}

#[async_trait]
impl TableProvider for GradsTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(self.params.pushdown(filters))
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let output: Vec<usize> = projection.cloned().unwrap_or_else(|| (0..self.schema.fields().len()).collect());
        match self.derived {
            Derived::Values => grad_values::plan(&self.grads, &self.params, &self.schema, state, output, filters).await,
            Derived::Vectors => {
                grad_vectors::plan(&self.grads, &self.params, &self.schema, state, output, filters).await
            }
        }
    }
}
