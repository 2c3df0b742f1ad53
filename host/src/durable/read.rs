//! Reading records back from the segment files, and what a read error
//! costs: an I/O error (too many open files, an interrupted read) costs
//! nothing, the take returns nothing and the next one retries; a damaged
//! record (checksum, length or batch) costs that record only, counted and
//! logged, and the read position resynchronises on the next intact record
//! as the replay on open does.
//!
//! A take reads the record at the read position without holding the lock
//! ([`prefetch`]), so `add` and `stats` go on meanwhile; the rare read
//! errors are met again, and handled, under the lock.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use graft_core::Batch;

use super::Inner;
use super::frame::ReadError;
use super::frame::{self, FRAME_HEADER, PAYLOAD_HEADER, Pos, RecordHead};
use super::log::{State, Windowed};
use super::recover;

impl State {
    fn file(&mut self, inner: &Inner, id: u64) -> io::Result<&File> {
        if self.reader.as_ref().is_none_or(|(open, _)| *open != id) {
            self.reader = None;
            let file = File::open(frame::segment_path(&inner.dir, id))?;
            self.reader = Some((id, file));
        }
        Ok(&self.reader.as_ref().expect("just opened").1)
    }

    /// Fill `buf` from `pos`; after an error the file is opened afresh.
    fn read_at(&mut self, inner: &Inner, pos: Pos, buf: &mut [u8]) -> io::Result<()> {
        let read = self
            .file(inner, pos.segment)
            .and_then(|f| f.read_exact_at(buf, pos.offset));
        if read.is_err() {
            self.reader = None;
        }
        read
    }

    /// Forget the open segment file if it is `id` or older.
    pub fn close_reader(&mut self, id: u64) {
        if self.reader.as_ref().is_some_and(|(open, _)| *open <= id) {
            self.reader = None;
        }
    }

    /// The header and length of the record at `pos`, without its batch.
    pub fn peek(&mut self, inner: &Inner, pos: Pos) -> Result<(RecordHead, u64), ReadError> {
        if let Some(w) = self.windowed(pos) {
            let head = RecordHead {
                metrics: w.batch.len() as u64,
                appended_ns: w.appended_ns,
            };
            return Ok((head, w.len));
        }
        let end = self.segment(pos.segment).map_or(0, |s| s.bytes);
        let mut head = [0u8; FRAME_HEADER + PAYLOAD_HEADER];
        self.head_reads += 1;
        self.read_at(inner, pos, &mut head)?;
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as u64;
        if len < PAYLOAD_HEADER as u64 || pos.offset + FRAME_HEADER as u64 + len > end {
            return Err(ReadError::Damaged(format!(
                "a record length of {len} bytes"
            )));
        }
        let head = frame::payload_head(&head[FRAME_HEADER..]);
        self.head_ns = Some((pos.segment, pos.offset, head.appended_ns));
        Ok((head, FRAME_HEADER as u64 + len))
    }

    /// The record at `pos`, from the window or read back and checked.
    pub fn record(
        &mut self,
        inner: &Inner,
        pos: Pos,
    ) -> Result<(RecordHead, Arc<Batch>, u64), ReadError> {
        if let Some(w) = self.windowed(pos) {
            let head = RecordHead {
                metrics: w.batch.len() as u64,
                appended_ns: w.appended_ns,
            };
            return Ok((head, w.batch.clone(), w.len));
        }
        let (_, len) = self.peek(inner, pos)?;
        self.disk_reads += 1;
        let mut bytes = vec![0; len as usize];
        self.read_at(inner, pos, &mut bytes)?;
        let frame::Frame::Valid { payload, .. } = frame::check_frame(&bytes) else {
            return Err(ReadError::Damaged(
                "a record whose checksum does not match".into(),
            ));
        };
        let (head, batch) = frame::decode_payload(payload).map_err(ReadError::Damaged)?;
        let batch = Arc::new(batch);
        self.last_read = Some(Windowed {
            segment: pos.segment,
            offset: pos.offset,
            len,
            appended_ns: head.appended_ns,
            batch: batch.clone(),
        });
        Ok((head, batch, len))
    }

    /// Reading failed for a reason that may pass: nothing is dropped, the
    /// file is reopened next time; logged at most every 10 s.
    pub fn read_failed(&mut self, inner: &Inner, e: &io::Error) {
        self.reader = None;
        self.read_errors_unlogged += 1;
        if self
            .read_error_log
            .is_some_and(|t| t.elapsed() < Duration::from_secs(10))
        {
            return;
        }
        tracing::warn!(dir = %inner.dir.display(), segment = self.read.segment,
            offset = self.read.offset, error = %e, errors = self.read_errors_unlogged,
            "the disk buffer cannot read its log back; nothing is dropped, retrying");
        self.read_errors_unlogged = 0;
        self.read_error_log = Some(Instant::now());
    }

