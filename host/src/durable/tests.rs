//! The disk buffer's behaviour: round trips, restarts, partial writes,
//! retries, limits, segments, the lock, append failures and closing.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use graft_api::{Ack, Delivery};
use graft_core::{Batch, BatchBuilder};

use super::*;

pub(super) fn batch(from: i64, n: i64) -> Arc<Batch> {
    let mut b = BatchBuilder::new();
    for i in from..from + n {
        b.metric("m", i).tag("host", "a").field("seq", i);
    }
    Arc::new(b.finish())
}

pub(super) fn seqs(b: &Batch) -> Vec<i64> {
    b.iter().map(|m| m.timestamp()).collect()
}

pub(super) fn options(dir: &Path) -> DiskOptions {
    DiskOptions {
        dir: dir.to_owned(),
        limit_metrics: 10_000_000,
        limit_bytes: u64::MAX,
        batch_size: 1000,
        segment_bytes: DEFAULT_SEGMENT_BYTES,
        fsync: Fsync::Interval(Duration::from_secs(1)),
    }
}

pub(super) fn open(options: DiskOptions) -> (DiskBuffer, Recovery) {
    DiskBuffer::open(options, Default::default()).expect("the buffer opens")
}

impl DiskBuffer {
    /// Wait until the writer thread appended everything added.
    pub(super) fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let st = self.inner.lock();
            if st.queued == 0 && st.writing == 0 {
                return;
            }
            drop(st);
            assert!(Instant::now() < deadline, "the writer thread is stuck");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Take and commit everything; the sequence numbers in order.
    pub(super) fn drain(&self, max: usize) -> Vec<i64> {
        self.settle();
        let mut out = Vec::new();
        while let Some((b, ticket)) = self.take(max) {
            assert!(b.len() <= max);
            out.extend(seqs(&b));
            self.commit(ticket);
        }
        out
    }
}

pub(super) fn settled(d: &mut Delivery) -> Option<bool> {
    use std::future::Future;
    let waker = std::task::Waker::noop();
    match std::pin::Pin::new(d).poll(&mut std::task::Context::from_waker(waker)) {
        std::task::Poll::Ready(r) => Some(r.is_ok()),
        std::task::Poll::Pending => None,
    }
}

#[test]
fn the_buffer_and_its_tickets_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<DiskBuffer>();
    send_sync::<Ticket>();
}

#[test]
fn batches_come_back_in_order_and_acks_settle_once_appended() {
    let dir = tempfile::tempdir().unwrap();
    let (buf, recovery) = open(options(dir.path()));
    assert_eq!(recovery, Recovery::default());
    let (ack, mut delivery) = Ack::new();
    buf.add(batch(0, 10), Some(ack));
    buf.add(batch(10, 10), None);
    buf.add(batch(20, 10), None);
    assert_eq!(buf.len(), 30, "queued metrics count as waiting");
    buf.settle();
    assert_eq!(
        settled(&mut delivery),
        Some(true),
        "held in the disk buffer"
    );
    assert_eq!(buf.stats().metrics, 30);
    assert!(buf.stats().oldest.is_some());
    assert_eq!(buf.drain(25), (0..30).collect::<Vec<_>>());
    assert_eq!(buf.len(), 0);
    assert_eq!(buf.stats().oldest, None);
}

#[test]
fn a_take_right_after_an_add_waits_for_the_append() {
    let dir = tempfile::tempdir().unwrap();
    let (buf, _) = open(DiskOptions {
        fsync: Fsync::Batch,
        ..options(dir.path())
    });
    for i in 0..50 {
        buf.add(batch(i * 10, 10), None);
        // Each take waits up to TAKE_WAIT; a loaded machine may need more.
        let (b, t) = (0..100)
            .find_map(|_| buf.take(10))
            .expect("what was added is taken");
        assert_eq!(b.get(0).timestamp(), i * 10);
        buf.commit(t);
    }
    assert!(buf.take(10).is_none(), "nothing waits: no wait either");
}

