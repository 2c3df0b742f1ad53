//! The StatsD sockets, through the shared listener layer: UDP datagrams
//! (each a block of lines), and TCP connections read line by line with
//! `max_line_size`, `max_tcp_connections` and `read_timeout`.

use std::sync::{Arc, Mutex};

use graft_api::MetricSink;

use super::parser::{Parser, State, ingest_line};
use crate::listener::tcp::Connection;
use crate::listener::udp::Datagrams;
use crate::listener::{Framed, LineFramer};

/// What the receiving tasks share.
pub(super) struct Shared {
    pub parser: Arc<Parser>,
    pub state: Arc<Mutex<State>>,
    pub sink: MetricSink,
    pub max_line: usize,
}

impl Shared {
    /// Frame `bytes` (or, with `None`, the end of the stream) into lines
    /// and aggregate them; returns (bad lines, over-long lines), both
    /// already counted as `parse_errors`.
    fn ingest(&self, framer: &mut LineFramer, bytes: Option<&[u8]>) -> (u64, u64) {
        let (mut bad, mut too_long) = (0, 0);
        {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let mut each = |f: Framed<'_>| match f {
                Framed::Line(l) => bad += u64::from(!ingest_line(&self.parser, l, &mut st)),
                Framed::TooLong => too_long += 1,
            };
            match bytes {
                Some(b) => framer.feed(b, &mut each),
                None => framer.finish(&mut each),
            }
        }
        if bad + too_long > 0 {
            self.sink.malformed(bad + too_long);
        }
        (bad, too_long)
    }
}

/// Datagrams until the listener stops; a line never spans two.
pub(super) async fn udp(mut socket: Datagrams, shared: Arc<Shared>) {
    while let Some((data, _peer)) = socket.next().await {
        let mut framer = LineFramer::new(shared.max_line);
        let (_, a) = shared.ingest(&mut framer, Some(data));
        let (_, b) = shared.ingest(&mut framer, None);
        for _ in 0..a + b {
            socket.stats().line_size_limit_hits.hit();
        }
    }
}

/// One TCP connection, line by line: each byte is scanned once and no
/// more than `max_line_size` is held.
pub(super) async fn tcp(mut conn: Connection, shared: Arc<Shared>) {
    let mut framer = LineFramer::new(shared.max_line);
    let mut chunk = vec![0u8; 16 << 10];
    loop {
        let read = conn.read(&mut chunk).await;
        let (_, too_long) = shared.ingest(&mut framer, read.map(|n| &chunk[..n]));
        for _ in 0..too_long {
            let counter = conn.stats().line_size_limit_hits.clone();
            conn.limit_hit(&counter, "max_line_size", shared.max_line);
        }
        if read.is_none() {
            return;
        }
    }
}
