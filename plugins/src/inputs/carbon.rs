//! `inputs.carbon`: a carbon-compatible receiver, and Telegraf's
//! `inputs.socket_listener` with `data_format = "graphite"` or `"influx"`.
//!
//! - Plaintext over TCP and UDP (`service_address = ["tcp://:2003",
//!   "udp://:2003"]`): `path value [timestamp]`, `-1` = now, carbon tags
//!   `path;k=v`; Telegraf's templates turn paths into measurement, tags and
//!   field.
//! - Pickle over TCP (`pickle_address = "tcp://:2004"`): 4-byte big-endian
//!   length, then a pickle of protocol 0 to 5 holding `(path, (ts, value))`
//!   items (also go-carbon's `(path, (ts, v), (ts, v)...)`), decoded by a
//!   machine that refuses anything but lists, tuples, strings and numbers.
//! - Everything a peer controls is bounded through the shared listener
//!   layer ([`crate::listener`]): connections per listener
//!   (`max_connections`) and in the process, line length
//!   (`max_line_size`), frame length (`max_frame_size`), pickle nesting,
//!   memo entries, decoded size and points (`max_pickle_depth`,
//!   `max_pickle_memo_entries`, `max_pickle_decoded_size`,
//!   `max_pickle_metrics`), idle time
//!   (`read_timeout`). A bad or over-limit line, item or frame is counted
//!   (`internal_gather.parse_errors`, and the limit's own `*_limit_hits`)
//!   and skipped; the connection and everything else on it survive.

mod receive;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use async_trait::async_trait;
use graft_api::{CallError, Input, MetricSink};
use graft_core::{Batch, PluginError};
use serde::Deserialize;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::duration::{de_duration, de_size};
use crate::graphite::Templates;
use crate::graphite::pickle::PickleLimits;
use crate::listener::tcp::{self, TcpServe};
use crate::listener::udp::{Datagrams, MAX_UDP_PAYLOAD};
use crate::listener::{ConnectionBudget, ListenerStats, PickleStats};
use receive::Ctx;

/// A string or a list of strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn list(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// `[[inputs.carbon]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CarbonConfig {
    /// `service_address` (default `"tcp://:2003"`): plaintext listeners,
    /// `tcp://` or `udp://`.
    #[serde(default)]
    pub service_address: Option<OneOrMany>,
    /// `pickle_address`: pickle listeners (`tcp://` only).
    #[serde(default)]
    pub pickle_address: Option<OneOrMany>,
    #[serde(default)]
    pub templates: Vec<String>,
    /// `separator` (default `"."`): joins template parts of one kind.
    #[serde(default = "dot")]
    pub separator: String,
    /// `max_line_size` (default 16 KiB, carbon's limit).
    #[serde(default = "default_line", deserialize_with = "de_size")]
    pub max_line_size: u64,
    /// `max_frame_size` (default 1 MiB, carbon's limit).
    #[serde(default = "default_frame", deserialize_with = "de_size")]
    pub max_frame_size: u64,
    /// `read_timeout` (default `"5m"`, `"0"` = never): close TCP
    /// connections idle this long.
    #[serde(default = "default_read_timeout", deserialize_with = "de_duration")]
    pub read_timeout: Duration,
    /// `max_connections` (default 256, 0 = only the process-wide budget):
    /// connections held at once on each TCP address.
    #[serde(default = "default_connections")]
    pub max_connections: usize,
    /// `max_pickle_depth` (default 32): deepest nesting of lists and
    /// tuples in a pickle frame (carbon's frames use 3).
    #[serde(default = "default_pickle_depth")]
    pub max_pickle_depth: usize,
    /// `max_pickle_memo_entries` (default 262144): memo entries a frame
    /// may store.
    #[serde(default = "default_pickle_memo")]
    pub max_pickle_memo_entries: usize,
    /// `max_pickle_decoded_size` (default 32 MiB): bytes a frame may decode
    /// to, every copy through the memo or `DUP` counted again.
    #[serde(default = "default_pickle_decoded", deserialize_with = "de_size")]
    pub max_pickle_decoded_size: u64,
    /// `max_pickle_metrics` (default 100000): points one frame may carry
    /// (carbon's relays send at most 500).
    #[serde(default = "default_pickle_metrics")]
    pub max_pickle_metrics: usize,
}

