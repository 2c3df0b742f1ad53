//! The listener layer every network input shares (carbon, socket_listener,
//! statsd; the InfluxDB listener's accept side): a bound on everything a
//! peer controls, each limit hit counted, logged once per connection and
//! costing only that line, frame or connection.
//!
//! - [`budget`]: connection permits. [`ConnectionBudget::global`] is the
//!   process-wide budget, sized below `RLIMIT_NOFILE` with a reserve for
//!   outputs and files; every listener registers once with
//!   [`ConnectionBudget::limiter`]`(max_connections)` and calls
//!   [`ConnectionLimiter::try_acquire`] for each accepted connection — the
//!   one place a connection is admitted. Hold the returned
//!   [`ConnectionPermit`] as long as the connection lives; on
//!   [`Refused`], close the connection at once and count it
//!   (`connections_limit_hits` or `process_connections_limit_hits`). Half of
//!   the budget is split into guaranteed shares so that connections held
//!   on one listener never starve another.
//! - [`tcp`]: the accept loop ([`tcp::serve`]) and [`tcp::Connection`]
//!   (read timeout, stop signal, once-per-connection logging).
//! - [`http`]: the HTTP listeners' accept loop (hyper HTTP/1 with a
//!   header, idle and write timeout per connection, the same budget).
//! - [`framing`]: newline framing that never buffers more than the
//!   maximum line and scans each byte once.
//! - [`udp`]: datagrams with a maximum size.
//! - [`http`]: the HTTP servers' accept loop (connection budget, TLS,
//!   header, idle and write timeouts) under an axum router.
//! - [`stats`]: the counters, reported in `internal_gather` (names in
//!   `docs/instrumentation.md`).

pub mod budget;
pub mod framing;
pub mod http;
pub mod stats;
pub mod tcp;
pub mod udp;

#[cfg(test)]
mod tests;

pub use budget::{ConnectionBudget, ConnectionLimiter, ConnectionPermit, Refused};
pub use framing::{Framed, LineFramer};
pub use stats::{Counter, ListenerStats, PickleStats};

use tokio::sync::watch;

/// Resolves once the listener is told to stop.
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The start of a line for a log message: at most 200 bytes, cut on a
/// character boundary.
pub fn cut(s: &str) -> &str {
    let mut n = s.len().min(200);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    &s[..n]
}
