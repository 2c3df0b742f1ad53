//! The disk buffer's state behind its lock, and the read side of the log:
//! the per-segment summaries, the read position, the in-memory window of
//! recent records, reading records back from the segment files, and
//! dropping the oldest records at the limits.

use std::collections::VecDeque;
use std::fs::File;
use std::sync::Arc;
use std::time::Instant;

use graft_api::Ack;
use graft_core::Batch;

use super::Inner;
use super::frame::{self, Pos, ReadError, Segment};

/// A batch added but not yet appended to the log.
pub struct Pending {
    pub batch: Arc<Batch>,
    pub ack: Option<Ack>,
    pub added_ns: i64,
}

/// A recently appended record kept in memory, so that an output that keeps
/// up never reads back what was just written.
pub struct Windowed {
    pub segment: u64,
    pub offset: u64,
    pub len: u64,
    pub appended_ns: i64,
    pub batch: Arc<Batch>,
}

/// Everything behind the buffer's lock.
pub struct State {
    /// Added, waiting for the writer thread.
    pub queue: VecDeque<Pending>,
    pub queued: u64,
    /// Taken by the writer thread, being appended.
    pub writing: u64,
    pub closing: bool,
    /// Closed: the directory is released, nothing more is written there.
    pub closed: bool,
    pub segments: VecDeque<Segment>,
    /// The id of the next segment the writer creates.
    pub next_id: u64,
    pub disk_bytes: u64,
    /// The next record (and metric within it) a take hands out.
    pub read: Pos,
    /// Metrics of the read segment already taken or dropped.
    pub read_consumed: u64,
    /// Metrics on disk after `read`.
    pub disk_waiting: u64,
    /// Everything before this is written (or dropped); persisted.
    pub cursor: Pos,
    pub cursor_file: super::cursor::CursorFile,
    pub cursor_synced: Instant,
    pub window: VecDeque<Windowed>,
    pub window_metrics: u64,
    pub window_bytes: u64,
    /// A failed write's metrics, retried before anything else, with the
    /// append time of their first record.
    pub retry: Option<(Arc<Batch>, i64)>,
    pub ticket_out: bool,
    /// The byte limit deleted a segment the ticket out was taken from: a
    /// restore drops its metrics (see [`State::drop_front_segment`]).
    pub ticket_unbacked: bool,
    /// Where the oldest metric held in memory (the ticket out or the retry)
    /// was taken from the log; none when neither is.
    pub held_from: Option<Pos>,
    pub(super) reader: Option<(u64, File)>,
    /// The last record read back from disk, while the read position is in
    /// it: a record larger than a write is decoded once, not per write.
    pub last_read: Option<Windowed>,
    pub dropped_warn: u64,
    pub dropped_uncounted: u64,
    pub corrupt_records: u64,
    /// Records read back from the segment files (not from the window).
    pub disk_reads: u64,
    /// (segment, offset, appended unix ns) of the last record header read
    /// back: `stats` finds the oldest record's age here without reading.
    pub head_ns: Option<(u64, u64, i64)>,
    /// Record headers read back from the segment files.
    pub head_reads: u64,
    /// The last read error logged, and those since, not logged.
    pub read_error_log: Option<Instant>,
    pub read_errors_unlogged: u64,
}

impl State {
    pub fn new(scan: super::recover::Scan) -> Self {
        Self {
            queue: VecDeque::new(),
            queued: 0,
            writing: 0,
            closing: false,
            closed: false,
            disk_bytes: scan.segments.iter().map(|s| s.bytes).sum(),
            segments: scan.segments,
            next_id: scan.next_id,
            read: scan.read,
            read_consumed: scan.read.skip,
            disk_waiting: scan.waiting,
            cursor: scan.read,
            cursor_file: scan.cursor_file,
            cursor_synced: Instant::now(),
            window: VecDeque::new(),
            window_metrics: 0,
            window_bytes: 0,
            retry: None,
            ticket_out: false,
            ticket_unbacked: false,
            held_from: None,
            reader: None,
            last_read: None,
            dropped_warn: 0,
            dropped_uncounted: 0,
            corrupt_records: scan.recovery.corrupt_records,
            disk_reads: 0,
            head_ns: None,
            head_reads: 0,
            read_error_log: None,
            read_errors_unlogged: 0,
        }
    }

