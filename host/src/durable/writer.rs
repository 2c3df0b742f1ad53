//! The writer thread (`graft-wal`): takes everything added since its last
//! round, frames it into one buffer, keeps the byte limit, appends it to the
//! active segment with one write (rolling to a new segment past
//! `segment_bytes`), fsyncs per policy, publishes the records to the read
//! side and its window, and only then lets go of the batches'
//! acknowledgements: from that moment they are held in the disk buffer.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use super::frame::Segment;
use super::frame::{self, unix_ns};
use super::log::{Pending, Windowed};
use super::{Fsync, Inner};

/// The segment being appended to.
struct Active {
    id: u64,
    file: File,
    bytes: u64,
}

struct Writer {
    inner: Arc<Inner>,
    active: Option<Active>,
    buf: Vec<u8>,
    /// Appended since the last fsync.
    dirty: bool,
    last_sync: Instant,
    last_error_log: Option<Instant>,
    errors_unlogged: u64,
}

/// Whatever ends the thread (a panic too) closes the buffer to new
/// batches, so that `add` never waits for a writer that is gone.
struct Exit(Arc<Inner>);

impl Drop for Exit {
    fn drop(&mut self) {
        self.0.lock().closing = true;
        self.0.space.notify_all();
        self.0.published.notify_all();
    }
}

/// Run until the buffer closes and everything added is appended.
pub fn run(inner: Arc<Inner>) {
    let _exit = Exit(inner.clone());
    let mut w = Writer {
        inner,
        active: None,
        buf: Vec::new(),
        dirty: false,
        last_sync: Instant::now(),
        last_error_log: None,
        errors_unlogged: 0,
    };
    loop {
        let (group, closing) = w.next_group();
        let idle = group.is_empty();
        if !idle {
            w.append(group);
        }
        w.sync_if_due(closing && idle);
        w.inner.published.notify_all();
        if closing && idle {
            break;
        }
    }
}