#[test]
fn a_restart_replays_only_what_was_not_committed() {
    let dir = tempfile::tempdir().unwrap();
    let (buf, _) = open(options(dir.path()));
    for i in 0..5 {
        buf.add(batch(i * 10, 10), None);
    }
    buf.settle();
    let (b, t) = buf.take(20).unwrap();
    assert_eq!(seqs(&b), (0..20).collect::<Vec<_>>());
    buf.commit(t);
    let (_, in_flight) = buf.take(10).unwrap();
    std::mem::forget(in_flight); // the process dies during the write
    drop(buf);
    let (buf, recovery) = open(options(dir.path()));
    assert_eq!((recovery.metrics, recovery.records), (30, 3));
    assert_eq!(buf.stats().replayed, 30);
    assert_eq!(buf.drain(1000), (20..50).collect::<Vec<_>>());
    drop(buf);
    let (buf, recovery) = open(options(dir.path()));
    assert_eq!(recovery.metrics, 0);
    assert!(buf.take(10).is_none());
}

#[test]
fn a_write_of_part_of_a_record_keeps_the_rest_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (buf, _) = open(options(dir.path()));
    buf.add(batch(0, 100), None);
    buf.add(batch(100, 5), None);
    buf.settle();
    for expect in [0..30, 30..60] {
        let (b, t) = buf.take(30).unwrap();
        assert_eq!(seqs(&b), expect.collect::<Vec<_>>());
        buf.commit(t);
    }
    drop(buf);
    let (buf, recovery) = open(options(dir.path()));
    assert_eq!(recovery.metrics, 45);
    let (b, t) = buf.take(42).unwrap();
    assert_eq!(
        seqs(&b),
        (60..102).collect::<Vec<_>>(),
        "across two records"
    );
    buf.commit(t);
    assert_eq!(buf.drain(100), [102, 103, 104]);
}

#[test]
fn a_failed_write_is_retried_first_and_a_partial_one_keeps_only_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (buf, _) = open(options(dir.path()));
    buf.add(batch(0, 10), None);
    buf.add(batch(10, 10), None);
    buf.settle();
    let (b, t) = buf.take(10).unwrap();
    assert!(buf.take(10).is_none(), "one ticket at a time");
    buf.restore(t, b);
    assert_eq!(buf.len(), 20);
    let (b, t) = buf.take(4).unwrap();
    assert_eq!(seqs(&b), [0, 1, 2, 3]);
    let mut rest = (*b).clone();
    rest.retain(|m| m.timestamp() % 2 == 1);
    buf.restore(t, Arc::new(rest));
    assert_eq!(buf.len(), 18);
    let (b, t) = buf.take(100).unwrap();
    assert_eq!(
        seqs(&b),
        [1, 3, 4, 5, 6, 7, 8, 9],
        "the retry, then its rest"
    );
    drop(t); // a write abandoned mid-way is restored whole
    let (b, t) = buf.take(100).unwrap();
    assert_eq!(seqs(&b).len(), 8);
    buf.commit(t);
    assert_eq!(buf.drain(100), (10..20).collect::<Vec<_>>());
}

#[test]
fn the_oldest_whole_records_are_dropped_at_the_metric_limit_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (buf, _) = open(DiskOptions {
        limit_metrics: 25,
        ..options(dir.path())
    });
    for i in 0..10 {
        buf.add(batch(i * 10, 10), None);
        buf.settle();
    }
    assert_eq!(buf.len(), 20);
    assert_eq!(buf.take_uncounted(), 80);
    assert_eq!(buf.take_dropped(), 80, "counted for the warning apart");
    assert_eq!(buf.take_uncounted(), 0);
    // A batch over the limit by itself is dropped before it is appended.
    let (ack, mut delivery) = Ack::new();
    buf.add(batch(100, 30), Some(ack));
    assert_eq!(settled(&mut delivery), Some(false));
    assert_eq!(
        buf.take_uncounted(),
        50,
        "the two records waiting and the new batch"
    );
    buf.add(batch(200, 10), None);
    assert_eq!(buf.drain(100), (200..210).collect::<Vec<_>>());
    // A reload lowers the limit: kept from the next add on.
    buf.resize(10, 5);
    assert_eq!(buf.limit(), 10);
    buf.add(batch(300, 10), None);
    buf.add(batch(310, 5), None);
    assert_eq!(buf.take_uncounted(), 10);
    assert_eq!(buf.drain(100), (310..315).collect::<Vec<_>>());
}

