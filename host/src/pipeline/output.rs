//! A running output: writes its buffer in batches of `metric_batch_size`
//! every `flush_interval` (+ `flush_jitter`) and as soon as a full batch
//! waits; follows the error class the plugin returns (retry keeps the batch,
//! reject drops and counts it, partial does both); backs off (the shared
//! [`Backoff`]) while writes keep failing; flushes once more on shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use graft_api::{CallError, Output};
use graft_core::{Batch, WriteError};
use graft_plugins::backoff::Backoff;
use rand::Rng;
use tokio::sync::watch;

use super::buffer::{OutputBuffer, Taken};
use crate::config::buffer::BufferSpec;
use crate::filter::MetricFilter;
use crate::stats::{PluginId, PluginStats};

/// How long a disk-buffered output writes at shutdown before it leaves
/// the rest in its log for the next start.
const DISK_SHUTDOWN_FLUSH: Duration = Duration::from_secs(3);

/// Longest pause between retries of a failing output.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// One output and what graft does around it.
pub struct RunningOutput {
    pub id: PluginId,
    /// Applied when metrics enter the buffer (by the fan-out).
    pub filter: MetricFilter,
    pub plugin: Box<dyn Output>,
    pub buffer: Arc<OutputBuffer>,
    /// Memory, or the disk buffer to open when the output starts.
    pub buffer_spec: BufferSpec,
    pub flush_interval: Duration,
    pub flush_jitter: Duration,
    pub batch_size: usize,
    pub stats: Arc<PluginStats>,
    /// The task running the output is under it: log lines carry the
    /// plugin's section and alias.
    pub span: tracing::Span,
}

/// What a running output is asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputStop {
    /// Keep writing.
    Run,
    /// Shut down: flush a last time and close.
    Flush,
    /// Hand over (a reload replaces the output): finish the write in
    /// progress, leave the rest in the buffer for the successor, close.
    Detach,
}

/// What one write attempt did.
#[derive(Debug, PartialEq, Eq)]
pub enum Attempt {
    /// Nothing was waiting.
    Empty,
    /// The batch is gone (written, or rejected for good).
    Done,
    /// The batch (or part of it) was kept for a later retry.
    Failed,
}

impl RunningOutput {
    /// Its buffer and counters, as the fan-out feeds them.
    pub fn sink(&self) -> super::fanout::OutputSink {
        super::fanout::OutputSink {
            id: self.id.clone(),
            filter: self.filter.clone(),
            buffer: self.buffer.clone(),
            stats: self.stats.clone(),
        }
    }

