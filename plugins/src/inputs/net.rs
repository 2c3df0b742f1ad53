//! `inputs.net`: per-interface counters from `/proc/net/dev` (measurement
//! `net`, tag `interface`, Telegraf's uint fields and the int `speed` from
//! `/sys/class/net/<if>/speed`), and, unless `ignore_protocol_stats = true`,
//! the `interface=all` metric with the `/proc/net/snmp` counters, as
//! Telegraf did before 1.37 (which deprecated them in favour of
//! `inputs.nstat`).
//!
//! Without `interfaces`, the interfaces that are up and not loopback are
//! gathered (all of them when `HOST_PROC` is set, as in Telegraf, since the
//! host's interfaces are not ours to check); with `interfaces`, those whose
//! name matches one of the globs, whatever their state. At most
//! `max_interfaces` interfaces are read per gather: the rest are skipped and
//! counted in `interfaces_limit_hits`; a line that cannot be read is skipped
//! and counted in `malformed_lines`. Each is logged once until it stops
//! happening.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use globset::{Glob, GlobSet, GlobSetBuilder};
use graft_api::counters::Counters;
use graft_api::{CallError, Input};
use graft_core::{Batch, BatchBuilder, MetricKind};
use serde::Deserialize;

use super::{now_ns, proc_path, read, sys_path};
use crate::builtin::{self, Builtin, Deprecated};

/// Interfaces read per gather unless `max_interfaces` says otherwise.
pub const DEFAULT_MAX_INTERFACES: usize = 4096;

/// `[[inputs.net]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `interfaces` (default `[]`: every up, non-loopback interface): names
    /// or globs (`"eth*"`, `"enp0s[0-1]"`), gathered whatever their state.
    #[serde(default)]
    pub interfaces: Vec<String>,
    /// `ignore_protocol_stats` (deprecated; default `false`): `true` leaves
    /// out the `interface=all` metric from `/proc/net/snmp`.
    #[serde(default)]
    pub ignore_protocol_stats: bool,
    /// `max_interfaces` (default 4096): interfaces read per gather.
    #[serde(default = "default_max_interfaces")]
    pub max_interfaces: usize,
}

fn default_max_interfaces() -> usize {
    DEFAULT_MAX_INTERFACES
}

impl Default for Config {
    fn default() -> Self {
        Self {
            interfaces: Vec::new(),
            ignore_protocol_stats: false,
            max_interfaces: DEFAULT_MAX_INTERFACES,
        }
    }
}

/// Counters of what a gather had to skip (`docs/instrumentation.md`).
#[derive(Clone, Default)]
pub struct Skipped {
    /// `interfaces_limit_hits`: interfaces past `max_interfaces`.
    pub interfaces_limit_hits: Arc<AtomicU64>,
    /// `malformed_lines`: lines of the `/proc` files that could not be read.
    pub malformed_lines: Arc<AtomicU64>,
}

impl Skipped {
    fn from_counters(c: &Counters) -> Self {
        Self {
            interfaces_limit_hits: c.counter("interfaces_limit_hits"),
            malformed_lines: c.counter("malformed_lines"),
        }
    }
}

/// The `net` input.
pub struct Net {
    /// `$HOST_PROC` and `$HOST_SYS` as they were at build.
    proc: PathBuf,
    sys: PathBuf,
    /// Set when `HOST_PROC` is: the interfaces are the host's, not ours.
    skip_checks: bool,
    filter: Option<GlobSet>,
    protocol_stats: bool,
    max_interfaces: usize,
    skipped: Skipped,
    warned_limit: bool,
    warned_malformed: bool,
}

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Input>> {
    builtin::build::<Net>(table)
}

impl Builtin for Net {
    const NAME: &'static str = "net";
    type Config = Config;
    type Plugin = dyn Input;
    const DEPRECATED: &'static [Deprecated] = &[Deprecated {
        key: "ignore_protocol_stats",
        instead: Some("inputs.nstat"),
        ignored: false,
        note: "deprecated in Telegraf 1.37 (prefer inputs.nstat); graft still reads it",
    }];

    fn validate(config: &Config) -> Result<()> {
        globs(&config.interfaces)?;
        if config.max_interfaces == 0 {
            bail!("max_interfaces: must be at least 1");
        }
        Ok(())
    }

    fn build(config: Config) -> Result<Box<dyn Input>> {
        Ok(Box::new(Net::new(&config)?))
    }
}

