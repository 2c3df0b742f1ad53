//! An output's buffer: where metrics wait between the fan-out and the
//! output's writes. In memory by default (Telegraf's semantics, see
//! [`memory`]), or a write-ahead log on disk ([`crate::durable`]) that
//! survives a crash, a `kill -9` or a restart.
//!
//! Writes go through [`OutputBuffer::take`], then [`OutputBuffer::commit`]
//! once the batch is written (or rejected for good) or
//! [`OutputBuffer::restore`] when it is to be retried.
//!
//! The buffer is shared (`Arc`) and owned apart from the task that writes
//! it, so that it can outlive a pipeline and be handed to the next one.

pub mod memory;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};

use anyhow::{Context, Result};
use graft_api::Ack;
use graft_core::Batch;
use tokio::sync::Notify;

use crate::config::buffer::{DiskSpec, FsyncPolicy};
use crate::durable::{DiskBuffer, DiskOptions, DiskStats, Fsync, Recovery, Ticket};
use memory::MemoryBuffer;

/// One output's buffer.
pub struct OutputBuffer {
    store: Store,
    /// Signalled when a full batch is waiting.
    pub batch_ready: Arc<Notify>,
}

enum Store {
    Memory(MemoryBuffer),
    Disk { log: DiskBuffer, dir: PathBuf },
}

/// Metrics taken for a write, until they are committed or restored.
pub struct Taken {
    pub batch: Arc<Batch>,
    token: Token,
}

enum Token {
    /// The acknowledgements of the batches taken whole.
    Memory(Vec<Ack>),
    /// Where the taken metrics are in the log.
    Disk(Ticket),
}

/// The disk buffers open in this process, by directory: an output that
/// replaces a running one on a reload shares its log instead of opening it
/// a second time.
static OPEN: Mutex<Vec<(PathBuf, Weak<OutputBuffer>)>> = Mutex::new(Vec::new());

impl OutputBuffer {
    /// A memory buffer of `limit` metrics that signals at `batch_size`.
    pub fn memory(limit: usize, batch_size: usize) -> Self {
        let batch_ready = Arc::new(Notify::new());
        Self {
            store: Store::Memory(MemoryBuffer::new(limit, batch_size, batch_ready.clone())),
            batch_ready,
        }
    }

    /// The disk buffer in `spec.dir` with room for `limit` metrics,
    /// signalling at `batch_size`: the one this process has open already,
    /// or opened now (what an earlier run left in it is replayed first).
    /// The recovery is `None` when it was open already.
    pub fn open_disk(
        spec: &DiskSpec,
        limit: usize,
        batch_size: usize,
    ) -> Result<(Arc<Self>, Option<Recovery>)> {
        std::fs::create_dir_all(&spec.dir)
            .with_context(|| format!("creating the buffer directory {}", spec.dir.display()))?;
        let dir = spec
            .dir
            .canonicalize()
            .with_context(|| format!("opening the buffer directory {}", spec.dir.display()))?;
        let mut open = OPEN.lock().expect("open buffers lock");
        open.retain(|(_, w)| w.strong_count() > 0);
        if let Some(shared) = open
            .iter()
            .find(|(d, _)| *d == dir)
            .and_then(|(_, w)| w.upgrade())
        {
            shared.resize(limit, batch_size);
            return Ok((shared, None));
        }
        let batch_ready = Arc::new(Notify::new());
        let options = DiskOptions {
            dir: dir.clone(),
            limit_metrics: limit,
            limit_bytes: spec.max_bytes,
            batch_size,
            segment_bytes: spec.segment_bytes,
            fsync: match spec.fsync {
                FsyncPolicy::Batch => Fsync::Batch,
                FsyncPolicy::Interval => Fsync::Interval(spec.fsync_interval),
                FsyncPolicy::Never => Fsync::Never,
            },
        };
        let (log, recovery) = DiskBuffer::open(options, batch_ready.clone())
            .with_context(|| format!("opening the disk buffer in {}", dir.display()))?;
        let buffer = Arc::new(Self {
            store: Store::Disk {
                log,
                dir: dir.clone(),
            },
            batch_ready,
        });
        open.push((dir, Arc::downgrade(&buffer)));
        Ok((buffer, Some(recovery)))
    }

    /// Whether what waits here survives graft stopping.
    pub fn is_durable(&self) -> bool {
        matches!(self.store, Store::Disk { .. })
    }

    /// The directory of a disk buffer.
    pub fn dir(&self) -> Option<&std::path::Path> {
        match &self.store {
            Store::Memory(_) => None,
            Store::Disk { dir, .. } => Some(dir),
        }
    }

    /// A disk buffer's figures.
    pub fn disk_stats(&self) -> Option<DiskStats> {
        match &self.store {
            Store::Memory(_) => None,
            Store::Disk { log, .. } => Some(log.stats()),
        }
    }

