//! The four plugin kinds as traits, and how their calls fail.
//!
//! Built-in plugins implement these directly; WASM plugins are wrapped by the
//! host in types that implement them too, so the pipeline never knows which
//! is which. A call fails in one of two ways that the types keep apart: the
//! plugin *returned* an error ([`CallError::Returned`]: counted, the batch is
//! handled per policy) or the plugin *faulted* ([`CallError::Fault`]: a trap,
//! a deadline, a memory cap or a broken contract; the instance is poisoned
//! and replaced).

use async_trait::async_trait;

use crate::batch::Batch;

/// An error a plugin reports on purpose.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", field.as_ref().map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct PluginError {
    /// What went wrong.
    pub message: String,
    /// The configuration key at fault, when the error is about configuration.
    pub field: Option<String>,
}

impl PluginError {
    /// An error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            field: None,
        }
    }

    /// An error about configuration key `field`.
    pub fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            field: Some(field.into()),
        }
    }
}

/// Why an output could not write a batch, and what the host does next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// Transient: keep the whole batch and write it again later.
    #[error("retry later: {0}")]
    Retry(String),
    /// The metrics will never be accepted: count and drop them.
    #[error("rejected: {0}")]
    Reject(String),
    /// Some metrics (indices into the batch) were accepted, some rejected;
    /// the rest are kept and written again.
    #[error("partially written: {message}")]
    Partial {
        accepted: Vec<u32>,
        rejected: Vec<u32>,
        message: String,
    },
}

/// What kind of fault poisoned a plugin instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The plugin trapped (a panic, `unreachable`, a stack overflow...).
    Trap,
    /// The call ran past its deadline.
    Deadline,
    /// The plugin tried to grow its memory past its cap.
    Memory,
    /// The call used up its fuel (`limits.fuel`).
    Fuel,
    /// The plugin returned data that breaks the contract.
    Contract,
    /// The instance could not be created or initialised.
    Start,
    /// No call was made: the instance is waiting out its backoff after a
    /// fault. Not a fault of its own.
    Restarting,
}

impl FaultKind {
    /// Name used in logs and self-metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            FaultKind::Trap => "trap",
            FaultKind::Deadline => "deadline",
            FaultKind::Memory => "memory",
            FaultKind::Fuel => "fuel",
            FaultKind::Contract => "contract",
            FaultKind::Start => "start",
            FaultKind::Restarting => "restarting",
        }
    }
}

/// A plugin fault: the instance is no longer trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} fault: {message}", kind.as_str())]
pub struct Fault {
    pub kind: FaultKind,
    pub message: String,
}

/// How a plugin call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError<E = PluginError> {
    /// The plugin returned an error.
    #[error(transparent)]
    Returned(E),
    /// The plugin faulted.
    #[error(transparent)]
    Fault(Fault),
}

impl<E> From<Fault> for CallError<E> {
    fn from(f: Fault) -> Self {
        CallError::Fault(f)
    }
}

impl From<PluginError> for CallError<PluginError> {
    fn from(e: PluginError) -> Self {
        CallError::Returned(e)
    }
}

impl From<WriteError> for CallError<WriteError> {
    fn from(e: WriteError) -> Self {
        CallError::Returned(e)
    }
}

/// Produces metrics on the host's schedule, or (a service input such as a
/// listener) whenever they arrive.
#[async_trait]
pub trait Input: Send {
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

/// Where a service input hands what it receives. Cheap to clone; sending
/// waits while the pipeline is full, which is the listener's backpressure.
#[derive(Clone)]
pub struct MetricSink {
    tx: tokio::sync::mpsc::Sender<Batch>,
    undelivered: std::sync::Arc<dyn Fn() -> u64 + Send + Sync>,
    malformed: std::sync::Arc<std::sync::atomic::AtomicU64>,
    counters: std::sync::Arc<crate::counters::Counters>,
}

/// The pipeline behind a [`MetricSink`] has shut down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the pipeline is shutting down")]
pub struct SinkClosed;

impl MetricSink {
    /// A sink sending to `tx`; `undelivered` tells how many metrics wait in
    /// the outputs' buffers (the most any one output holds); `malformed`
    /// counts input the plugin had to skip.
    pub fn new(
        tx: tokio::sync::mpsc::Sender<Batch>,
        undelivered: std::sync::Arc<dyn Fn() -> u64 + Send + Sync>,
        malformed: std::sync::Arc<std::sync::atomic::AtomicU64>,
    ) -> Self {
        Self {
            tx,
            undelivered,
            malformed,
            counters: Default::default(),
        }
    }

    /// Keep the plugin's own counters in `counters` (the host's, so that
    /// `inputs.internal` shows them).
    pub fn with_counters(mut self, counters: std::sync::Arc<crate::counters::Counters>) -> Self {
        self.counters = counters;
        self
    }

    /// The plugin's own counter `name` (see [`crate::counters::Counters`]).
    pub fn counter(&self, name: &'static str) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
        self.counters.counter(name)
    }

    /// A sink with its receiving end, for running a service input alone
    /// (tests, the conformance kit); `undelivered` is whatever it returns.
    pub fn channel(
        capacity: usize,
        undelivered: std::sync::Arc<dyn Fn() -> u64 + Send + Sync>,
    ) -> (Self, tokio::sync::mpsc::Receiver<Batch>) {
        let (tx, rx) = tokio::sync::mpsc::channel(capacity);
        (Self::new(tx, undelivered, Default::default()), rx)
    }

    /// Count `n` lines, frames or packets that could not be read and were
    /// skipped.
    pub fn malformed(&self, n: u64) {
        self.malformed
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// How many were counted by [`MetricSink::malformed`].
    pub fn malformed_count(&self) -> u64 {
        self.malformed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Hand a batch to the pipeline, waiting while it is full.
    pub async fn send(&self, batch: Batch) -> Result<(), SinkClosed> {
        if batch.is_empty() {
            return Ok(());
        }
        self.tx.send(batch).await.map_err(|_| SinkClosed)
    }

    /// Metrics accepted by graft that no output has written yet.
    pub fn undelivered(&self) -> u64 {
        (self.undelivered)()
    }
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
    /// Open connections or files; called once before the first write. A
    /// failure here stops the agent from starting.
    async fn connect(&mut self) -> Result<(), PluginError> {
        Ok(())
    }

    /// Deliver one batch.
    async fn write(&mut self, batch: &Batch) -> Result<(), CallError<WriteError>>;

    /// Flush and release resources; called once at shutdown.
    async fn close(&mut self) -> Result<(), CallError<WriteError>> {
        Ok(())
    }
}
