//! `inputs.http_listener_v2`: metrics in any `data_format` (influx, json,
//! graft, prometheusremotewrite) written to graft over HTTP, with
//! Telegraf's keys — and so a Prometheus remote write receiver:
//! `data_format = "prometheusremotewrite"` and `paths = ["/api/v1/write"]`
//! put graft behind any Prometheus's `remote_write`.
//!
//! - `paths` (others 404), `methods` (others 405), `basic_username` /
//!   `basic_password` (401), `http_headers` on every answer,
//!   `http_header_tags` and `path_tag` as tags, `http_success_code`.
//! - The body (or with `data_source = "query"` the query string) is read
//!   within `read_timeout` and `max_body_size`; `Content-Encoding: gzip`
//!   and `snappy` bodies are bounded by `max_body_size` after
//!   decompression too (a snappy header announcing more is refused before
//!   anything is allocated). Over the limit: 413.
//! - All or nothing, as Telegraf: a body with any bad line or bad remote
//!   write series is answered 400 and nothing of it is kept (Telegraf
//!   senders retry every non-2xx, so a partial take would land twice); the
//!   bad parts are counted in `parse_errors` and logged.
//! - HTTPS with `tls_cert`/`tls_key`, mutual with `tls_allowed_cacerts`.
//! - Peers are bounded as the InfluxDB listener bounds them (the shared
//!   accept loop of [`crate::listener::http`]): `max_connections`,
//!   `max_concurrent_writes`, header, idle and write timeouts. Every limit
//!   hit is counted (see `docs/instrumentation.md`, "HTTP listener v2").
//! - `acknowledge = "durable"` (graft's): the success code only once every
//!   output has the metrics (written or in a disk buffer); 503 with
//!   `Retry-After` otherwise, which Prometheus retries.

mod config;
mod write;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Result, bail};
use async_trait::async_trait;
use graft_api::{CallError, Input, MetricSink};
use graft_core::{Batch, PluginError};

use crate::builtin::{self, Builtin};
use crate::config::With;
use crate::format::{Parser, ParserConfig};
use crate::inputs::influxdb_listener::Acknowledge;
use crate::listener::http::{self as serve, AcceptCounters};
use crate::tls_server::ServerTls;
use config::DEFAULT_MAX_BODY;
pub use config::Options;

/// `[[inputs.http_listener_v2]]`: its own keys and the parser's.
pub type Config = With<Options, ParserConfig>;

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Input>> {
    builtin::build::<HttpListenerV2>(table)
}

impl Builtin for HttpListenerV2 {
    const NAME: &'static str = "http_listener_v2";
    type Config = Config;
    type Plugin = dyn Input;

    fn validate(config: &Config) -> Result<()> {
        check(&config.own)?;
        config.shared.validate()
    }

    fn build(config: Config) -> Result<Box<dyn Input>> {
        Ok(Box::new(HttpListenerV2::new(config)?))
    }
}

/// What the types cannot say.
fn check(o: &Options) -> Result<()> {
    if o.tls_cert.is_some() != o.tls_key.is_some() {
        bail!("tls_cert and tls_key: set both or neither");
    }
    if o.tls_cert.is_none() && !o.tls_allowed_cacerts.is_empty() {
        bail!("tls_allowed_cacerts: needs tls_cert and tls_key");
    }
    if o.service_address.starts_with("unix://") || o.socket_mode.is_some() {
        bail!("service_address: unix sockets are not supported; use tcp://host:port");
    }
    if o.max_connections == 0 {
        bail!("max_connections: must be at least 1");
    }
    if o.max_concurrent_writes == 0 {
        bail!("max_concurrent_writes: must be at least 1");
    }
    if o.basic_username.is_empty() != o.basic_password.is_empty() {
        bail!("basic_username and basic_password: set both or neither");
    }
    if !matches!(
        o.data_source.to_ascii_lowercase().as_str(),
        "" | "body" | "query"
    ) {
        bail!(
            "data_source: {:?} is not \"body\" or \"query\"",
            o.data_source
        );
    }
    if o.http_success_code != 0 && !(200..300).contains(&o.http_success_code) {
        bail!(
            "http_success_code: {} is not a 2xx status",
            o.http_success_code
        );
    }
    if let Some(p) = o.paths.iter().chain(&o.path).find(|p| !p.starts_with('/')) {
        bail!("paths: {p:?} does not start with /");
    }
    for m in &o.methods {
        if axum::http::Method::from_bytes(m.to_ascii_uppercase().as_bytes()).is_err() {
            bail!("methods: {m:?} is not an HTTP method");
        }
    }
    for (k, v) in &o.http_headers {
        if axum::http::HeaderName::from_bytes(k.as_bytes()).is_err()
            || axum::http::HeaderValue::from_str(v).is_err()
        {
            bail!("http_headers: {k:?} = {v:?} is not a valid header");
        }
    }
    Ok(())
}