    fn report_overflow(&self) {
        let dropped = self.buffer.take_dropped();
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "metric buffer overflow; the oldest metrics were dropped"
            );
        }
    }

    /// Write one batch from the buffer.
    pub async fn write_once(&mut self) -> Attempt {
        self.report_overflow();
        let Some(taken) = take(&self.buffer, self.batch_size).await else {
            self.refresh_stats();
            return Attempt::Empty;
        };
        let batch = taken.batch.clone();
        let n = batch.len() as u64;
        let started = Instant::now();
        let result = self.plugin.write(&batch).await;
        PluginStats::add(
            &self.stats.call_time_ns,
            started.elapsed().as_nanos() as u64,
        );
        let attempt = match result {
            Ok(()) => {
                PluginStats::add(&self.stats.metrics_written, n);
                commit(&self.buffer, taken).await;
                Attempt::Done
            }
            Err(CallError::Returned(WriteError::Reject(msg))) => {
                PluginStats::add(&self.stats.metrics_rejected, n);
                PluginStats::add(&self.stats.errors, 1);
                tracing::error!(metrics = n, error = %msg, "the output rejected the metrics; they are dropped");
                commit(&self.buffer, taken).await;
                Attempt::Done
            }
            Err(CallError::Returned(WriteError::Partial {
                accepted,
                rejected,
                message,
            })) => {
                PluginStats::add(&self.stats.metrics_written, accepted.len() as u64);
                PluginStats::add(&self.stats.metrics_rejected, rejected.len() as u64);
                PluginStats::add(&self.stats.errors, 1);
                let mut rest = (*batch).clone();
                let done: std::collections::HashSet<u32> =
                    accepted.iter().chain(&rejected).copied().collect();
                rest.retain(|m| !done.contains(&(m.index() as u32)));
                tracing::warn!(accepted = accepted.len(), rejected = rejected.len(),
                    kept = rest.len(), error = %message, "partial write; the rest is kept for a retry");
                if rest.is_empty() {
                    commit(&self.buffer, taken).await;
                    Attempt::Done
                } else {
                    restore(&self.buffer, &self.stats, taken, Some(rest)).await;
                    Attempt::Failed
                }
            }
            Err(e) => {
                PluginStats::add(&self.stats.errors, 1);
                if let CallError::Fault(f) = &e {
                    self.stats.fault(f.kind);
                }
                tracing::warn!(metrics = n, error = %e, "write failed; the metrics are kept for a retry");
                restore(&self.buffer, &self.stats, taken, None).await;
                Attempt::Failed
            }
        };
        self.refresh_stats();
        attempt
    }

    /// Bring the buffer's figures in the counters up to date (a disk
    /// buffer drops at its limits as it appends, off the fan-out's path).
    pub fn refresh_stats(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        let dropped = self.buffer.take_uncounted();
        if dropped > 0 {
            PluginStats::add(&self.stats.metrics_dropped, dropped as u64);
        }
        self.stats
            .buffer_size
            .store(self.buffer.len() as u64, Relaxed);
        if let Some(d) = self.buffer.disk_stats() {
            self.stats.buffer_bytes.store(d.bytes, Relaxed);
            self.stats
                .buffer_oldest_ns
                .store(d.oldest.map_or(0, |ns| ns.max(0) as u64), Relaxed);
            self.stats
                .buffer_corrupt_records
                .store(d.corrupt_records, Relaxed);
        }
    }

    /// Write batches until the buffer is empty or a write fails; true when
    /// everything went.
    pub async fn flush(&mut self) -> bool {
        self.flush_unless(|| false).await
    }

    /// [`Self::flush`], stopping between two writes once `detached` says so.
    async fn flush_unless(&mut self, detached: impl Fn() -> bool) -> bool {
        loop {
            if detached() {
                return true;
            }
            match self.write_once().await {
                Attempt::Empty => return true,
                Attempt::Done => continue,
                Attempt::Failed => return false,
            }
        }
    }

    fn jitter(&self) -> Duration {
        if self.flush_jitter.is_zero() {
            return Duration::ZERO;
        }
        Duration::from_nanos(
            rand::rng().random_range(0..self.flush_jitter.as_nanos().max(1) as u64),
        )
    }

    /// Write on schedule until `stop` leaves [`OutputStop::Run`]; then flush
    /// a last time and close, or (detached) leave the buffer as it is.
    /// Returns the output, so that its buffer can outlive this run.
    pub async fn run(mut self, mut stop: watch::Receiver<OutputStop>) -> Self {
        // A failing flush waits the flush interval, doubling up to 30 s.
        let mut backoff =
            Backoff::exponential(self.flush_interval, MAX_BACKOFF.max(self.flush_interval));
        let mut next = Instant::now() + self.flush_interval + self.jitter();
        let detach_rx = stop.clone();
        let detached = move || *detach_rx.borrow() == OutputStop::Detach;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(next.into()) => {
                    if self.flush_unless(&detached).await {
                        backoff.succeed();
                        next = Instant::now() + self.flush_interval + self.jitter();
                    } else {
                        next = Instant::now() + backoff.fail();
                    }
                }
                _ = self.buffer.batch_ready.notified(), if backoff.failures() == 0 => {
                    while self.buffer.len() >= self.batch_size && !detached() {
                        match self.write_once().await {
                            Attempt::Done => {}
                            // A disk buffer counts what its writer has not
                            // appended yet, which cannot be taken yet.
                            Attempt::Empty => break,
                            Attempt::Failed => {
                                next = Instant::now() + backoff.fail();
                                break;
                            }
                        }
                    }
                }
                _ = async { stop.wait_for(|s| *s != OutputStop::Run).await.is_ok() } => break,
            }
        }
        if detached() {
            if let Err(e) = self.plugin.close().await {
                tracing::warn!(error = %e, "closing failed");
            }
            tracing::info!(
                waiting = self.buffer.len(),
                "output replaced; its buffer goes to the new one"
            );
        } else {
            self.shutdown().await;
        }
        self
    }

    /// The last flush and close. What a disk buffer still holds stays in
    /// its directory for the next start: its last flush is bounded by
    /// [`DISK_SHUTDOWN_FLUSH`], so that a backlog does not hold up the
    /// stop.
    pub async fn shutdown(&mut self) {
        let flushed = if self.buffer.is_durable() {
            let until = Instant::now() + DISK_SHUTDOWN_FLUSH;
            self.flush_unless(|| Instant::now() >= until).await && self.buffer.is_empty()
        } else {
            self.flush().await
        };
        if self.buffer.is_durable() {
            let waiting = self.buffer.len();
            let b = self.buffer.clone();
            let _ = super::blocking(move || b.close()).await;
            self.refresh_stats();
            if !flushed {
                tracing::info!(
                    waiting,
                    dir = %self.buffer.dir().map(|d| d.display().to_string()).unwrap_or_default(),
                    "output still failing at shutdown; the metrics wait in its disk buffer for the next start"
                );
            }
        } else if !flushed {
            let lost = self.buffer.discard() as u64;
            PluginStats::add(&self.stats.metrics_dropped, lost);
            // Counted once: nothing is waiting any more.
            self.stats
                .buffer_size
                .store(0, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(
                lost,
                "output still failing at shutdown; metrics left in its buffer are lost"
            );
        }
        if let Err(e) = self.plugin.close().await {
            tracing::warn!(error = %e, "closing failed");
        }
    }
}

/// The next batch to write. A disk buffer may read it from its files: off
/// the reactor.
async fn take(buffer: &Arc<OutputBuffer>, n: usize) -> Option<Taken> {
    if !buffer.is_durable() {
        return buffer.take(n);
    }
    let b = buffer.clone();
    super::blocking(move || b.take(n)).await.ok().flatten()
}

/// The batch is done with (written, or rejected for good). A disk buffer
/// saves its cursor: off the reactor.
async fn commit(buffer: &Arc<OutputBuffer>, taken: Taken) {
    if !buffer.is_durable() {
        return buffer.commit(taken);
    }
    let b = buffer.clone();
    let _ = super::blocking(move || b.commit(taken)).await;
}

/// Put what failed back for a retry; what no longer fits is counted
/// dropped.
async fn restore(
    buffer: &Arc<OutputBuffer>,
    stats: &PluginStats,
    taken: Taken,
    rest: Option<Batch>,
) {
    let dropped = if buffer.is_durable() {
        let b = buffer.clone();
        super::blocking(move || b.restore(taken, rest))
            .await
            .unwrap_or(0)
    } else {
        buffer.restore(taken, rest)
    };
    if dropped > 0 {
        PluginStats::add(&stats.metrics_dropped, dropped as u64);
    }
}
