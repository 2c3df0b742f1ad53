//! Faults the reviewer found: records dropped at the limit while being
//! published, damage and read errors met while draining, and the byte limit
//! deleting the segment behind a retry or a ticket.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
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

/// Ten records of ten metrics in one segment, closed and opened again (so
/// that nothing is in the window); the buffer, its segment and the offsets
/// of its records.
fn reopened_ten(dir: &Path) -> (DiskBuffer, PathBuf, Vec<u64>) {
    let (buf, _) = open(options(dir));
    for i in 0..10 {
        buf.add(batch(i * 10, 10), None);
        buf.settle();
    }
    drop(buf);
    let (buf, recovery) = open(options(dir));
    assert_eq!(recovery.metrics, 100);
    let path = frame::segment_path(dir, frame::list_segments(dir).unwrap()[0]);
    let data = fs::read(&path).unwrap();
    let mut offsets = Vec::new();
    let mut at = 0;
    while let frame::Frame::Valid { len, .. } = frame::check_frame(&data[at..]) {
        offsets.push(at as u64);
        at += len;
    }
    assert_eq!(offsets.len(), 10);
    (buf, path, offsets)
}

fn flip(path: &Path, at: u64, bit: u8) {
    use std::os::unix::fs::FileExt;
    let file = fs::File::options()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0];
    file.read_exact_at(&mut b, at).unwrap();
    file.write_all_at(&[b[0] ^ bit], at).unwrap();
}

#[test]
fn damage_met_while_draining_costs_only_the_damaged_records() {
    let dir = tempfile::tempdir().unwrap();
    let (buf, path, offsets) = reopened_ten(dir.path());
    // Damaged after the open scan: a payload byte of record 2, the length
    // of record 6.
    flip(&path, offsets[2] + 40, 0x10);
    flip(&path, offsets[6] + 3, 0x40);
    let got = buf.drain(15);
    let expected: Vec<i64> = (0..100).filter(|s| s / 10 != 2 && s / 10 != 6).collect();
    assert_eq!(got, expected);
    assert_eq!(buf.take_uncounted(), 20);
    assert_eq!(buf.stats().corrupt_records, 2);
    assert_eq!(buf.len(), 0);
}

#[test]
fn a_segment_that_cannot_be_read_loses_nothing_and_is_read_once_it_can() {
    let dir = tempfile::tempdir().unwrap();
    let (buf, path, _) = reopened_ten(dir.path());
    let aside = dir.path().join("aside");
    fs::rename(&path, &aside).unwrap();
    // Reading a directory fails with an I/O error (EISDIR).
    fs::create_dir(&path).unwrap();
    assert!(buf.take(15).is_none(), "nothing can be read yet");
    assert!(buf.take(15).is_none(), "and nothing was dropped meanwhile");
    assert_eq!((buf.len(), buf.take_uncounted()), (100, 0));
    fs::remove_dir(&path).unwrap();
    fs::rename(&aside, &path).unwrap();
    assert_eq!(buf.drain(15), (0..100).collect::<Vec<_>>());
    assert_eq!(buf.stats().corrupt_records, 0);
}

/// Add batches of 100 from `from` on until segment `id` is deleted at the
/// byte limit; returns the next sequence number.
fn add_until_segment_goes(buf: &DiskBuffer, dir: &Path, id: u64, mut from: i64) -> i64 {
    for _ in 0..1000 {
        if !frame::list_segments(dir).unwrap().contains(&id) {
            return from;
        }
        buf.add(batch(from, 100), None);
        buf.settle();
        from += 100;
    }
    panic!("segment {id} was never deleted");
}

#[test]
fn the_byte_limit_deleting_the_segment_of_a_retry_or_ticket_counts_it_once() {
    // end: "retry", "restore" (the ticket fails after), "commit" (written).
    for end in ["retry", "restore", "commit"] {
        let dir = tempfile::tempdir().unwrap();
        let opts = DiskOptions {
            limit_bytes: 256 << 10,
            ..options(dir.path())
        };
        let (buf, _) = open(opts.clone());
        buf.add(batch(0, 100), None);
        buf.settle();
        let (b, t) = buf.take(100).unwrap();
        let mut ticket = Some(t);
        if end == "retry" {
            buf.restore(ticket.take().unwrap(), b.clone());
        }
        let total = add_until_segment_goes(&buf, dir.path(), 1, 100);
        let mut written = 0;
        match (end, ticket) {
            ("commit", Some(t)) => {
                buf.commit(t);
                written = 100;
            }
            (_, Some(t)) => buf.restore(t, b),
            (_, None) => {}
        }
        let counted = buf.take_uncounted();
        let kept = buf.len() as u64;
        buf.close().unwrap();
        drop(buf);
        // A restart replays exactly what was kept; the rest was counted.
        let (buf, recovery) = open(opts);
        assert_eq!(recovery.metrics, kept, "{end}");
        assert_eq!(written + counted + kept, total as u64, "{end}");
        let got = buf.drain(1000);
        assert!(
            got.iter().all(|&s| s >= 100),
            "{end}: the first batch is gone"
        );
        assert_eq!(got.len() as u64, kept);
    }
}

