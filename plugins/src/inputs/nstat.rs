//! `inputs.nstat`: the kernel's SNMP counters as Telegraf's `nstat`
//! measurement, one metric per file tagged `name` = `netstat`
//! (`/proc/net/netstat`), `snmp` (`/proc/net/snmp`) or `snmp6`
//! (`/proc/net/snmp6`, skipped when missing: no IPv6). Fields are named
//! as the files name them, the protocol prefix joined to the counter
//! (`TcpExtSyncookiesSent`, `IpForwarding`, `Icmp6InMsgs`), all ints; zeros
//! only with `dump_zeros`.
//!
//! Paths: `proc_net_netstat`, `proc_net_snmp`, `proc_net_snmp6`, else the
//! environment variables `PROC_NET_NETSTAT`, `PROC_NET_SNMP`,
//! `PROC_NET_SNMP6`, else `$PROC_ROOT/net/...` (Telegraf's order), else
//! `$HOST_PROC/net/...`. A line or value that cannot be read is skipped and
//! counted in `malformed_lines`; at most `max_fields` fields are read per
//! file (the rest counted in `fields_limit_hits`).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Result, bail};
use async_trait::async_trait;
use graft_api::counters::Counters;
use graft_api::{CallError, Input};
use graft_core::{Batch, BatchBuilder};
use serde::Deserialize;

use super::{now_ns, proc_path, read};
use crate::builtin::{self, Builtin};

/// Fields read per file unless `max_fields` says otherwise (Linux 6.x
/// writes about 130 in `netstat`, 90 in `snmp6`).
pub const DEFAULT_MAX_FIELDS: usize = 4096;

/// `[[inputs.nstat]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `proc_net_netstat` (default `""`: see the module's path order).
    #[serde(default)]
    pub proc_net_netstat: String,
    /// `proc_net_snmp` (default `""`).
    #[serde(default)]
    pub proc_net_snmp: String,
    /// `proc_net_snmp6` (default `""`).
    #[serde(default)]
    pub proc_net_snmp6: String,
    /// `dump_zeros` (default false): report counters that are zero too.
    #[serde(default)]
    pub dump_zeros: bool,
    /// `max_fields` (default 4096): fields read per file.
    #[serde(default = "default_max_fields")]
    pub max_fields: usize,
}

fn default_max_fields() -> usize {
    DEFAULT_MAX_FIELDS
}

impl Default for Config {
    fn default() -> Self {
        Self {
            proc_net_netstat: String::new(),
            proc_net_snmp: String::new(),
            proc_net_snmp6: String::new(),
            dump_zeros: false,
            max_fields: DEFAULT_MAX_FIELDS,
        }
    }
}

/// The `nstat` input.
pub struct Nstat {
    netstat: PathBuf,
    snmp: PathBuf,
    snmp6: PathBuf,
    dump_zeros: bool,
    max_fields: usize,
    malformed_lines: Arc<AtomicU64>,
    fields_limit_hits: Arc<AtomicU64>,
    warned: bool,
}

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Input>> {
    builtin::build::<Nstat>(table)
}

impl Builtin for Nstat {
    const NAME: &'static str = "nstat";
    type Config = Config;
    type Plugin = dyn Input;

    fn validate(config: &Config) -> Result<()> {
        if config.max_fields == 0 {
            bail!("max_fields: must be at least 1");
        }
        Ok(())
    }

    fn build(config: Config) -> Result<Box<dyn Input>> {
        Ok(Box::new(Nstat::new(&config)?))
    }
}

/// The path of one file: the key, the variable, `$PROC_ROOT`, `$HOST_PROC`.
fn path(key: &str, env: &str, rel: &str) -> PathBuf {
    if !key.is_empty() {
        return PathBuf::from(key);
    }
    if let Some(p) = std::env::var_os(env).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    match std::env::var_os("PROC_ROOT").filter(|p| !p.is_empty()) {
        Some(root) => PathBuf::from(root).join(rel),
        None => proc_path(rel),
    }
}

/// A file read into `(name, value)` pairs, with how many lines or values
/// could not be read.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Table {
    pub fields: Vec<(String, i64)>,
    pub malformed: u64,
}

impl Table {
    fn push(&mut self, name: String, value: &str, dump_zeros: bool) {
        match value.parse::<i64>() {
            Ok(0) if !dump_zeros => {}
            Ok(v) => self.fields.push((name, v)),
            Err(_) => self.malformed += 1,
        }
    }
}

