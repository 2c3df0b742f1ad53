//! `inputs.influxdb_listener` (and `inputs.influxdb_v2_listener`, the same
//! plugin with port 8086 by default): InfluxDB's write APIs served over HTTP,
//! so that InfluxDB clients and Telegraf agents can send to graft.
//!
//! - `POST /write` (v1: `db`, `rp`, `precision` = n, ns, u, ms, s, m, h;
//!   `u`/`p` credentials) and `POST /api/v2/write` (`org`, `bucket`,
//!   `precision` = ns, us, ms, s).
//! - `Content-Encoding: gzip` bodies; `max_body_size` (default 32 MiB,
//!   after decompression too) answered with 413.
//! - A body with some bad lines: the good lines go on, the answer is 400
//!   naming how many lines failed, each bad line quoted as InfluxDB 1.x
//!   quotes it (`unable to parse '<line>': ...`), so that graft's own output
//!   counts exactly those metrics as rejected. Bad lines are counted.
//! - `GET|HEAD /ping` (204, or 200 with `verbose=true`), `GET /health`,
//!   `GET /ready`; `POST /query` answers `{"results":[]}` so that a chained
//!   agent's `CREATE DATABASE` succeeds.
//! - Optional authentication: `basic_username`/`basic_password` (HTTP basic
//!   or v1 `u`/`p`), `token` (`Authorization: Token ...`).
//! - `max_undelivered_metrics`: while the outputs hold at least that many
//!   unwritten metrics, writes get 429 with `Retry-After`, so that senders
//!   keep their data instead of graft dropping it.
//! - `database_tag`, `retention_policy_tag`, `bucket_tag`: keep the request's
//!   `db`, `rp`, `bucket` as a tag.

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Result, bail};
use async_trait::async_trait;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use base64::Engine as _;
use graft_core::lineparse::{ParseError, Precision, parse_into};
use graft_core::{Batch, BatchBuilder, CallError, Input, MetricSink, PluginError};
use serde::Deserialize;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::duration::{de_duration, de_size};

/// `[[inputs.influxdb_listener]]` / `[[inputs.influxdb_v2_listener]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `service_address` (default `":8186"`, v2 `":8086"`): `host:port`;
    /// `:port` listens on every interface.
    #[serde(default)]
    pub service_address: Option<String>,
    /// `read_timeout` (default 10s): reading one request's body.
    #[serde(default = "ten_seconds", deserialize_with = "de_duration")]
    pub read_timeout: Duration,
    /// `write_timeout` (default 10s): accepted for Telegraf configs.
    #[serde(default = "ten_seconds", deserialize_with = "de_duration")]
    pub write_timeout: Duration,
    /// `max_body_size` (default 0 = 32 MiB).
    #[serde(default, deserialize_with = "de_size")]
    pub max_body_size: u64,
    /// `max_line_size`: deprecated in Telegraf and ignored (lines have no
    /// limit of their own).
    #[serde(default, deserialize_with = "de_size")]
    pub max_line_size: u64,
    /// `basic_username`, `basic_password`.
    #[serde(default)]
    pub basic_username: String,
    #[serde(default)]
    pub basic_password: String,
    /// `token`: require `Authorization: Token <token>`.
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub database_tag: String,
    #[serde(default)]
    pub retention_policy_tag: String,
    #[serde(default)]
    pub bucket_tag: String,
    /// `max_undelivered_metrics` (default 0 = no limit).
    #[serde(default)]
    pub max_undelivered_metrics: u64,
    /// `parser_type`: Telegraf's choice of parser; graft has one.
    #[serde(default)]
    pub parser_type: Option<String>,
    /// TLS (`tls_cert`, `tls_key`, `tls_allowed_cacerts`): refused for now.
    #[serde(default)]
    pub tls_cert: Option<String>,
    #[serde(default)]
    pub tls_key: Option<String>,
    #[serde(default)]
    pub tls_allowed_cacerts: Option<Vec<String>>,
}

fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}

const DEFAULT_MAX_BODY: u64 = 32 << 20;

/// Bodies larger than this are parsed on a blocking thread.
const PARSE_INLINE_MAX: usize = 64 << 10;

/// Build `inputs.influxdb_listener` (default port 8186).
pub fn build(table: toml::Table) -> Result<Box<dyn Input>> {
    Ok(Box::new(Listener::new(
        crate::config::parse(table)?,
        ":8186",
    )?))
}

/// Build `inputs.influxdb_v2_listener` (default port 8086).
pub fn build_v2(table: toml::Table) -> Result<Box<dyn Input>> {
    Ok(Box::new(Listener::new(
        crate::config::parse(table)?,
        ":8086",
    )?))
}

/// The listener.
pub struct Listener {
    address: String,
    settings: Option<Settings>,
    server: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
    local: Option<SocketAddr>,
}