impl Writer {
    /// Wait for batches (or a due fsync, or closing); take them all.
    fn next_group(&mut self) -> (Vec<Pending>, bool) {
        let inner = &self.inner;
        let mut st = inner.lock();
        while st.queue.is_empty() && !st.closing {
            let wait = match inner.fsync {
                Fsync::Interval(every) if self.dirty => {
                    every.saturating_sub(self.last_sync.elapsed())
                }
                _ => Duration::from_secs(3600),
            };
            if wait.is_zero() {
                break;
            }
            st = inner
                .work
                .wait_timeout(st, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        let group: Vec<Pending> = st.queue.drain(..).collect();
        st.writing += st.queued;
        st.queued = 0;
        let closing = st.closing;
        drop(st);
        inner.space.notify_all();
        (group, closing)
    }

    fn sync_if_due(&mut self, closing: bool) {
        let due = match self.inner.fsync {
            Fsync::Interval(every) => self.last_sync.elapsed() >= every,
            Fsync::Batch | Fsync::Never => false,
        };
        if self.dirty && (due || closing) {
            self.sync();
        }
    }

    fn sync(&mut self) {
        if let Some(active) = &self.active
            && let Err(e) = active.file.sync_data()
        {
            self.error("fsync", &e, 0);
        }
        self.dirty = false;
        self.last_sync = Instant::now();
    }

    /// Log an append error at most every 10 s.
    fn error(&mut self, action: &str, e: &std::io::Error, lost: u64) {
        self.errors_unlogged += 1;
        if self
            .last_error_log
            .is_some_and(|t| t.elapsed() < Duration::from_secs(10))
        {
            return;
        }
        tracing::warn!(dir = %self.inner.dir.display(), action, error = %e, lost,
            errors = self.errors_unlogged,
            "the disk buffer cannot write; the metrics of the failed appends are dropped");
        self.errors_unlogged = 0;
        self.last_error_log = Some(Instant::now());
    }

    fn append(&mut self, mut group: Vec<Pending>) {
        let now = unix_ns();
        self.buf.clear();
        let mut records = Vec::with_capacity(group.len());
        for p in &group {
            let start = self.buf.len();
            records.push((start, frame::encode_record(&p.batch, now, &mut self.buf)));
        }
        let first = self.keep_byte_limit(&mut group, &records);
        let mut i = first;
        while i < records.len() {
            if let Err(e) = self.make_room(records[i].1 as u64) {
                self.fail(&mut group[i..=i], "create a segment", &e);
                i += 1;
                continue;
            }
            let active = self.active.as_mut().expect("a segment to append to");
            let mut j = i + 1;
            let mut bytes = records[i].1 as u64;
            while j < records.len()
                && active.bytes + bytes + records[j].1 as u64 <= self.inner.segment_bytes
            {
                bytes += records[j].1 as u64;
                j += 1;
            }
            let chunk = &self.buf[records[i].0..records[i].0 + bytes as usize];
            // A test holding the pause stops the thread here.
            #[cfg(test)]
            drop(self.inner.pause.lock());
            let written = active.file.write_all(chunk).and_then(|()| {
                if self.inner.fsync == Fsync::Batch {
                    active.file.sync_data()
                } else {
                    Ok(())
                }
            });
            match written {
                Ok(()) => {
                    self.dirty = self.inner.fsync != Fsync::Batch;
                    self.publish(&mut group[i..j], &records[i..j], now);
                }
                Err(e) => {
                    // Cut the partial write off; failing that, roll over.
                    let start = active.bytes;
                    if active.file.set_len(start).is_err() {
                        self.active = None;
                    }
                    self.fail(&mut group[i..j], "append", &e);
                }
            }
            i = j;
        }
    }

    /// At the byte limit, drop the oldest segments (and, if the new records
    /// alone are too many bytes, the oldest of them); returns the first
    /// record of the group to write.
    fn keep_byte_limit(&mut self, group: &mut [Pending], records: &[(usize, usize)]) -> usize {
        let inner = self.inner.clone();
        let limit = inner.limit_bytes;
        let mut need: u64 = records.iter().map(|r| r.1 as u64).sum();
        let mut st = inner.lock();
        while st.disk_bytes + need > limit && !st.segments.is_empty() {
            if self
                .active
                .as_ref()
                .is_some_and(|a| Some(a.id) == st.segments.front().map(|s| s.id))
            {
                self.active = None;
            }
            st.drop_front_segment(&inner);
        }
        let mut first = 0;
        while need > limit && first < records.len() {
            need -= records[first].1 as u64;
            let n = group[first].batch.len() as u64;
            st.writing -= n;
            st.count_dropped(n);
            if let Some(ack) = group[first].ack.take() {
                ack.fail();
            }
            first += 1;
        }
        first
    }

    /// An active segment with room for `len` more bytes (a record larger
    /// than a segment gets a segment of its own).
    fn make_room(&mut self, len: u64) -> std::io::Result<()> {
        if let Some(a) = &self.active
            && (a.bytes == 0 || a.bytes + len <= self.inner.segment_bytes)
        {
            return Ok(());
        }
        if let Some(old) = self.active.take()
            && self.inner.fsync != Fsync::Never
        {
            old.file.sync_data()?;
        }
        let inner = &self.inner;
        let id = {
            let mut st = inner.lock();
            st.next_id += 1;
            st.next_id - 1
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(frame::segment_path(&inner.dir, id))?;
        if inner.fsync != Fsync::Never {
            frame::sync_dir(&inner.dir)?;
        }
        inner.lock().segments.push_back(Segment {
            id,
            bytes: 0,
            metrics: 0,
            first_ns: None,
        });
        self.active = Some(Active { id, file, bytes: 0 });
        Ok(())
    }

    /// The batches could not be appended: dropped, counted, acks failed.
    fn fail(&mut self, group: &mut [Pending], action: &str, e: &std::io::Error) {
        let lost: u64 = group.iter().map(|p| p.batch.len() as u64).sum();
        {
            let mut st = self.inner.lock();
            st.writing -= lost;
            st.count_dropped(lost);
        }
        for p in group {
            if let Some(ack) = p.ack.take() {
                ack.fail();
            }
        }
        self.error(action, e, lost);
    }

    /// The records are on disk: hand them to the read side, keep the
    /// metric limit, signal a full batch, release the acknowledgements.
    fn publish(&mut self, group: &mut [Pending], records: &[(usize, usize)], now: i64) {
        let inner = &self.inner;
        let active = self.active.as_mut().expect("the segment just written");
        let base = records[0].0;
        let mut st = inner.lock();
        let mut metrics = 0;
        let mut bytes = 0;
        let mut offsets = Vec::with_capacity(group.len());
        for (p, &(start, len)) in group.iter().zip(records) {
            let (n, len) = (p.batch.len() as u64, len as u64);
            let offset = active.bytes + (start - base) as u64;
            offsets.push(offset);
            st.window.push_back(Windowed {
                segment: active.id,
                offset,
                len,
                appended_ns: now,
                batch: p.batch.clone(),
            });
            st.window_metrics += n;
            st.window_bytes += len;
            metrics += n;
            bytes += len;
        }
        active.bytes += bytes;
        match st.segments.back_mut() {
            Some(seg) if seg.id == active.id => {
                seg.first_ns.get_or_insert(now);
                seg.bytes += bytes;
                seg.metrics += metrics;
            }
            _ => tracing::error!(
                segment = active.id,
                "the disk buffer lost track of its segment"
            ),
        }
        st.disk_bytes += bytes;
        st.disk_waiting += metrics;
        st.writing -= metrics;
        let (window_metrics, window_bytes) = inner.window_bounds();
        st.bound_window(window_metrics, window_bytes);
        st.drop_oldest(inner, inner.limit() as u64);
        // The limit may drop records of this very group (a reload lowered
        // it, or what was added meanwhile is newer): their metrics are gone,
        // so their acknowledgements fail; the others are held on disk.
        let read = (st.read.segment, st.read.offset);
        let ready = st.disk_waiting >= inner.batch_size() as u64;
        drop(st);
        if ready {
            inner.ready.notify_one();
        }
        for (p, offset) in group.iter_mut().zip(offsets) {
            let Some(ack) = p.ack.take() else { continue };
            if (active.id, offset) < read {
                ack.fail();
            } else {
                drop(ack);
            }
        }
    }
}
