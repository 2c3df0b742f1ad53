//! One request to `inputs.http_listener_v2`, from its path to its answer:
//! path, credentials and method checked, the body read and decoded within
//! the limits, parsed off the reactor when large, tagged, handed to the
//! pipeline (and, with `acknowledge = "durable"`, waited for).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use graft_api::MetricSink;
use graft_core::BatchBuilder;

use crate::collectd::CollectdStats;
use crate::format::{DataFormat, Parser};
use crate::listener::http::{Inflate, gunzip};
use crate::prometheus::remote::{self, RemoteError};

/// Bodies larger than this are decoded and parsed on a blocking thread.
const PARSE_INLINE_MAX: usize = 64 << 10;

/// The tag `path_tag` adds, as Telegraf names it.
const PATH_TAG: &str = "http_listener_v2_path";

/// What every request needs, from the config.
pub(super) struct Settings {
    pub parser: Parser,
    pub paths: Vec<String>,
    pub path_tag: bool,
    pub methods: Vec<String>,
    pub response_headers: Vec<(String, String)>,
    pub header_tags: Vec<(String, String)>,
    pub success: u16,
    pub read_timeout: Duration,
    pub max_body: usize,
    pub query: bool,
    pub basic: Option<(String, String)>,
    pub max_concurrent_writes: usize,
    pub acknowledge: Option<Duration>,
}

struct Shared {
    settings: Settings,
    sink: MetricSink,
    stopping: Arc<AtomicBool>,
    writes: Arc<tokio::sync::Semaphore>,
    counters: Counters,
}

/// Counters of the write path (names in `docs/instrumentation.md`).
struct Counters {
    body_size_limit_hits: Arc<AtomicU64>,
    body_timeouts: Arc<AtomicU64>,
    labels_limit_hits: Arc<AtomicU64>,
    concurrent_writes_limit_hits: Arc<AtomicU64>,
    unauthorized_requests: Arc<AtomicU64>,
    undelivered_writes: Arc<AtomicU64>,
    acknowledge_timeouts: Arc<AtomicU64>,
    /// With `data_format = "collectd"`: its refused-packet and limit counters.
    collectd: Option<CollectdStats>,
}

pub(super) fn router(settings: Settings, sink: MetricSink, stopping: Arc<AtomicBool>) -> Router {
    let counters = Counters {
        body_size_limit_hits: sink.counter("body_size_limit_hits"),
        body_timeouts: sink.counter("body_timeouts"),
        labels_limit_hits: sink.counter("labels_limit_hits"),
        concurrent_writes_limit_hits: sink.counter("concurrent_writes_limit_hits"),
        unauthorized_requests: sink.counter("unauthorized_requests"),
        undelivered_writes: sink.counter("undelivered_writes"),
        acknowledge_timeouts: sink.counter("acknowledge_timeouts"),
        collectd: (settings.parser.format() == DataFormat::Collectd)
            .then(|| CollectdStats::for_sink(&sink)),
    };
    let shared = Shared {
        writes: Arc::new(tokio::sync::Semaphore::new(settings.max_concurrent_writes)),
        settings,
        sink,
        stopping,
        counters,
    };
    Router::new().fallback(handle).with_state(Arc::new(shared))
}

async fn handle(
    State(s): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut r = write(&s, &method, &uri, &headers, body).await;
    for (k, v) in &s.settings.response_headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            r.headers_mut().insert(k, v);
        }
    }
    r
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

