//! The disk buffer under load: the window serves an output that keeps up,
//! a large backlog stays bounded in memory and drains in order, and a
//! concurrent producer loses nothing uncounted.

use std::sync::Arc;
use std::time::Duration;

use graft_core::Batch;

use super::tests::{batch, open, options, seqs};
use super::*;

#[test]
fn an_output_that_keeps_up_is_served_from_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (buf, _) = open(options(dir.path()));
    for i in 0..200 {
        buf.add(batch(i * 1000, 1000), None);
        buf.settle();
        let (b, t) = buf.take(1000).unwrap();
        assert_eq!(b.get(0).timestamp(), i * 1000);
        buf.commit(t);
    }
    assert_eq!(buf.inner.lock().disk_reads, 0, "nothing read back");
}

#[test]
fn window_and_disk_reads_give_the_same_batches_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (buf, _) = open(DiskOptions {
        batch_size: 100,
        ..options(dir.path())
    });
    for i in 0..300 {
        buf.add(batch(i * 100, 100), None);
    }
    buf.settle();
    {
        let st = buf.inner.lock();
        assert_eq!(st.window_metrics, 10_000, "the newest records only");
        assert_eq!(st.disk_reads, 0);
    }
    let (from_disk, t) = buf.take(100).unwrap();
    std::mem::forget(t);
    drop(buf);
    // Reopened, every record comes from the files.
    let (buf, _) = open(options(dir.path()));
    let (again, t) = buf.take(100).unwrap();
    assert_eq!(from_disk.clone_parts(), again.clone_parts());
    buf.commit(t);
    assert_eq!(buf.drain(100), (100..30_000).collect::<Vec<_>>());
    assert_eq!(
        buf.inner.lock().disk_reads,
        300,
        "no window after a restart"
    );
}

trait CloneParts {
    fn clone_parts(&self) -> graft_core::BatchParts;
}

impl CloneParts for Batch {
    fn clone_parts(&self) -> graft_core::BatchParts {
        self.clone().into_parts()
    }
}

#[test]
fn a_million_metric_backlog_keeps_memory_bounded_and_drains_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (buf, _) = open(options(dir.path()));
    for i in 0..1000 {
        buf.add(batch(i * 1000, 1000), None);
        let st = buf.inner.lock();
        assert!(st.queue.len() <= MAX_QUEUED);
        assert!(st.window_metrics <= 10_000 && st.window_bytes <= 8 << 20);
    }
    buf.settle();
    assert_eq!(buf.len(), 1_000_000);
    let mut next = 0;
    while let Some((b, t)) = buf.take(1000) {
        for seq in seqs(&b) {
            assert_eq!(seq, next);
            next += 1;
        }
        buf.commit(t);
        let st = buf.inner.lock();
        assert!(st.window_metrics <= 10_000);
        assert!(st.segments.len() as u64 <= st.disk_bytes / DEFAULT_SEGMENT_BYTES + 2);
    }
    assert_eq!(next, 1_000_000);
}

#[test]
fn under_a_concurrent_producer_every_metric_is_delivered_once_or_counted_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (buf, _) = open(DiskOptions {
        limit_metrics: 3000,
        batch_size: 300,
        ..options(dir.path())
    });
    let buf = Arc::new(buf);
    let producer = {
        let buf = buf.clone();
        std::thread::spawn(move || {
            for i in 0..500 {
                buf.add(batch(i * 100, 100), None);
                if i % 10 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        })
    };
    let mut got = Vec::new();
    let mut dropped = 0;
    let mut round = 0u64;
    while !producer.is_finished() || !buf.is_empty() {
        round += 1;
        dropped += buf.take_uncounted();
        let Some((b, t)) = buf.take(300) else {
            continue;
        };
        if round.is_multiple_of(7) {
            buf.restore(t, b); // a failed write: retried next
        } else {
            got.extend(seqs(&b));
            buf.commit(t);
        }
        if round.is_multiple_of(5) {
            std::thread::sleep(Duration::from_millis(2)); // fall behind: drops
        }
    }
    producer.join().unwrap();
    dropped += buf.take_uncounted();
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "in order, no duplicates"
    );
    assert!(dropped > 0, "the test should have made the buffer overflow");
    assert!(got.len() > 1000, "and delivered some: {}", got.len());
    assert_eq!(got.len() as u64 + dropped, 50_000, "delivered or counted");
}

#[test]
fn a_record_larger_than_the_window_is_read_back_once_for_many_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (buf, _) = open(DiskOptions {
        batch_size: 1000,
        ..options(dir.path())
    });
    buf.add(batch(0, 50_000), None);
    buf.settle();
    let mut next = 0;
    while let Some((b, t)) = buf.take(1000) {
        assert_eq!(seqs(&b), (next..next + 1000).collect::<Vec<_>>());
        next += 1000;
        buf.commit(t);
    }
    assert_eq!(next, 50_000);
    let st = buf.inner.lock();
    assert_eq!(st.disk_reads, 1, "decoded once, not once per write");
    assert!(st.last_read.is_none(), "and let go once consumed");
}
