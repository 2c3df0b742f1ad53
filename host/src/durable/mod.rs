//! The disk buffer (`buffer_strategy = "disk"`): an output's metrics kept in
//! a write-ahead log of whole batches on disk, so that a restart, a crash or
//! a `kill -9` replays what was not yet written, and nothing else.
//!
//! Each output has its own directory:
//!
//! ```text
//! lock                          held (flock) while a graft process uses the directory
//! cursor                        the committed position, in two slots overwritten in
//!                               turn: seq u64 | segment u64 | offset u64 | skip u64 |
//!                               crc32 u32 (of the 32 bytes before); the intact slot
//!                               with the highest seq counts
//! 00000000000000000001.seg      segments, appended in order, never rewritten except
//! 00000000000000000002.seg      to cut out damaged records on open
//! ```
//!
//! A segment is a sequence of records, each
//! `len u32 | crc32 u32 | payload` (little-endian; the crc32, IEEE, covers
//! the payload), with `payload = metrics u32 | appended unix ns i64 |`
//! a batch in [`graft_core::batch::codec`]'s encoding. Everything before the
//! cursor is written (`skip` counts the metrics already written of the
//! record at `offset`, when a write took part of a record); a commit that
//! moves the cursor past a segment deletes it.
//!
//! `add` queues a batch for the writer thread (at most [`MAX_QUEUED`]
//! batches; a full queue blocks the caller: backpressure); the thread
//! appends each round with one write, fsyncs per [`Fsync`], then drops the
//! batches' acknowledgements. An output keeping up is served from a small
//! window of the latest records in memory (at most max(4 × batch size,
//! 10 000) metrics and 8 MiB); a backlog is read back from the segments a
//! record at a time, so memory stays bounded whatever waits on disk. One
//! take is out at a time (see [`Ticket`]). At `limit_metrics` or
//! `limit_bytes` the oldest whole records are dropped and counted. On open
//! the segments after the cursor are checked record by record; torn or
//! damaged records are counted, logged at WARN and cut out, and the scan
//! resynchronises on the next intact record. A record found damaged later,
//! while draining, costs only itself the same way; an I/O error reading
//! back drops nothing (the next take retries). A take reads the disk with
//! the lock released; `stats` never reads it.
//!
//! Layout: `frame` (records, segment names), `cursor`, `recover` (replay
//! on open), `log` (the state, the window, the limits), `read` (reading
//! records back, and what a read error costs), `writer` (the `graft-wal`
//! thread), `take` (take, commit, restore).

mod cursor;
mod frame;
mod log;
mod read;
mod recover;
mod take;
mod writer;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_faults;
#[cfg(test)]
mod tests_load;
#[cfg(test)]
mod tests_recovery;

use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use graft_api::Ack;
use graft_core::Batch;
use tokio::sync::Notify;

use log::{Pending, State};
pub use take::Ticket;

/// Batches added and not yet taken by the writer thread, at most.
pub const MAX_QUEUED: usize = 64;
/// The default segment size.
pub const DEFAULT_SEGMENT_BYTES: u64 = 16 << 20;
/// The window of recent records kept in memory, in bytes of records.
const WINDOW_BYTES: u64 = 8 << 20;
/// The window holds at least this many metrics (and 4 batches).
const WINDOW_METRICS: u64 = 10_000;
/// A take with nothing appended yet waits this long for the writer's round.
const TAKE_WAIT: Duration = Duration::from_millis(200);

/// When appended records are forced to the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    /// After every append round: nothing acknowledged is lost to a power
    /// cut; the slowest.
    Batch,
    /// At most this often, from the writer thread (and on close): a crash
    /// of graft loses nothing, a power cut at most this much.
    Interval(Duration),
    /// Left to the operating system.
    Never,
}

/// How one output's disk buffer is set up.
#[derive(Clone, Debug)]
pub struct DiskOptions {
    /// This output's own directory (created if missing).
    pub dir: PathBuf,
    /// `metric_buffer_limit`.
    pub limit_metrics: usize,
    /// Bytes on disk, at most.
    pub limit_bytes: u64,
    /// `metric_batch_size`: `ready` is signalled when this many wait.
    pub batch_size: usize,
    /// A new segment is started past this size (at most a quarter of
    /// `limit_bytes`, at least 64 KiB, so that the byte limit can drop
    /// whole segments).
    pub segment_bytes: u64,
    pub fsync: Fsync,
}