    /// Metrics waiting, appended or not.
    pub fn len(&self) -> u64 {
        self.queued
            + self.writing
            + self.disk_waiting
            + self.retry.as_ref().map_or(0, |(b, _)| b.len() as u64)
    }

    pub fn count_dropped(&mut self, n: u64) {
        self.dropped_warn += n;
        self.dropped_uncounted += n;
    }

    pub(super) fn segment(&self, id: u64) -> Option<&Segment> {
        let i = self.segments.binary_search_by_key(&id, |s| s.id).ok()?;
        self.segments.get(i)
    }

    /// Move the read position past the end of finished segments (and off
    /// segments dropped at the byte limit); forget window records before it.
    pub fn normalize(&mut self) {
        loop {
            match self.segment(self.read.segment) {
                Some(seg) if self.read.offset < seg.bytes => break,
                Some(seg) => {
                    let id = seg.id;
                    let Some(next) = self.segments.iter().find(|s| s.id > id) else {
                        break;
                    };
                    self.read = Pos {
                        segment: next.id,
                        ..Pos::default()
                    };
                }
                None => {
                    // Dropped at the byte limit, or not yet created: the
                    // writer creates segments in order, so a later one means
                    // this one is gone.
                    let read = self.read.segment;
                    let next = self.segments.iter().find(|s| s.id > read);
                    let Some(next) = next else {
                        self.read.offset = 0;
                        self.read.skip = 0;
                        self.read_consumed = 0;
                        break;
                    };
                    self.read = Pos {
                        segment: next.id,
                        ..Pos::default()
                    };
                }
            }
            self.read_consumed = 0;
        }
        let read = (self.read.segment, self.read.offset);
        while let Some(w) = self.window.front() {
            if (w.segment, w.offset) >= read {
                break;
            }
            self.window_metrics -= w.batch.len() as u64;
            self.window_bytes -= w.len;
            self.window.pop_front();
        }
        if self
            .last_read
            .as_ref()
            .is_some_and(|r| (r.segment, r.offset) != read)
        {
            self.last_read = None;
        }
    }

    /// When the oldest record on disk was appended, without reading: exact
    /// when the window, the last read or the last header read holds the
    /// record at the read position, else the append time of the first
    /// record of its segment (no later than the truth).
    pub fn oldest_on_disk(&self) -> Option<i64> {
        self.oldest_exact()
            .or_else(|| self.segment(self.read.segment).and_then(|s| s.first_ns))
    }

    /// When the record at the read position was appended, if known without
    /// reading.
    pub fn oldest_exact(&self) -> Option<i64> {
        let pos = self.read;
        if let Some(w) = self.windowed(pos) {
            return Some(w.appended_ns);
        }
        self.head_ns
            .filter(|&(segment, offset, _)| (segment, offset) == (pos.segment, pos.offset))
            .map(|(_, _, ns)| ns)
    }

    /// Keep at most `metrics` metrics and `bytes` bytes of recent records.
    pub fn bound_window(&mut self, metrics: u64, bytes: u64) {
        while self.window_metrics > metrics || self.window_bytes > bytes {
            let Some(w) = self.window.pop_front() else {
                break;
            };
            self.window_metrics -= w.batch.len() as u64;
            self.window_bytes -= w.len;
        }
    }

    /// The record at `pos`, if the window (or the last read) holds it.
    pub(super) fn windowed(&self, pos: Pos) -> Option<&Windowed> {
        let at = |w: &&Windowed| (w.segment, w.offset) == (pos.segment, pos.offset);
        self.window
            .front()
            .filter(at)
            .or(self.last_read.as_ref().filter(at))
    }

    /// Consume `n` metrics of the record at the read position (`len` bytes,
    /// `metrics` in all).
    pub fn consume(&mut self, n: u64, len: u64, metrics: u64) {
        if self.read.skip + n >= metrics {
            self.read.offset += len;
            self.read.skip = 0;
        } else {
            self.read.skip += n;
        }
        self.read_consumed += n;
        self.disk_waiting -= n.min(self.disk_waiting);
    }

