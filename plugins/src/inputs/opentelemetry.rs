//! `inputs.opentelemetry`: an OTLP receiver for metrics, as Telegraf's,
//! turning what OpenTelemetry SDKs and collectors export into graft
//! metrics with Telegraf's mapping ([`crate::opentelemetry::to_graft`],
//! `metrics_schema` `prometheus-v1` or `prometheus-v2`).
//!
//! - OTLP/gRPC on `service_address` (default `0.0.0.0:4317`), Telegraf's
//!   listener; OTLP/HTTP on `http_service_address` (graft's, off by
//!   default), protobuf or JSON. Metrics only: trace, log and profile
//!   exports are answered UNIMPLEMENTED (gRPC) or 404 (HTTP), so that an
//!   exporter sees they were not taken instead of losing them silently.
//! - Data points that cannot be mapped (an exponential histogram, no
//!   timestamp, ...) cost only themselves: counted, and reported to the
//!   exporter as OTLP's partial success (`rejected_data_points`).
//! - Peers are bounded: `max_msg_size` per request (decompressed too),
//!   `max_data_points` per request, `max_connections` per listener (in the
//!   process-wide connection budget), `max_concurrent_requests` mapped at
//!   once, `timeout` for a request to arrive. Each limit hit is counted
//!   (`docs/instrumentation.md`, "OpenTelemetry") and logged at most every
//!   10 s.
//! - `acknowledge = "durable"`: an export is answered OK only once every
//!   output has its metrics (written or in a disk buffer), UNAVAILABLE /
//!   503 otherwise, which exporters retry: at-least-once delivery.
//! - TLS (`tls_cert`, `tls_key`, `tls_allowed_cacerts` for client
//!   certificates) on the gRPC listener.

mod config;
mod grpc;
mod http;
mod receive;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use async_trait::async_trait;
use graft_api::{CallError, Input, MetricSink};
use graft_core::{Batch, PluginError};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::server::ServerTlsConfig;
use tonic::transport::{Certificate, Identity};
use tracing::Instrument;

use crate::builtin::{self, Builtin};
use crate::listener::ConnectionBudget;
use crate::listener::http as accept;
pub use config::{Acknowledge, Config};
use receive::Receiver;

/// Build `inputs.opentelemetry`.
pub fn build(table: toml::Table) -> Result<Box<dyn Input>> {
    builtin::build::<OpenTelemetry>(table)
}

impl Builtin for OpenTelemetry {
    const NAME: &'static str = "opentelemetry";
    type Config = Config;
    type Plugin = dyn Input;

    fn validate(config: &Config) -> Result<()> {
        check(config)
    }

    fn build(config: Config) -> Result<Box<dyn Input>> {
        Ok(Box::new(OpenTelemetry::new(config)?))
    }
}

/// What the types cannot say.
fn check(c: &Config) -> Result<()> {
    if c.service_address.is_empty() && c.http_service_address.is_none() {
        bail!("service_address: empty, and no http_service_address: nothing to listen on");
    }
    if c.tls_cert.is_some() != c.tls_key.is_some() {
        bail!("tls_cert and tls_key: set both or neither");
    }
    if c.tls_allowed_cacerts.is_some() && c.tls_cert.is_none() {
        bail!("tls_allowed_cacerts: needs tls_cert and tls_key");
    }
    if c.tls_cert.is_some() && c.http_service_address.is_some() {
        bail!(
            "tls_cert: TLS is served on the gRPC listener only; the OTLP/HTTP listener (http_service_address) has none yet"
        );
    }
    for (key, v) in [
        ("max_connections", c.max_connections as u64),
        ("max_concurrent_requests", c.max_concurrent_requests as u64),
        ("max_msg_size", c.max_msg_size),
        ("max_data_points", c.max_data_points),
        ("max_attributes", c.max_attributes as u64),
    ] {
        if v == 0 {
            bail!("{key}: must be at least 1");
        }
    }
    if c.timeout.is_zero() {
        bail!("timeout: must be more than 0s");
    }
    Ok(())
}

/// The receiver.
pub struct OpenTelemetry {
    config: Config,
    tls: Option<ServerTlsConfig>,
    tasks: Vec<JoinHandle<()>>,
    stop: Option<watch::Sender<bool>>,
    grpc_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
}