fn globs(patterns: &[String]) -> Result<Option<GlobSet>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for (i, p) in patterns.iter().enumerate() {
        b.add(Glob::new(p).with_context(|| format!("interfaces[{i}]: {p:?}"))?);
    }
    Ok(Some(b.build().context("interfaces")?))
}

/// One interface's line of `/proc/net/dev`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevLine<'a> {
    pub name: &'a str,
    pub bytes_recv: u64,
    pub packets_recv: u64,
    pub err_in: u64,
    pub drop_in: u64,
    pub bytes_sent: u64,
    pub packets_sent: u64,
    pub err_out: u64,
    pub drop_out: u64,
}

/// The interface lines of `/proc/net/dev` (two header lines, then
/// `name: 16 counters`); `Err` for a line that is not one.
pub fn parse_dev(text: &str) -> impl Iterator<Item = Result<DevLine<'_>, &str>> {
    text.lines()
        .skip(2)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (name, rest) = line.split_once(':').ok_or(line)?;
            let v: Vec<u64> = rest
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .map_err(|_| line)?;
            let name = name.trim();
            if v.len() < 16 || name.is_empty() {
                return Err(line);
            }
            Ok(DevLine {
                name,
                bytes_recv: v[0],
                packets_recv: v[1],
                err_in: v[2],
                drop_in: v[3],
                bytes_sent: v[8],
                packets_sent: v[9],
                err_out: v[10],
                drop_out: v[11],
            })
        })
}

/// `(protocol_field, value)` pairs of `/proc/net/snmp` (a header line
/// `Tcp: RtoAlgorithm ...` then its values), lower-cased as Telegraf names
/// them (`tcp_activeopens`), and how many lines or values were unreadable.
pub fn parse_snmp(text: &str) -> (Vec<(String, i64)>, u64) {
    let mut out = Vec::new();
    let mut bad = 0;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    while let Some(header) = lines.next() {
        let Some(values) = lines.next() else {
            bad += 1;
            break;
        };
        let (Some((proto, names)), Some((proto2, vals))) =
            (header.split_once(':'), values.split_once(':'))
        else {
            bad += 1;
            continue;
        };
        let names: Vec<&str> = names.split_whitespace().collect();
        let vals: Vec<&str> = vals.split_whitespace().collect();
        if proto != proto2 || names.len() != vals.len() {
            bad += 1;
            continue;
        }
        let proto = proto.trim().to_lowercase();
        for (n, v) in names.iter().zip(vals) {
            match v.parse::<i64>() {
                Ok(v) => out.push((format!("{proto}_{}", n.to_lowercase()), v)),
                Err(_) => bad += 1,
            }
        }
    }
    (out, bad)
}

/// `IFF_UP` and `IFF_LOOPBACK` of `/sys/class/net/<if>/flags`.
const IFF_UP: u64 = 0x1;
const IFF_LOOPBACK: u64 = 0x8;

/// Whether an interface is up and not loopback, as this host's sysfs says;
/// false when it is not there (gone, or in another namespace).
fn up_not_loopback(sys: &Path, name: &str) -> bool {
    if !plain_name(name) {
        return false;
    }
    let Ok(text) = std::fs::read_to_string(sys.join(format!("class/net/{name}/flags"))) else {
        return false;
    };
    let Ok(flags) = u64::from_str_radix(text.trim().trim_start_matches("0x"), 16) else {
        return false;
    };
    flags & IFF_UP != 0 && flags & IFF_LOOPBACK == 0
}

/// A name that stays one directory entry once joined to a path.
fn plain_name(name: &str) -> bool {
    !name.contains('/') && name != "." && name != ".."
}

