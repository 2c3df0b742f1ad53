//! A running aggregator on its own thread: it takes every batch of its
//! period, pushes the aggregates at the period's end (aligned to the period
//! when round_interval is on), resets, and sends them to the outputs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use graft_core::{Aggregator, Batch, CallError};

use super::process::Fanout;
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
}

impl RunningAggregator {
    fn report(&self, what: &str, e: CallError) {
        PluginStats::add(&self.stats.errors, 1);
        if let CallError::Fault(f) = &e {
            self.stats.fault(f.kind);
        }
        tracing::warn!(plugin = %self.id, "{what} failed: {e}");
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
                PluginStats::add(&self.stats.metrics_gathered, b.len() as u64);
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

/// The aggregator's loop, until the chain closes its channel; then one last push.
pub fn run_aggregator(
    mut agg: RunningAggregator,
    rx: Receiver<Arc<Batch>>,
    fanout: Arc<Fanout>,
    round: bool,
) {
    let mut deadline = Instant::now() + until_period_end(agg.period, round);
    loop {
        let timeout = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(timeout) {
            Ok(batch) => agg.add(&batch),
            Err(RecvTimeoutError::Timeout) => {
                if let Some(out) = agg.push() {
                    fanout.deliver(&Arc::new(out));
                }
                deadline += agg.period;
                if deadline < Instant::now() {
                    deadline = Instant::now() + until_period_end(agg.period, round);
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                if let Some(out) = agg.push() {
                    fanout.deliver(&Arc::new(out));
                }
                return;
            }
        }
    }
}