impl OpenTelemetry {
    /// Check the config and read the TLS files; nothing is bound until
    /// `start`.
    pub fn new(config: Config) -> Result<Self> {
        check(&config)?;
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => {
                let read = |key: &str, path: &str| {
                    std::fs::read(path).with_context(|| format!("{key}: reading {path}"))
                };
                let identity = Identity::from_pem(read("tls_cert", cert)?, read("tls_key", key)?);
                let mut tls = ServerTlsConfig::new().identity(identity);
                for ca in config.tls_allowed_cacerts.iter().flatten() {
                    tls =
                        tls.client_ca_root(Certificate::from_pem(read("tls_allowed_cacerts", ca)?));
                }
                Some(tls)
            }
            _ => None,
        };
        Ok(Self {
            config,
            tls,
            tasks: Vec::new(),
            stop: None,
            grpc_addr: None,
            http_addr: None,
        })
    }

    /// The gRPC listener's address once started (useful with port 0).
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc_addr
    }

    /// The HTTP listener's address once started.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }
}

async fn bind(key: &'static str, address: &str) -> Result<TcpListener, PluginError> {
    let address = match address.strip_prefix("tcp://").unwrap_or(address) {
        a if a.starts_with(':') => format!("0.0.0.0{a}"),
        a => a.to_owned(),
    };
    TcpListener::bind(&address)
        .await
        .map_err(|e| PluginError::config(key, format!("cannot listen on {address}: {e}")))
}

#[async_trait]
impl Input for OpenTelemetry {
    async fn gather(&mut self) -> Result<Batch, CallError> {
        Ok(Batch::new())
    }

    fn is_service(&self) -> bool {
        true
    }

    async fn start(&mut self, sink: MetricSink) -> Result<(), PluginError> {
        if self.stop.is_some() {
            return Err(PluginError::new("the receiver was started twice"));
        }
        let c = &self.config;
        let grpc_listener = match c.service_address.as_str() {
            "" => None,
            a => Some(bind("service_address", a).await?),
        };
        let http_listener = match &c.http_service_address {
            None => None,
            Some(a) => Some(bind("http_service_address", a).await?),
        };
        let acknowledge = (c.acknowledge == Acknowledge::Durable).then_some(c.acknowledge_timeout);
        let receiver = Arc::new(Receiver::new(
            c.metrics_schema,
            c.max_data_points,
            c.max_attributes,
            c.max_msg_size,
            acknowledge,
            c.max_concurrent_requests,
            sink.clone(),
        ));
        let (stop, stopped) = watch::channel(false);
        let connections_limit_hits = sink.counter("connections_limit_hits");
        let process_connections_limit_hits = sink.counter("process_connections_limit_hits");
        if let Some(listener) = grpc_listener {
            self.grpc_addr = listener.local_addr().ok();
            let g = grpc::Grpc {
                listener,
                limiter: ConnectionBudget::global().limiter(c.max_connections),
                timeout: c.timeout,
                tls: self.tls.take(),
                connections_limit_hits: connections_limit_hits.clone(),
                process_connections_limit_hits: process_connections_limit_hits.clone(),
            };
            let serving = grpc::serve(g, receiver.clone(), stopped.clone());
            self.tasks.push(tokio::spawn(serving.in_current_span()));
        }
        if let Some(listener) = http_listener {
            self.http_addr = listener.local_addr().ok();
            let a = accept::Accept {
                listener,
                app: http::router(receiver, c.timeout),
                max_connections: c.max_connections,
                read_timeout: c.timeout,
                write_timeout: c.timeout,
                counters: accept::AcceptCounters {
                    connections_limit_hits,
                    process_connections_limit_hits,
                    header_timeouts: sink.counter("header_timeouts"),
                    idle_timeouts: sink.counter("idle_timeouts"),
                    write_timeouts: sink.counter("write_timeouts"),
                    tls_handshake_errors: sink.counter("tls_handshake_errors"),
                },
                tls: None,
            };
            let serving = accept::serve(a, stopped, STOP_GRACE);
            self.tasks.push(tokio::spawn(serving.in_current_span()));
        }
        tracing::info!(
            grpc = ?self.grpc_addr,
            http = ?self.http_addr,
            schema = ?c.metrics_schema,
            "receiving OTLP metrics"
        );
        self.stop = Some(stop);
        Ok(())
    }

    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
            // Calls in flight finish: their metrics reach the sink.
            for task in self.tasks.drain(..) {
                let _ = tokio::time::timeout(STOP_GRACE, task).await;
            }
        }
    }
}

/// How long `stop` lets requests in flight finish.
const STOP_GRACE: Duration = Duration::from_secs(5);
