//! `outputs.graphite`: metrics as Graphite paths to carbon over TCP, with
//! Telegraf's options and path rules (see [`crate::graphite::serialize`]).
//!
//! - `servers = ["host:port", ...]` (carbon's `host:port:instance` too).
//!   `routing = "failover"` (default): everything goes to the first server
//!   that takes it, in order, sticking to the last one that worked;
//!   `routing = "consistent-hashing"`: each path goes to the server
//!   carbon-relay's `carbon_ch` ring picks for it, so graft can stand in for
//!   carbon-relay in front of several carbon-caches.
//! - `protocol = "plaintext"` (default) or `"pickle"` (protocol-2 frames of
//!   at most 500 points, as carbon's relay sends them).
//! - A server that fails is closed and skipped until its reconnect backoff
//!   (1 s doubling to 30 s) passes; with no server to take a metric, the
//!   metric is kept for the next flush.

use std::time::Duration;

use anyhow::{Result, bail};
use async_trait::async_trait;
use graft_api::{CallError, Output};
use graft_core::{Batch, PluginError, WriteError};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::backoff::Backoff;
use crate::builtin::{self, Builtin};
use crate::duration::de_duration;
use crate::graphite::pickle;
use crate::graphite::ring::Ring;
use crate::graphite::serialize::{Options, Point, SanitizeMode, Scratch, Serializer, push_line};

/// `[[outputs.graphite]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `servers` (default `["localhost:2003"]`): `host:port` or
    /// `host:port:instance`.
    #[serde(default = "default_servers")]
    pub servers: Vec<String>,
    /// `prefix` (default none): put before every path.
    #[serde(default)]
    pub prefix: String,
    /// `template` (default `"host.tags.measurement.field"`): the path of every
    /// metric no `templates` entry matches.
    #[serde(default)]
    pub template: String,
    /// `templates` (default none): `"glob template"` entries, picked by
    /// measurement.
    #[serde(default)]
    pub templates: Vec<String>,
    /// `graphite_tag_support` (default false): tags as Graphite tags
    /// (`name;k=v`).
    #[serde(default)]
    pub graphite_tag_support: bool,
    /// `graphite_tag_sanitize_mode`: `strict` (default) or `compatible`.
    #[serde(default)]
    pub graphite_tag_sanitize_mode: String,
    /// `graphite_separator` (default `"."`): joins the parts of a path.
    #[serde(default)]
    pub graphite_separator: String,
    /// `graphite_strict_sanitize_regex` (default Telegraf's): the characters
    /// strict sanitizing replaces.
    #[serde(default)]
    pub graphite_strict_sanitize_regex: Option<String>,
    /// `timeout` (default 2s): connecting and writing.
    #[serde(default = "two_seconds", deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// `routing`: `failover` (default) or `consistent-hashing`.
    #[serde(default)]
    pub routing: String,
    /// `protocol`: `plaintext` (default) or `pickle`.
    #[serde(default)]
    pub protocol: String,
}

fn default_servers() -> Vec<String> {
    vec!["localhost:2003".into()]
}

fn two_seconds() -> Duration {
    Duration::from_secs(2)
}

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Output>> {
    builtin::build::<Graphite>(table)
}

impl Builtin for Graphite {
    const NAME: &'static str = "graphite";
    type Config = Config;
    type Plugin = dyn Output;

    /// Everything [`Graphite::new`] checks; it connects to nothing.
    fn validate(config: &Config) -> Result<()> {
        Graphite::new(config.clone()).map(drop)
    }

    fn build(config: Config) -> Result<Box<dyn Output>> {
        Ok(Box::new(Graphite::new(config)?))
    }
}

struct Server {
    address: String,
    conn: Option<TcpStream>,
    /// 1 s after a failure, doubling to 30 s.
    backoff: Backoff,
}

impl Server {
    fn new(address: String) -> Self {
        Self {
            address,
            conn: None,
            backoff: Backoff::exponential(Duration::from_secs(1), Duration::from_secs(30)),
        }
    }

    fn available(&self) -> bool {
        self.conn.is_some() || self.backoff.remaining().is_none()
    }

