//! An output's buffer: where metrics wait between the fan-out and the
//! output's writes. In memory by default (Telegraf's semantics, see
//! [`memory`]).
//!
//! Writes go through [`OutputBuffer::take`], then [`OutputBuffer::commit`]
//! once the batch is written (or rejected for good) or
//! [`OutputBuffer::restore`] when it is to be retried.
//!
//! The buffer is shared (`Arc`) and owned apart from the task that writes
//! it, so that it can outlive a pipeline and be handed to the next one.

pub mod memory;

use std::sync::Arc;

use graft_api::Ack;
use graft_core::Batch;
use tokio::sync::Notify;

use memory::MemoryBuffer;

/// One output's buffer.
pub struct OutputBuffer {
    store: Store,
    /// Signalled when a full batch is waiting.
    pub batch_ready: Arc<Notify>,
}

enum Store {
    Memory(MemoryBuffer),
}

/// Metrics taken for a write, until they are committed or restored.
pub struct Taken {
    pub batch: Arc<Batch>,
    token: Token,
}

enum Token {
    /// The acknowledgements of the batches taken whole.
    Memory(Vec<Ack>),
}

impl OutputBuffer {
    /// A memory buffer of `limit` metrics that signals at `batch_size`.
    pub fn memory(limit: usize, batch_size: usize) -> Self {
        let batch_ready = Arc::new(Notify::new());
        Self {
            store: Store::Memory(MemoryBuffer::new(limit, batch_size, batch_ready.clone())),
            batch_ready,
        }
    }

    /// Metrics waiting.
    pub fn len(&self) -> usize {
        match &self.store {
            Store::Memory(m) => m.len(),
        }
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Capacity in metrics.
    pub fn limit(&self) -> usize {
        match &self.store {
            Store::Memory(m) => m.limit(),
        }
    }

    /// New limits, for an output whose settings changed in a reload; takes
    /// effect with the next batch added.
    pub fn resize(&self, limit: usize, batch_size: usize) {
        match &self.store {
            Store::Memory(m) => m.resize(limit, batch_size),
        }
    }

    /// Add a batch, held by `ack` until written (or durable); returns how
    /// many of the oldest metrics were dropped to make room.
    pub fn add(&self, batch: Arc<Batch>, ack: Option<Ack>) -> usize {
        match &self.store {
            Store::Memory(m) => m.add(batch, ack),
        }
    }

    /// The oldest metrics, at most `max`, for a write.
    pub fn take(&self, max: usize) -> Option<Taken> {
        match &self.store {
            Store::Memory(m) => m.take(max).map(|(batch, acks)| Taken {
                batch,
                token: Token::Memory(acks),
            }),
        }
    }

    /// The taken metrics are written, or rejected for good: they are done.
    pub fn commit(&self, taken: Taken) {
        match taken.token {
            // Dropping the holds settles the batches taken whole.
            Token::Memory(acks) => drop(acks),
        }
    }

    /// The write failed: `rest` (or, when `None`, all the taken metrics)
    /// goes back to the front for a retry. Returns how many metrics did
    /// not fit and were dropped.
    pub fn restore(&self, taken: Taken, rest: Option<Batch>) -> usize {
        let batch = rest.map_or(taken.batch, Arc::new);
        match (&self.store, taken.token) {
            (Store::Memory(m), Token::Memory(acks)) => m.restore(batch, acks),
        }
    }

    /// Metrics dropped since the last call, for the overflow warning.
    pub fn take_dropped(&self) -> u64 {
        match &self.store {
            Store::Memory(m) => m.take_dropped(),
        }
    }

    /// graft stops with metrics still here: returns how many are lost (their
    /// acknowledgements fail).
    pub fn discard(&self) -> usize {
        match &self.store {
            Store::Memory(m) => m.discard(),
        }
    }
}
