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
//! - A bad line, item or frame is counted (`internal_gather.parse_errors`)
//!   and skipped; a line longer than `max_line_size` or a frame longer than
//!   `max_frame_size` too (the frame is read past, so the stream stays in
//!   step). The connection and everything else on it survive.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use async_trait::async_trait;
use graft_core::lineparse::{Precision, parse_into};
use graft_core::{Batch, BatchBuilder, CallError, Input, MetricSink, PluginError};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::duration::{de_duration, de_size};
use crate::graphite::{self, Templates, pickle};

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
    /// `read_timeout` (default 0 = none): close idle TCP connections.
    #[serde(default, deserialize_with = "de_duration")]
    pub read_timeout: Duration,
    /// `max_connections` (default 0 = no limit).
    #[serde(default)]
    pub max_connections: usize,
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
    #[serde(default, deserialize_with = "de_duration")]
    pub read_timeout: Duration,
    #[serde(default)]
    pub max_connections: usize,
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
enum Format {
    Graphite(Arc<Templates>),
    Influx,
}

/// Build `inputs.carbon`.
pub fn build(table: toml::Table) -> Result<Box<dyn Input>> {
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
    Ok(Box::new(Carbon::new(
        "inputs.carbon",
        endpoints,
        Format::Graphite(templates),
        Limits {
            line: c.max_line_size as usize,
            frame: c.max_frame_size as usize,
            read_timeout: c.read_timeout,
            connections: c.max_connections,
        },
    )))
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
            line: 1 << 20,
            frame: 1 << 20,
            read_timeout: c.read_timeout,
            connections: c.max_connections,
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

#[derive(Clone, Copy)]
struct Limits {
    line: usize,
    frame: usize,
    read_timeout: Duration,
    connections: usize,
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

/// What every receiving task shares.
#[derive(Clone)]
struct Ctx {
    name: &'static str,
    sink: MetricSink,
    format: Format,
    limits: Limits,
    stop: watch::Receiver<bool>,
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

impl Ctx {
    /// Parse complete lines; returns how many were bad.
    fn parse_lines(&self, text: &str, out: &mut BatchBuilder) -> u64 {
        let now = now_ns();
        match &self.format {
            Format::Influx => {
                let errors = parse_into(text, Precision::Nanoseconds, now, out);
                if let Some(e) = errors.first() {
                    tracing::debug!(plugin = self.name, "skipped a bad line: {e}");
                }
                errors.len() as u64
            }
            Format::Graphite(t) => {
                let mut bad = 0;
                for line in text.split('\n') {
                    let line = line.trim_end_matches('\r');
                    if line.trim().is_empty() {
                        continue;
                    }
                    if line.len() > self.limits.line {
                        bad += 1;
                        continue;
                    }
                    if let Err(e) = graphite::parse_line(line, now, t, out) {
                        bad += 1;
                        tracing::debug!(plugin = self.name, "skipped {:?}: {e}", cut(line));
                    }
                }
                bad
            }
        }
    }

    async fn deliver(&self, out: BatchBuilder, bad: u64) -> bool {
        if bad > 0 {
            self.sink.malformed(bad);
        }
        let batch = out.finish();
        batch.is_empty() || self.sink.send(batch).await.is_ok()
    }
}

/// Received bytes as text: borrowed when they are valid UTF-8 (checked
/// word-at-a-time), with U+FFFD for invalid sequences otherwise.
fn text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

fn cut(s: &str) -> &str {
    let mut n = s.len().min(200);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    &s[..n]
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
        let ctx = Ctx {
            name: self.name,
            sink,
            format: self.format.clone(),
            limits: self.limits,
            stop: stop_rx,
        };
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
                    self.tasks.spawn(accept_loop(l, *framing, ctx.clone()));
                }
                Transport::Udp => {
                    let s = UdpSocket::bind(addr).await.map_err(bind_err)?;
                    self.local.extend(s.local_addr().ok());
                    self.tasks.spawn(udp_loop(s, ctx.clone()));
                }
            }
            tracing::info!(
                plugin = self.name,
                "listening on {transport:?} {addr} ({framing:?})"
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

/// Resolves once the listener is told to stop.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn accept_loop(l: TcpListener, framing: Framing, ctx: Ctx) {
    let mut stop = ctx.stop.clone();
    let permits =
        (ctx.limits.connections > 0).then(|| Arc::new(Semaphore::new(ctx.limits.connections)));
    let mut conns = JoinSet::new();
    loop {
        let permit = match &permits {
            Some(p) => tokio::select! {
                p = p.clone().acquire_owned() => p.ok(),
                _ = stopped(&mut stop) => break,
            },
            None => None,
        };
        tokio::select! {
            accepted = l.accept() => match accepted {
                Ok((stream, _)) => {
                    let ctx = ctx.clone();
                    conns.spawn(async move {
                        match framing {
                            Framing::Lines => read_lines(stream, ctx).await,
                            Framing::Pickle => read_pickles(stream, ctx).await,
                        }
                        drop(permit);
                    });
                }
                Err(e) => {
                    tracing::warn!(plugin = ctx.name, "accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = stopped(&mut stop) => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    while conns.join_next().await.is_some() {}
}

/// Read with the read timeout, or until the listener stops. `None` ends
/// the connection.
async fn read_some<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut [u8],
    ctx: &mut Ctx,
) -> Option<usize> {
    let timeout = ctx.limits.read_timeout;
    let read = async {
        if timeout.is_zero() {
            r.read(buf).await.ok()
        } else {
            tokio::time::timeout(timeout, r.read(buf))
                .await
                .ok()
                .and_then(Result::ok)
        }
    };
    tokio::select! {
        n = read => n.filter(|&n| n > 0),
        _ = stopped(&mut ctx.stop) => None,
    }
}

async fn read_lines(mut stream: TcpStream, mut ctx: Ctx) {
    let mut buf: Vec<u8> = Vec::with_capacity(64 << 10);
    let mut chunk = vec![0u8; 64 << 10];
    let mut skipping = false; // inside a line already counted as too long
    loop {
        let Some(n) = read_some(&mut stream, &mut chunk, &mut ctx).await else {
            break;
        };
        let mut data = &chunk[..n];
        if skipping {
            match memchr::memchr(b'\n', data) {
                Some(nl) => {
                    skipping = false;
                    data = &data[nl + 1..];
                }
                None => continue,
            }
        }
        buf.extend_from_slice(data);
        let Some(last_nl) = memchr::memrchr(b'\n', &buf) else {
            if buf.len() > ctx.limits.line {
                ctx.sink.malformed(1);
                buf.clear();
                skipping = true;
            }
            continue;
        };
        let mut out = BatchBuilder::new();
        let (bad, rest) = {
            let text = text(&buf[..last_nl]);
            (
                ctx.parse_lines(&text, &mut out),
                buf[last_nl + 1..].to_vec(),
            )
        };
        buf = rest;
        if !ctx.deliver(out, bad).await {
            return;
        }
    }
    if !buf.is_empty() {
        // The last line, without its newline.
        let mut out = BatchBuilder::new();
        let bad = ctx.parse_lines(&text(&buf), &mut out);
        ctx.deliver(out, bad).await;
    }
}

async fn read_pickles(mut stream: TcpStream, mut ctx: Ctx) {
    loop {
        let mut len = [0u8; 4];
        let header = tokio::select! {
            r = stream.read_exact(&mut len) => r.is_ok(),
            _ = stopped(&mut ctx.stop) => false,
        };
        if !header {
            return;
        }
        let len = u32::from_be_bytes(len) as usize;
        if len > ctx.limits.frame {
            ctx.sink.malformed(1);
            tracing::warn!(
                plugin = ctx.name,
                "pickle frame of {len} bytes is over max_frame_size ({}); skipped",
                ctx.limits.frame
            );
            let mut skip = (&mut stream).take(len as u64);
            if tokio::io::copy(&mut skip, &mut tokio::io::sink())
                .await
                .ok()
                != Some(len as u64)
            {
                return;
            }
            continue;
        }
        let mut frame = vec![0u8; len];
        let read = if ctx.limits.read_timeout.is_zero() {
            stream.read_exact(&mut frame).await.is_ok()
        } else {
            matches!(
                tokio::time::timeout(ctx.limits.read_timeout, stream.read_exact(&mut frame)).await,
                Ok(Ok(_))
            )
        };
        if !read {
            return;
        }
        let mut out = BatchBuilder::new();
        let bad = match pickle::decode(&frame) {
            Ok(v) => add_pickled(&v, &ctx, &mut out),
            Err(e) => {
                tracing::warn!(plugin = ctx.name, "pickle frame refused: {e}");
                1
            }
        };
        if !ctx.deliver(out, bad).await {
            return;
        }
    }
}

/// Add the points of a decoded frame; returns how many items were bad.
fn add_pickled(v: &pickle::Value, ctx: &Ctx, out: &mut BatchBuilder) -> u64 {
    let (pickle::Value::List(items) | pickle::Value::Tuple(items)) = v else {
        tracing::warn!(plugin = ctx.name, "pickle frame is not a list of points");
        return 1;
    };
    let Format::Graphite(templates) = &ctx.format else {
        return items.len() as u64;
    };
    let now = now_ns();
    let mut bad = 0;
    for item in items {
        let (pickle::Value::Tuple(parts) | pickle::Value::List(parts)) = item else {
            bad += 1;
            continue;
        };
        let Some(path) = parts.first().and_then(pickle::as_path) else {
            bad += 1;
            continue;
        };
        if parts.len() < 2 {
            bad += 1;
        }
        for point in &parts[1..] {
            let (pickle::Value::Tuple(tv) | pickle::Value::List(tv)) = point else {
                bad += 1;
                continue;
            };
            let (Some(ts), Some(value)) = (
                tv.first().and_then(pickle::as_f64),
                tv.get(1).and_then(pickle::as_f64),
            ) else {
                bad += 1;
                continue;
            };
            if tv.len() != 2 || !value.is_finite() || !(-1.0..4_102_444_800.0).contains(&ts) {
                bad += 1;
                continue;
            }
            let ts = if ts == -1.0 { now } else { (ts * 1e9) as i64 };
            if graphite::add_point(path, value, ts, templates, out).is_err() {
                bad += 1;
            }
        }
    }
    bad
}

async fn udp_loop(s: UdpSocket, mut ctx: Ctx) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let received = tokio::select! {
            r = s.recv_from(&mut buf) => r.ok(),
            _ = stopped(&mut ctx.stop) => None,
        };
        let Some((n, _)) = received else {
            return;
        };
        let mut out = BatchBuilder::new();
        let bad = ctx.parse_lines(&text(&buf[..n]), &mut out);
        if !ctx.deliver(out, bad).await {
            return;
        }
    }
}