    /// Metrics waiting.
    pub fn len(&self) -> usize {
        match &self.store {
            Store::Memory(m) => m.len(),
            Store::Disk { log, .. } => log.len(),
        }
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Capacity in metrics.
    pub fn limit(&self) -> usize {
        match &self.store {
            Store::Memory(m) => m.limit(),
            Store::Disk { log, .. } => log.limit(),
        }
    }

    /// New limits, for an output whose settings changed in a reload; takes
    /// effect with the next batch added.
    pub fn resize(&self, limit: usize, batch_size: usize) {
        match &self.store {
            Store::Memory(m) => m.resize(limit, batch_size),
            Store::Disk { log, .. } => log.resize(limit, batch_size),
        }
    }

    /// Add a batch, held by `ack` until written (or durable); returns how
    /// many of the oldest metrics were dropped to make room (for a disk
    /// buffer: since the last call, as its log drops them when appending).
    pub fn add(&self, batch: Arc<Batch>, ack: Option<Ack>) -> usize {
        match &self.store {
            Store::Memory(m) => m.add(batch, ack),
            Store::Disk { log, .. } => {
                log.add(batch, ack);
                log.take_uncounted() as usize
            }
        }
    }

    /// Metrics a disk buffer dropped at its limits and not yet counted by
    /// [`Self::add`] or [`Self::restore`] (0 for memory).
    pub fn take_uncounted(&self) -> usize {
        match &self.store {
            Store::Memory(_) => 0,
            Store::Disk { log, .. } => log.take_uncounted() as usize,
        }
    }

    /// The oldest metrics, at most `max`, for a write.
    pub fn take(&self, max: usize) -> Option<Taken> {
        match &self.store {
            Store::Memory(m) => m.take(max).map(|(batch, acks)| Taken {
                batch,
                token: Token::Memory(acks),
            }),
            Store::Disk { log, .. } => log.take(max).map(|(batch, ticket)| Taken {
                batch,
                token: Token::Disk(ticket),
            }),
        }
    }

    /// The taken metrics are written, or rejected for good: they are done.
    pub fn commit(&self, taken: Taken) {
        match (&self.store, taken.token) {
            // Dropping the holds settles the batches taken whole.
            (_, Token::Memory(acks)) => drop(acks),
            (Store::Disk { log, .. }, Token::Disk(ticket)) => log.commit(ticket),
            (Store::Memory(_), Token::Disk(_)) => {
                unreachable!("a disk ticket is only handed out by a disk buffer")
            }
        }
    }

    /// The write failed: `rest` (or, when `None`, all the taken metrics)
    /// goes back to the front for a retry. Returns how many metrics did
    /// not fit and were dropped.
    pub fn restore(&self, taken: Taken, rest: Option<Batch>) -> usize {
        let batch = rest.map_or(taken.batch, Arc::new);
        match (&self.store, taken.token) {
            (Store::Memory(m), Token::Memory(acks)) => m.restore(batch, acks),
            (Store::Disk { log, .. }, Token::Disk(ticket)) => {
                log.restore(ticket, batch);
                log.take_uncounted() as usize
            }
            (Store::Disk { .. }, Token::Memory(_)) | (Store::Memory(_), Token::Disk(_)) => {
                unreachable!("a token goes back to the buffer that handed it out")
            }
        }
    }

    /// Metrics dropped since the last call, for the overflow warning.
    pub fn take_dropped(&self) -> u64 {
        match &self.store {
            Store::Memory(m) => m.take_dropped(),
            Store::Disk { log, .. } => log.take_dropped(),
        }
    }

    /// graft stops with metrics still here: returns how many are lost (their
    /// acknowledgements fail). A disk buffer loses nothing: it appends what
    /// is queued, syncs and closes; the next start replays it.
    pub fn discard(&self) -> usize {
        match &self.store {
            Store::Memory(m) => m.discard(),
            Store::Disk { .. } => {
                self.close();
                0
            }
        }
    }

    /// Close a disk buffer (append what is queued, sync, release its
    /// directory); nothing for memory.
    pub fn close(&self) {
        if let Store::Disk { log, dir } = &self.store
            && let Err(e) = log.close()
        {
            tracing::error!(dir = %dir.display(), error = %e, "closing the disk buffer failed");
        }
    }

    /// Move what waits in `self` into `to`, oldest first, for an output
    /// whose buffer kind changed on a reload; returns how many metrics
    /// stay behind in `self` (a disk buffer larger than `to` can hold
    /// keeps the rest in its directory for a later start).
    pub fn move_into(&self, to: &OutputBuffer) -> usize {
        match &self.store {
            Store::Memory(m) => {
                while let Some((batch, acks)) = m.take_chunk() {
                    // The new buffer holds one acknowledgement per batch:
                    // the first travels with it; the others (batches
                    // merged by a failed write) are failed, so that their
                    // senders send again rather than lose anything.
                    let mut acks = acks.into_iter();
                    let first = acks.next();
                    acks.for_each(|a| a.fail());
                    let _ = to.add(batch, first);
                }
                0
            }
            Store::Disk { log, .. } => {
                while to.len() < to.limit() {
                    let room = to.limit() - to.len();
                    let Some((batch, ticket)) = log.take(room) else {
                        break;
                    };
                    let _ = to.add(batch, None);
                    log.commit(ticket);
                }
                log.len()
            }
        }
    }
}
