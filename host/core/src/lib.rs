//! The heart of graft that everything else shares: the metric model, the
//! columnar [`Batch`] that moves between pipeline stages, the errors a plugin
//! returns and the line-protocol codec.
//!
//! This crate is data and codecs only (no wasmtime, no tokio, no async), so
//! that built-in plugins, the host and WASM guests built with the SDK all
//! build on it. The traits the host calls plugins through live in
//! `graft-api`.
//!
//! Layout:
//! - [`batch`]: the columnar batch, its row view and symbol-level edits
//! - [`builder`]: building batches metric by metric
//! - [`strings`]: the per-batch string table
//! - [`value`]: field values, borrowed and symbolic
//! - [`kind`]: what a metric's values mean over time (counter, gauge, ...)
//! - [`lineproto`]: InfluxDB line protocol, as Telegraf writes it
//! - [`lineparse`]: InfluxDB line protocol parser
//! - [`plugin`]: the errors a plugin returns on purpose

pub mod batch;
pub mod builder;
pub mod kind;
pub mod lineparse;
pub mod lineproto;
pub mod plugin;
pub mod strings;
pub mod units;
pub mod value;

pub use batch::{Batch, BatchError, BatchParts, MetricRef};
pub use builder::{BatchBuilder, MetricBuilder};
pub use kind::MetricKind;
pub use plugin::{PluginError, WriteError};
pub use strings::{StringTable, Sym};
pub use value::{FieldRef, Value};