fn retry_later(status: StatusCode, message: &str) -> Response {
    let mut r = error(status, message);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

async fn write(
    s: &Arc<Shared>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let set = &s.settings;
    if !set.paths.iter().any(|p| p == uri.path()) {
        return error(StatusCode::NOT_FOUND, "not found");
    }
    if let Some((user, password)) = &set.basic
        && !authorized(headers, user, password)
    {
        s.counters
            .unauthorized_requests
            .fetch_add(1, Ordering::Relaxed);
        let mut r = error(StatusCode::UNAUTHORIZED, "unauthorized");
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"graft\""),
        );
        return r;
    }
    if !set.methods.iter().any(|m| m == method.as_str()) {
        return error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    let Ok(permit) = s.writes.clone().try_acquire_owned() else {
        s.counters
            .concurrent_writes_limit_hits
            .fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            max_concurrent_writes = set.max_concurrent_writes,
            "write refused with 503: max_concurrent_writes requests in progress"
        );
        return retry_later(
            StatusCode::SERVICE_UNAVAILABLE,
            "max_concurrent_writes requests in progress; try again later",
        );
    };
    let too_large = |stage: &str| {
        s.counters
            .body_size_limit_hits
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            max_body_size = set.max_body,
            stage,
            "request refused: body larger than max_body_size"
        );
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "request body is larger than max_body_size ({} bytes)",
                set.max_body
            ),
        )
    };
    let data = if set.query {
        let q = uri.query().unwrap_or("");
        if q.len() > set.max_body {
            return too_large("query");
        }
        query_unescape(q)
    } else {
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > set.max_body as u64) {
            return too_large("content-length");
        }
        let encoding = headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if !matches!(encoding.as_str(), "" | "identity" | "gzip" | "snappy") {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &format!("content encoding {encoding:?} is not supported; use gzip or snappy"),
            );
        }
        let read = tokio::time::timeout(set.read_timeout, axum::body::to_bytes(body, set.max_body));
        let raw = match read.await {
            Err(_) => {
                s.counters.body_timeouts.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    read_timeout = ?set.read_timeout,
                    "request refused: body not read within read_timeout"
                );
                return error(StatusCode::REQUEST_TIMEOUT, "reading the body timed out");
            }
            Ok(Err(e)) => {
                if std::error::Error::source(&e)
                    .is_some_and(|c| c.to_string().contains("length limit"))
                {
                    return too_large("body");
                }
                return error(StatusCode::BAD_REQUEST, &format!("reading the body: {e}"));
            }
            Ok(Ok(b)) => b,
        };
        match decode(s, &raw, &encoding).await {
            Ok(d) => d,
            Err(Decode::TooLarge) => return too_large(&encoding),
            Err(Decode::Bad(m)) => return error(StatusCode::BAD_REQUEST, &m),
            Err(Decode::Stopping) => {
                return error(StatusCode::SERVICE_UNAVAILABLE, "graft is shutting down");
            }
        }
    };
    let now = crate::inputs::now_ns();
    let inline = data.len() <= PARSE_INLINE_MAX;
    let shared = s.clone();
    let job = move || {
        let mut out = BatchBuilder::new();
        let parsed = shared.settings.parser.parse(&data, now, &mut out);
        (out.finish(), parsed)
    };
    let (mut batch, parsed) = if inline {
        job()
    } else {
        match tokio::task::spawn_blocking(job).await {
            Ok(r) => r,
            Err(e) => {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("parser failed: {e}"),
                );
            }
        }
    };
    if let (Some(stats), Some(report)) = (&s.counters.collectd, &parsed.collectd) {
        stats.count(report);
    }
    // All or nothing, as Telegraf: a sender retries every non-2xx, so a
    // body that is partly bad is refused whole and nothing of it is kept.
    if parsed.malformed > 0 {
        s.sink.malformed(parsed.malformed as u64);
        s.counters
            .labels_limit_hits
            .fetch_add(parsed.limit_hits as u64, Ordering::Relaxed);
        let first = parsed.first_error.unwrap_or_default();
        tracing::warn!(
            malformed = parsed.malformed,
            refused_metrics = batch.len(),
            labels_limit_hits = parsed.limit_hits,
            first = %first,
            "request refused with 400: parts of the body could not be parsed; nothing of it was taken"
        );
        return error(
            StatusCode::BAD_REQUEST,
            &format!(
                "{} parts of the body could not be parsed; nothing of it was taken; first: {first}",
                parsed.malformed
            ),
        );
    }
    if set.path_tag {
        batch.set_tag(PATH_TAG, uri.path());
    }
    for (name, tag) in &set.header_tags {
        if let Some(v) = headers.get(name.as_str()).and_then(|v| v.to_str().ok())
            && !v.is_empty()
        {
            batch.set_tag(tag, v);
        }
    }
    let good = batch.len();
    let sent = match set.acknowledge {
        None => s.sink.send(batch).await.map(|()| None),
        Some(_) => s.sink.send_acked(batch).await.map(Some),
    };
    let Ok(delivery) = sent else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "graft is shutting down");
    };
    drop(permit);
    if let (Some(delivery), Some(timeout)) = (delivery, set.acknowledge)
        && let Some(refused) = settle(s, delivery, timeout, good).await
    {
        return refused;
    }
    StatusCode::from_u16(set.success)
        .unwrap_or(StatusCode::NO_CONTENT)
        .into_response()
}

