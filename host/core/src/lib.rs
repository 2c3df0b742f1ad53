//! The heart of graft that everything else shares: the metric model, the
//! columnar [`Batch`] that moves between pipeline stages, the plugin traits
//! and the line-protocol codec.
//!
//! This crate has no wasmtime dependency, so that built-in plugins, the host
//! and the guest SDK all build on it.
//!
//! Layout:
//! - [`batch`]: the columnar batch, its row view and symbol-level edits
//! - [`builder`]: building batches metric by metric
//! - [`counters`]: a plugin's own named counters (limit hits, timeouts)
//! - [`strings`]: the per-batch string table
//! - [`value`]: field values, borrowed and symbolic
//! - [`lineproto`]: InfluxDB line protocol, as Telegraf writes it
//! - [`lineparse`]: InfluxDB line protocol parser
//! - [`plugin`]: the traits every plugin kind implements, and their errors

pub mod batch;
pub mod builder;
pub mod counters;
pub mod lineparse;
pub mod lineproto;
pub mod plugin;
pub mod strings;
pub mod units;
pub mod value;

pub use batch::{Batch, BatchError, BatchParts, MetricRef};
pub use builder::{BatchBuilder, MetricBuilder};
pub use plugin::{
    Aggregator, CallError, Fault, FaultKind, Input, MetricSink, Output, PluginError, Processor,
    SinkClosed, WriteError,
};
pub use strings::{StringTable, Sym};
pub use value::{FieldRef, Value};
