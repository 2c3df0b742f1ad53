//! Turning a batch into message bodies (one per metric, or whole batches
//! split under the server's `max_payload`), publishing them, and reading
//! what the stream acknowledged into the host's [`WriteError`].

use std::fmt::Write as _;
use std::ops::Range;
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use tokio::time::{Instant, timeout_at};

use async_nats::Subject;
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::{self, ErrorCode, message::PublishMessage};
use bytes::Bytes;
use graft_core::{Batch, WriteError};
use md5::{Digest, Md5};

use super::config::MessageId;
use crate::format::Serializer;

/// One message to publish: its body and the rows of the batch it carries.
#[derive(Debug)]
pub struct Message {
    pub body: Bytes,
    pub rows: Range<usize>,
}

/// A batch as messages, and the metrics that cannot be published at all.
#[derive(Debug, Default)]
pub struct Prepared {
    pub messages: Vec<Message>,
    /// Rows that cannot be serialized, or whose body alone passes
    /// `max_payload`: rejected for good.
    pub rejected: Vec<u32>,
    /// Why the first of them was rejected.
    pub first_rejection: Option<String>,
}

impl Prepared {
    fn reject(&mut self, row: usize, why: impl FnOnce() -> String) {
        if self.first_rejection.is_none() {
            self.first_rejection = Some(why());
        }
        self.rejected.push(row as u32);
    }
}

/// One message per metric.
pub fn per_metric(batch: &Batch, serializer: &Serializer, max_payload: usize) -> Prepared {
    let mut out = Prepared::default();
    let mut body = Vec::new();
    for m in batch.iter() {
        body.clear();
        let row = m.index();
        if let Err(e) = serializer.metric(m, &mut body) {
            out.reject(row, || format!("metric {:?}: {e}", m.name()));
        } else if body.len() > max_payload {
            let len = body.len();
            out.reject(row, || {
                format!(
                    "metric {:?}: its message ({len} bytes) passes the largest the server and stream take ({max_payload} bytes: max_payload less headers, or the stream's max_msg_size)",
                    m.name()
                )
            });
        } else {
            out.messages.push(Message {
                body: Bytes::copy_from_slice(&body),
                rows: row..row + 1,
            });
        }
    }
    out
}

/// Whole batches, halved until each message fits in `max_payload`.
pub fn batched(batch: &Batch, serializer: &Serializer, max_payload: usize) -> Prepared {
    let mut out = Prepared::default();
    if !batch.is_empty() {
        pack(batch, 0..batch.len(), serializer, max_payload, &mut out);
    }
    out
}

fn pack(
    batch: &Batch,
    rows: Range<usize>,
    serializer: &Serializer,
    max_payload: usize,
    out: &mut Prepared,
) {
    let part;
    let sub = if rows == (0..batch.len()) {
        batch
    } else {
        part = batch.slice(rows.clone());
        &part
    };
    let mut body = Vec::new();
    let left_out = serializer.batch(sub, &mut body);
    if body.len() > max_payload && rows.len() > 1 {
        let mid = rows.start + rows.len() / 2;
        pack(batch, rows.start..mid, serializer, max_payload, out);
        pack(batch, mid..rows.end, serializer, max_payload, out);
        return;
    }
    if left_out > 0 {
        // Which ones: each is tried alone (rare: a metric with nothing the
        // format can carry).
        let mut scratch = Vec::new();
        for row in rows.clone() {
            scratch.clear();
            if let Err(e) = serializer.metric(batch.get(row), &mut scratch) {
                out.reject(row, || format!("metric {:?}: {e}", batch.get(row).name()));
            }
        }
        if left_out >= rows.len() {
            return;
        }
    }
    if body.len() > max_payload {
        let len = body.len();
        out.reject(rows.start, || {
            format!(
                "metric {:?}: its message ({len} bytes) passes the largest the server and stream take ({max_payload} bytes: max_payload less headers, or the stream's max_msg_size)",
                batch.get(rows.start).name()
            )
        });
        return;
    }
    out.messages.push(Message {
        body: Bytes::from(body),
        rows,
    });
}

/// The largest body a message may have: the server's `max_payload` (or
/// the stream's `max_msg_size`, when set and smaller) less the headers
/// each message carries. A larger one can never be published: rejected,
/// not retried.
pub fn body_limit(max_payload: usize, stream_max: Option<usize>, ids: Option<MessageId>) -> usize {
    let limit = stream_max.map_or(max_payload, |s| s.min(max_payload));
    limit.saturating_sub(header_len(ids)).max(1)
}

/// Bytes of the header block of a message: `NATS/1.0` and `Nats-Msg-Id`
/// with its 32 hex digits, as the client writes them; none on core NATS
/// or without ids.
fn header_len(ids: Option<MessageId>) -> usize {
    match ids {
        Some(MessageId::Content) => {
            "NATS/1.0\r\n".len() + "Nats-Msg-Id: ".len() + 32 + "\r\n".len() + "\r\n".len()
        }
        Some(MessageId::None) | None => 0,
    }
}

/// `Nats-Msg-Id` of a message: a digest of its subject and body, so that
/// the same message published again within the stream's duplicate window
/// is stored once.
pub fn content_id(subject: &str, body: &[u8]) -> String {
    let mut h = Md5::new();
    h.update(subject.as_bytes());
    h.update([0u8]);
    h.update(body);
    let mut id = String::with_capacity(32);
    for b in h.finalize() {
        let _ = write!(id, "{b:02x}");
    }
    id
}