/// `[[inputs.socket_listener]]` (Telegraf's spelling).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocketListenerConfig {
    pub service_address: String,
    /// `data_format` (default `"influx"`): `influx` or `graphite`.
    #[serde(default = "influx")]
    pub data_format: String,
    #[serde(default)]
    pub templates: Vec<String>,
    #[serde(default = "dot")]
    pub separator: String,
    /// `read_timeout` (default 0 = never, as Telegraf).
    #[serde(default, deserialize_with = "de_duration")]
    pub read_timeout: Duration,
    /// `max_connections` (default 0 = only the process-wide budget).
    #[serde(default)]
    pub max_connections: usize,
    /// `max_line_size` (default 1 MiB): longer lines are dropped and
    /// counted.
    #[serde(default = "default_socket_line", deserialize_with = "de_size")]
    pub max_line_size: u64,
    /// Accepted for Telegraf configs; graft sizes its own buffers.
    #[serde(default, deserialize_with = "de_size")]
    pub read_buffer_size: u64,
    #[serde(default, deserialize_with = "de_duration")]
    pub keep_alive_period: Duration,
}

fn dot() -> String {
    ".".into()
}
fn influx() -> String {
    "influx".into()
}
fn default_line() -> u64 {
    16 << 10
}
fn default_frame() -> u64 {
    1 << 20
}
fn default_socket_line() -> u64 {
    1 << 20
}
fn default_read_timeout() -> Duration {
    Duration::from_secs(300)
}
fn default_connections() -> usize {
    256
}
fn default_pickle_depth() -> usize {
    PickleLimits::default().max_depth
}
fn default_pickle_memo() -> usize {
    PickleLimits::default().max_memo_entries
}
fn default_pickle_metrics() -> usize {
    100_000
}
fn default_pickle_decoded() -> u64 {
    PickleLimits::default().max_decoded_size as u64
}

/// A size option as a `usize`, refused when zero.
fn positive(v: u64, key: &str) -> Result<usize> {
    match usize::try_from(v) {
        Ok(0) => bail!("{key}: must be more than 0"),
        Ok(n) => Ok(n),
        Err(_) => bail!("{key}: {v} is too large"),
    }
}

/// How a listener reads what arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Lines,
    Pickle,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    Tcp,
    Udp,
}

/// What the lines are.
#[derive(Clone)]
pub(crate) enum Format {
    Graphite(Arc<Templates>),
    Influx,
}

/// Build `inputs.carbon`.
pub fn build(table: toml::Table) -> Result<Box<dyn Input>> {
    Ok(Box::new(carbon(table)?))
}

/// `inputs.carbon` as its own type (tests read its bound addresses).
pub fn carbon(table: toml::Table) -> Result<Carbon> {
    let c: CarbonConfig = crate::config::parse(table)?;
    let templates = Arc::new(Templates::new(&c.templates, &c.separator)?);
    let mut endpoints = Vec::new();
    let plain = c
        .service_address
        .map_or_else(|| vec!["tcp://:2003".to_owned()], |a| a.list());
    for a in plain {
        let (t, addr) = parse_address(&a, "service_address")?;
        endpoints.push((t, Framing::Lines, addr));
    }
    for a in c.pickle_address.map(|a| a.list()).unwrap_or_default() {
        let (t, addr) = parse_address(&a, "pickle_address")?;
        if t == Transport::Udp {
            bail!("pickle_address: {a:?}: pickle is carried over TCP only");
        }
        endpoints.push((t, Framing::Pickle, addr));
    }
    Ok(Carbon::new(
        "inputs.carbon",
        endpoints,
        Format::Graphite(templates),
        Limits {
            line: positive(c.max_line_size, "max_line_size")?,
            frame: positive(c.max_frame_size, "max_frame_size")?,
            read_timeout: c.read_timeout,
            connections: c.max_connections,
            pickle: PickleLimits {
                max_depth: positive(c.max_pickle_depth as u64, "max_pickle_depth")?,
                max_memo_entries: positive(
                    c.max_pickle_memo_entries as u64,
                    "max_pickle_memo_entries",
                )?,
                max_decoded_size: positive(c.max_pickle_decoded_size, "max_pickle_decoded_size")?,
            },
            pickle_metrics: positive(c.max_pickle_metrics as u64, "max_pickle_metrics")?,
        },
    ))
}

/// Build `inputs.socket_listener`.
pub fn build_socket_listener(table: toml::Table) -> Result<Box<dyn Input>> {
    let c: SocketListenerConfig = crate::config::parse(table)?;
    let format = match c.data_format.as_str() {
        "influx" => Format::Influx,
        "graphite" => Format::Graphite(Arc::new(Templates::new(&c.templates, &c.separator)?)),
        other => {
            bail!("data_format: {other:?} is not supported yet; use \"influx\" or \"graphite\"")
        }
    };
    let (t, addr) = parse_address(&c.service_address, "service_address")?;
    Ok(Box::new(Carbon::new(
        "inputs.socket_listener",
        vec![(t, Framing::Lines, addr)],
        format,
        Limits {
            line: positive(c.max_line_size, "max_line_size")?,
            frame: 1 << 20,
            read_timeout: c.read_timeout,
            connections: c.max_connections,
            pickle: PickleLimits::default(),
            pickle_metrics: default_pickle_metrics(),
        },
    )))
}

