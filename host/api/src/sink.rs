//! Where a service input (a listener) hands what it receives: a bounded
//! channel into the pipeline, plus the counters the input keeps on the way.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use graft_core::Batch;
use tokio::sync::mpsc;

use crate::ack::{Ack, Delivery};
use crate::counters::Counters;

/// Where a service input hands what it receives. Cheap to clone; sending
/// waits while the pipeline is full, which is the listener's backpressure.
#[derive(Clone)]
pub struct MetricSink {
    tx: mpsc::Sender<Received>,
    undelivered: Arc<dyn Fn() -> u64 + Send + Sync>,
    malformed: Arc<AtomicU64>,
    counters: Arc<Counters>,
}

/// A batch as the pipeline receives it from a service input, with its
/// acknowledgement when the input asked for one.
#[derive(Debug)]
pub struct Received {
    pub batch: Batch,
    pub ack: Option<Ack>,
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
        tx: mpsc::Sender<Received>,
        undelivered: Arc<dyn Fn() -> u64 + Send + Sync>,
        malformed: Arc<AtomicU64>,
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
    pub fn with_counters(mut self, counters: Arc<Counters>) -> Self {
        self.counters = counters;
        self
    }

    /// The plugin's own counter `name` (see [`Counters`]).
    pub fn counter(&self, name: &'static str) -> Arc<AtomicU64> {
        self.counters.counter(name)
    }

    /// A sink with its receiving end, for running a service input alone
    /// (tests, the conformance kit); `undelivered` is whatever it returns.
    pub fn channel(
        capacity: usize,
        undelivered: Arc<dyn Fn() -> u64 + Send + Sync>,
    ) -> (Self, mpsc::Receiver<Received>) {
        let (tx, rx) = mpsc::channel(capacity);
        (Self::new(tx, undelivered, Default::default()), rx)
    }

    /// Count `n` lines, frames or packets that could not be read and were
    /// skipped.
    pub fn malformed(&self, n: u64) {
        self.malformed.fetch_add(n, Ordering::Relaxed);
    }

    /// How many were counted by [`MetricSink::malformed`].
    pub fn malformed_count(&self) -> u64 {
        self.malformed.load(Ordering::Relaxed)
    }

    /// Hand a batch to the pipeline, waiting while it is full.
    pub async fn send(&self, batch: Batch) -> Result<(), SinkClosed> {
        if batch.is_empty() {
            return Ok(());
        }
        self.tx
            .send(Received { batch, ack: None })
            .await
            .map_err(|_| SinkClosed)
    }

    /// Hand a batch to the pipeline, waiting while it is full, and get the
    /// [`Delivery`] that resolves once every output has written it or holds
    /// it in a disk buffer (see [`crate::ack`]). An input that answers its
    /// peer only then gives at-least-once delivery from end to end.
    pub async fn send_acked(&self, batch: Batch) -> Result<Delivery, SinkClosed> {
        let (ack, delivery) = Ack::new();
        if batch.is_empty() {
            return Ok(delivery);
        }
        self.tx
            .send(Received {
                batch,
                ack: Some(ack),
            })
            .await
            .map_err(|_| SinkClosed)?;
        Ok(delivery)
    }

    /// Metrics accepted by graft that no output has written yet.
    pub fn undelivered(&self) -> u64 {
        (self.undelivered)()
    }
}

#[cfg(test)]
mod tests {
    use graft_core::BatchBuilder;

    use super::*;

    fn one_metric() -> Batch {
        let mut b = BatchBuilder::new();
        b.metric("cpu", 1).field("usage_idle", 97.0);
        b.finish()
    }

    #[tokio::test]
    async fn a_sink_sends_batches_skips_empty_ones_and_says_when_closed() {
        let (sink, mut rx) = MetricSink::channel(4, Arc::new(|| 7));
        sink.send(Batch::default()).await.unwrap();
        sink.send(one_metric()).await.unwrap();
        assert_eq!(rx.recv().await.map(|r| r.batch.len()), Some(1));
        assert!(rx.try_recv().is_err(), "the empty batch was not sent");
        assert_eq!(sink.undelivered(), 7);

        sink.malformed(2);
        sink.clone().malformed(1);
        assert_eq!(sink.malformed_count(), 3);

        drop(rx);
        assert_eq!(sink.send(one_metric()).await, Err(SinkClosed));
    }

    #[test]
    fn a_sinks_counters_are_the_hosts() {
        let (tx, _rx) = mpsc::channel(1);
        let counters = Arc::new(Counters::default());
        let sink =
            MetricSink::new(tx, Arc::new(|| 0), Default::default()).with_counters(counters.clone());
        sink.counter("frame_size_limit_hits")
            .fetch_add(1, Ordering::Relaxed);
        assert_eq!(counters.snapshot(), [("frame_size_limit_hits", 1)]);
    }
}