/// The listener.
pub struct HttpListenerV2 {
    address: String,
    max_connections: usize,
    read_timeout: Duration,
    write_timeout: Duration,
    settings: Option<write::Settings>,
    tls: Option<Arc<rustls::ServerConfig>>,
    server: Option<serve::Server>,
    stopping: Arc<AtomicBool>,
    local: Option<SocketAddr>,
}

/// As Telegraf: a timeout under a second means the default of 10 s.
fn at_least_a_second(d: Duration) -> Duration {
    if d < Duration::from_secs(1) {
        Duration::from_secs(10)
    } else {
        d
    }
}

impl HttpListenerV2 {
    /// Check the config and build the parser; nothing is bound until
    /// `start`.
    pub fn new(config: Config) -> Result<Self> {
        check(&config.own)?;
        let o = config.own;
        let max_body = match o.max_body_size {
            0 => DEFAULT_MAX_BODY,
            n => n,
        };
        let max_body = usize::try_from(max_body).unwrap_or(usize::MAX);
        let parser: Parser = config
            .shared
            .build("http_listener_v2")?
            .with_max_body(max_body)
            .with_max_labels(o.max_labels);
        let address = o.service_address.trim_start_matches("tcp://");
        let address = match address {
            a if a.starts_with(':') => format!("0.0.0.0{a}"),
            a => a.to_owned(),
        };
        let tls = match (&o.tls_cert, &o.tls_key) {
            (Some(cert), Some(key)) => Some(
                ServerTls {
                    cert: cert.clone(),
                    key: key.clone(),
                    client_cas: o.tls_allowed_cacerts.clone(),
                    min_version: o.tls_min_version.clone(),
                    max_version: o.tls_max_version.clone(),
                }
                .config()?,
            ),
            _ => None,
        };
        let mut paths = o.paths;
        paths.extend(o.path);
        Ok(Self {
            address,
            max_connections: o.max_connections,
            read_timeout: at_least_a_second(o.read_timeout),
            write_timeout: at_least_a_second(o.write_timeout),
            settings: Some(write::Settings {
                parser,
                paths,
                path_tag: o.path_tag,
                methods: o.methods.iter().map(|m| m.to_ascii_uppercase()).collect(),
                response_headers: o.http_headers.into_iter().collect(),
                header_tags: o.http_header_tags.into_iter().collect(),
                success: o.http_success_code,
                read_timeout: at_least_a_second(o.read_timeout),
                max_body,
                query: o.data_source.eq_ignore_ascii_case("query"),
                basic: (!o.basic_username.is_empty())
                    .then_some((o.basic_username, o.basic_password)),
                max_concurrent_writes: o.max_concurrent_writes,
                acknowledge: (o.acknowledge == Acknowledge::Durable)
                    .then_some(o.acknowledge_timeout),
            }),
            tls,
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
impl Input for HttpListenerV2 {
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
        let accept = serve::Accept {
            listener,
            app: write::router(settings, sink.clone(), self.stopping.clone()),
            max_connections: self.max_connections,
            read_timeout: self.read_timeout,
            write_timeout: self.write_timeout,
            counters: AcceptCounters::new(&sink),
            tls: self.tls.clone().map(tokio_rustls::TlsAcceptor::from),
        };
        let server = serve::spawn(accept, STOP_GRACE);
        tracing::info!(
            address = %self.local.map_or(self.address.clone(), |a| a.to_string()),
            max_connections = self.max_connections,
            tls = self.tls.is_some(),
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

#[cfg(test)]
mod tests;
