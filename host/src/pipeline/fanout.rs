//! The fan-out: hands each batch, shared, to every output's buffer, after
//! the output's own selectors. The set of outputs is swapped whole by a
//! reload, between two batches.

use std::sync::{Arc, RwLock};

use graft_api::Ack;
use graft_core::Batch;

use super::buffer::OutputBuffer;
use crate::filter::MetricFilter;
use crate::stats::{PluginId, PluginStats};

/// An output's buffer and counters, as the fan-out sees it.
#[derive(Clone)]
pub struct OutputSink {
    pub id: PluginId,
    pub filter: MetricFilter,
    pub buffer: Arc<OutputBuffer>,
    pub stats: Arc<PluginStats>,
}

/// Hands each batch to every output's buffer. The set of outputs can be
/// replaced while batches flow (a reload); a batch goes either to the old
/// set or to the new one, never half and half.
#[derive(Default)]
pub struct Fanout {
    sinks: RwLock<Arc<Vec<OutputSink>>>,
}

impl Fanout {
    pub fn new(sinks: Vec<OutputSink>) -> Self {
        Self {
            sinks: RwLock::new(Arc::new(sinks)),
        }
    }

    /// The outputs batches go to now.
    pub fn sinks(&self) -> Arc<Vec<OutputSink>> {
        self.sinks.read().expect("fanout lock").clone()
    }

    /// Send batches to `sinks` from now on.
    pub fn replace(&self, sinks: Vec<OutputSink>) {
        *self.sinks.write().expect("fanout lock") = Arc::new(sinks);
    }

    /// Most metrics any output's buffer holds.
    pub fn undelivered(&self) -> u64 {
        self.sinks()
            .iter()
            .map(|s| PluginStats::get(&s.stats.buffer_size))
            .max()
            .unwrap_or(0)
    }

    /// Deliver a batch to every output; each output's buffer holds `ack`
    /// until it has written the batch or keeps it on disk.
    pub fn deliver(&self, batch: &Arc<Batch>, ack: Option<&Ack>) {
        // Hold the read lock while delivering, so that a reload that replaces
        // an output's sink waits until this batch is in the old buffer.
        let sinks = self.sinks.read().expect("fanout lock");
        for sink in sinks.iter() {
            let batch = if sink.filter.selects() || sink.filter.modifies() {
                let mut own = (**batch).clone();
                let mut filtered = sink.filter.select_batch(&mut own);
                filtered += sink.filter.modify_batch(&mut own);
                PluginStats::add(&sink.stats.metrics_filtered, filtered as u64);
                Arc::new(own)
            } else {
                batch.clone()
            };
            if batch.is_empty() {
                continue;
            }
            let dropped = sink.buffer.add(batch.clone(), ack.cloned());
            PluginStats::add(&sink.stats.metrics_added, batch.len() as u64);
            if dropped > 0 {
                PluginStats::add(&sink.stats.metrics_dropped, dropped as u64);
            }
            sink.stats.buffer_size.store(
                sink.buffer.len() as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
    }
}