/// What an open found in the directory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Metrics waiting, to be replayed.
    pub metrics: u64,
    /// Intact records after the cursor.
    pub records: u64,
    /// Torn or damaged stretches skipped.
    pub corrupt_records: u64,
    pub corrupt_bytes: u64,
}

/// A disk buffer's state, for `inputs.internal`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskStats {
    /// Metrics waiting (as [`DiskBuffer::len`]).
    pub metrics: u64,
    /// Bytes of segment files.
    pub bytes: u64,
    /// Unix ns when the oldest waiting record was appended (added, for a
    /// batch not yet appended). Known without reading the disk: after the
    /// metric limit dropped records it may be the append time of the first
    /// record of the oldest segment, never later than the truth.
    pub oldest: Option<i64>,
    /// Metrics found waiting on open.
    pub replayed: u64,
    /// Damaged records skipped, on open and since.
    pub corrupt_records: u64,
}

/// Why a disk buffer cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("the disk buffer directory {} is in use by another graft process", dir.display())]
    Locked { dir: PathBuf },
    #[error("disk buffer {}: cannot {action}: {source}", dir.display())]
    Io {
        dir: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// One output's disk buffer. All methods take `&self`.
pub struct DiskBuffer {
    inner: Arc<Inner>,
}

/// What the buffer, its tickets and its writer thread share.
struct Inner {
    dir: PathBuf,
    fsync: Fsync,
    limit_bytes: u64,
    segment_bytes: u64,
    limit: AtomicUsize,
    batch_size: AtomicUsize,
    state: Mutex<State>,
    /// Signalled when batches wait for the writer thread.
    work: Condvar,
    /// Signalled when the writer thread took batches.
    space: Condvar,
    /// Signalled when the writer thread finished a round.
    published: Condvar,
    ready: Arc<Notify>,
    lock_file: Mutex<Option<File>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    recovery: Recovery,
    /// Held by a test to stop the writer thread before its next append.
    #[cfg(test)]
    pause: Mutex<()>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A thread that panicked holding the lock left consistent counts.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    fn batch_size(&self) -> usize {
        self.batch_size.load(Ordering::Relaxed)
    }

    /// The window's bounds in metrics and bytes.
    fn window_bounds(&self) -> (u64, u64) {
        let metrics = (4 * self.batch_size() as u64).max(WINDOW_METRICS);
        (metrics, WINDOW_BYTES)
    }
}

impl DiskBuffer {
    /// Open (or create) the buffer in `options.dir`: lock it, replay what
    /// waits there, start the writer thread.
    pub fn open(options: DiskOptions, ready: Arc<Notify>) -> Result<(Self, Recovery), DiskError> {
        let dir = options.dir.clone();
        let io = |action| {
            let dir = dir.clone();
            move |source| DiskError::Io {
                dir,
                action,
                source,
            }
        };
        fs::create_dir_all(&dir).map_err(io("create the directory"))?;
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(frame::LOCK_FILE))
            .map_err(io("open the lock file"))?;
        match lock_file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(DiskError::Locked { dir }),
            Err(TryLockError::Error(e)) => return Err(io("lock the directory")(e)),
        }
        let scan = recover::scan(&dir).map_err(io("replay the log"))?;
        let recovery = scan.recovery;
        let segment_bytes = options
            .segment_bytes
            .min(options.limit_bytes / 4)
            .max(64 << 10);
        let inner = Arc::new(Inner {
            dir: dir.clone(),
            fsync: options.fsync,
            limit_bytes: options.limit_bytes,
            segment_bytes,
            limit: AtomicUsize::new(options.limit_metrics.max(1)),
            batch_size: AtomicUsize::new(options.batch_size.max(1)),
            state: Mutex::new(State::new(scan)),
            work: Condvar::new(),
            space: Condvar::new(),
            published: Condvar::new(),
            ready,
            lock_file: Mutex::new(Some(lock_file)),
            writer: Mutex::new(None),
            recovery,
            #[cfg(test)]
            pause: Mutex::new(()),
        });
        let for_writer = inner.clone();
        let handle = std::thread::Builder::new()
            .name("graft-wal".into())
            .spawn(move || writer::run(for_writer))
            .map_err(io("start the writer thread"))?;
        *inner.writer.lock().expect("writer handle") = Some(handle);
        let buffer = Self { inner };
        {
            let inner = &buffer.inner;
            let mut st = inner.lock();
            st.drop_oldest(inner, inner.limit() as u64);
            if st.disk_waiting >= inner.batch_size() as u64 {
                inner.ready.notify_one();
            }
        }
        if recovery.metrics > 0 || recovery.corrupt_records > 0 {
            tracing::info!(dir = %dir.display(), metrics = recovery.metrics, records = recovery.records,
                corrupt_records = recovery.corrupt_records, corrupt_bytes = recovery.corrupt_bytes,
                "disk buffer replays what was not yet written");
        }
        Ok((buffer, recovery))
    }

    /// Queue a batch for the log, held by `ack` until appended; blocks
    /// while the writer thread is [`MAX_QUEUED`] batches behind. At the
    /// metric limit the oldest whole records are dropped.
    pub fn add(&self, batch: Arc<Batch>, ack: Option<Ack>) {
        if batch.is_empty() {
            return;
        }
        let inner = &self.inner;
        let mut st = inner.lock();
        while st.queue.len() >= MAX_QUEUED && !st.closing {
            st = inner.space.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
        if st.closing {
            st.count_dropped(batch.len() as u64);
            if let Some(ack) = ack {
                ack.fail();
            }
            tracing::warn!(dir = %inner.dir.display(), metrics = batch.len(),
                "metrics added to a closed disk buffer are dropped");
            return;
        }
        st.queued += batch.len() as u64;
        st.queue.push_back(Pending {
            batch,
            ack,
            added_ns: frame::unix_ns(),
        });
        st.drop_oldest(inner, inner.limit() as u64);
        drop(st);
        inner.work.notify_one();
    }

    /// Metrics waiting, including those not yet appended.
    pub fn len(&self) -> usize {
        self.inner.lock().len() as usize
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The limit in metrics.
    pub fn limit(&self) -> usize {
        self.inner.limit()
    }

    /// New limits (a reload changed the output's settings); the metric
    /// limit is kept from the next add on.
    pub fn resize(&self, limit_metrics: usize, batch_size: usize) {
        self.inner
            .limit
            .store(limit_metrics.max(1), Ordering::Relaxed);
        self.inner
            .batch_size
            .store(batch_size.max(1), Ordering::Relaxed);
    }

    /// Metrics dropped since the last call, for the overflow warning.
    pub fn take_dropped(&self) -> u64 {
        std::mem::take(&mut self.inner.lock().dropped_warn)
    }

    /// Metrics dropped since the last call, for the `metrics_dropped`
    /// counter (apart from [`Self::take_dropped`]).
    pub fn take_uncounted(&self) -> u64 {
        std::mem::take(&mut self.inner.lock().dropped_uncounted)
    }

    /// The buffer's state for `inputs.internal`.
    pub fn stats(&self) -> DiskStats {
        let inner = &self.inner;
        let mut st = inner.lock();
        st.normalize();
        // No disk read here: `stats` runs at every write attempt.
        let oldest = if let Some((_, ns)) = &st.retry {
            Some(*ns)
        } else if st.disk_waiting > 0 {
            st.oldest_on_disk()
        } else {
            st.queue.front().map(|p| p.added_ns)
        };
        DiskStats {
            metrics: st.len(),
            bytes: st.disk_bytes,
            oldest,
            replayed: inner.recovery.metrics,
            corrupt_records: st.corrupt_records,
        }
    }

    /// Append what is queued, fsync, persist the cursor, stop the writer
    /// thread and release the directory. Idempotent.
    pub fn close(&self) -> Result<(), DiskError> {
        let inner = &self.inner;
        inner.lock().closing = true;
        inner.work.notify_all();
        inner.space.notify_all();
        let handle = inner.writer.lock().expect("writer handle").take();
        let Some(handle) = handle else {
            return Ok(());
        };
        if handle.join().is_err() {
            tracing::error!(dir = %inner.dir.display(), "the disk buffer's writer thread panicked");
        }
        let mut st = inner.lock();
        // Left behind by a writer that failed: lost, and said so.
        let left: Vec<Pending> = st.queue.drain(..).collect();
        let lost: u64 = left.iter().map(|p| p.batch.len() as u64).sum();
        st.queued = 0;
        st.count_dropped(lost);
        left.iter()
            .filter_map(|p| p.ack.as_ref())
            .for_each(Ack::fail);
        let cursor = st.cursor;
        let saved = st.cursor_file.save(cursor, inner.fsync != Fsync::Never);
        st.closed = true;
        drop(st);
        if let Some(file) = inner.lock_file.lock().expect("lock file").take() {
            let _ = file.unlock();
        }
        saved.map_err(|source| DiskError::Io {
            dir: inner.dir.clone(),
            action: "save the cursor",
            source,
        })
    }
}

impl Drop for DiskBuffer {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::warn!(error = %e, "closing the disk buffer failed");
        }
    }
}