    fn failed(&mut self, what: &str, error: &dyn std::fmt::Display) {
        self.conn = None;
        let wait = self.backoff.fail();
        tracing::warn!(
            server = %self.address,
            %error,
            failed = what,
            retry_in_seconds = wait.as_secs(),
            "graphite server failed; skipping it until the next attempt"
        );
    }

    /// Connect if needed, and check that an idle connection was not closed
    /// by the server meanwhile.
    async fn ready(&mut self, timeout: Duration) -> bool {
        if let Some(c) = &self.conn {
            let mut probe = [0u8; 1];
            match c.try_read(&mut probe) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                _ => self.conn = None, // closed (0) or broken; carbon never writes to us
            }
        }
        match tokio::time::timeout(timeout, TcpStream::connect(&self.address)).await {
            Ok(Ok(c)) => {
                let _ = c.set_nodelay(true);
                self.conn = Some(c);
                true
            }
            Ok(Err(e)) => {
                self.failed("connect", &e);
                false
            }
            Err(_) => {
                self.failed("connect", &"timed out");
                false
            }
        }
    }

    async fn send(&mut self, data: &[u8], timeout: Duration) -> bool {
        if !self.ready(timeout).await {
            return false;
        }
        let Some(c) = self.conn.as_mut() else {
            return false;
        };
        match tokio::time::timeout(timeout, c.write_all(data)).await {
            Ok(Ok(())) => {
                self.backoff.succeed();
                true
            }
            Ok(Err(e)) => {
                self.failed("write", &e);
                false
            }
            Err(_) => {
                self.failed("write", &"timed out");
                false
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Plaintext,
    Pickle,
}

/// The `graphite` output.
pub struct Graphite {
    serializer: Serializer,
    servers: Vec<Server>,
    ring: Option<Ring>,
    protocol: Protocol,
    timeout: Duration,
    /// The server that took the last write (failover sticks to it).
    current: usize,
}

impl Graphite {
    pub fn new(c: Config) -> Result<Self> {
        if c.servers.is_empty() {
            bail!("servers: at least one host:port is needed");
        }
        let mut nodes = Vec::new();
        let mut servers = Vec::new();
        for s in &c.servers {
            let parts: Vec<&str> = s.rsplitn(3, ':').collect();
            let (host, port, instance) = match parts.as_slice() {
                [port, host] => (*host, *port, None),
                [instance, port, host] => (*host, *port, Some(*instance)),
                _ => bail!("servers: {s:?} is not host:port or host:port:instance"),
            };
            if port.parse::<u16>().is_err() || host.is_empty() {
                bail!("servers: {s:?} is not host:port or host:port:instance");
            }
            nodes.push((host.to_owned(), instance.map(str::to_owned)));
            servers.push(Server::new(format!("{host}:{port}")));
        }
        let ring = match c.routing.as_str() {
            "" | "failover" => None,
            "consistent-hashing" | "consistent_hashing" => Some(Ring::new(&nodes)),
            other => bail!("routing: {other:?} is not \"failover\" or \"consistent-hashing\""),
        };
        let protocol = match c.protocol.as_str() {
            "" | "plaintext" | "line" => Protocol::Plaintext,
            "pickle" => Protocol::Pickle,
            other => bail!("protocol: {other:?} is not \"plaintext\" or \"pickle\""),
        };
        let sanitize_mode = match c.graphite_tag_sanitize_mode.as_str() {
            "" | "strict" => SanitizeMode::Strict,
            "compatible" => SanitizeMode::Compatible,
            other => {
                bail!("graphite_tag_sanitize_mode: {other:?} is not \"strict\" or \"compatible\"")
            }
        };
        let serializer = Serializer::new(Options {
            prefix: c.prefix,
            template: c.template,
            templates: c.templates,
            tag_support: c.graphite_tag_support,
            sanitize_mode,
            separator: c.graphite_separator,
            strict_regex: c.graphite_strict_sanitize_regex,
        })?;
        Ok(Self {
            serializer,
            servers,
            ring,
            protocol,
            timeout: c.timeout,
            current: 0,
        })
    }

    fn encode(&self, points: &[&Point], out: &mut Vec<u8>) {
        match self.protocol {
            Protocol::Plaintext => {
                for p in points {
                    push_line(out, &p.path, &p.text, p.timestamp);
                }
            }
            Protocol::Pickle => {
                for chunk in points.chunks(500) {
                    let items: Vec<(&str, i64, f64)> = chunk
                        .iter()
                        .map(|p| (p.path.as_str(), p.timestamp, p.value))
                        .collect();
                    let at = out.len();
                    out.extend_from_slice(&[0; 4]);
                    pickle::encode(&items, out);
                    let len = (out.len() - at - 4) as u32;
                    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
                }
            }
        }
    }

    /// Send `data` to the first server that takes it, from the current one.
    async fn failover(&mut self, data: &[u8]) -> bool {
        let n = self.servers.len();
        for k in 0..n {
            let i = (self.current + k) % n;
            if !self.servers[i].available() {
                continue;
            }
            if self.servers[i].send(data, self.timeout).await {
                self.current = i;
                return true;
            }
        }
        false
    }
}

#[async_trait]
impl Output for Graphite {
    async fn probe(&mut self) -> Result<(), PluginError> {
        let mut failed = Vec::new();
        for s in &self.servers {
            match tokio::time::timeout(self.timeout, TcpStream::connect(&s.address)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => failed.push(format!("{}: {e}", s.address)),
                Err(_) => failed.push(format!("{}: timed out", s.address)),
            }
        }
        match failed.is_empty() {
            true => Ok(()),
            false => Err(PluginError::new(failed.join("; "))),
        }
    }

    async fn write(&mut self, batch: &Batch) -> Result<(), CallError<WriteError>> {
        let retry = |m: &str| Err(CallError::Returned(WriteError::Retry(m.to_owned())));
        let mut scratch = Scratch::default();
        if self.ring.is_none() && self.protocol == Protocol::Plaintext {
            // The common case: lines straight into the buffer to send.
            let mut data = Vec::with_capacity(batch.len() * 64);
            for m in batch.iter() {
                self.serializer.write_plaintext(m, &mut scratch, &mut data);
            }
            if data.is_empty() || self.failover(&data).await {
                return Ok(());
            }
            return retry("no graphite server took the batch");
        }
        // Points, each with the metric it came from.
        let mut points: Vec<Point> = Vec::new();
        let mut owner: Vec<u32> = Vec::new();
        for m in batch.iter() {
            let before = points.len();
            self.serializer.points(m, &mut scratch, &mut points);
            owner.extend(std::iter::repeat_n(m.index() as u32, points.len() - before));
        }
        let Some(ring) = &self.ring else {
            let refs: Vec<&Point> = points.iter().collect();
            let mut data = Vec::new();
            self.encode(&refs, &mut data);
            if data.is_empty() || self.failover(&data).await {
                return Ok(());
            }
            return retry("no graphite server took the batch");
        };
        // Consistent hashing: one send per destination; a metric is written
        // when every one of its points was.
        let mut groups: Vec<Vec<usize>> = vec![Vec::new(); self.servers.len()];
        for (i, p) in points.iter().enumerate() {
            groups[ring.node(&p.path)].push(i);
        }
        let mut failed = vec![false; batch.len()];
        let mut any_failed = false;
        for (server, idx) in groups.iter().enumerate() {
            if idx.is_empty() {
                continue;
            }
            let refs: Vec<&Point> = idx.iter().map(|&i| &points[i]).collect();
            let mut data = Vec::new();
            self.encode(&refs, &mut data);
            let s = &mut self.servers[server];
            if !(s.available() && s.send(&data, self.timeout).await) {
                any_failed = true;
                for &i in idx {
                    failed[owner[i] as usize] = true;
                }
            }
        }
        if !any_failed {
            return Ok(());
        }
        let accepted: Vec<u32> = (0..batch.len() as u32)
            .filter(|&i| !failed[i as usize])
            .collect();
        if accepted.is_empty() {
            return retry("the graphite servers for these paths are unavailable");
        }
        Err(CallError::Returned(WriteError::Partial {
            accepted,
            rejected: Vec::new(),
            message: "some graphite servers are unavailable; their metrics are kept".into(),
        }))
    }

    async fn close(&mut self) -> Result<(), CallError<WriteError>> {
        for s in &mut self.servers {
            if let Some(mut c) = s.conn.take() {
                let _ = c.shutdown().await;
            }
        }
        Ok(())
    }
}
