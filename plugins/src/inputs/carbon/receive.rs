//! What `inputs.carbon` and `inputs.socket_listener` do with the bytes a
//! peer sends: plaintext lines over TCP or UDP, and length-prefixed pickle
//! frames, each read within its limits through the shared listener layer.

use std::sync::Arc;

use graft_api::MetricSink;
use graft_core::BatchBuilder;
use graft_core::lineparse::{Precision, parse_into};

use super::{Format, Limits};
use crate::graphite::{self, pickle};
use crate::listener::tcp::Connection;
use crate::listener::udp::Datagrams;
use crate::listener::{Framed, LineFramer, ListenerStats, PickleStats, cut};

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 16 << 10;

/// What every receiving task shares.
pub(super) struct Ctx {
    pub sink: MetricSink,
    pub format: Format,
    pub limits: Limits,
    pub stats: ListenerStats,
    pub pickle: PickleStats,
}

impl Ctx {
    /// Parse one line into `out`; false when it was bad (skipped).
    fn parse_line(&self, line: &[u8], now: i64, out: &mut BatchBuilder) -> bool {
        let text = String::from_utf8_lossy(line);
        let line = text.trim_end_matches('\r');
        if line.trim().is_empty() {
            return true;
        }
        match &self.format {
            Format::Influx => {
                let errors = parse_into(line, Precision::Nanoseconds, now, out);
                if let Some(e) = errors.first() {
                    tracing::debug!(error = %e, "skipped a bad line");
                }
                errors.is_empty()
            }
            Format::Graphite(t) => match graphite::parse_line(line, now, t, out) {
                Ok(()) => true,
                Err(e) => {
                    tracing::debug!(line = cut(line), error = e, "skipped a bad line");
                    false
                }
            },
            // collectd packets are read whole from datagrams
            // (`super::datagram`), and refused over TCP by the config.
            Format::Collectd(_) => false,
        }
    }

    /// Hand what was read to the pipeline and count what was skipped;
    /// false once the pipeline is gone.
    pub(super) async fn deliver(&self, out: BatchBuilder, bad: u64) -> bool {
        if bad > 0 {
            self.sink.malformed(bad);
        }
        let batch = out.finish();
        batch.is_empty() || self.sink.send(batch).await.is_ok()
    }
}

/// Lines read from `bytes` into `out`: how many were bad and how many
/// over `max_line_size`.
fn frame_lines(
    ctx: &Ctx,
    framer: &mut LineFramer,
    bytes: Option<&[u8]>,
    out: &mut BatchBuilder,
) -> (u64, u64) {
    let now = crate::inputs::now_ns();
    let (mut bad, mut too_long) = (0, 0);
    let mut each = |f: Framed<'_>| match f {
        Framed::Line(l) => bad += u64::from(!ctx.parse_line(l, now, out)),
        Framed::TooLong => too_long += 1,
    };
    match bytes {
        Some(b) => framer.feed(b, &mut each),
        None => framer.finish(&mut each),
    }
    (bad, too_long)
}

/// Plaintext lines over one TCP connection.
pub(super) async fn lines(mut conn: Connection, ctx: Arc<Ctx>) {
    let max = ctx.limits.line;
    let mut framer = LineFramer::new(max);
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        let read = conn.read(&mut chunk).await;
        let mut out = BatchBuilder::new();
        let (bad, too_long) = frame_lines(&ctx, &mut framer, read.map(|n| &chunk[..n]), &mut out);
        for _ in 0..too_long {
            conn.limit_hit(&ctx.stats.line_size_limit_hits, "max_line_size", max);
        }
        if !ctx.deliver(out, bad + too_long).await || read.is_none() {
            return;
        }
    }
}

/// Plaintext lines in UDP datagrams (a line never spans two).
pub(super) async fn datagrams(mut socket: Datagrams, ctx: Arc<Ctx>) {
    while let Some((data, _peer)) = socket.next().await {
        let mut framer = LineFramer::new(ctx.limits.line);
        let mut out = BatchBuilder::new();
        let (bad, too_long) = frame_lines(&ctx, &mut framer, Some(data), &mut out);
        let (bad2, too_long2) = frame_lines(&ctx, &mut framer, None, &mut out);
        let too_long = too_long + too_long2;
        for _ in 0..too_long {
            ctx.stats.line_size_limit_hits.hit();
        }
        if !ctx.deliver(out, bad + bad2 + too_long).await {
            return;
        }
    }
}

