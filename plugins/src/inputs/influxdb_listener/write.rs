//! The write endpoints: credentials, backpressure, the body read within
//! `read_timeout` and `max_body_size`, then decoded and parsed off the
//! reactor ([`super::body`]). Good lines go on; each bad line is counted
//! and quoted in a 400 as InfluxDB 1.x quotes it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use graft_core::lineparse::{ParseError, ParseErrorKind, ParseOptions, Precision};

use super::Shared;
use super::api::{Api, authorize, error, no_content};
use super::body::{self, BodyError, Parsed};

/// Bodies larger than this are parsed on a blocking thread.
const PARSE_INLINE_MAX: usize = 64 << 10;

pub(super) async fn write_v1(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let p = q.get("precision").map(String::as_str).unwrap_or("");
    let Some(precision) = Precision::from_param(p) else {
        return error(
            Api::V1,
            StatusCode::BAD_REQUEST,
            &format!("invalid precision {p:?} (use n, ns, u, ms, s, m or h)"),
        );
    };
    let set = &s.settings;
    let tags = [
        (&set.database_tag, q.get("db")),
        (&set.retention_policy_tag, q.get("rp")),
    ];
    write(&s, Api::V1, &q, &headers, body, precision, &tags).await
}

pub(super) async fn write_v2(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let precision = match q.get("precision").map(String::as_str).unwrap_or("ns") {
        p @ ("ns" | "us" | "ms" | "s") => Precision::from_param(p).unwrap_or_default(),
        p => {
            return error(
                Api::V2,
                StatusCode::BAD_REQUEST,
                &format!("invalid precision {p:?} (use ns, us, ms or s)"),
            );
        }
    };
    let tags = [(&s.settings.bucket_tag, q.get("bucket"))];
    write(&s, Api::V2, &q, &headers, body, precision, &tags).await
}

async fn write(
    s: &Arc<Shared>,
    api: Api,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    body: Body,
    unit: Precision,
    tags: &[(&String, Option<&String>)],
) -> Response {
    s.requests.fetch_add(1, Ordering::Relaxed);
    let set = &s.settings;
    if let Some(denied) = authorize(set, api, headers, q) {
        return denied;
    }
    if set.max_undelivered > 0 {
        let waiting = s.sink.undelivered();
        if waiting >= set.max_undelivered {
            let mut r = error(
                api,
                StatusCode::TOO_MANY_REQUESTS,
                &format!(
                    "{waiting} metrics wait for the outputs (max_undelivered_metrics = {}); try again later",
                    set.max_undelivered
                ),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return r;
        }
    }
    // Held until the answer: the body, its inflated text and its batch.
    let Ok(permit) = s.writes.clone().try_acquire_owned() else {
        return too_many_writes(s, api);
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
            api,
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "request body is larger than max_body_size ({} bytes)",
                set.max_body
            ),
        )
    };
    if headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > set.max_body)
    {
        return too_large("content-length");
    }
    let gzip = match headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
    {
        None | Some("identity" | "") => false,
        Some("gzip") => true,
        Some(other) => {
            return error(
                api,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &format!("content encoding {other:?} is not supported; use gzip"),
            );
        }
    };
    let limit = usize::try_from(set.max_body).unwrap_or(usize::MAX);
    let raw = match tokio::time::timeout(set.read_timeout, axum::body::to_bytes(body, limit)).await
    {
        Err(_) => {
            s.counters.body_timeouts.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                read_timeout = ?set.read_timeout,
                "request refused: body not read within read_timeout"
            );
            return error(
                api,
                StatusCode::REQUEST_TIMEOUT,
                "reading the body timed out",
            );
        }
        Ok(Err(e)) => {
            // to_bytes fails on the limit or on a broken connection.
            if std::error::Error::source(&e).is_some_and(|c| c.to_string().contains("length limit"))
            {
                return too_large("body");
            }
            return error(
                api,
                StatusCode::BAD_REQUEST,
                &format!("reading the body: {e}"),
            );
        }
        Ok(Ok(b)) => b,
    };
    let raw_len = raw.len();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    let options = ParseOptions {
        precision: unit,
        // As InfluxDB 1.x: the server's time, cut to the precision.
        default_time: now - now.rem_euclid(unit.nanos()),
        max_tags: set.max_tags,
        max_fields: set.max_fields,
    };
    let stopping = s.stopping.clone();
    let job = move || body::decode_and_parse(&raw, gzip, limit, &options, &stopping);
    let parsed = if raw_len > PARSE_INLINE_MAX || gzip {
        tokio::task::spawn_blocking(job)
            .await
            .unwrap_or_else(|e| Err(BodyError::Bad(format!("parser failed: {e}"))))
    } else {
        job()
    };
    let Parsed {
        mut batch,
        errors,
        text,
    } = match parsed {
        Ok(p) => p,
        Err(BodyError::TooLarge) => return too_large("gzip"),
        Err(BodyError::Bad(m)) => return error(api, StatusCode::BAD_REQUEST, &m),
        Err(BodyError::Stopping) => {
            return error(
                api,
                StatusCode::SERVICE_UNAVAILABLE,
                "graft is shutting down",
            );
        }
    };
    for (tag, value) in tags {
        if let Some(v) = value
            && !tag.is_empty()
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
        return error(
            api,
            StatusCode::SERVICE_UNAVAILABLE,
            "graft is shutting down",
        );
    };
    // The body and its text are gone: waiting for the outputs holds no
    // permit.
    drop(permit);
    if let (Some(delivery), Some(timeout)) = (delivery, set.acknowledge)
        && let Some(refused) = settle(s, api, delivery, timeout, good).await
    {
        return refused;
    }
    if errors.is_empty() {
        return no_content();
    }
    count_bad_lines(s, &errors, good);
    error(
        api,
        StatusCode::BAD_REQUEST,
        &body::describe(&errors, good, &text),
    )
}