/// Why a body could not be decoded.
enum Decode {
    TooLarge,
    Bad(String),
    Stopping,
}

/// The body as the parser reads it: inflated (gzip) or decompressed
/// (snappy), within `max_body`.
async fn decode(
    s: &Arc<Shared>,
    raw: &axum::body::Bytes,
    encoding: &str,
) -> Result<Vec<u8>, Decode> {
    let limit = s.settings.max_body;
    match encoding {
        "gzip" => {
            let (raw, stopping) = (raw.clone(), s.stopping.clone());
            // Off the reactor: the size once inflated is unknown.
            match tokio::task::spawn_blocking(move || gunzip(&raw, limit, &stopping)).await {
                Ok(Ok(d)) => Ok(d),
                Ok(Err(Inflate::TooLarge)) => Err(Decode::TooLarge),
                Ok(Err(Inflate::Bad(m))) => Err(Decode::Bad(m)),
                Ok(Err(Inflate::Stopping)) => Err(Decode::Stopping),
                Err(e) => Err(Decode::Bad(format!("inflating failed: {e}"))),
            }
        }
        "snappy" => {
            let decompress = {
                let raw = raw.clone();
                move || remote::decompress(&raw, limit)
            };
            // A snappy body grows at most about 32 times: a small one is
            // decompressed inline, a large one off the reactor.
            let r = if raw.len() > PARSE_INLINE_MAX {
                tokio::task::spawn_blocking(decompress)
                    .await
                    .map_err(|e| Decode::Bad(format!("decompressing failed: {e}")))?
            } else {
                decompress()
            };
            match r {
                Ok(d) => Ok(d),
                Err(RemoteError::TooLarge { .. }) => Err(Decode::TooLarge),
                Err(e) => Err(Decode::Bad(e.to_string())),
            }
        }
        _ => Ok(raw.to_vec()),
    }
}

/// Wait until the outputs have a write's metrics; `None` when they do,
/// else the 503 to answer.
async fn settle(
    s: &Shared,
    delivery: graft_api::Delivery,
    timeout: Duration,
    metrics: usize,
) -> Option<Response> {
    let (counter, message) = match tokio::time::timeout(timeout, delivery).await {
        Ok(Ok(())) => return None,
        Ok(Err(_)) => (
            &s.counters.undelivered_writes,
            "the metrics were not delivered (an output dropped some of them); send them again"
                .to_owned(),
        ),
        Err(_) => (
            &s.counters.acknowledge_timeouts,
            format!(
                "the metrics were not written or held durably within acknowledge_timeout ({timeout:?}); send them again"
            ),
        ),
    };
    // The first and then every hundredth: an outage refuses every write.
    let before = counter.fetch_add(1, Ordering::Relaxed);
    if before % 100 == 0 {
        tracing::warn!(metrics, refused = before + 1, error = %message, "write answered 503");
    }
    Some(retry_later(StatusCode::SERVICE_UNAVAILABLE, &message))
}

/// HTTP basic credentials match, compared in constant time.
fn authorized(headers: &HeaderMap, user: &str, password: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            // The scheme is case-insensitive, as Go's `BasicAuth` reads it.
            let (scheme, rest) = v.split_at_checked(6)?;
            scheme.eq_ignore_ascii_case("basic ").then_some(rest)
        })
        .and_then(|v| {
            base64::engine::general_purpose::STANDARD
                .decode(v.trim())
                .ok()
        })
    else {
        return false;
    };
    let expected = format!("{user}:{password}");
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected.as_bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Go's `url.QueryUnescape`: `%XX` decoded, `+` a space; a broken escape
/// is kept as it is (the parser then says what is wrong).
fn query_unescape(q: &str) -> Vec<u8> {
    let b = q.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let escaped = match b.get(i..i + 3) {
            Some([b'%', h, l]) => hex(*h).zip(hex(*l)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match (escaped, b[i]) {
            (Some(v), _) => {
                out.push(v);
                i += 3;
                continue;
            }
            (None, b'+') => out.push(b' '),
            (None, c) => out.push(c),
        }
        i += 1;
    }
    out
}
