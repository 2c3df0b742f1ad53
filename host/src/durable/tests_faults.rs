//! Faults the reviewer found: records dropped at the limit while being
//! published, damage and read errors met while draining, and the byte limit
//! deleting the segment behind a retry or a ticket.

use std::time::{Duration, Instant};

use graft_api::Ack;

use super::tests::{batch, open, options, settled};
use super::*;

/// Wait until `f` holds of the state.
fn wait_for(buf: &DiskBuffer, f: impl Fn(&State) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f(&buf.inner.lock()) {
        assert!(Instant::now() < deadline, "the state never came");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_record_dropped_at_the_limit_as_it_is_published_fails_its_ack() {
    let dir = tempfile::tempdir().unwrap();
    let (buf, _) = open(DiskOptions {
        limit_metrics: 25,
        ..options(dir.path())
    });
    let pause = buf.inner.pause.lock().unwrap();
    let (ack0, mut first) = Ack::new();
    buf.add(batch(0, 10), Some(ack0));
    // The writer took the batch and waits to append it.
    wait_for(&buf, |st| st.writing == 10);
    let (ack1, mut second) = Ack::new();
    buf.add(batch(10, 10), Some(ack1));
    // A reload lowers the limit below the group being written and the
    // batch queued after it: the older, the group, goes.
    buf.resize(15, 10);
    drop(pause);
    buf.settle();
    assert_eq!(settled(&mut first), Some(false), "dropped, not delivered");
    assert_eq!(settled(&mut second), Some(true));
    assert_eq!(buf.take_uncounted(), 10);
    assert_eq!(buf.drain(100), (10..20).collect::<Vec<_>>());
}