/// Wait until the outputs have the metrics of a write durably; `None` when
/// they do, else the 503 answer (with `Retry-After`) to send instead of 204.
async fn settle(
    s: &Shared,
    api: Api,
    delivery: graft_api::Delivery,
    timeout: std::time::Duration,
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
                "the metrics were not written or held durably within acknowledge_timeout ({timeout:?}); send them again (they may be stored twice)"
            ),
        ),
    };
    // Logged for the first and then every hundredth: an outage refuses
    // every write.
    let before = counter.fetch_add(1, Ordering::Relaxed);
    if before % 100 == 0 {
        tracing::warn!(metrics, refused = before + 1, error = %message, "write answered 503");
    }
    let mut r = error(api, StatusCode::SERVICE_UNAVAILABLE, &message);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    Some(r)
}

/// `max_concurrent_writes` requests are read and parsed already: 503 with
/// `Retry-After`, counted, logged at most every 10 s.
fn too_many_writes(s: &Shared, api: Api) -> Response {
    s.counters
        .concurrent_writes_limit_hits
        .fetch_add(1, Ordering::Relaxed);
    let now = s.started.elapsed().as_secs();
    let last = s.counters.refusal_logged_at.load(Ordering::Relaxed);
    if (last == u64::MAX || now >= last + 10)
        && s.counters
            .refusal_logged_at
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(
            max_concurrent_writes = s.settings.max_concurrent_writes,
            "write refused with 503: max_concurrent_writes requests in progress (logged at most every 10 s)"
        );
    }
    let mut r = error(
        api,
        StatusCode::SERVICE_UNAVAILABLE,
        "request throttled: max_concurrent_writes requests in progress; try again later",
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// Count the bad lines of one request (and the limit hits among them),
/// and log them once for the request.
fn count_bad_lines(s: &Shared, errors: &[ParseError], good: usize) {
    s.sink.malformed(errors.len() as u64);
    let kind = |k| errors.iter().filter(|e| e.kind == k).count() as u64;
    let (tags, fields) = (
        kind(ParseErrorKind::TooManyTags),
        kind(ParseErrorKind::TooManyFields),
    );
    s.counters
        .tags_limit_hits
        .fetch_add(tags, Ordering::Relaxed);
    s.counters
        .fields_limit_hits
        .fetch_add(fields, Ordering::Relaxed);
    tracing::warn!(
        bad_lines = errors.len(),
        lines = errors.len() + good,
        not_utf8 = kind(ParseErrorKind::NotUtf8),
        tags_limit_hits = tags,
        fields_limit_hits = fields,
        first = %errors[0],
        "lines that could not be parsed were skipped; the others were taken"
    );
}