#[test]
fn the_oldest_segments_are_dropped_at_the_byte_limit_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let limit_bytes = 256 << 10;
    let (buf, _) = open(DiskOptions {
        limit_bytes,
        ..options(dir.path())
    });
    for i in 0..100 {
        buf.add(batch(i * 100, 100), None);
        buf.settle();
        assert!(buf.stats().bytes <= limit_bytes, "{:?}", buf.stats());
    }
    let waiting = buf.len() as u64;
    assert!(waiting > 0 && waiting < 10_000);
    assert_eq!(buf.take_uncounted(), 10_000 - waiting);
    let got = buf.drain(1000);
    let first = 10_000 - waiting as i64;
    assert_eq!(got, (first..10_000).collect::<Vec<_>>(), "the newest kept");
}

#[test]
fn segments_are_deleted_once_written() {
    let dir = tempfile::tempdir().unwrap();
    let (buf, _) = open(DiskOptions {
        segment_bytes: 64 << 10,
        ..options(dir.path())
    });
    for i in 0..100 {
        buf.add(batch(i * 100, 100), None);
    }
    buf.settle();
    assert!(frame::list_segments(dir.path()).unwrap().len() >= 3);
    assert_eq!(buf.drain(1000).len(), 10_000);
    let left = frame::list_segments(dir.path()).unwrap();
    assert!(left.len() <= 1, "{left:?}");
    assert!(buf.stats().bytes < 64 << 10);
}

#[test]
fn a_second_opener_is_refused_until_the_first_closes() {
    let dir = tempfile::tempdir().unwrap();
    let (buf, _) = open(options(dir.path()));
    let err = DiskBuffer::open(options(dir.path()), Default::default())
        .err()
        .expect("locked");
    assert!(matches!(err, DiskError::Locked { .. }));
    assert!(err.to_string().contains(&dir.path().display().to_string()));
    buf.close().unwrap();
    buf.close().unwrap();
    let (_again, _) = open(options(dir.path()));
}

#[test]
fn a_failed_append_drops_and_fails_its_batch_and_the_writer_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (buf, _) = open(options(dir.path()));
    // The first segment cannot be created: a directory has its name.
    fs::create_dir(frame::segment_path(dir.path(), 1)).unwrap();
    let (ack, mut delivery) = Ack::new();
    buf.add(batch(0, 10), Some(ack));
    buf.settle();
    assert_eq!(settled(&mut delivery), Some(false));
    assert_eq!((buf.len(), buf.take_uncounted()), (0, 10));
    let (ack, mut delivery) = Ack::new();
    buf.add(batch(10, 10), Some(ack));
    buf.settle();
    assert_eq!(settled(&mut delivery), Some(true));
    assert_eq!(buf.drain(100), (10..20).collect::<Vec<_>>());
    drop(buf);
    let (buf, recovery) = open(options(dir.path()));
    assert_eq!(
        recovery.corrupt_records, 0,
        "the stray directory is no segment"
    );
    assert!(buf.take(10).is_none());
}

#[test]
fn after_close_nothing_is_written_and_late_batches_fail() {
    let dir = tempfile::tempdir().unwrap();
    let (buf, _) = open(options(dir.path()));
    buf.add(batch(0, 10), None);
    buf.close().unwrap();
    let (ack, mut delivery) = Ack::new();
    buf.add(batch(10, 10), Some(ack));
    assert_eq!(settled(&mut delivery), Some(false));
    let (b, t) = buf.take(100).expect("appended before the close");
    assert_eq!(seqs(&b), (0..10).collect::<Vec<_>>());
    buf.commit(t);
    let (buf2, recovery) = open(options(dir.path()));
    assert_eq!(
        recovery.metrics, 10,
        "the commit after close left the log alone"
    );
    drop(buf);
    assert_eq!(buf2.len(), 10);
}