/// What every request handler needs.
struct Settings {
    max_body: u64,
    read_timeout: Duration,
    basic: Option<(String, String)>,
    token: Option<String>,
    database_tag: String,
    retention_policy_tag: String,
    bucket_tag: String,
    max_undelivered: u64,
}

struct Shared {
    settings: Settings,
    sink: MetricSink,
    requests: AtomicU64,
}

impl Listener {
    /// Check the config; nothing is bound until `start`.
    pub fn new(config: Config, default_address: &str) -> Result<Self> {
        if config.tls_cert.is_some()
            || config.tls_key.is_some()
            || config.tls_allowed_cacerts.is_some()
        {
            bail!(
                "tls_cert/tls_key/tls_allowed_cacerts: TLS is not supported by this listener yet; put a TLS-terminating proxy in front"
            );
        }
        if config.basic_username.is_empty() != config.basic_password.is_empty() {
            bail!("basic_username and basic_password: set both or neither");
        }
        if let Some(p) = &config.parser_type
            && !matches!(p.as_str(), "internal" | "upstream")
        {
            bail!("parser_type: {p:?} is not one of \"internal\", \"upstream\"");
        }
        let address = config
            .service_address
            .clone()
            .unwrap_or_else(|| default_address.to_owned());
        let address = match address.strip_prefix("tcp://").unwrap_or(&address) {
            a if a.starts_with(':') => format!("0.0.0.0{a}"),
            a => a.to_owned(),
        };
        Ok(Self {
            address,
            settings: Some(Settings {
                max_body: if config.max_body_size == 0 {
                    DEFAULT_MAX_BODY
                } else {
                    config.max_body_size
                },
                read_timeout: config.read_timeout,
                basic: (!config.basic_username.is_empty())
                    .then_some((config.basic_username, config.basic_password)),
                token: (!config.token.is_empty()).then_some(config.token),
                database_tag: config.database_tag,
                retention_policy_tag: config.retention_policy_tag,
                bucket_tag: config.bucket_tag,
                max_undelivered: config.max_undelivered_metrics,
            }),
            server: None,
            local: None,
        })
    }

    /// The address bound by `start` (useful with port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local
    }
}

#[async_trait]
impl Input for Listener {
    async fn gather(&mut self) -> Result<Batch, CallError> {
        Ok(Batch::new())
    }

    fn is_service(&self) -> bool {
        true
    }

    async fn start(&mut self, sink: MetricSink) -> Result<(), PluginError> {
        let settings = self
            .settings
            .take()
            .ok_or_else(|| PluginError::new("the listener was started twice"))?;
        let listener = tokio::net::TcpListener::bind(&self.address)
            .await
            .map_err(|e| {
                PluginError::config(
                    "service_address",
                    format!("cannot listen on {}: {e}", self.address),
                )
            })?;
        self.local = listener.local_addr().ok();
        let shared = Arc::new(Shared {
            settings,
            sink,
            requests: AtomicU64::new(0),
        });
        let app = router(shared);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(plugin = "inputs.influxdb_listener", "server stopped: {e}");
            }
        });
        tracing::info!(
            plugin = "inputs.influxdb_listener",
            "listening on {}",
            self.local.map_or(self.address.clone(), |a| a.to_string())
        );
        self.server = Some((tx, task));
        Ok(())
    }

    async fn stop(&mut self) {
        if let Some((tx, task)) = self.server.take() {
            let _ = tx.send(());
            // Requests in flight finish (their metrics reach the sink).
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/write", post(write_v1))
        .route("/api/v2/write", post(write_v2))
        .route("/ping", get(ping).head(ping))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/api/v2/ready", get(ready))
        .route("/query", any(query))
        .with_state(shared)
}

const VERSION: &str = concat!("graft-", env!("CARGO_PKG_VERSION"));

/// Which API a request came through: errors are shaped as that API's.
#[derive(Clone, Copy)]
enum Api {
    V1,
    V2,
}

fn error(api: Api, status: StatusCode, message: &str) -> Response {
    let body = match api {
        Api::V1 => serde_json::json!({ "error": message }),
        Api::V2 => serde_json::json!({
            "code": match status.as_u16() {
                401 => "unauthorized",
                413 => "request too large",
                429 => "too many requests",
                _ => "invalid",
            },
            "message": message,
        }),
    };
    let mut r = (status, axum::Json(body)).into_response();
    let mut cut = message.len().min(1024);
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    if let Ok(v) = HeaderValue::from_str(&message[..cut].replace(['\r', '\n'], " ")) {
        r.headers_mut().insert("X-Influxdb-Error", v);
    }
    r.headers_mut()
        .insert("X-Influxdb-Version", HeaderValue::from_static(VERSION));
    r
}

fn no_content() -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .insert("X-Influxdb-Version", HeaderValue::from_static(VERSION));
    r
}