    /// Drop the oldest whole records (the retry, then the log, then what
    /// waits for the writer) until at most `limit` metrics wait; returns
    /// how many metrics were dropped.
    pub fn drop_oldest(&mut self, inner: &Inner, limit: u64) -> u64 {
        let mut dropped = 0;
        while self.len() > limit {
            if let Some((retry, _)) = self.retry.take() {
                dropped += retry.len() as u64;
                continue;
            }
            self.normalize();
            if self.disk_waiting > 0 {
                let pos = self.read;
                match self.peek(inner, pos) {
                    Ok((head, len)) => {
                        let n = head.metrics.saturating_sub(pos.skip);
                        self.consume(n, len, head.metrics);
                        dropped += n;
                    }
                    Err(ReadError::Damaged(e)) => {
                        if !self.skip_damaged(inner, &e) {
                            break;
                        }
                    }
                    // Nothing can be dropped that cannot be read: the limit
                    // is kept again once the segment reads (the byte limit
                    // still holds meanwhile).
                    Err(ReadError::Io(e)) => {
                        self.read_failed(inner, &e);
                        break;
                    }
                }
                continue;
            }
            let Some(p) = self.queue.pop_front() else {
                break;
            };
            if let Some(ack) = &p.ack {
                ack.fail();
            }
            self.queued -= p.batch.len() as u64;
            dropped += p.batch.len() as u64;
            inner.space.notify_all();
        }
        self.normalize();
        self.count_dropped(dropped);
        if dropped > 0 && !self.ticket_out && self.retry.is_none() {
            inner.advance_cursor(self);
        }
        dropped
    }

    /// Delete the oldest segment (at the byte limit); its waiting metrics
    /// are dropped and counted.
    ///
    /// Metrics taken from it and not yet committed are held only in memory
    /// once it is gone, in the retry or the ticket out: a restart could not
    /// replay them. So they count as dropped: the retry at once (discarded:
    /// the oldest metrics, which the limit drops first), the ticket's
    /// metrics if it is restored (a commit means they were written). Each
    /// metric is counted dropped once, or delivered, never both.
    pub fn drop_front_segment(&mut self, inner: &Inner) {
        let Some(seg) = self.segments.pop_front() else {
            return;
        };
        if self.held_from.is_some_and(|from| from.segment <= seg.id) {
            if let Some((retry, _)) = self.retry.take() {
                tracing::warn!(dir = %inner.dir.display(), segment = seg.id, lost = retry.len(),
                    "the byte limit deleted the segment of the metrics waiting for a retry; they are dropped");
                self.count_dropped(retry.len() as u64);
            }
            self.ticket_unbacked |= self.ticket_out;
        }
        let lost = if seg.id < self.read.segment {
            0
        } else if seg.id == self.read.segment {
            seg.metrics.saturating_sub(self.read_consumed)
        } else {
            seg.metrics
        }
        .min(self.disk_waiting);
        self.disk_waiting -= lost;
        self.disk_bytes -= seg.bytes;
        self.count_dropped(lost);
        self.close_reader(seg.id);
        if let Err(e) = std::fs::remove_file(frame::segment_path(&inner.dir, seg.id)) {
            tracing::warn!(dir = %inner.dir.display(), segment = seg.id, error = %e,
                "a disk buffer segment could not be deleted");
        }
        if self.read.segment <= seg.id {
            self.read = Pos {
                segment: seg.id + 1,
                ..Pos::default()
            };
            self.read_consumed = 0;
        }
        self.normalize();
        if !self.ticket_out && self.retry.is_none() {
            inner.advance_cursor(self);
        }
    }

    /// Remove the segments wholly before the cursor.
    pub fn delete_before_cursor(&mut self, inner: &Inner) {
        while self
            .segments
            .front()
            .is_some_and(|s| s.id < self.cursor.segment)
        {
            let seg = self.segments.pop_front().expect("a front segment");
            self.disk_bytes -= seg.bytes;
            self.close_reader(seg.id);
            if let Err(e) = std::fs::remove_file(frame::segment_path(&inner.dir, seg.id)) {
                tracing::warn!(dir = %inner.dir.display(), segment = seg.id, error = %e,
                    "a written disk buffer segment could not be deleted");
            }
        }
    }
}