#[test]
fn stats_read_nothing_from_disk_and_give_the_oldest_record_s_append_time() {
    let dir = tempfile::tempdir().unwrap();
    let (buf, _) = open(options(dir.path()));
    buf.add(batch(0, 10), None);
    buf.settle();
    std::thread::sleep(Duration::from_millis(5));
    buf.add(batch(10, 10), None);
    buf.settle();
    drop(buf);
    let appended: Vec<i64> = {
        let path = frame::segment_path(dir.path(), 1);
        let data = fs::read(&path).unwrap();
        let mut out = Vec::new();
        let mut at = 0;
        while let frame::Frame::Valid { payload, len } = frame::check_frame(&data[at..]) {
            out.push(frame::payload_head(payload).appended_ns);
            at += len;
        }
        out
    };
    assert!(appended[0] < appended[1]);
    // Reopened: nothing in the window; the segment summary knows.
    let (buf, _) = open(options(dir.path()));
    let reads = buf.inner.lock().head_reads;
    assert_eq!(buf.stats().oldest, Some(appended[0]));
    assert_eq!(buf.inner.lock().head_reads, reads, "stats read nothing");
    let (_, t) = buf.take(10).unwrap();
    buf.commit(t);
    let st = buf.inner.lock();
    // The take read the next record's header: exact again, and stats did
    // not read the disk (no record read back, no header read).
    assert_eq!(st.oldest_exact(), Some(appended[1]));
    drop(st);
    let reads = buf.inner.lock().head_reads;
    assert_eq!(buf.stats().oldest, Some(appended[1]));
    assert_eq!(buf.inner.lock().head_reads, reads, "stats read nothing");
}

#[test]
fn a_take_reads_the_disk_without_the_lock_and_rechecks_the_position() {
    let dir = tempfile::tempdir().unwrap();
    let (buf, _, _) = reopened_ten(dir.path());
    let buf = Arc::new(buf);
    let pause = buf.inner.pause.lock().unwrap();
    let taker = {
        let buf = buf.clone();
        std::thread::spawn(move || buf.take(15).map(|(b, t)| (tests::seqs(&b), t)))
    };
    // The take reserved its ticket and waits to read, the lock released:
    // adds, stats and the metric limit go on meanwhile.
    wait_for(&buf, |st| st.ticket_out);
    assert_eq!(buf.stats().metrics, 100);
    buf.resize(50, 10);
    buf.add(batch(100, 10), None);
    assert_eq!(buf.take_uncounted(), 60, "records 0 to 5 dropped");
    drop(pause);
    let (got, t) = taker.join().unwrap().expect("a take");
    // What the take read (record 0) was dropped meanwhile: not handed out.
    assert_eq!(got, (60..75).collect::<Vec<_>>());
    buf.commit(t);
    assert_eq!(buf.drain(15), (75..110).collect::<Vec<_>>());
}

#[test]
fn the_byte_limit_deleting_a_written_segment_before_a_ticket_s_keeps_the_ticket() {
    let dir = tempfile::tempdir().unwrap();
    let (buf, _) = open(DiskOptions {
        limit_bytes: 256 << 10,
        ..options(dir.path())
    });
    // Written as it comes until the writer starts a second segment: the
    // first is all written, the cursor at its end, not yet deleted.
    let mut next = 0;
    while frame::list_segments(dir.path()).unwrap().len() < 2 {
        assert_eq!(buf.drain(1000).len() as i64, next.min(100));
        buf.add(batch(next, 100), None);
        buf.settle();
        next += 100;
        assert!(next < 100_000);
    }
    let first = frame::list_segments(dir.path()).unwrap()[0];
    let (b, t) = buf.take(100).unwrap();
    assert_eq!(tests::seqs(&b), (next - 100..next).collect::<Vec<_>>());
    let total = add_until_segment_goes(&buf, dir.path(), first, next);
    // The ticket's record is still on disk: a failed write retries it.
    buf.restore(t, b);
    assert_eq!(buf.take_uncounted(), 0, "only written metrics were deleted");
    let got = buf.drain(1000);
    assert_eq!(got, (next - 100..total).collect::<Vec<_>>());
}
