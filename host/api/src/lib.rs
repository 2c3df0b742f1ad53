//! The contract between graft's host and its native plugins: the traits the
//! four plugin kinds implement, the sink a service input hands metrics to,
//! a plugin's own counters, and how a call fails.
//!
//! Built-in plugins implement these traits directly; the host wraps WASM
//! plugins in types that implement them too, so the pipeline never knows
//! which is which. The data those calls carry (the batch, the errors a
//! plugin returns on purpose) lives in `graft-core`, which guests share;
//! this crate is host-side only (it brings tokio and async-trait).
//!
//! Layout:
//! - [`kinds`]: [`Input`], [`Processor`], [`Aggregator`], [`Output`]
//! - [`sink`]: [`MetricSink`], where a service input sends what it receives
//! - [`ack`]: [`Ack`], the acknowledgement a batch carries to the outputs
//! - [`counters`]: a plugin's own named counters (limit hits, timeouts)
//! - [`error`]: [`CallError`] keeps a plugin's returned error apart from a
//!   [`Fault`]

pub mod ack;
pub mod counters;
pub mod error;
pub mod kinds;
pub mod sink;

pub use ack::{Ack, Delivery, Undelivered};
pub use error::{CallError, Fault, FaultKind};
pub use kinds::{Aggregator, Input, Output, Processor};
pub use sink::{MetricSink, Received, SinkClosed};
