//! `outputs.prometheus_client`: the metrics written to it served on an
//! HTTP endpoint for Prometheus to scrape, named as Telegraf's
//! prometheus_client names them (`metric_version = 2` by default:
//! `cpu_usage_idle{cpu="cpu-total",host="..."}`; `1` too), with TYPE lines
//! from the metrics' kinds.
//!
//! - A write only updates the kept series (see [`crate::prometheus::expose`]):
//!   the latest value of each, until `expiration_interval` passes without
//!   an update; at most `max_series` (graft's), further new series counted
//!   and dropped. A write never waits for a scraper.
//! - The server starts in `connect` (a port in use is an error naming
//!   `listen`) and stops in `close`; it shares the HTTP accept loop of the
//!   listeners ([`crate::listener::http`]): `max_connections`,
//!   `read_timeout`, `write_timeout`, TLS (`tls_cert`, `tls_key`, mutual
//!   with `tls_allowed_cacerts`).
//! - `basic_username`/`basic_password` (401), `ip_range` (403),
//!   `http_headers`; the text format 0.0.4, or OpenMetrics when the
//!   scraper asks for it (see `prefer_openmetrics`); gzip when accepted.
//! - `collectors_exclude`: graft's own `process_*` metrics are served
//!   unless it holds `"process"`; `"gocollector"` is accepted (graft has
//!   no Go runtime to describe).

mod config;
mod http;
mod process;

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use async_trait::async_trait;
use axum::Router;
use axum::http::{HeaderName, HeaderValue};
use graft_api::counters::Counters;
use graft_api::{CallError, Output};
use graft_core::{Batch, PluginError, WriteError};

use crate::builtin::{self, Builtin};
use crate::listener::http as serve;
use crate::prometheus::expose::{Collection, ExposeCounters, Options, TypeMappings, Version};
use crate::tls_server::ServerTls;
pub use config::Config;
use config::{Cidr, listen_address};

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Output>> {
    builtin::build::<PrometheusClient>(table)
}

impl Builtin for PrometheusClient {
    const NAME: &'static str = "prometheus_client";
    type Config = Config;
    type Plugin = dyn Output;

    fn validate(config: &Config) -> Result<()> {
        config.check()?;
        TypeMappings::new(&config.metric_types.counter, &config.metric_types.gauge)?;
        Ok(())
    }

    fn build(config: Config) -> Result<Box<dyn Output>> {
        Ok(Box::new(PrometheusClient::new(config)?))
    }
}

/// How long `close` lets scrapes in flight finish.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The output.
pub struct PrometheusClient {
    address: String,
    max_connections: usize,
    read_timeout: Duration,
    write_timeout: Duration,
    tls: Option<Arc<rustls::ServerConfig>>,
    collection: Arc<Mutex<Collection>>,
    /// The handler's settings, until `connect` hands them over.
    shared: Option<http::Shared>,
    counters: Arc<Counters>,
    server: Option<serve::Server>,
    local: Option<SocketAddr>,
}

impl PrometheusClient {
    /// Check the config and read the TLS files; nothing is bound until
    /// `connect`.
    pub fn new(config: Config) -> Result<Self> {
        <Self as Builtin>::validate(&config)?;
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(
                ServerTls {
                    cert: cert.clone(),
                    key: key.clone(),
                    client_cas: config.tls_allowed_cacerts.clone(),
                    min_version: config.tls_min_version.clone(),
                    max_version: config.tls_max_version.clone(),
                }
                .config()?,
            ),
            _ => None,
        };
        let (read_timeout, write_timeout) = config.timeouts();
        let options = Options {
            version: if config.metric_version == 1 {
                Version::V1
            } else {
                Version::V2
            },
            string_as_label: config.string_as_label,
            export_timestamp: config.export_timestamp,
            expiration: (!config.expiration_interval.is_zero())
                .then_some(config.expiration_interval),
            max_series: config.max_series,
            types: TypeMappings::new(&config.metric_types.counter, &config.metric_types.gauge)?,
        };
        let collection = Arc::new(Mutex::new(Collection::new(options)));
        let headers = config
            .http_headers
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    HeaderName::try_from(k.as_str()).ok()?,
                    HeaderValue::try_from(v.as_str()).ok()?,
                ))
            })
            .collect();
        let shared = http::Shared {
            collection: collection.clone(),
            path: config.path.clone(),
            basic: (!config.basic_username.is_empty())
                .then(|| (config.basic_username.clone(), config.basic_password.clone())),
            ip_range: config
                .ip_range
                .iter()
                .map(|c| Cidr::parse(c))
                .collect::<Result<_>>()?,
            headers,
            process: !config.collectors_exclude.iter().any(|c| c == "process"),
            prefer_openmetrics: config.prefer_openmetrics,
            counters: http::ScrapeCounters::default(),
            refusal_logged_at: AtomicU64::new(u64::MAX),
            started: Instant::now(),
            cache: Default::default(),
        };
        Ok(Self {
            address: listen_address(&config.listen)?,
            max_connections: config.max_connections,
            read_timeout,
            write_timeout,
            tls,
            collection,
            shared: Some(shared),
            counters: Arc::default(),
            server: None,
            local: None,
        })
    }

    /// The address bound by `connect` (useful with port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local
    }
}

#[async_trait]
impl Output for PrometheusClient {
    fn attach_counters(&mut self, counters: Arc<Counters>) {
        self.collection
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .set_counters(ExposeCounters::of(&counters));
        self.counters = counters;
    }

    async fn connect(&mut self) -> Result<(), PluginError> {
        let Some(mut shared) = self.shared.take() else {
            return Ok(());
        };
        let listener = serve::bind("listen", &self.address).await?;
        self.local = listener.local_addr().ok();
        let c = &self.counters;
        shared.counters = http::ScrapeCounters {
            scrapes: c.counter("scrapes"),
            requests_unauthorized: c.counter("requests_unauthorized"),
            requests_forbidden: c.counter("requests_forbidden"),
        };
        let path = shared.path.clone();
        let app = Router::new()
            .fallback(http::handle)
            .with_state(Arc::new(shared));
        let accept = serve::Accept {
            listener,
            app,
            max_connections: self.max_connections,
            read_timeout: self.read_timeout,
            write_timeout: self.write_timeout,
            counters: serve::AcceptCounters {
                connections_limit_hits: c.counter("connections_limit_hits"),
                process_connections_limit_hits: c.counter("process_connections_limit_hits"),
                header_timeouts: c.counter("header_timeouts"),
                idle_timeouts: c.counter("idle_timeouts"),
                write_timeouts: c.counter("write_timeouts"),
                tls_handshake_errors: c.counter("tls_handshake_errors"),
            },
            tls: self.tls.clone().map(tokio_rustls::TlsAcceptor::from),
        };
        let server = serve::spawn(accept, STOP_GRACE);
        tracing::info!(
            address = %self.local.map_or(self.address.clone(), |a| a.to_string()),
            %path,
            tls = self.tls.is_some(),
            "serving metrics for Prometheus"
        );
        self.server = Some(server);
        Ok(())
    }

    async fn probe(&mut self) -> Result<(), PluginError> {
        // Whether `listen` can be bound, without serving.
        serve::bind("listen", &self.address).await.map(drop)
    }

    async fn write(&mut self, batch: &Batch) -> Result<(), CallError<WriteError>> {
        self.collection
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add(batch, Instant::now());
        Ok(())
    }

    async fn close(&mut self) -> Result<(), CallError<WriteError>> {
        if let Some(server) = self.server.take() {
            server.stop(STOP_GRACE).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
