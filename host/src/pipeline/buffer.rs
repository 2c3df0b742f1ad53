//! An output's buffer, with Telegraf's semantics: at most
//! `metric_buffer_limit` metrics; when full the oldest are dropped and
//! counted; writes take the oldest `metric_batch_size` metrics; a failed
//! batch goes back to the front, as much of it as still fits.
//!
//! The buffer is shared (`Arc`) and owned apart from the task that writes
//! it, so that it can outlive a pipeline and be handed to the next one.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use graft_core::Batch;
use tokio::sync::Notify;

/// A run of metrics `start..` of a shared batch.
struct Chunk {
    batch: Arc<Batch>,
    start: usize,
}

impl Chunk {
    fn remaining(&self) -> usize {
        self.batch.len() - self.start
    }
}

#[derive(Default)]
struct State {
    queue: VecDeque<Chunk>,
    len: usize,
    dropped_unreported: u64,
}

/// One output's buffer.
pub struct OutputBuffer {
    state: Mutex<State>,
    limit: AtomicUsize,
    batch_size: AtomicUsize,
    /// Signalled when a full batch is waiting.
    pub batch_ready: Notify,
}

impl OutputBuffer {
    /// A buffer of `limit` metrics that signals at `batch_size`.
    pub fn new(limit: usize, batch_size: usize) -> Self {
        Self {
            state: Mutex::default(),
            limit: AtomicUsize::new(limit.max(1)),
            batch_size: AtomicUsize::new(batch_size.max(1)),
            batch_ready: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("buffer lock")
    }

    /// Metrics waiting.
    pub fn len(&self) -> usize {
        self.lock().len
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Capacity in metrics.
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    fn batch_size(&self) -> usize {
        self.batch_size.load(Ordering::Relaxed)
    }

    /// New limits, for an output whose settings changed in a reload; takes
    /// effect with the next batch added.
    pub fn resize(&self, limit: usize, batch_size: usize) {
        self.limit.store(limit.max(1), Ordering::Relaxed);
        self.batch_size.store(batch_size.max(1), Ordering::Relaxed);
    }

    /// Add a batch; returns how many of the oldest metrics were dropped to
    /// make room.
    pub fn add(&self, batch: Arc<Batch>) -> usize {
        if batch.is_empty() {
            return 0;
        }
        let mut s = self.lock();
        s.len += batch.len();
        s.queue.push_back(Chunk { batch, start: 0 });
        let mut dropped = 0;
        while s.len > self.limit() {
            let excess = s.len - self.limit();
            let front = s
                .queue
                .front_mut()
                .expect("a buffer over its limit holds chunks");
            let n = front.remaining().min(excess);
            front.start += n;
            if front.remaining() == 0 {
                s.queue.pop_front();
            }
            s.len -= n;
            dropped += n;
        }
        s.dropped_unreported += dropped as u64;
        let ready = s.len >= self.batch_size();
        drop(s);
        if ready {
            self.batch_ready.notify_one();
        }
        dropped
    }

    /// Remove and return the oldest metrics, at most `max`.
    pub fn take(&self, max: usize) -> Option<Arc<Batch>> {
        let mut s = self.lock();
        let front = s.queue.front()?;
        if front.start == 0 && front.batch.len() <= max && s.queue.len() == 1 {
            let chunk = s.queue.pop_front().expect("front exists");
            s.len -= chunk.batch.len();
            return Some(chunk.batch);
        }
        let mut out = Batch::new();
        while out.len() < max {
            let Some(front) = s.queue.front_mut() else {
                break;
            };
            let n = front.remaining().min(max - out.len());
            out.extend_from(&front.batch, front.start..front.start + n);
            front.start += n;
            if front.remaining() == 0 {
                s.queue.pop_front();
            }
            s.len -= n;
        }
        Some(Arc::new(out))
    }

    /// Put metrics that failed to write back at the front, as many as fit
    /// (the oldest first); returns how many did not fit and were dropped.
    pub fn restore(&self, batch: Arc<Batch>) -> usize {
        let mut s = self.lock();
        let room = self.limit().saturating_sub(s.len);
        let n = batch.len();
        let (kept, dropped) = if n <= room {
            (batch, 0)
        } else {
            (Arc::new(batch.slice(0..room)), n - room)
        };
        if !kept.is_empty() {
            s.len += kept.len();
            s.queue.push_front(Chunk {
                batch: kept,
                start: 0,
            });
        }
        s.dropped_unreported += dropped as u64;
        dropped
    }

    /// Metrics dropped since the last call, for the overflow warning.
    pub fn take_dropped(&self) -> u64 {
        std::mem::take(&mut self.lock().dropped_unreported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use graft_core::BatchBuilder;

    fn batch(from: i64, n: i64) -> Arc<Batch> {
        let mut b = BatchBuilder::new();
        for i in from..from + n {
            b.metric("m", i).field("seq", i);
        }
        Arc::new(b.finish())
    }

    fn seqs(b: &Batch) -> Vec<i64> {
        b.iter().map(|m| m.timestamp()).collect()
    }

    #[test]
    fn drops_oldest_when_full() {
        let buf = OutputBuffer::new(5, 2);
        assert_eq!(buf.add(batch(0, 3)), 0);
        assert_eq!(buf.add(batch(3, 4)), 2);
        assert_eq!(buf.len(), 5);
        assert_eq!(buf.take_dropped(), 2);
        assert_eq!(buf.take_dropped(), 0);
        assert_eq!(seqs(&buf.take(10).unwrap()), [2, 3, 4, 5, 6]);
        assert!(buf.take(10).is_none());
    }

    #[test]
    fn takes_batches_across_chunks_oldest_first() {
        let buf = OutputBuffer::new(100, 4);
        buf.add(batch(0, 3));
        buf.add(batch(3, 3));
        assert_eq!(seqs(&buf.take(4).unwrap()), [0, 1, 2, 3]);
        assert_eq!(seqs(&buf.take(4).unwrap()), [4, 5]);
    }

    #[test]
    fn a_whole_single_batch_is_handed_over_without_copy() {
        let buf = OutputBuffer::new(100, 4);
        let b = batch(0, 3);
        buf.add(b.clone());
        assert!(Arc::ptr_eq(&b, &buf.take(10).unwrap()));
    }

    #[test]
    fn restore_puts_back_what_fits_oldest_first() {
        let buf = OutputBuffer::new(5, 5);
        buf.add(batch(0, 5));
        let taken = buf.take(5).unwrap();
        buf.add(batch(5, 3)); // arrived during the failed write
        assert_eq!(buf.restore(taken), 3);
        assert_eq!(seqs(&buf.take(10).unwrap()), [0, 1, 5, 6, 7]);
    }
}
