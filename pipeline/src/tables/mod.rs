//! The lake's derived tables and the operators behind them.
//!
//! * [`derived`] — the table provider of `grad_values` and `grad_vectors`
//!   (their schemas, filter pushdown) and their registration.
//! * [`grad_values`] — one row per gradient element: [`Explode`].
//! * [`grad_vectors`] — one row per tensor: [`Assemble`].
//! * [`grad_values_aggregate`] — the physical optimizer rule that aggregates
//!   `grad_values` chunk by chunk ([`ChunkAggregation`]).
//! * [`grads_exec`] — the execution plan node the operators share.
//! * [`grads_scan`] — the `grads` scan they all read from, with the param index.
//! * [`verify`] — the `grads` table itself: every read of `values` checked
//!   against the chunk's checksum ([`VerifiedGrads`], [`Verify`]).
//!
//! Imports point one way: `derived` → `grad_values`, `grad_vectors` →
//! `grads_scan` → `verify` → `grads_exec`; the aggregate rule uses `grad_values`.

mod derived;
mod grad_values;
mod grad_values_aggregate;
mod grad_vectors;
mod grads_exec;
mod grads_scan;
mod verify;

pub(crate) use derived::{Derived, derived_schema, register};
pub(crate) use grad_values::Explode;
pub use grad_values_aggregate::ChunkAggregation;
pub(crate) use grad_values_aggregate::rewrite_worker_plan;
pub(crate) use grad_vectors::Assemble;
pub(crate) use grads_exec::GradsExec;
pub(crate) use grads_scan::ParamIndex;
pub(crate) use verify::{VerifiedGrads, Verify, reading_schema};
