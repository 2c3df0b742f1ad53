//! The TCP side: one accept loop that asks the listener's
//! [`ConnectionLimiter`] for every connection (a refused one is closed at
//! once and counted), and [`Connection`], a stream with the read timeout,
//! the stop signal and once-per-connection logging of limit hits. Tasks
//! run in the span the listener was started in (the host's span of the
//! plugin instance), so log lines carry the plugin without naming it.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::budget::{ConnectionLimiter, ConnectionPermit, Refused};
use super::stats::{Counter, ListenerStats};
use super::stopped;

/// How often at most a listener logs that it refuses connections.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// What the accept loop needs besides the socket.
pub struct TcpServe {
    /// The listener's claim on the process-wide budget.
    pub limiter: ConnectionLimiter,
    /// Close a connection idle this long (zero: never).
    pub read_timeout: Duration,
    pub stats: ListenerStats,
    pub stop: watch::Receiver<bool>,
}

/// Accept connections until told to stop, then wait for the connections
/// to finish (they see the same stop signal). Each accepted connection
/// holds a permit and is handed to `handle` in its own task.
pub async fn serve<H, F>(listener: TcpListener, serve: TcpServe, handle: H)
where
    H: Fn(Connection) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let TcpServe {
        limiter,
        read_timeout,
        stats,
        mut stop,
    } = serve;
    let local = listener.local_addr().ok();
    let mut conns = JoinSet::new();
    let mut refusals = Refusals::default();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match limiter.try_acquire() {
                    Ok(permit) => {
                        let conn = Connection {
                            stream,
                            peer,
                            read_timeout,
                            stats: stats.clone(),
                            stop: stop.clone(),
                            logged: Vec::new(),
                            _permit: permit,
                        };
                        conns.spawn(handle(conn).in_current_span());
                    }
                    Err(why) => {
                        drop(stream);
                        refusals.count(local, peer, why, &stats);
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; retrying in 100 ms");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = stopped(&mut stop) => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

/// Counting and rate-limited logging of refused connections.
#[derive(Default)]
struct Refusals {
    last_log: Option<Instant>,
    since_log: u64,
}

impl Refusals {
    fn count(
        &mut self,
        local: Option<SocketAddr>,
        peer: SocketAddr,
        why: Refused,
        stats: &ListenerStats,
    ) {
        match why {
            Refused::Listener { .. } => stats.connections_limit_hits.hit(),
            Refused::Process { .. } => stats.process_connections_limit_hits.hit(),
        }
        self.since_log += 1;
        if self
            .last_log
            .is_none_or(|t| t.elapsed() >= REFUSAL_LOG_EVERY)
        {
            tracing::warn!(
                listener = ?local,
                %peer,
                refused = self.since_log,
                reason = %why,
                "connection refused and closed; later refusals are counted and logged every 10 s"
            );
            self.last_log = Some(Instant::now());
            self.since_log = 0;
        }
    }
}

/// An accepted connection.
pub struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    read_timeout: Duration,
    stats: ListenerStats,
    stop: watch::Receiver<bool>,
    /// Limits already logged on this connection.
    logged: Vec<&'static str>,
    _permit: ConnectionPermit,
}

impl Connection {
    /// The peer's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The listener's counters.
    pub fn stats(&self) -> &ListenerStats {
        &self.stats
    }

    /// Read some bytes; `None` when the peer closed, the read failed or
    /// timed out (counted), or the listener stops.
    pub async fn read(&mut self, buf: &mut [u8]) -> Option<usize> {
        let timeout = self.read_timeout;
        let read = self.stream.read(buf);
        let timed = async {
            if timeout.is_zero() {
                Some(read.await)
            } else {
                tokio::time::timeout(timeout, read).await.ok()
            }
        };
        let result = tokio::select! {
            r = timed => r,
            _ = stopped(&mut self.stop) => return None,
        };
        match result {
            Some(Ok(n)) => (n > 0).then_some(n),
            Some(Err(_)) => None,
            None => {
                self.stats.idle_timeouts.hit();
                tracing::debug!(
                        peer = %self.peer,
                    ?timeout,
                    "connection idle past read_timeout; closed"
                );
                None
            }
        }
    }

    /// Fill `buf`; false as for [`Connection::read`] or at a short stream.
    pub async fn read_exact(&mut self, buf: &mut [u8]) -> bool {
        let mut done = 0;
        while done < buf.len() {
            match self.read(&mut buf[done..]).await {
                Some(n) => done += n,
                None => return false,
            }
        }
        true
    }

    /// Read past `n` bytes without keeping them.
    pub async fn skip(&mut self, mut n: u64) -> bool {
        let mut scratch = vec![0u8; 64 << 10];
        while n > 0 {
            let want = scratch.len().min(usize::try_from(n).unwrap_or(usize::MAX));
            match self.read(&mut scratch[..want]).await {
                Some(got) => n -= got as u64,
                None => return false,
            }
        }
        true
    }

    /// Count a limit hit and log it, once per limit on this connection.
    pub fn limit_hit(&mut self, counter: &Counter, limit: &'static str, max: usize) {
        counter.hit();
        if !self.logged.contains(&limit) {
            self.logged.push(limit);
            tracing::warn!(
                peer = %self.peer,
                limit,
                max,
                "input over a limit dropped; the connection goes on (further hits on it are counted, not logged)"
            );
        }
    }

    /// Log a frame that could not be read (the caller counts it in
    /// `parse_errors`), once per connection.
    pub fn bad_frame(&mut self, error: &dyn std::fmt::Display) {
        if !self.logged.contains(&"bad_frame") {
            self.logged.push("bad_frame");
            tracing::warn!(
                peer = %self.peer,
                %error,
                "frame refused; the connection goes on (further bad frames on it are counted, not logged)"
            );
        }
    }
}
