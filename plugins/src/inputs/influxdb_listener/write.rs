//! The write endpoints: the body read within `read_timeout` and
//! `max_body_size` (before and after gzip), then parsed line by line off
//! the reactor, a piece at a time so that a shutdown stops it. Good lines
//! go on; each bad line is counted and quoted in a 400 as InfluxDB 1.x
//! quotes it.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use graft_core::lineparse::{BodyParser, ParseError, ParseErrorKind, ParseOptions, Precision};
use graft_core::{Batch, BatchBuilder};

use super::Shared;
use super::api::{Api, authorize, error, no_content};

/// Bodies larger than this are parsed on a blocking thread.
const PARSE_INLINE_MAX: usize = 64 << 10;

/// Bytes parsed between two looks at the stop flag.
const PARSE_PIECE: usize = 1 << 20;

/// The longest line quoted back in an answer.
const QUOTE_MAX: usize = 64 << 10;

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
            tracing::warn!(read_timeout = ?set.read_timeout, "request refused: body not read within read_timeout");
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
    let job = Job {
        raw,
        gzip,
        limit,
        options,
        shared: s.clone(),
    };
    let parsed = if job.raw.len() > PARSE_INLINE_MAX || gzip {
        tokio::task::spawn_blocking(move || job.run())
            .await
            .unwrap_or_else(|e| Err(Failure::Bad(format!("parser failed: {e}"))))
    } else {
        job.run()
    };
    let Parsed {
        mut batch,
        errors,
        text,
    } = match parsed {
        Ok(p) => p,
        Err(Failure::TooLarge) => return too_large("gzip"),
        Err(Failure::Bad(m)) => return error(api, StatusCode::BAD_REQUEST, &m),
        Err(Failure::Stopping) => {
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
    if !batch.is_empty() && s.sink.send(batch).await.is_err() {
        return error(
            api,
            StatusCode::SERVICE_UNAVAILABLE,
            "graft is shutting down",
        );
    }
    if errors.is_empty() {
        return no_content();
    }
    count_bad_lines(s, &errors, good);
    error(
        api,
        StatusCode::BAD_REQUEST,
        &describe(&errors, good, &text),
    )
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

enum Failure {
    TooLarge,
    Bad(String),
    Stopping,
}

struct Parsed {
    batch: Batch,
    errors: Vec<ParseError>,
    /// The decoded body, to quote bad lines from.
    text: Vec<u8>,
}

/// Decoding and parsing one body.
struct Job {
    raw: Bytes,
    gzip: bool,
    limit: usize,
    options: ParseOptions,
    shared: Arc<Shared>,
}

impl Job {
    fn stopping(&self) -> bool {
        self.shared.stopping.load(Ordering::Relaxed)
    }

    fn run(self) -> Result<Parsed, Failure> {
        let text = if self.gzip {
            self.gunzip()?
        } else {
            self.raw.to_vec()
        };
        let mut b = BatchBuilder::new();
        let mut parser = BodyParser::new(&text, self.options.clone());
        while !parser.parse_some(PARSE_PIECE, &mut b) {
            if self.stopping() {
                return Err(Failure::Stopping);
            }
        }
        let errors = parser.into_errors();
        Ok(Parsed {
            batch: b.finish(),
            errors,
            text,
        })
    }

    /// Inflate at most `limit` bytes, a piece at a time; every gzip member
    /// of the body, as Go's reader (InfluxDB's, Telegraf's) reads them.
    fn gunzip(&self) -> Result<Vec<u8>, Failure> {
        let mut out = Vec::with_capacity((self.raw.len() * 4).min(self.limit));
        let mut dec = flate2::read::MultiGzDecoder::new(&self.raw[..]).take(self.limit as u64 + 1);
        let mut piece = vec![0u8; 64 << 10];
        loop {
            let n = dec
                .read(&mut piece)
                .map_err(|e| Failure::Bad(format!("reading the gzip body: {e}")))?;
            if n == 0 {
                break;
            }
            out.extend_from_slice(&piece[..n]);
            if out.len() > self.limit {
                return Err(Failure::TooLarge);
            }
            if self.stopping() {
                return Err(Failure::Stopping);
            }
        }
        Ok(out)
    }
}

/// InfluxDB 1.x's shape: each bad line quoted (lossily where it is not
/// UTF-8), so that senders (graft's own output among them) can tell which
/// metrics were refused.
fn describe(errors: &[ParseError], good: usize, text: &[u8]) -> String {
    let mut m = if good > 0 {
        format!(
            "partial write: {} of {} lines could not be parsed and were dropped",
            errors.len(),
            errors.len() + good
        )
    } else {
        format!("{} lines could not be parsed", errors.len())
    };
    for e in errors.iter().take(100) {
        let span = e.span.start..e.span.end.min(e.span.start + QUOTE_MAX);
        let line = String::from_utf8_lossy(&text[span]);
        m.push_str(&format!(
            "\nunable to parse '{line}': line {}: {}",
            e.line, e.reason
        ));
    }
    if errors.len() > 100 {
        m.push_str(&format!("\n... and {} more", errors.len() - 100));
    }
    m
}
