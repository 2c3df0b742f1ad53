//! A running aggregator on its own thread: it takes every batch of its
//! period, pushes the aggregates at the period's end (aligned to the period
//! when round_interval is on), resets, and sends them to the outputs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use graft_api::{Aggregator, CallError};
use graft_core::Batch;

use super::fanout::Fanout;
use crate::config::section::MetricModifiers;
use crate::filter::MetricFilter;
use crate::stats::{PluginId, PluginStats};

/// One aggregator and what graft does around it.
pub struct RunningAggregator {
    pub id: PluginId,
    pub period: Duration,
    pub drop_original: bool,
    pub modifiers: MetricModifiers,
    pub filter: MetricFilter,
    pub global_tags: Arc<BTreeMap<String, String>>,
    pub plugin: Box<dyn Aggregator>,
    pub stats: Arc<PluginStats>,
    /// Entered by the aggregator's thread: log lines carry the plugin's
    /// section and alias.
    pub span: tracing::Span,
}

impl RunningAggregator {
    fn report(&self, what: &str, e: CallError) {
        PluginStats::add(&self.stats.errors, 1);
        if let CallError::Fault(f) = &e {
            self.stats.fault(f.kind);
        }
        tracing::warn!(error = %e, "{what} failed; the aggregator goes on with the next batch");
    }

    /// Take the metrics of a batch that pass the aggregator's selectors
    /// (after its modifiers) into the current period.
    pub fn add(&mut self, batch: &Batch) {
        let filtered;
        let batch = if self.filter.selects() || self.filter.modifies() {
            let mut own = batch.clone();
            let mut n = self.filter.select_batch(&mut own);
            n += self.filter.modify_batch(&mut own);
            PluginStats::add(&self.stats.metrics_filtered, n as u64);
            filtered = own;
            &filtered
        } else {
            batch
        };
        if batch.is_empty() {
            return;
        }
        PluginStats::add(&self.stats.metrics_processed, batch.len() as u64);
        if let Err(e) = self.plugin.add(batch) {
            self.report("add", e);
        }
    }

    /// Push the period's aggregates and reset.
    pub fn push(&mut self) -> Option<Batch> {
        let out = match self.plugin.push() {
            Ok(mut b) => {
                super::modify::apply(&mut b, &self.modifiers, &self.global_tags, Duration::ZERO);
                PluginStats::add(&self.stats.metrics_pushed, b.len() as u64);
                Some(b)
            }
            Err(e) => {
                self.report("push", e);
                None
            }
        };
        if let Err(e) = self.plugin.reset() {
            self.report("reset", e);
        }
        out.filter(|b| !b.is_empty())
    }
}

/// The processor chain's end of an aggregator's queue. The chain never
/// waits on an aggregator: a batch that finds the queue full (the
/// aggregator is busy in a long call) is dropped for that aggregator
/// alone, counted in its `metrics_dropped`, and logged once per stall —
/// unless the feed `waits` (one gather, `--once`: nothing is dropped).
pub struct AggregatorFeed {
    tx: SyncSender<Arc<Batch>>,
    waits: bool,
    span: tracing::Span,
    stats: Arc<PluginStats>,
    stalled: AtomicBool,
}

impl AggregatorFeed {
    pub fn new(
        tx: SyncSender<Arc<Batch>>,
        span: tracing::Span,
        stats: Arc<PluginStats>,
        waits: bool,
    ) -> Self {
        Self {
            tx,
            waits,
            span,
            stats,
            stalled: AtomicBool::new(false),
        }
    }

    /// Queue a batch for the aggregator, unless it is full.
    pub fn send(&self, batch: &Arc<Batch>) {
        if self.waits {
            // A stopped aggregator is already reported by its thread.
            let _ = self.tx.send(batch.clone());
            return;
        }
        match self.tx.try_send(batch.clone()) {
            Ok(()) => {
                if self.stalled.swap(false, Ordering::Relaxed) {
                    tracing::info!(parent: &self.span, "aggregator keeps up again");
                }
            }
            Err(TrySendError::Full(batch)) => {
                PluginStats::add(&self.stats.metrics_dropped, batch.len() as u64);
                if !self.stalled.swap(true, Ordering::Relaxed) {
                    tracing::warn!(parent: &self.span,
                        "aggregator's queue is full (a call in progress); batches are dropped for it until it catches up");
                }
            }
            // An aggregator that has stopped is already reported by its thread.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

fn until_period_end(period: Duration, round: bool) -> Duration {
    if !round {
        return period;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let p = period.as_nanos().max(1);
    Duration::from_nanos(((now / p + 1) * p - now) as u64)
}

/// When an aggregator pushes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Periods {
    /// At the end of every period (aligned to the period with `round`),
    /// and once more when the chain closes.
    Timed { round: bool },
    /// Only when the chain closes: one gather's worth (`--once`, `test`).
    AtEnd,
}

/// The aggregator's loop, until the chain closes its channel; then one last push.
pub fn run_aggregator(
    mut agg: RunningAggregator,
    rx: Receiver<Arc<Batch>>,
    fanout: Arc<Fanout>,
    periods: Periods,
) {
    let span = agg.span.clone();
    let _entered = span.enter();
    let round = match periods {
        Periods::Timed { round } => round,
        Periods::AtEnd => {
            while let Ok(batch) = rx.recv() {
                agg.add(&batch);
            }
            if let Some(out) = agg.push() {
                fanout.deliver(&Arc::new(out), None);
            }
            return;
        }
    };
    let mut deadline = Instant::now() + until_period_end(agg.period, round);
    loop {
        let timeout = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(timeout) {
            Ok(batch) => agg.add(&batch),
            Err(RecvTimeoutError::Timeout) => {
                if let Some(out) = agg.push() {
                    fanout.deliver(&Arc::new(out), None);
                }
                deadline += agg.period;
                if deadline < Instant::now() {
                    deadline = Instant::now() + until_period_end(agg.period, round);
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                if let Some(out) = agg.push() {
                    fanout.deliver(&Arc::new(out), None);
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use graft_core::BatchBuilder;

    fn batch(n: usize) -> Arc<Batch> {
        let mut b = BatchBuilder::new();
        for i in 0..n {
            b.metric("m", i as i64).field("x", 1.0);
        }
        Arc::new(b.finish())
    }

    #[test]
    fn a_full_queue_drops_for_that_aggregator_only_and_counts() {
        let (tx, rx) = std::sync::mpsc::sync_channel(2);
        let stats = Arc::new(PluginStats::default());
        let feed = AggregatorFeed::new(tx, tracing::Span::none(), stats.clone(), false);
        for n in [1, 2, 3, 4] {
            feed.send(&batch(n));
        }
        // The first two fit; the next two would have waited.
        assert_eq!(PluginStats::get(&stats.metrics_dropped), 3 + 4);
        assert_eq!(rx.try_recv().unwrap().len(), 1);
        assert_eq!(rx.try_recv().unwrap().len(), 2);
        // Once there is room, batches go through again.
        feed.send(&batch(5));
        assert_eq!(rx.try_recv().unwrap().len(), 5);
        assert_eq!(PluginStats::get(&stats.metrics_dropped), 7);
        // A stopped aggregator is not a drop.
        drop(rx);
        feed.send(&batch(6));
        assert_eq!(PluginStats::get(&stats.metrics_dropped), 7);
    }
}
