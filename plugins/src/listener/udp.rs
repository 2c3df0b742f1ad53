//! The UDP side: datagrams of at most a maximum size, the larger ones
//! dropped and counted, until the listener stops.

use std::net::SocketAddr;

use tokio::net::UdpSocket;
use tokio::sync::watch;

use super::stats::ListenerStats;
use super::stopped;

/// Largest payload a UDP datagram can carry.
pub const MAX_UDP_PAYLOAD: usize = 65_507;

/// Datagrams from a socket, each at most `max` bytes.
pub struct Datagrams {
    socket: UdpSocket,
    buf: Vec<u8>,
    max: usize,
    stats: ListenerStats,
    stop: watch::Receiver<bool>,
    logged_oversize: bool,
}

impl Datagrams {
    /// Receive from `socket`; a datagram over `max` bytes (at most
    /// [`MAX_UDP_PAYLOAD`]) is dropped and counted.
    pub fn new(
        socket: UdpSocket,
        max: usize,
        stats: ListenerStats,
        stop: watch::Receiver<bool>,
    ) -> Self {
        let max = max.clamp(1, MAX_UDP_PAYLOAD);
        Self {
            socket,
            // One byte more than the maximum tells an oversized datagram
            // from one of exactly the maximum.
            buf: vec![0u8; max + 1],
            max,
            stats,
            stop,
            logged_oversize: false,
        }
    }

    /// The listener's counters.
    pub fn stats(&self) -> &crate::listener::ListenerStats {
        &self.stats
    }

    /// The next datagram within the maximum, or `None` once the listener
    /// stops or the socket fails.
    pub async fn next(&mut self) -> Option<(&[u8], SocketAddr)> {
        loop {
            let got = tokio::select! {
                r = self.socket.recv_from(&mut self.buf) => r,
                _ = stopped(&mut self.stop) => return None,
            };
            let (n, peer) = match got {
                Ok(g) => g,
                // An ICMP error from an earlier send; nothing to do with
                // this socket's ability to receive.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "UDP receive failed; the listener stops");
                    return None;
                }
            };
            if n > self.max {
                self.stats.datagram_size_limit_hits.hit();
                if !self.logged_oversize {
                    self.logged_oversize = true;
                    tracing::warn!(
                        %peer,
                        max = self.max,
                        "datagram over the maximum size dropped (further ones are counted, not logged)"
                    );
                }
                continue;
            }
            return Some((&self.buf[..n], peer));
        }
    }
}