async fn ping(Query(q): Query<HashMap<String, String>>) -> Response {
    if q.get("verbose").is_some_and(|v| v == "true" || v == "1") {
        let mut r = axum::Json(serde_json::json!({ "version": VERSION })).into_response();
        r.headers_mut()
            .insert("X-Influxdb-Version", HeaderValue::from_static(VERSION));
        return r;
    }
    no_content()
}

async fn health() -> Response {
    axum::Json(serde_json::json!({
        "name": "graft",
        "message": "ready for writes",
        "status": "pass",
        "version": VERSION,
    }))
    .into_response()
}

async fn ready() -> Response {
    axum::Json(serde_json::json!({ "status": "ready" })).into_response()
}

async fn query() -> Response {
    axum::Json(serde_json::json!({ "results": [] })).into_response()
}

/// Credentials check; `None` when the request may go on.
fn authorize(
    s: &Settings,
    api: Api,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
) -> Option<Response> {
    if s.basic.is_none() && s.token.is_none() {
        return None;
    }
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Some(token) = &s.token
        && auth
            .strip_prefix("Token ")
            .is_some_and(|t| t.trim() == token)
    {
        return None;
    }
    if let Some((user, pass)) = &s.basic {
        let given = match auth.strip_prefix("Basic ") {
            Some(b64) => base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
                .and_then(|d| String::from_utf8(d).ok())
                .and_then(|d| d.split_once(':').map(|(u, p)| (u.to_owned(), p.to_owned()))),
            None => match (q.get("u"), q.get("p")) {
                (Some(u), Some(p)) => Some((u.clone(), p.clone())),
                _ => auth
                    .strip_prefix("Token ")
                    .and_then(|t| t.split_once(':'))
                    .map(|(u, p)| (u.to_owned(), p.to_owned())),
            },
        };
        if given.is_some_and(|(u, p)| &u == user && &p == pass) {
            return None;
        }
    }
    let mut r = error(api, StatusCode::UNAUTHORIZED, "authorization failed");
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"graft\""),
    );
    Some(r)
}

async fn write_v1(
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

async fn write_v2(
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
    s: &Shared,
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
    let too_large = || {
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
        return too_large();
    }
    let limit = usize::try_from(set.max_body).unwrap_or(usize::MAX);
    let raw = match tokio::time::timeout(set.read_timeout, axum::body::to_bytes(body, limit)).await
    {
        Err(_) => {
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
                return too_large();
            }
            return error(
                api,
                StatusCode::BAD_REQUEST,
                &format!("reading the body: {e}"),
            );
        }
        Ok(Ok(b)) => b,
    };
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
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    let parsed = if raw.len() > PARSE_INLINE_MAX || gzip {
        tokio::task::spawn_blocking(move || decode_and_parse(raw, gzip, limit, unit, now))
            .await
            .unwrap_or_else(|e| Err(Failure::Bad(format!("parser failed: {e}"))))
    } else {
        decode_and_parse(raw, gzip, limit, unit, now)
    };
    let (mut batch, errors, text) = match parsed {
        Ok(p) => p,
        Err(Failure::TooLarge) => return too_large(),
        Err(Failure::Bad(m)) => return error(api, StatusCode::BAD_REQUEST, &m),
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
    s.sink.malformed(errors.len() as u64);
    tracing::warn!(
        plugin = "inputs.influxdb_listener",
        "{} of {} lines could not be parsed and were skipped; first: {}",
        errors.len(),
        errors.len() + good,
        errors[0]
    );
    error(
        api,
        StatusCode::BAD_REQUEST,
        &describe(&errors, good, &text),
    )
}

enum Failure {
    TooLarge,
    Bad(String),
}

type Parsed = (Batch, Vec<ParseError>, String);

fn decode_and_parse(
    raw: Bytes,
    gzip: bool,
    limit: usize,
    unit: Precision,
    now: i64,
) -> Result<Parsed, Failure> {
    let bytes = if gzip {
        let mut out = Vec::with_capacity(raw.len() * 4);
        let mut dec = flate2::read::GzDecoder::new(&raw[..]).take(limit as u64 + 1);
        dec.read_to_end(&mut out)
            .map_err(|e| Failure::Bad(format!("reading the gzip body: {e}")))?;
        if out.len() > limit {
            return Err(Failure::TooLarge);
        }
        out
    } else {
        raw.to_vec()
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        Failure::Bad(format!(
            "the body is not UTF-8 (byte {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    let mut b = BatchBuilder::new();
    let errors = parse_into(&text, unit, now, &mut b);
    Ok((b.finish(), errors, text))
}

/// InfluxDB 1.x's shape: each bad line quoted, so that senders (graft's
/// own output among them) can tell which metrics were refused.
fn describe(errors: &[ParseError], good: usize, text: &str) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
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
        let line = lines
            .get(e.line - 1)
            .map_or("", |l| l.trim_end_matches('\r'));
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
