//! The output's side of the disk buffer: take the oldest metrics, then
//! commit them (the cursor moves past them and is persisted; finished
//! segments are deleted) or restore what is left of them for a retry.
//!
//! One ticket is out at a time (an output writes one batch after another);
//! a ticket dropped without commit or restore is restored whole.

use std::sync::{Arc, PoisonError, Weak};
use std::time::Instant;

use graft_core::Batch;

use super::frame::ReadError;
use super::log::State;
use super::{DiskBuffer, Fsync, Inner, TAKE_WAIT};

/// Metrics handed out by [`DiskBuffer::take`], until committed or restored.
pub struct Ticket {
    buffer: Weak<Inner>,
    batch: Arc<Batch>,
    appended_ns: i64,
    done: bool,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.done
            && let Some(inner) = self.buffer.upgrade()
        {
            inner.restore(self.batch.clone(), self.appended_ns);
        }
    }
}

impl DiskBuffer {
    /// The oldest unwritten metrics, at most `max`; none while another
    /// ticket is out. When everything waiting is still on its way to the
    /// log, waits (briefly, 200 ms at most) for the writer thread.
    pub fn take(&self, max: usize) -> Option<(Arc<Batch>, Ticket)> {
        let inner = &self.inner;
        let mut st = inner.lock();
        if st.ticket_out || max == 0 {
            return None;
        }
        let deadline = Instant::now() + TAKE_WAIT;
        while st.retry.is_none() && st.disk_waiting == 0 && st.queued + st.writing > 0 && !st.closed
        {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            st = inner
                .published
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        if st.retry.is_none() {
            st = super::read::prefetch(inner, st);
        }
        let (batch, appended_ns) = match st.retry.take() {
            Some((retry, ns)) if retry.len() > max => {
                let rest = Arc::new(retry.slice(max..retry.len()));
                st.retry = Some((rest, ns));
                (Arc::new(retry.slice(0..max)), ns)
            }
            Some(whole) => whole,
            None => {
                st.normalize();
                let from = st.read;
                let taken = take_from_log(inner, &mut st, max)?;
                st.held_from = Some(from);
                taken
            }
        };
        st.ticket_out = true;
        st.ticket_unbacked = false;
        let ticket = Ticket {
            buffer: Arc::downgrade(inner),
            batch: batch.clone(),
            appended_ns,
            done: false,
        };
        Some((batch, ticket))
    }

    /// The ticket's metrics are written (or rejected for good): never
    /// replay them.
    pub fn commit(&self, mut ticket: Ticket) {
        ticket.done = true;
        let mut st = self.inner.lock();
        st.ticket_out = false;
        if st.retry.is_none() {
            self.inner.advance_cursor(&mut st);
        }
    }

    /// The write failed: `rest` (all of the ticket's metrics, or those a
    /// partial write left) is retried before anything else.
    pub fn restore(&self, mut ticket: Ticket, rest: Arc<Batch>) {
        ticket.done = true;
        self.inner.restore(rest, ticket.appended_ns);
    }
}

/// Up to `max` metrics from the read position on: a record handed over
/// whole when it is all that is taken, else the pieces copied together.
fn take_from_log(inner: &Inner, st: &mut State, max: usize) -> Option<(Arc<Batch>, i64)> {
    let mut pieces = Vec::new();
    let mut total = 0;
    let mut first_ns = None;
    while total < max {
        st.normalize();
        if st.disk_waiting == 0 {
            break;
        }
        let pos = st.read;
        let (head, batch, len) = match st.record(inner, pos) {
            Ok(record) => record,
            Err(ReadError::Damaged(e)) if st.skip_damaged(inner, &e) => continue,
            Err(ReadError::Damaged(_)) => break,
            // Nothing is dropped: what was read is handed out, the next
            // take reads on.
            Err(ReadError::Io(e)) => {
                st.read_failed(inner, &e);
                break;
            }
        };
        let from = (pos.skip as usize).min(batch.len());
        let n = (batch.len() - from).min(max - total);
        st.consume(n as u64, len, head.metrics);
        first_ns.get_or_insert(head.appended_ns);
        total += n;
        if n > 0 {
            pieces.push((batch, from..from + n));
        }
    }
    st.normalize();
    // The next record's header, read now (a take may block) so that
    // `stats` knows the oldest record's age without reading.
    if st.disk_waiting > 0 && st.oldest_exact().is_none() {
        let pos = st.read;
        let _ = st.peek(inner, pos);
    }
    let batch = match pieces.as_slice() {
        [] => return None,
        [(batch, range)] if *range == (0..batch.len()) => batch.clone(),
        _ => {
            let mut out = Batch::new();
            for (batch, range) in &pieces {
                out.extend_from(batch, range.clone());
            }
            Arc::new(out)
        }
    };
    Some((batch, first_ns.unwrap_or_default()))
}

impl Inner {
    /// Put `rest` back at the front, ahead of any part of an earlier
    /// retry still waiting; then the limit holds again.
    fn restore(&self, rest: Arc<Batch>, appended_ns: i64) {
        let mut st = self.lock();
        st.ticket_out = false;
        if std::mem::take(&mut st.ticket_unbacked) && !rest.is_empty() {
            // Its segment is gone: held nowhere but here, so dropped and
            // counted rather than kept in memory only.
            tracing::warn!(dir = %self.dir.display(), lost = rest.len(),
                "the byte limit deleted the segment of metrics whose write failed; they are dropped");
            st.count_dropped(rest.len() as u64);
            if st.retry.is_none() {
                self.advance_cursor(&mut st);
            }
            return;
        }
        if rest.is_empty() {
            if st.retry.is_none() {
                self.advance_cursor(&mut st);
            }
            return;
        }
        let retry = match st.retry.take() {
            Some((older, _)) => {
                let mut both = (*rest).clone();
                both.append(&older);
                Arc::new(both)
            }
            None => rest,
        };
        st.retry = Some((retry, appended_ns));
        st.drop_oldest(self, self.limit() as u64);
    }

    /// Everything before the read position is written or dropped: persist
    /// that as the cursor and delete the segments before it.
    pub(super) fn advance_cursor(&self, st: &mut State) {
        // Called once neither a ticket nor a retry holds metrics.
        st.held_from = None;
        st.normalize();
        if st.cursor == st.read || st.closed {
            return;
        }
        st.cursor = st.read;
        let sync = match self.fsync {
            Fsync::Batch => true,
            Fsync::Interval(every) => st.cursor_synced.elapsed() >= every,
            Fsync::Never => false,
        };
        let cursor = st.cursor;
        match st.cursor_file.save(cursor, sync) {
            Ok(()) if sync => st.cursor_synced = Instant::now(),
            Ok(()) => {}
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e,
                    "the disk buffer's cursor could not be saved; a restart replays more");
                return;
            }
        }
        st.delete_before_cursor(self);
    }
}
