//! Acknowledgements: a token that travels with a batch through the pipeline
//! and resolves once every output has written the batch or holds it in a
//! disk buffer.
//!
//! An [`Ack`] is shared: every stage that still has the batch (a queue, an
//! output's buffer, a write in flight) keeps a clone. When the last clone is
//! dropped the batch is settled, and the [`Delivery`] the input kept resolves:
//! - delivered, unless some holder called [`Ack::fail`] (an output dropped
//!   part of the batch at its buffer limit, or graft stopped with it still in
//!   a memory buffer);
//! - metrics dropped on purpose (a filter, a processor, an aggregator that
//!   consumes them, an output that rejects them for good) count as
//!   delivered: nobody will ever deliver them, and retrying would not change
//!   that.
//!
//! A holder dropped while its thread panics settles the batch as lost.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::sync::oneshot;

/// A hold on a batch's acknowledgement. Clone it for every place that keeps
/// the batch; drop it once the batch is written (or durable) there.
#[derive(Clone)]
pub struct Ack(Arc<Inner>);

struct Inner {
    failed: AtomicBool,
    settle: std::sync::Mutex<Option<oneshot::Sender<bool>>>,
}

/// A hold dropped while its thread panics (a stage failed with the batch)
/// fails the batch, whichever hold is the last.
impl Drop for Ack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.fail();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let delivered = !self.failed.load(Ordering::Acquire);
        if let Some(tx) = self.settle.get_mut().map(Option::take).unwrap_or_default() {
            let _ = tx.send(delivered);
        }
    }
}

impl Ack {
    /// A new token and the future its input waits on.
    pub fn new() -> (Self, Delivery) {
        let (tx, rx) = oneshot::channel();
        let inner = Inner {
            failed: AtomicBool::new(false),
            settle: std::sync::Mutex::new(Some(tx)),
        };
        (Self(Arc::new(inner)), Delivery(rx))
    }

    /// Some of the batch was lost (dropped at a buffer limit, or left in a
    /// memory buffer at shutdown): the batch settles as undelivered once
    /// every hold is gone.
    pub fn fail(&self) {
        self.0.failed.store(true, Ordering::Release);
    }

    /// Whether a holder has called [`Ack::fail`].
    pub fn failed(&self) -> bool {
        self.0.failed.load(Ordering::Acquire)
    }
}

impl std::fmt::Debug for Ack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ack")
            .field("holds", &Arc::strong_count(&self.0))
            .field("failed", &self.failed())
            .finish()
    }
}

/// The batch was not delivered: part of it was lost, or the pipeline went
/// away without settling it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the metrics were not delivered")]
pub struct Undelivered;

/// Resolves once a batch is settled: `Ok` when every output wrote it or
/// holds it durably.
#[derive(Debug)]
pub struct Delivery(oneshot::Receiver<bool>);

impl Future for Delivery {
    type Output = Result<(), Undelivered>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|r| match r {
            Ok(true) => Ok(()),
            Ok(false) | Err(_) => Err(Undelivered),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn settles_when_the_last_hold_goes() {
        let (ack, mut delivery) = Ack::new();
        let held = ack.clone();
        drop(ack);
        assert!(futures_poll(&mut delivery).is_none(), "a hold is still out");
        drop(held);
        assert_eq!(delivery.await, Ok(()));
    }

    #[tokio::test]
    async fn one_failed_hold_fails_the_batch() {
        let (ack, delivery) = Ack::new();
        let (a, b) = (ack.clone(), ack.clone());
        drop(ack);
        b.fail();
        drop(b);
        drop(a);
        assert_eq!(delivery.await, Err(Undelivered));
    }

    #[test]
    fn a_hold_dropped_in_a_panic_settles_as_lost() {
        let (ack, delivery) = Ack::new();
        let other = ack.clone();
        let _ = std::thread::spawn(move || {
            let _held = ack;
            panic!("the stage holding the batch failed");
        })
        .join();
        // Another stage then lets go normally: the batch is still lost.
        drop(other);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(delivery), Err(Undelivered));
    }

    fn futures_poll(d: &mut Delivery) -> Option<Result<(), Undelivered>> {
        let waker = std::task::Waker::noop();
        match Pin::new(d).poll(&mut Context::from_waker(waker)) {
            Poll::Ready(r) => Some(r),
            Poll::Pending => None,
        }
    }
}