/// Read a frame of `len` bytes, growing the buffer only as bytes arrive
/// (a peer that declares a megabyte and sends nothing costs nothing).
async fn read_frame(conn: &mut Connection, len: usize) -> Option<Vec<u8>> {
    let mut frame = Vec::with_capacity(len.min(READ_CHUNK));
    while frame.len() < len {
        let start = frame.len();
        frame.resize(start + (len - start).min(READ_CHUNK), 0);
        let n = conn.read(&mut frame[start..]).await?;
        frame.truncate(start + n);
    }
    Some(frame)
}

/// Pickle frames over one TCP connection: a 4-byte big-endian length,
/// then the pickle. A frame over a limit or refused by the decoder is
/// counted and skipped; the stream stays in step.
pub(super) async fn pickles(mut conn: Connection, ctx: Arc<Ctx>) {
    loop {
        let mut len = [0u8; 4];
        if !conn.read_exact(&mut len).await {
            return;
        }
        let len = u32::from_be_bytes(len) as usize;
        if len > ctx.limits.frame {
            conn.limit_hit(
                &ctx.pickle.frame_size_limit_hits,
                "max_frame_size",
                ctx.limits.frame,
            );
            ctx.sink.malformed(1);
            if !conn.skip(len as u64).await {
                return;
            }
            continue;
        }
        let Some(frame) = read_frame(&mut conn, len).await else {
            return;
        };
        let mut out = BatchBuilder::new();
        let bad = match pickle::decode_with(&frame, &ctx.limits.pickle) {
            Ok(v) if points(&v) > ctx.limits.pickle_metrics => {
                let max = ctx.limits.pickle_metrics;
                conn.limit_hit(
                    &ctx.pickle.pickle_metrics_limit_hits,
                    "max_pickle_metrics",
                    max,
                );
                1
            }
            Ok(v) => add_pickled(&v, &ctx, &mut out),
            Err(e) => {
                refused(&mut conn, &ctx, &e);
                1
            }
        };
        drop(frame);
        if !ctx.deliver(out, bad).await {
            return;
        }
    }
}

/// Count and log a refused frame under the limit it hit.
fn refused(conn: &mut Connection, ctx: &Ctx, e: &pickle::PickleError) {
    use pickle::PickleError as E;
    let p = &ctx.pickle;
    match *e {
        E::Depth(max) => conn.limit_hit(&p.pickle_depth_limit_hits, "max_pickle_depth", max),
        E::Memo(max) => {
            conn.limit_hit(
                &p.pickle_memo_entries_limit_hits,
                "max_pickle_memo_entries",
                max,
            );
        }
        E::DecodedSize(max) => conn.limit_hit(
            &p.pickle_decoded_size_limit_hits,
            "max_pickle_decoded_size",
            max,
        ),
        E::Invalid(_) => conn.bad_frame(e),
    }
}

/// How many points a decoded frame carries: one per `(ts, value)` after
/// each item's path.
fn points(v: &pickle::Value) -> usize {
    use pickle::Value as V;
    let (V::List(items) | V::Tuple(items)) = v else {
        return 0;
    };
    items
        .iter()
        .map(|item| match item {
            V::List(parts) | V::Tuple(parts) => parts.len().saturating_sub(1),
            _ => 0,
        })
        .sum()
}

/// Add the points of a decoded frame; returns how many items were bad.
fn add_pickled(v: &pickle::Value, ctx: &Ctx, out: &mut BatchBuilder) -> u64 {
    use pickle::Value as V;
    let (V::List(items) | V::Tuple(items)) = v else {
        tracing::debug!("pickle frame skipped: not a list of points");
        return 1;
    };
    let Format::Graphite(templates) = &ctx.format else {
        return items.len() as u64;
    };
    let now = crate::inputs::now_ns();
    let mut bad = 0;
    for item in items {
        let (V::Tuple(parts) | V::List(parts)) = item else {
            bad += 1;
            continue;
        };
        let Some(path) = parts.first().and_then(pickle::as_path) else {
            bad += 1;
            continue;
        };
        if parts.len() < 2 {
            bad += 1;
        }
        for point in &parts[1..] {
            let (V::Tuple(tv) | V::List(tv)) = point else {
                bad += 1;
                continue;
            };
            let (Some(ts), Some(value)) = (
                tv.first().and_then(pickle::as_f64),
                tv.get(1).and_then(pickle::as_f64),
            ) else {
                bad += 1;
                continue;
            };
            if tv.len() != 2 || !value.is_finite() || !(-1.0..4_102_444_800.0).contains(&ts) {
                bad += 1;
                continue;
            }
            let ts = if ts == -1.0 { now } else { (ts * 1e9) as i64 };
            if graphite::add_point(path, value, ts, templates, out).is_err() {
                bad += 1;
            }
        }
    }
    bad
}