/// `/sys/class/net/<if>/speed` in Mbit/s, -1 when unknown (as Telegraf).
fn speed(sys: &Path, name: &str) -> i64 {
    if !plain_name(name) {
        return -1;
    }
    std::fs::read_to_string(sys.join(format!("class/net/{name}/speed")))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(-1)
}

impl Net {
    /// Check the config.
    pub fn new(config: &Config) -> Result<Self> {
        let mut net = Self::with_roots(config, proc_path(""), sys_path(""))?;
        net.skip_checks = std::env::var_os("HOST_PROC").is_some();
        Ok(net)
    }

    /// Read `proc` and `sys` instead of `/proc` and `/sys` (tests).
    pub fn with_roots(config: &Config, proc: PathBuf, sys: PathBuf) -> Result<Self> {
        <Self as Builtin>::validate(config)?;
        Ok(Self {
            proc,
            sys,
            skip_checks: false,
            filter: globs(&config.interfaces)?,
            protocol_stats: !config.ignore_protocol_stats,
            max_interfaces: config.max_interfaces,
            skipped: Skipped::default(),
            warned_limit: false,
            warned_malformed: false,
        })
    }

    /// The counters this input keeps.
    pub fn skipped(&self) -> &Skipped {
        &self.skipped
    }

    /// One sample.
    pub fn sample(&mut self, ts: i64) -> Result<Batch> {
        let dev = read(&self.proc.join("net/dev"))?;
        let mut b = BatchBuilder::new();
        let (mut taken, mut over, mut bad) = (0usize, 0u64, 0u64);
        for line in parse_dev(&dev) {
            let Ok(d) = line else {
                bad += 1;
                continue;
            };
            let wanted = match &self.filter {
                Some(f) => f.is_match(d.name),
                None => self.skip_checks || up_not_loopback(&self.sys, d.name),
            };
            if !wanted {
                continue;
            }
            if taken == self.max_interfaces {
                over += 1;
                continue;
            }
            taken += 1;
            b.metric("net", ts)
                .kind(MetricKind::Counter)
                .tag("interface", d.name)
                .field("bytes_sent", d.bytes_sent)
                .field("bytes_recv", d.bytes_recv)
                .field("packets_sent", d.packets_sent)
                .field("packets_recv", d.packets_recv)
                .field("err_in", d.err_in)
                .field("err_out", d.err_out)
                .field("drop_in", d.drop_in)
                .field("drop_out", d.drop_out)
                .field("speed", speed(&self.sys, d.name));
        }
        if self.protocol_stats
            && let Ok(snmp) = std::fs::read_to_string(self.proc.join("net/snmp"))
        {
            let (fields, snmp_bad) = parse_snmp(&snmp);
            bad += snmp_bad;
            let mut m = b.metric("net", ts);
            m.tag("interface", "all");
            for (k, v) in &fields {
                m.field(k, *v);
            }
        }
        self.count(over, bad);
        Ok(b.finish())
    }

    fn count(&mut self, over: u64, bad: u64) {
        self.skipped
            .interfaces_limit_hits
            .fetch_add(over, Ordering::Relaxed);
        self.skipped
            .malformed_lines
            .fetch_add(bad, Ordering::Relaxed);
        if over > 0 && !self.warned_limit {
            tracing::warn!(
                limit = "max_interfaces",
                max = self.max_interfaces,
                skipped = over,
                "more interfaces than max_interfaces: the rest are skipped (counted in interfaces_limit_hits)"
            );
        }
        if bad > 0 && !self.warned_malformed {
            tracing::warn!(
                lines = bad,
                "lines of /proc/net/dev or /proc/net/snmp could not be read and were skipped (counted in malformed_lines)"
            );
        }
        self.warned_limit = over > 0;
        self.warned_malformed = bad > 0;
    }
}

#[async_trait]
impl Input for Net {
    fn attach_counters(&mut self, counters: Arc<Counters>) {
        self.skipped = Skipped::from_counters(&counters);
    }

    async fn gather(&mut self) -> Result<Batch, CallError> {
        self.sample(now_ns()).map_err(super::failed)
    }
}

#[cfg(test)]
#[path = "net_tests.rs"]
mod tests;
