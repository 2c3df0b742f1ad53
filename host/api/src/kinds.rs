//! The four plugin kinds as traits: what the pipeline calls on a built-in
//! plugin, or on the host's wrapper around a WASM one.

use std::sync::Arc;

use async_trait::async_trait;
use graft_core::{Batch, PluginError, WriteError};

use crate::counters::Counters;
use crate::error::CallError;
use crate::sink::MetricSink;

/// Produces metrics on the host's schedule, or (a service input such as a
/// listener) whenever they arrive.
#[async_trait]
pub trait Input: Send {
    /// The plugin's own counters (limit hits, skipped lines), which
    /// `inputs.internal` shows beside the input's standard ones. Called
    /// once, before the first gather; by default the plugin keeps none.
    fn attach_counters(&mut self, counters: Arc<Counters>) {
        let _ = counters;
    }

    /// Collect one round of metrics. A service input may return an empty
    /// batch.
    async fn gather(&mut self) -> Result<Batch, CallError>;

    /// True for service inputs: the host calls [`Input::start`] before the
    /// first gather and [`Input::stop`] at shutdown.
    fn is_service(&self) -> bool {
        false
    }

    /// Start receiving (bind sockets, spawn tasks); what arrives goes to
    /// `sink`. A failure here stops the agent from starting.
    async fn start(&mut self, sink: MetricSink) -> Result<(), PluginError> {
        let _ = sink;
        Ok(())
    }

    /// Stop receiving. Everything accepted before this returns has been
    /// handed to the sink.
    async fn stop(&mut self) {}
}

/// Transforms batches. Pure CPU work: the host calls it off the reactor.
pub trait Processor: Send {
    /// Transform a batch in place. On error the batch is left as the plugin
    /// left it (a WASM plugin's input is restored untouched), and the host
    /// passes or drops it per the plugin's `on_error`.
    fn process(&mut self, batch: &mut Batch) -> Result<(), CallError>;
}

/// Summarises the metrics of a period.
pub trait Aggregator: Send {
    /// Take metrics of the current period into account.
    fn add(&mut self, batch: &Batch) -> Result<(), CallError>;
    /// The aggregates of the current period.
    fn push(&mut self) -> Result<Batch, CallError>;
    /// Forget the current period.
    fn reset(&mut self) -> Result<(), CallError>;
}

/// Delivers metrics somewhere.
#[async_trait]
pub trait Output: Send {
    /// The plugin's own counters (series kept, limit hits), which
    /// `inputs.internal` shows beside the output's standard ones. Called
    /// once, before [`Output::connect`]; by default the plugin keeps none.
    fn attach_counters(&mut self, counters: Arc<Counters>) {
        let _ = counters;
    }

    /// Open connections or files; called once before the first write. A
    /// failure here stops the agent from starting.
    async fn connect(&mut self) -> Result<(), PluginError> {
        Ok(())
    }

    /// Whether every destination answers now (`graft config check
    /// --connect`), without writing anything; an error names those that do
    /// not. By default, [`Output::connect`].
    async fn probe(&mut self) -> Result<(), PluginError> {
        self.connect().await
    }

    /// Deliver one batch.
    async fn write(&mut self, batch: &Batch) -> Result<(), CallError<WriteError>>;

    /// Flush and release resources; called once at shutdown.
    async fn close(&mut self) -> Result<(), CallError<WriteError>> {
        Ok(())
    }
}