fn parse_address(a: &str, key: &str) -> Result<(Transport, String)> {
    let (t, rest) = match a.split_once("://") {
        Some(("tcp" | "tcp4" | "tcp6", r)) => (Transport::Tcp, r),
        Some(("udp" | "udp4" | "udp6", r)) => (Transport::Udp, r),
        Some((other, _)) => {
            bail!("{key}: {a:?}: {other}:// is not supported; use tcp:// or udp://")
        }
        None => (Transport::Tcp, a),
    };
    let rest = if rest.starts_with(':') {
        format!("0.0.0.0{rest}")
    } else {
        rest.to_owned()
    };
    if rest
        .rsplit_once(':')
        .is_none_or(|(_, p)| p.parse::<u16>().is_err())
    {
        bail!("{key}: {a:?} is not host:port");
    }
    Ok((t, rest))
}

/// What a peer may send and hold.
#[derive(Clone, Copy)]
pub(crate) struct Limits {
    pub line: usize,
    pub frame: usize,
    pub read_timeout: Duration,
    pub connections: usize,
    pub pickle: PickleLimits,
    /// Most points one pickle frame may carry.
    pub pickle_metrics: usize,
}

/// The receiver.
pub struct Carbon {
    name: &'static str,
    endpoints: Vec<(Transport, Framing, String)>,
    format: Format,
    limits: Limits,
    local: Vec<SocketAddr>,
    stop: Option<watch::Sender<bool>>,
    tasks: JoinSet<()>,
}

impl Carbon {
    fn new(
        name: &'static str,
        endpoints: Vec<(Transport, Framing, String)>,
        format: Format,
        limits: Limits,
    ) -> Self {
        Self {
            name,
            endpoints,
            format,
            limits,
            local: Vec::new(),
            stop: None,
            tasks: JoinSet::new(),
        }
    }

    /// The addresses bound by `start`, in configuration order (plaintext,
    /// then pickle).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local
    }
}

#[async_trait]
impl Input for Carbon {
    async fn gather(&mut self) -> Result<Batch, CallError> {
        Ok(Batch::new())
    }

    fn is_service(&self) -> bool {
        true
    }

    async fn start(&mut self, sink: MetricSink) -> Result<(), PluginError> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let has_pickle = self.endpoints.iter().any(|e| e.1 == Framing::Pickle);
        let ctx = Arc::new(Ctx {
            name: self.name,
            stats: ListenerStats::for_sink(&sink),
            pickle: if has_pickle {
                PickleStats::for_sink(&sink)
            } else {
                PickleStats::default()
            },
            sink,
            format: self.format.clone(),
            limits: self.limits,
        });
        for (transport, framing, addr) in &self.endpoints {
            let key = if *framing == Framing::Pickle {
                "pickle_address"
            } else {
                "service_address"
            };
            let bind_err = |e: std::io::Error| {
                PluginError::config(key, format!("cannot listen on {addr}: {e}"))
            };
            match transport {
                Transport::Tcp => {
                    let l = TcpListener::bind(addr).await.map_err(bind_err)?;
                    self.local.extend(l.local_addr().ok());
                    let serve = TcpServe {
                        plugin: self.name,
                        limiter: ConnectionBudget::global().limiter(self.limits.connections),
                        read_timeout: self.limits.read_timeout,
                        stats: ctx.stats.clone(),
                        stop: stop_rx.clone(),
                    };
                    let ctx = ctx.clone();
                    let framing = *framing;
                    self.tasks.spawn(tcp::serve(l, serve, move |conn| {
                        let ctx = ctx.clone();
                        async move {
                            match framing {
                                Framing::Lines => receive::lines(conn, ctx).await,
                                Framing::Pickle => receive::pickles(conn, ctx).await,
                            }
                        }
                    }));
                }
                Transport::Udp => {
                    let s = UdpSocket::bind(addr).await.map_err(bind_err)?;
                    self.local.extend(s.local_addr().ok());
                    let socket = Datagrams::new(
                        s,
                        MAX_UDP_PAYLOAD,
                        self.name,
                        ctx.stats.clone(),
                        stop_rx.clone(),
                    );
                    self.tasks.spawn(receive::datagrams(socket, ctx.clone()));
                }
            }
            tracing::info!(
                plugin = self.name,
                address = %addr,
                ?transport,
                ?framing,
                "listening"
            );
        }
        self.stop = Some(stop_tx);
        Ok(())
    }

    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        let wait = async { while self.tasks.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(Duration::from_secs(10), wait).await;
    }
}
