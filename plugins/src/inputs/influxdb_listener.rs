//! `inputs.influxdb_listener` (and `inputs.influxdb_v2_listener`, the same
//! plugin with port 8086 by default): InfluxDB's write APIs served over HTTP,
//! so that InfluxDB clients and Telegraf agents can send to graft.
//!
//! - `POST /write` (v1: `db`, `rp`, `precision` = n, ns, u, ms, s, m, h;
//!   `u`/`p` credentials) and `POST /api/v2/write` (`org`, `bucket`,
//!   `precision` = ns, us, ms, s).
//! - `Content-Encoding: gzip` bodies; `max_body_size` (default 32 MiB,
//!   after decompression too) answered with 413.
//! - Line protocol read line by line with InfluxDB 1.x's meaning: a line
//!   that cannot be read (bad syntax, not UTF-8, more than `max_tags` tags
//!   or `max_fields` fields) costs only itself. The good lines go on, the
//!   answer is 400 naming how many lines failed, each bad line quoted as
//!   InfluxDB 1.x quotes it (`unable to parse '<line>': ...`), so that
//!   graft's own output counts exactly those metrics as rejected. Bad
//!   lines are counted.
//! - Peers are bounded: at most `max_connections` open connections and
//!   `max_concurrent_writes` bodies read and parsed at once;
//!   `read_timeout` for a request's headers, for an idle keep-alive
//!   connection and for a body. Every limit hit is counted (see
//!   `docs/instrumentation.md`) and logged once for its connection or
//!   request.
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
//! - `acknowledge = "durable"` (graft's): a write is answered 204 only once
//!   every output has written its metrics or holds them in a disk buffer;
//!   503 with `Retry-After` when some were lost or `acknowledge_timeout`
//!   passed. A sender that retries until 204 gets at-least-once delivery.

mod api;
pub mod body;
mod config;
mod write;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

use anyhow::{Result, bail};
use async_trait::async_trait;
use axum::Router;
use axum::routing::{any, get, post};
use graft_api::{CallError, Input, MetricSink};
use graft_core::{Batch, PluginError};

use crate::builtin::{self, Builtin};
use crate::listener::http as serve;
pub use config::{Acknowledge, Config};
use config::{DEFAULT_MAX_BODY, at_least_a_second};

/// Build `inputs.influxdb_listener` (default port 8186).
pub fn build(table: toml::Table) -> Result<Box<dyn Input>> {
    builtin::build::<Listener>(table)
}

/// Build `inputs.influxdb_v2_listener` (default port 8086).
pub fn build_v2(table: toml::Table) -> Result<Box<dyn Input>> {
    builtin::build::<ListenerV2>(table)
}

/// `inputs.influxdb_listener`: the listener on port 8186 by default.
impl Builtin for Listener {
    const NAME: &'static str = "influxdb_listener";
    type Config = Config;
    type Plugin = dyn Input;

    fn validate(config: &Config) -> Result<()> {
        check(config)
    }

    fn build(config: Config) -> Result<Box<dyn Input>> {
        Ok(Box::new(Listener::new(config, ":8186")?))
    }
}

/// `inputs.influxdb_v2_listener`: the same listener, on port 8086 by
/// default.
pub struct ListenerV2;

impl Builtin for ListenerV2 {
    const NAME: &'static str = "influxdb_v2_listener";
    type Config = Config;
    type Plugin = dyn Input;

    fn validate(config: &Config) -> Result<()> {
        check(config)
    }

    fn build(config: Config) -> Result<Box<dyn Input>> {
        Ok(Box::new(Listener::new(config, ":8086")?))
    }
}

/// What the types cannot say: supported options, limits above zero, keys
/// set together.
fn check(config: &Config) -> Result<()> {
    if config.tls_cert.is_some() || config.tls_key.is_some() || config.tls_allowed_cacerts.is_some()
    {
        bail!(
            "tls_cert/tls_key/tls_allowed_cacerts: TLS is not supported by this listener yet; put a TLS-terminating proxy in front"
        );
    }
    if config.max_connections == 0 {
        bail!("max_connections: must be at least 1");
    }
    if config.max_concurrent_writes == 0 {
        bail!("max_concurrent_writes: must be at least 1");
    }
    if config.basic_username.is_empty() != config.basic_password.is_empty() {
        bail!("basic_username and basic_password: set both or neither");
    }
    if let Some(p) = &config.parser_type
        && !matches!(p.as_str(), "internal" | "upstream")
    {
        bail!("parser_type: {p:?} is not one of \"internal\", \"upstream\"");
    }
    Ok(())
}

/// The listener.
pub struct Listener {
    address: String,
    max_connections: usize,
    write_timeout: Duration,
    settings: Option<Settings>,
    server: Option<serve::Server>,
    stopping: Arc<AtomicBool>,
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
    /// With `acknowledge = "durable"`: how long a write waits for its
    /// metrics to be settled before answering.
    acknowledge: Option<Duration>,
    max_tags: usize,
    max_fields: usize,
    max_concurrent_writes: usize,
}

