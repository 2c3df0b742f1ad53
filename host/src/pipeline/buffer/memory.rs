//! An output's memory buffer, with Telegraf's semantics: at most
//! `metric_buffer_limit` metrics; when full the oldest are dropped and
//! counted; writes take the oldest `metric_batch_size` metrics; a failed
//! batch goes back to the front, as much of it as still fits.
//!
//! Each batch keeps its acknowledgement while any of it waits here: a batch
//! taken whole carries it into the write, a batch dropped at the limit (or
//! left here at shutdown) fails it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use graft_api::Ack;
use graft_core::Batch;
use tokio::sync::Notify;

/// A run of metrics `start..` of a shared batch.
struct Chunk {
    batch: Arc<Batch>,
    start: usize,
    /// Held until the last metric of the chunk is written.
    acks: Vec<Ack>,
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

/// One output's memory buffer.
pub struct MemoryBuffer {
    state: Mutex<State>,
    limit: AtomicUsize,
    batch_size: AtomicUsize,
    /// Signalled when a full batch is waiting.
    batch_ready: Arc<Notify>,
}

impl MemoryBuffer {
    /// A buffer of `limit` metrics that signals `batch_ready` at
    /// `batch_size`.
    pub fn new(limit: usize, batch_size: usize, batch_ready: Arc<Notify>) -> Self {
        Self {
            state: Mutex::default(),
            limit: AtomicUsize::new(limit.max(1)),
            batch_size: AtomicUsize::new(batch_size.max(1)),
            batch_ready,
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
    pub fn add(&self, batch: Arc<Batch>, ack: Option<Ack>) -> usize {
        if batch.is_empty() {
            return 0;
        }
        let mut s = self.lock();
        s.len += batch.len();
        s.queue.push_back(Chunk {
            batch,
            start: 0,
            acks: ack.into_iter().collect(),
        });
        let mut dropped = 0;
        while s.len > self.limit() {
            let excess = s.len - self.limit();
            let front = s
                .queue
                .front_mut()
                .expect("a buffer over its limit holds chunks");
            let n = front.remaining().min(excess);
            front.start += n;
            front.acks.iter().for_each(Ack::fail);
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

    /// Remove and return the oldest metrics, at most `max`, with the
    /// acknowledgements of the batches taken whole (a batch split across
    /// writes keeps its own until its last part is taken).
    pub fn take(&self, max: usize) -> Option<(Arc<Batch>, Vec<Ack>)> {
        let mut s = self.lock();
        let front = s.queue.front()?;
        if front.start == 0 && front.batch.len() <= max && s.queue.len() == 1 {
            let chunk = s.queue.pop_front().expect("front exists");
            s.len -= chunk.batch.len();
            return Some((chunk.batch, chunk.acks));
        }
        let mut out = Batch::new();
        let mut acks = Vec::new();
        while out.len() < max {
            let Some(front) = s.queue.front_mut() else {
                break;
            };
            let n = front.remaining().min(max - out.len());
            out.extend_from(&front.batch, front.start..front.start + n);
            front.start += n;
            if front.remaining() == 0 {
                let chunk = s.queue.pop_front().expect("front exists");
                acks.extend(chunk.acks);
            }
            s.len -= n;
        }
        Some((Arc::new(out), acks))
    }

    /// Remove and return the oldest batch as it was added (what is left of
    /// it), with its acknowledgements.
    pub fn take_chunk(&self) -> Option<(Arc<Batch>, Vec<Ack>)> {
        let mut s = self.lock();
        let chunk = s.queue.pop_front()?;
        s.len -= chunk.remaining();
        let batch = if chunk.start == 0 {
            chunk.batch
        } else {
            Arc::new(chunk.batch.slice(chunk.start..chunk.batch.len()))
        };
        Some((batch, chunk.acks))
    }

    /// Put metrics that failed to write back at the front, as many as fit
    /// (the oldest first), with the acknowledgements they carried; returns
    /// how many did not fit and were dropped.
    pub fn restore(&self, batch: Arc<Batch>, acks: Vec<Ack>) -> usize {
        let mut s = self.lock();
        let room = self.limit().saturating_sub(s.len);
        let n = batch.len();
        let (kept, dropped) = if n <= room {
            (batch, 0)
        } else {
            (Arc::new(batch.slice(0..room)), n - room)
        };
        if dropped > 0 {
            acks.iter().for_each(Ack::fail);
        }
        if !kept.is_empty() {
            s.len += kept.len();
            s.queue.push_front(Chunk {
                batch: kept,
                start: 0,
                acks,
            });
        }
        s.dropped_unreported += dropped as u64;
        dropped
    }

    /// Metrics dropped since the last call, for the overflow warning.
    pub fn take_dropped(&self) -> u64 {
        std::mem::take(&mut self.lock().dropped_unreported)
    }

    /// Empty the buffer (graft stops with these metrics unwritten): their
    /// acknowledgements fail; returns how many were lost.
    pub fn discard(&self) -> usize {
        let mut s = self.lock();
        for chunk in s.queue.drain(..) {
            chunk.acks.iter().for_each(Ack::fail);
        }
        std::mem::take(&mut s.len)
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
        let buf = MemoryBuffer::new(5, 2, Default::default());
        assert_eq!(buf.add(batch(0, 3), None), 0);
        assert_eq!(buf.add(batch(3, 4), None), 2);
        assert_eq!(buf.len(), 5);
        assert_eq!(buf.take_dropped(), 2);
        assert_eq!(buf.take_dropped(), 0);
        assert_eq!(seqs(&buf.take(10).unwrap().0), [2, 3, 4, 5, 6]);
        assert!(buf.take(10).is_none());
    }

    #[test]
    fn takes_batches_across_chunks_oldest_first() {
        let buf = MemoryBuffer::new(100, 4, Default::default());
        buf.add(batch(0, 3), None);
        buf.add(batch(3, 3), None);
        assert_eq!(seqs(&buf.take(4).unwrap().0), [0, 1, 2, 3]);
        assert_eq!(seqs(&buf.take(4).unwrap().0), [4, 5]);
    }

    #[test]
    fn a_whole_single_batch_is_handed_over_without_copy() {
        let buf = MemoryBuffer::new(100, 4, Default::default());
        let b = batch(0, 3);
        buf.add(b.clone(), None);
        assert!(Arc::ptr_eq(&b, &buf.take(10).unwrap().0));
    }

    #[test]
    fn restore_puts_back_what_fits_oldest_first() {
        let buf = MemoryBuffer::new(5, 5, Default::default());
        buf.add(batch(0, 5), None);
        let (taken, acks) = buf.take(5).unwrap();
        buf.add(batch(5, 3), None); // arrived during the failed write
        assert_eq!(buf.restore(taken, acks), 3);
        assert_eq!(seqs(&buf.take(10).unwrap().0), [0, 1, 5, 6, 7]);
    }

    fn settled(d: &mut graft_api::Delivery) -> Option<bool> {
        use std::future::Future;
        let waker = std::task::Waker::noop();
        match std::pin::Pin::new(d).poll(&mut std::task::Context::from_waker(waker)) {
            std::task::Poll::Ready(r) => Some(r.is_ok()),
            std::task::Poll::Pending => None,
        }
    }

    #[test]
    fn a_batch_settles_when_its_last_part_is_written_and_fails_when_dropped() {
        let buf = MemoryBuffer::new(6, 100, Default::default());
        let (a, mut da) = Ack::new();
        let (b, mut db) = Ack::new();
        buf.add(batch(0, 4), Some(a));
        buf.add(batch(4, 2), Some(b));
        let (first, acks) = buf.take(3).unwrap();
        assert_eq!(
            (first.len(), acks.len()),
            (3, 0),
            "batch a is not all taken"
        );
        drop(acks);
        assert_eq!(settled(&mut da), None);
        let (rest, acks) = buf.take(10).unwrap();
        assert_eq!((rest.len(), acks.len()), (3, 2));
        // The write fails and comes back; then a new batch overflows it.
        assert_eq!(buf.restore(rest, acks), 0);
        let (c, mut dc) = Ack::new();
        assert_eq!(buf.add(batch(6, 4), Some(c)), 1);
        let (all, acks) = buf.take(10).unwrap();
        assert_eq!(seqs(&all), [4, 5, 6, 7, 8, 9]);
        drop(acks);
        // Restored together, a and b fail together: part of a was dropped.
        assert_eq!(
            (settled(&mut da), settled(&mut db), settled(&mut dc)),
            (Some(false), Some(false), Some(true))
        );
        let (d, mut dd) = Ack::new();
        buf.add(batch(10, 1), Some(d));
        assert_eq!(buf.discard(), 1);
        assert_eq!(settled(&mut dd), Some(false), "left behind at shutdown");
    }
}
