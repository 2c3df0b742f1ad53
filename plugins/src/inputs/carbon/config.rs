//! The tables of `inputs.carbon` and `inputs.socket_listener`, and their
//! resolution into what the receiver runs: endpoints, line format, limits.
//! Resolving is pure; nothing is bound here.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use serde::Deserialize;

use crate::collectd;
use crate::duration::{de_duration, de_size};
use crate::graphite::Templates;
use crate::graphite::pickle::PickleLimits;

/// A string or a list of strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub(crate) fn list(&self) -> Vec<String> {
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
    /// `templates` (default none): Telegraf's graphite templates, turning a
    /// path into measurement, tags and field.
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
    /// `service_address` (required): `tcp://host:port`, `udp://host:port` or
    /// `host:port` (TCP).
    pub service_address: String,
    /// `data_format` (default `"influx"`): `influx`, `graphite`, or
    /// `collectd` (over `udp://` only: one datagram is one packet).
    #[serde(default = "influx")]
    pub data_format: String,
    /// `collectd_auth_file`, with `data_format = "collectd"`.
    #[serde(default)]
    pub collectd_auth_file: Option<String>,
    /// `collectd_security_level`, with `data_format = "collectd"`.
    #[serde(default)]
    pub collectd_security_level: Option<String>,
    /// `collectd_typesdb`, with `data_format = "collectd"`.
    #[serde(default)]
    pub collectd_typesdb: Vec<String>,
    /// `collectd_parse_multivalue`, with `data_format = "collectd"`.
    #[serde(default)]
    pub collectd_parse_multivalue: Option<String>,
    /// `templates` (default none): graphite templates, with `data_format =
    /// "graphite"`.
    #[serde(default)]
    pub templates: Vec<String>,
    /// `separator` (default `"."`): joins template parts of one kind.
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
    /// `keep_alive_period` (default 0): accepted for Telegraf configs, without
    /// effect.
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
pub(crate) fn default_pickle_metrics() -> usize {
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
pub(crate) enum Framing {
    Lines,
    Pickle,
}

/// How a listener is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    Tcp,
    Udp,
}

/// What the lines (or datagrams) are.
#[derive(Clone)]
pub(crate) enum Format {
    Graphite(Arc<Templates>),
    Influx,
    /// collectd packets, one per UDP datagram.
    Collectd(Arc<collectd::Decoder>),
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

/// One address the receiver binds, and how it reads what arrives there.
pub(crate) type Endpoint = (Transport, Framing, String);

/// What a resolved table asks the receiver to run.
pub(crate) struct Plan {
    pub endpoints: Vec<Endpoint>,
    pub format: Format,
    pub limits: Limits,
}

impl CarbonConfig {
    /// Check every key and resolve them (templates compiled, addresses
    /// split, sizes as limits).
    pub(crate) fn resolve(&self) -> Result<Plan> {
        let templates = Arc::new(Templates::new(&self.templates, &self.separator)?);
        let mut endpoints = Vec::new();
        let plain = self
            .service_address
            .as_ref()
            .map_or_else(|| vec!["tcp://:2003".to_owned()], OneOrMany::list);
        for a in plain {
            let (t, addr) = parse_address(&a, "service_address")?;
            endpoints.push((t, Framing::Lines, addr));
        }
        for a in self
            .pickle_address
            .as_ref()
            .map(OneOrMany::list)
            .unwrap_or_default()
        {
            let (t, addr) = parse_address(&a, "pickle_address")?;
            if t == Transport::Udp {
                bail!("pickle_address: {a:?}: pickle is carried over TCP only");
            }
            endpoints.push((t, Framing::Pickle, addr));
        }
        let limits = Limits {
            line: positive(self.max_line_size, "max_line_size")?,
            frame: positive(self.max_frame_size, "max_frame_size")?,
            read_timeout: self.read_timeout,
            connections: self.max_connections,
            pickle: PickleLimits {
                max_depth: positive(self.max_pickle_depth as u64, "max_pickle_depth")?,
                max_memo_entries: positive(
                    self.max_pickle_memo_entries as u64,
                    "max_pickle_memo_entries",
                )?,
                max_decoded_size: positive(
                    self.max_pickle_decoded_size,
                    "max_pickle_decoded_size",
                )?,
            },
            pickle_metrics: positive(self.max_pickle_metrics as u64, "max_pickle_metrics")?,
        };
        Ok(Plan {
            endpoints,
            format: Format::Graphite(templates),
            limits,
        })
    }
}

impl SocketListenerConfig {
    /// Check every key without reading files (types.db is read by
    /// [`Self::resolve`]).
    pub(crate) fn check(&self) -> Result<()> {
        if self.data_format == "collectd" {
            self.collectd_settings().map(drop)
        } else {
            self.resolve().map(drop)
        }
    }

    /// The collectd keys, checked; collectd packets come in datagrams.
    fn collectd_settings(&self) -> Result<collectd::Settings> {
        let (t, _) = parse_address(&self.service_address, "service_address")?;
        if t != Transport::Udp {
            bail!(
                "service_address: {:?}: data_format \"collectd\" is read from UDP datagrams only (collectd's network plugin sends UDP); use udp://",
                self.service_address
            );
        }
        collectd::Keys {
            collectd_auth_file: self.collectd_auth_file.clone(),
            collectd_security_level: self.collectd_security_level.clone(),
            collectd_typesdb: self.collectd_typesdb.clone(),
            collectd_parse_multivalue: self.collectd_parse_multivalue.clone(),
        }
        .settings()
    }

    /// Check every key and resolve them.
    pub(crate) fn resolve(&self) -> Result<Plan> {
        let format = match self.data_format.as_str() {
            "influx" => Format::Influx,
            "graphite" => {
                Format::Graphite(Arc::new(Templates::new(&self.templates, &self.separator)?))
            }
            "collectd" => Format::Collectd(Arc::new(collectd::Decoder::load(
                &self.collectd_settings()?,
            )?)),
            other => {
                bail!(
                    "data_format: {other:?} is not supported yet; use \"influx\", \"graphite\" or \"collectd\""
                )
            }
        };
        let collectd_key = [
            ("collectd_auth_file", self.collectd_auth_file.is_some()),
            (
                "collectd_security_level",
                self.collectd_security_level.is_some(),
            ),
            ("collectd_typesdb", !self.collectd_typesdb.is_empty()),
            (
                "collectd_parse_multivalue",
                self.collectd_parse_multivalue.is_some(),
            ),
        ]
        .into_iter()
        .find(|(_, set)| *set);
        if let Some((key, _)) = collectd_key
            && !matches!(format, Format::Collectd(_))
        {
            // Telegraf refuses keys no part of the plugin reads, too.
            bail!("{key}: read only with data_format = \"collectd\"");
        }
        let (t, addr) = parse_address(&self.service_address, "service_address")?;
        Ok(Plan {
            endpoints: vec![(t, Framing::Lines, addr)],
            format,
            limits: Limits {
                line: positive(self.max_line_size, "max_line_size")?,
                frame: 1 << 20,
                read_timeout: self.read_timeout,
                connections: self.max_connections,
                pickle: PickleLimits::default(),
                pickle_metrics: default_pickle_metrics(),
            },
        })
    }
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