struct Shared {
    settings: Settings,
    sink: MetricSink,
    requests: AtomicU64,
    /// Set by `stop`: a body being parsed stops at its next piece.
    stopping: Arc<AtomicBool>,
    /// One permit per write request being read and parsed.
    writes: Arc<tokio::sync::Semaphore>,
    started: std::time::Instant,
    counters: WriteCounters,
}

/// Counters of the write path (names in `docs/instrumentation.md`).
struct WriteCounters {
    concurrent_writes_limit_hits: Arc<AtomicU64>,
    /// When a refused write was last logged (seconds since the start).
    refusal_logged_at: AtomicU64,
    body_size_limit_hits: Arc<AtomicU64>,
    body_timeouts: Arc<AtomicU64>,
    tags_limit_hits: Arc<AtomicU64>,
    fields_limit_hits: Arc<AtomicU64>,
    /// `acknowledge = "durable"` writes answered 503: metrics lost on the
    /// way, or not settled within `acknowledge_timeout`.
    undelivered_writes: Arc<AtomicU64>,
    acknowledge_timeouts: Arc<AtomicU64>,
}

impl Listener {
    /// Check the config; nothing is bound until `start`.
    pub fn new(config: Config, default_address: &str) -> Result<Self> {
        check(&config)?;
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
            max_connections: config.max_connections,
            write_timeout: at_least_a_second(config.write_timeout),
            settings: Some(Settings {
                max_body: if config.max_body_size == 0 {
                    DEFAULT_MAX_BODY
                } else {
                    config.max_body_size
                },
                read_timeout: at_least_a_second(config.read_timeout),
                basic: (!config.basic_username.is_empty())
                    .then_some((config.basic_username, config.basic_password)),
                token: (!config.token.is_empty()).then_some(config.token),
                database_tag: config.database_tag,
                retention_policy_tag: config.retention_policy_tag,
                bucket_tag: config.bucket_tag,
                max_undelivered: config.max_undelivered_metrics,
                acknowledge: (config.acknowledge == Acknowledge::Durable)
                    .then_some(config.acknowledge_timeout),
                max_tags: config.max_tags,
                max_fields: config.max_fields,
                max_concurrent_writes: config.max_concurrent_writes,
            }),
            server: None,
            stopping: Arc::new(AtomicBool::new(false)),
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
        let listener = serve::bind("service_address", &self.address).await?;
        self.local = listener.local_addr().ok();
        let read_timeout = settings.read_timeout;
        let accept_counters = serve::AcceptCounters {
            connections_limit_hits: sink.counter("connections_limit_hits"),
            process_connections_limit_hits: sink.counter("process_connections_limit_hits"),
            header_timeouts: sink.counter("header_timeouts"),
            idle_timeouts: sink.counter("idle_timeouts"),
            write_timeouts: sink.counter("write_timeouts"),
            tls_handshake_errors: Default::default(),
        };
        let counters = WriteCounters {
            concurrent_writes_limit_hits: sink.counter("concurrent_writes_limit_hits"),
            refusal_logged_at: AtomicU64::new(u64::MAX),
            body_size_limit_hits: sink.counter("body_size_limit_hits"),
            body_timeouts: sink.counter("body_timeouts"),
            tags_limit_hits: sink.counter("tags_limit_hits"),
            fields_limit_hits: sink.counter("fields_limit_hits"),
            undelivered_writes: sink.counter("undelivered_writes"),
            acknowledge_timeouts: sink.counter("acknowledge_timeouts"),
        };
        let writes = Arc::new(tokio::sync::Semaphore::new(settings.max_concurrent_writes));
        let shared = Arc::new(Shared {
            writes,
            started: std::time::Instant::now(),
            settings,
            sink,
            requests: AtomicU64::new(0),
            stopping: self.stopping.clone(),
            counters,
        });
        let accept = serve::Accept {
            listener,
            app: router(shared),
            max_connections: self.max_connections,
            read_timeout,
            write_timeout: self.write_timeout,
            counters: accept_counters,
            tls: None,
        };
        let server = serve::spawn(accept, STOP_GRACE);
        tracing::info!(
            address = %self.local.map_or(self.address.clone(), |a| a.to_string()),
            max_connections = self.max_connections,
            "listening"
        );
        self.server = Some(server);
        Ok(())
    }

    async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            self.stopping
                .store(true, std::sync::atomic::Ordering::Relaxed);
            server.stop(STOP_GRACE).await;
        }
    }
}

/// How long `stop` lets requests in flight finish.
const STOP_GRACE: Duration = Duration::from_secs(5);

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/write", post(write::write_v1))
        .route("/api/v2/write", post(write::write_v2))
        .route("/ping", get(api::ping).head(api::ping))
        .route("/health", get(api::health))
        .route("/ready", get(api::ready))
        .route("/api/v2/ready", get(api::ready))
        .route("/query", any(api::query))
        .with_state(shared)
}