    /// The record at the read position is damaged: skip to the next intact
    /// record of its segment (or its end), count the one damaged stretch and
    /// the metrics it held. Returns whether the read position moved.
    pub fn skip_damaged(&mut self, inner: &Inner, error: &str) -> bool {
        let Some(seg) = self.segment(self.read.segment) else {
            // No segment to read and none after it: nothing is on disk.
            tracing::error!(dir = %inner.dir.display(), segment = self.read.segment,
                waiting = self.disk_waiting, error, "the disk buffer lost track of its log");
            self.count_dropped(self.disk_waiting);
            self.disk_waiting = 0;
            return true;
        };
        let (id, end, metrics) = (seg.id, seg.bytes, seg.metrics);
        let from = self.read.offset;
        // What follows in the segment: the next intact record and the
        // metrics from there on; a segment that cannot be read has none.
        let (next, after) = match self
            .read_rest(inner, id, from, end)
            .map_err(ReadError::from)
        {
            Ok(data) => match (0..data.len()).find(|&p| recover::record_at(&data, p).is_some()) {
                Some(0) => return false, // intact now: nothing to skip
                Some(next) => (next as u64, recover::scan_segment(&data, next).metrics),
                None => (end - from, 0),
            },
            Err(ReadError::Io(e)) => {
                self.read_failed(inner, &e);
                return false;
            }
            Err(ReadError::Damaged(_)) => (end - from, 0),
        };
        let waiting = metrics
            .saturating_sub(self.read_consumed)
            .min(self.disk_waiting);
        let lost = waiting.saturating_sub(after);
        tracing::warn!(dir = %inner.dir.display(), segment = id, offset = from, bytes = next,
            lost, error, "a damaged disk buffer record is skipped; the records after it are kept");
        self.corrupt_records += 1;
        self.count_dropped(lost);
        self.disk_waiting -= lost;
        self.read_consumed = metrics.saturating_sub(after);
        self.read.offset = from + next;
        self.read.skip = 0;
        self.last_read = None;
        self.normalize();
        true
    }

    /// The bytes of segment `id` from `from` to `end` (or to where the file
    /// ends, if it was cut short).
    fn read_rest(&mut self, inner: &Inner, id: u64, from: u64, end: u64) -> io::Result<Vec<u8>> {
        let file = self.file(inner, id)?;
        let mut data = vec![0; end.saturating_sub(from) as usize];
        let mut done = 0;
        while done < data.len() {
            match file.read_at(&mut data[done..], from + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        data.truncate(done);
        Ok(data)
    }
}

/// Read the record at the read position back (if the window does not hold
/// it) with the lock released, and keep it as the last read if the read
/// position is still there and its segment still exists; `take` then finds
/// it in memory. The caller holds no ticket; one is reserved meanwhile so
/// that no other take starts. Errors are left for the read under the lock.
pub fn prefetch<'a>(inner: &'a Inner, mut st: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
    st.normalize();
    let pos = st.read;
    if st.disk_waiting == 0 || st.closed || st.windowed(pos).is_some() {
        return st;
    }
    let Some(end) = st.segment(pos.segment).map(|s| s.bytes) else {
        return st;
    };
    let reader = st.reader.take().filter(|(id, _)| *id == pos.segment);
    st.ticket_out = true;
    drop(st);
    // A test holding the pause stops the take here, the lock released.
    #[cfg(test)]
    drop(inner.pause.lock());
    let (file, read) = read_record(inner, reader.map(|(_, f)| f), pos, end);
    let mut st = inner.lock();
    st.ticket_out = false;
    let still = (st.read.segment, st.read.offset) == (pos.segment, pos.offset)
        && st.segment(pos.segment).is_some();
    if st.reader.is_none()
        && st.segment(pos.segment).is_some()
        && let Some(file) = file
    {
        st.reader = Some((pos.segment, file));
    }
    if let Some((head, batch, len)) = read.filter(|_| still) {
        st.disk_reads += 1;
        st.head_ns = Some((pos.segment, pos.offset, head.appended_ns));
        st.last_read = Some(Windowed {
            segment: pos.segment,
            offset: pos.offset,
            len,
            appended_ns: head.appended_ns,
            batch: Arc::new(batch),
        });
    }
    st
}

/// The record at `pos` of a segment `end` bytes long, read and checked;
/// the file (opened if need be) is handed back for the next read.
fn read_record(
    inner: &Inner,
    file: Option<File>,
    pos: Pos,
    end: u64,
) -> (Option<File>, Option<(RecordHead, Batch, u64)>) {
    let file = match file {
        Some(f) => f,
        None => match File::open(frame::segment_path(&inner.dir, pos.segment)) {
            Ok(f) => f,
            Err(_) => return (None, None),
        },
    };
    let mut head = [0u8; FRAME_HEADER];
    if file.read_exact_at(&mut head, pos.offset).is_err() {
        return (None, None);
    }
    let len =
        FRAME_HEADER as u64 + u64::from(u32::from_le_bytes([head[0], head[1], head[2], head[3]]));
    if len < (FRAME_HEADER + PAYLOAD_HEADER) as u64 || pos.offset + len > end {
        return (Some(file), None);
    }
    let mut bytes = vec![0; len as usize];
    if file.read_exact_at(&mut bytes, pos.offset).is_err() {
        return (None, None);
    }
    let record = match frame::check_frame(&bytes) {
        frame::Frame::Valid { payload, .. } => frame::decode_payload(payload).ok(),
        _ => None,
    };
    (Some(file), record.map(|(head, batch)| (head, batch, len)))
}