/// Publish on core NATS: fire-and-forget, then a flush (a round trip to
/// the server) so that at least the server has read every message; all
/// within `timeout`.
pub async fn core(
    client: &async_nats::Client,
    subject: &Subject,
    messages: &[Message],
    timeout: Duration,
) -> Result<(), String> {
    let send = async {
        for m in messages {
            client
                .publish(subject.clone(), m.body.clone())
                .await
                .map_err(|e| format!("publishing: {e}"))?;
        }
        client
            .flush()
            .await
            .map_err(|e| format!("flushing to the server: {e}"))
    };
    match tokio::time::timeout(timeout, send).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "the messages were not flushed to the server within {timeout:?}"
        )),
    }
}

/// What the stream said of a write's messages.
#[derive(Debug, Default)]
pub struct Acked {
    /// Rows of acknowledged messages.
    pub accepted: Vec<u32>,
    /// Messages the stream already had (same id within its duplicate
    /// window).
    pub duplicates: usize,
    /// Messages not acknowledged.
    pub failed: usize,
    /// Rows of messages refused for their size (by the client or the
    /// stream): never to be retried.
    pub too_large: Vec<u32>,
    /// Why the first of them failed.
    pub first_error: Option<String>,
}

/// Publish to JetStream with at most `window` publishes awaiting their
/// acknowledgement at once, and collect the acknowledgements, all under
/// one deadline: `ack_timeout` from the first publish. Acknowledgements
/// are awaited together, so lost ones (a node killed, a reconnect) cost
/// the write `ack_timeout` once, not once per message; what is not
/// acknowledged (or not even sent) by the deadline fails, for a retry.
pub async fn jetstream(
    js: &jetstream::Context,
    subject: &Subject,
    messages: &[Message],
    ids: MessageId,
    window: usize,
    ack_timeout: Duration,
) -> Acked {
    let deadline = Instant::now() + ack_timeout;
    let late = || format!("not acknowledged within async_ack_timeout ({ack_timeout:?})");
    let mut acked = Acked::default();
    let mut pending = FuturesUnordered::new();
    let mut sent = 0;
    'publish: for m in messages {
        while pending.len() >= window.max(1) {
            match timeout_at(deadline, pending.next()).await {
                Ok(Some((rows, result))) => settle(&mut acked, rows, result),
                Ok(None) => break,
                Err(_) => break 'publish,
            }
        }
        let mut publish = PublishMessage::build().payload(m.body.clone());
        if ids == MessageId::Content {
            publish = publish.message_id(content_id(subject.as_str(), &m.body));
        }
        let rows = m.rows.clone();
        match timeout_at(deadline, js.send_publish(subject.clone(), publish)).await {
            Ok(Ok(ack)) => pending.push(async move { (rows, ack.await) }),
            Ok(Err(e)) => settle(&mut acked, rows, Err(e)),
            Err(_) => break,
        }
        sent += 1;
    }
    loop {
        match timeout_at(deadline, pending.next()).await {
            Ok(Some((rows, result))) => settle(&mut acked, rows, result),
            Ok(None) => break,
            Err(_) => {
                // Past the deadline: the rest failed, unread.
                acked.failed += pending.len();
                acked.first_error.get_or_insert_with(late);
                break;
            }
        }
    }
    if sent < messages.len() {
        acked.failed += messages.len() - sent;
        acked.first_error.get_or_insert_with(late);
    }
    acked
}

fn settle(
    acked: &mut Acked,
    rows: Range<usize>,
    result: Result<jetstream::publish::PublishAck, PublishError>,
) {
    match result {
        Ok(ack) => {
            acked.duplicates += usize::from(ack.duplicate);
            acked.accepted.extend(rows.map(|r| r as u32));
        }
        Err(e) if too_large(&e) => {
            acked.too_large.extend(rows.map(|r| r as u32));
            acked.first_error.get_or_insert_with(|| e.to_string());
        }
        Err(e) => {
            acked.failed += 1;
            acked.first_error.get_or_insert_with(|| e.to_string());
        }
    }
}

/// Whether a publish was refused for its size: by the client (past
/// `max_payload`) or by the stream (past its `max_msg_size`).
fn too_large(e: &PublishError) -> bool {
    if e.kind() == PublishErrorKind::MaxPayloadExceeded {
        return true;
    }
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<jetstream::Error>())
        .is_some_and(|j| j.error_code() == ErrorCode::STREAM_MESSAGE_EXCEEDS_MAXIMUM)
}

/// The host's answer for a write: `Ok` when every metric went, else which
/// were accepted, which rejected, and (by omission) which to retry.
pub fn outcome(
    total: usize,
    accepted: Vec<u32>,
    prepared_rejected: Vec<u32>,
    message: String,
) -> Result<(), WriteError> {
    if accepted.len() == total {
        return Ok(());
    }
    if accepted.is_empty() && prepared_rejected.len() == total {
        return Err(WriteError::Reject(message));
    }
    if accepted.is_empty() && prepared_rejected.is_empty() {
        return Err(WriteError::Retry(message));
    }
    Err(WriteError::Partial {
        accepted,
        rejected: prepared_rejected,
        message,
    })
}
