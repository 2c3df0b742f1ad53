//! The pending queue of core NATS subscriptions: messages are taken off
//! the client's subscription as fast as they arrive and wait here, at
//! most `pending_message_limit` messages and `pending_bytes_limit` bytes
//! of bodies; past either bound a message is dropped and counted, as
//! Telegraf's slow consumer. Core NATS keeps nothing anyway: what a slow
//! reader cannot take is lost, but memory stays bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::consume::{Gate, Incoming};

/// Bounds of the queue, and where its drops are counted.
pub struct Limits {
    pub messages: usize,
    pub bytes: usize,
    /// Messages dropped at a bound (`pending_limit_hits`).
    pub hits: Arc<AtomicU64>,
}

/// Messages waiting in the queue, and their bytes.
#[derive(Default)]
struct Level {
    messages: AtomicUsize,
    bytes: AtomicUsize,
}

/// `messages` through a queue bounded by `limits`: a task reads them at
/// once (dropping what does not fit); the stream returned yields what is
/// queued. The task ends with `messages`, or when the stream is dropped.
pub fn bounded(
    messages: impl Stream<Item = Incoming> + Send + Unpin + 'static,
    limits: Limits,
) -> impl Stream<Item = Incoming> + Send + Unpin + 'static {
    let (tx, rx) = mpsc::unbounded_channel::<Incoming>();
    let level = Arc::new(Level::default());
    let filling = level.clone();
    let fill = async move {
        let gate = Gate::default();
        let mut messages = messages;
        while let Some(m) = messages.next().await {
            let len = m.payload.len();
            let queued = filling.messages.load(Ordering::Acquire);
            let bytes = filling.bytes.load(Ordering::Acquire);
            // One message alone may pass the byte bound: the queue is
            // empty then (the size limit is `max_message_size`'s job).
            if queued >= limits.messages || (queued > 0 && bytes + len > limits.bytes) {
                limits.hits.fetch_add(1, Ordering::Relaxed);
                if let Some(n) = gate.hit() {
                    tracing::warn!(
                        subject = %m.subject,
                        bytes = len,
                        pending_messages = queued,
                        pending_bytes = bytes,
                        pending_message_limit = limits.messages,
                        pending_bytes_limit = limits.bytes,
                        dropped_since_last_log = n,
                        "core NATS messages dropped: the reader is behind (a slow consumer)"
                    );
                }
                continue;
            }
            filling.messages.fetch_add(1, Ordering::AcqRel);
            filling.bytes.fetch_add(len, Ordering::AcqRel);
            if tx.send(m).is_err() {
                return;
            }
        }
    };
    tokio::spawn(fill.in_current_span());
    futures_util::stream::unfold((rx, level), |(mut rx, level)| async move {
        let m = rx.recv().await?;
        level.messages.fetch_sub(1, Ordering::AcqRel);
        level.bytes.fetch_sub(m.payload.len(), Ordering::AcqRel);
        Some((m, (rx, level)))
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn message(len: usize) -> Incoming {
        Incoming {
            subject: "s".into(),
            payload: Bytes::from(vec![b'x'; len]),
            acker: None,
            delivered: 1,
        }
    }

    #[tokio::test]
    async fn past_either_bound_messages_are_dropped_and_counted() {
        let hits = Arc::new(AtomicU64::new(0));
        // 10 messages of 100 bytes, bounded at 350 bytes: 3 fit, 7 dropped.
        let input = futures_util::stream::iter((0..10).map(|_| message(100)));
        let limits = Limits {
            messages: 100,
            bytes: 350,
            hits: hits.clone(),
        };
        let out: Vec<_> = bounded(input, limits).collect().await;
        assert_eq!(out.len(), 3);
        assert_eq!(hits.load(Ordering::Relaxed), 7);

        let hits = Arc::new(AtomicU64::new(0));
        let input = futures_util::stream::iter((0..10).map(|_| message(1)));
        let limits = Limits {
            messages: 4,
            bytes: 1 << 20,
            hits: hits.clone(),
        };
        let out: Vec<_> = bounded(input, limits).collect().await;
        assert_eq!(out.len(), 4);
        assert_eq!(hits.load(Ordering::Relaxed), 6);
    }

    #[tokio::test]
    async fn what_is_read_makes_room() {
        let hits = Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::unbounded_channel();
        let input =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|m| (m, rx)) },
            )
            .boxed();
        let limits = Limits {
            messages: 2,
            bytes: 1 << 20,
            hits: hits.clone(),
        };
        let mut out = bounded(input, limits);
        for _ in 0..5 {
            tx.send(message(10)).unwrap();
            assert!(out.next().await.is_some());
        }
        drop(tx);
        assert!(out.next().await.is_none());
        assert_eq!(hits.load(Ordering::Relaxed), 0);
    }
}