/// `/proc/net/netstat` and `/proc/net/snmp`: a header line `TcpExt: A B`
/// then a value line `TcpExt: 1 2`; fields are `TcpExtA`, `TcpExtB`.
pub fn parse_paired(text: &str, dump_zeros: bool) -> Table {
    let mut t = Table::default();
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    while let Some(header) = lines.next() {
        let Some(values) = lines.next() else {
            t.malformed += 1;
            break;
        };
        let (Some((proto, names)), Some((proto2, vals))) =
            (header.split_once(':'), values.split_once(':'))
        else {
            t.malformed += 1;
            continue;
        };
        let names: Vec<&str> = names.split_whitespace().collect();
        let vals: Vec<&str> = vals.split_whitespace().collect();
        if proto != proto2 || names.len() != vals.len() {
            t.malformed += 1;
            continue;
        }
        for (n, v) in names.iter().zip(vals) {
            t.push(format!("{proto}{n}"), v, dump_zeros);
        }
    }
    t
}

/// `/proc/net/snmp6`: one `Name value` pair per line.
pub fn parse_pairs(text: &str, dump_zeros: bool) -> Table {
    let mut t = Table::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut parts = line.split_whitespace();
        match (parts.next(), parts.next(), parts.next()) {
            (Some(n), Some(v), None) => t.push(n.to_string(), v, dump_zeros),
            _ => t.malformed += 1,
        }
    }
    t
}

impl Nstat {
    /// Resolve the paths (config, then environment).
    pub fn new(config: &Config) -> Result<Self> {
        <Self as Builtin>::validate(config)?;
        Ok(Self {
            netstat: path(&config.proc_net_netstat, "PROC_NET_NETSTAT", "net/netstat"),
            snmp: path(&config.proc_net_snmp, "PROC_NET_SNMP", "net/snmp"),
            snmp6: path(&config.proc_net_snmp6, "PROC_NET_SNMP6", "net/snmp6"),
            dump_zeros: config.dump_zeros,
            max_fields: config.max_fields,
            malformed_lines: Arc::default(),
            fields_limit_hits: Arc::default(),
            warned: false,
        })
    }

    /// (`malformed_lines`, `fields_limit_hits`) since the start.
    pub fn skipped(&self) -> (u64, u64) {
        (
            self.malformed_lines.load(Ordering::Relaxed),
            self.fields_limit_hits.load(Ordering::Relaxed),
        )
    }

    /// One sample: `netstat` and `snmp` must be readable; `snmp6` may be
    /// missing.
    pub fn sample(&mut self, ts: i64) -> Result<Batch> {
        let netstat = parse_paired(&read(&self.netstat)?, self.dump_zeros);
        let snmp = parse_paired(&read(&self.snmp)?, self.dump_zeros);
        let snmp6 = match std::fs::read_to_string(&self.snmp6) {
            Ok(text) => Some(parse_pairs(&text, self.dump_zeros)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => bail!("reading {}: {e}", self.snmp6.display()),
        };
        let mut b = BatchBuilder::new();
        let (mut bad, mut over) = (0, 0);
        for (name, table) in [
            ("netstat", Some(netstat)),
            ("snmp", Some(snmp)),
            ("snmp6", snmp6),
        ] {
            let Some(table) = table else { continue };
            bad += table.malformed;
            over += table.fields.len().saturating_sub(self.max_fields) as u64;
            let mut m = b.metric("nstat", ts);
            m.tag("name", name);
            for (k, v) in table.fields.iter().take(self.max_fields) {
                m.field(k, *v);
            }
        }
        self.malformed_lines.fetch_add(bad, Ordering::Relaxed);
        self.fields_limit_hits.fetch_add(over, Ordering::Relaxed);
        if (bad > 0 || over > 0) && !self.warned {
            tracing::warn!(
                malformed = bad,
                over_max_fields = over,
                max_fields = self.max_fields,
                "parts of the nstat files were skipped (counted in malformed_lines and fields_limit_hits)"
            );
        }
        self.warned = bad > 0 || over > 0;
        Ok(b.finish())
    }
}

#[async_trait]
impl Input for Nstat {
    fn attach_counters(&mut self, counters: Arc<Counters>) {
        self.malformed_lines = counters.counter("malformed_lines");
        self.fields_limit_hits = counters.counter("fields_limit_hits");
    }

    async fn gather(&mut self) -> Result<Batch, CallError> {
        self.sample(now_ns()).map_err(super::failed)
    }
}

#[cfg(test)]
#[path = "nstat_tests.rs"]
mod tests;
