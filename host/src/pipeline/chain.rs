//! The processor chain: processors run in order on a thread of their own
//! (their calls are CPU work, WASM or native), then each batch goes, shared,
//! to every aggregator's queue and (through the [`Fanout`]) every output's
//! buffer. A reload swaps processors and aggregators between two batches.

use std::sync::Arc;
use std::time::Instant;

use graft_api::{Ack, CallError, Processor};
use graft_core::Batch;

use super::aggregate::AggregatorFeed;
use super::fanout::Fanout;
use crate::filter::MetricFilter;
use crate::stats::{PluginId, PluginStats};

/// What to do with a batch when a processor fails on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OnError {
    /// Pass the batch on unchanged (default): no metric is lost.
    #[default]
    Pass,
    /// Drop the batch.
    Drop,
}

/// One processor and what graft does around it.
pub struct RunningProcessor {
    pub id: PluginId,
    pub order: i64,
    pub on_error: OnError,
    pub filter: MetricFilter,
    pub plugin: Box<dyn Processor>,
    pub stats: Arc<PluginStats>,
    /// Entered around every call: log lines carry the plugin's section
    /// and alias.
    pub span: tracing::Span,
}

impl RunningProcessor {
    /// Run on the metrics of `batch` that pass the processor's selectors
    /// (after its modifiers); the others bypass it. False when nothing is left.
    pub fn process(&mut self, batch: &mut Batch) -> bool {
        if !self.filter.selects() && !self.filter.modifies() {
            return self.process_all(batch);
        }
        let whole = std::mem::take(batch);
        let (mut selected, bypass) = if self.filter.selects() {
            whole.partition(|m| self.filter.select(m))
        } else {
            (whole, Batch::new())
        };
        self.filter.modify_batch(&mut selected);
        if !selected.is_empty() && !self.process_all(&mut selected) {
            selected = Batch::new();
        }
        selected.append(&bypass);
        *batch = selected;
        !batch.is_empty()
    }

    /// Run on the whole batch; false when the batch is to be dropped.
    fn process_all(&mut self, batch: &mut Batch) -> bool {
        let n = batch.len();
        let _entered = self.span.enter();
        let started = Instant::now();
        let result = self.plugin.process(batch);
        PluginStats::add(
            &self.stats.call_time_ns,
            started.elapsed().as_nanos() as u64,
        );
        PluginStats::add(&self.stats.metrics_processed, n as u64);
        let reason = match result {
            Ok(()) => return true,
            Err(CallError::Returned(e)) => e.to_string(),
            Err(CallError::Fault(f)) => {
                self.stats.fault(f.kind);
                f.to_string()
            }
        };
        PluginStats::add(&self.stats.errors, 1);
        match self.on_error {
            OnError::Pass => {
                tracing::warn!(metrics = n, error = %reason, "processing failed; the batch is passed on unchanged");
                true
            }
            OnError::Drop => {
                PluginStats::add(&self.stats.metrics_dropped, n as u64);
                tracing::warn!(metrics = n, error = %reason, "processing failed; the batch is dropped (on_error = \"drop\")");
                false
            }
        }
    }
}

/// Run every processor in order; `None` when a processor dropped the batch.
pub fn run_all(processors: &mut [RunningProcessor], mut batch: Batch) -> Option<Batch> {
    for p in processors {
        if batch.is_empty() || !p.process(&mut batch) {
            return None;
        }
    }
    (!batch.is_empty()).then_some(batch)
}

/// What flows into the processor chain: batches from the inputs, and (on a
/// reload) a new set of processors and aggregators, installed between two
/// batches.
// Batches are the traffic; moving one inline saves an allocation per batch.
#[allow(clippy::large_enum_variant)]
pub enum ChainMsg {
    /// A batch, with the acknowledgement its input waits on, if any.
    Batch(Batch, Option<Ack>),
    Swap(ChainSwap),
}

/// A plugin that keeps running across a reload, or its replacement.
pub enum Slot<T> {
    /// The running plugin at this index (in the chain's current order).
    Keep(usize),
    New(T),
}

/// The chain after a reload.
pub struct ChainSwap {
    pub processors: Vec<Slot<RunningProcessor>>,
    pub aggregators: Vec<Slot<AggregatorFeed>>,
    pub pass_originals: bool,
    /// Told once the new chain is in place.
    pub done: tokio::sync::oneshot::Sender<()>,
}

/// Take the kept items out of `old` in the order `slots` asks for; what is
/// not kept is dropped.
fn reslot<T>(old: Vec<T>, slots: Vec<Slot<T>>) -> Vec<T> {
    let mut old: Vec<Option<T>> = old.into_iter().map(Some).collect();
    slots
        .into_iter()
        .filter_map(|s| match s {
            Slot::Keep(i) => old.get_mut(i).and_then(Option::take),
            Slot::New(t) => Some(t),
        })
        .collect()
}

/// The chain's loop: until every input is gone, process each batch and pass
/// it to the aggregators and (unless an aggregator drops originals) outputs.
pub fn run_chain(
    mut rx: tokio::sync::mpsc::Receiver<ChainMsg>,
    mut processors: Vec<RunningProcessor>,
    mut aggregators: Vec<AggregatorFeed>,
    mut pass_originals: bool,
    fanout: Arc<Fanout>,
) {
    while let Some(msg) = rx.blocking_recv() {
        let batch = match msg {
            ChainMsg::Batch(b, ack) => (b, ack),
            ChainMsg::Swap(swap) => {
                processors = reslot(std::mem::take(&mut processors), swap.processors);
                aggregators = reslot(std::mem::take(&mut aggregators), swap.aggregators);
                pass_originals = swap.pass_originals;
                let _ = swap.done.send(());
                continue;
            }
        };
        let (batch, ack) = batch;
        // A batch the processors drop entirely is settled (delivered) as its
        // acknowledgement goes out of scope.
        let Some(batch) = run_all(&mut processors, batch) else {
            continue;
        };
        let batch = Arc::new(batch);
        for agg in &aggregators {
            agg.send(&batch);
        }
        if pass_originals {
            fanout.deliver(&batch, ack.as_ref());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reslot_keeps_moves_and_replaces() {
        let out = reslot(
            vec!["a", "b", "c"],
            vec![Slot::Keep(2), Slot::New("x"), Slot::Keep(0), Slot::Keep(0)],
        );
        // A slot kept twice is kept once; "b" is dropped.
        assert_eq!(out, vec!["c", "x", "a"]);
    }
}
