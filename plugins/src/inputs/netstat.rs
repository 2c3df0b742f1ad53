//! `inputs.netstat`: how many sockets are in each TCP state, and how many
//! datagram sockets there are, as Telegraf's `netstat` measurement counts
//! them (through gopsutil): TCP sockets by the hex state column of
//! `/proc/net/tcp` and `tcp6`; UDP sockets (`/proc/net/udp`, `udp6`) and
//! Unix datagram sockets in `udp_socket`; other Unix sockets, which have no
//! TCP state, in `tcp_none`. All fields are ints, always present.
//!
//! As gopsutil's `net.Connections("all")`, TCP and UDP sockets with the
//! same local address, remote address and state count once (listeners
//! sharing a port with `SO_REUSEPORT`). Unix sockets are counted one by
//! one (see `docs/net.md` on how gopsutil differs there).
//!
//! A line that cannot be read is skipped and counted in `malformed_lines`
//! (logged once until it stops happening). The files are the kernel's, one
//! line per socket; there is nothing else to bound.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Result;
use async_trait::async_trait;
use graft_api::counters::Counters;
use graft_api::{CallError, Input};
use graft_core::{Batch, BatchBuilder};
use serde::Deserialize;

use super::{now_ns, proc_path, read};
use crate::builtin::{self, Builtin};

/// `[[inputs.netstat]]`: no options.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {}

/// Telegraf's fields in the kernel's state order (`TCP_ESTABLISHED` = 1 ..
/// `TCP_CLOSING` = 11); `tcp_none` and `udp_socket` follow.
pub const TCP_STATES: [&str; 11] = [
    "tcp_established",
    "tcp_syn_sent",
    "tcp_syn_recv",
    "tcp_fin_wait1",
    "tcp_fin_wait2",
    "tcp_time_wait",
    "tcp_close",
    "tcp_close_wait",
    "tcp_last_ack",
    "tcp_listen",
    "tcp_closing",
];

/// Socket counts of one gather.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    /// Index `state - 1` of [`TCP_STATES`].
    pub tcp: [i64; 11],
    pub tcp_none: i64,
    pub udp_socket: i64,
    pub malformed: u64,
    /// (UDP?, local address, remote address, state) of the inet sockets
    /// counted, as gopsutil keys them.
    seen: HashSet<(bool, String, String, u8)>,
}

impl Counts {
    /// Count the TCP lines of `/proc/net/tcp` or `tcp6` (a header, then
    /// `sl local rem st ...`, `st` in hex).
    pub fn add_tcp(&mut self, text: &str) {
        for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.get(3).and_then(|st| u8::from_str_radix(st, 16).ok()) {
                Some(st @ 1..=11) => {
                    if self.first(false, &words, st) {
                        self.tcp[usize::from(st) - 1] += 1;
                    }
                }
                // TCP_NEW_SYN_RECV (12) and TCP_BOUND_INACTIVE (13) are not
                // listed in these files; anything else is not a state.
                _ => self.malformed += 1,
            }
        }
    }

    /// Count the sockets of `/proc/net/udp` or `udp6`.
    pub fn add_udp(&mut self, text: &str) {
        for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.len() >= 4 {
                if self.first(true, &words, 0) {
                    self.udp_socket += 1;
                }
            } else {
                self.malformed += 1;
            }
        }
    }

    /// Whether the socket of an inet line (`sl local remote ...`) is the
    /// first with its addresses and state (UDP sockets have no state).
    fn first(&mut self, udp: bool, words: &[&str], state: u8) -> bool {
        self.seen
            .insert((udp, words[1].to_string(), words[2].to_string(), state))
    }

    /// Count the sockets of `/proc/net/unix` (`Num RefCount Protocol Flags
    /// Type St Inode [Path]`): datagram sockets (type 2) as UDP, the others
    /// as TCP without a state.
    pub fn add_unix(&mut self, text: &str) {
        for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
            match line
                .split_whitespace()
                .nth(4)
                .and_then(|t| u16::from_str_radix(t, 16).ok())
            {
                Some(2) => self.udp_socket += 1,
                Some(_) => self.tcp_none += 1,
                None => self.malformed += 1,
            }
        }
    }
}

/// The `netstat` input.
pub struct Netstat {
    proc: PathBuf,
    malformed_lines: Arc<AtomicU64>,
    warned: bool,
}

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Input>> {
    builtin::build::<Netstat>(table)
}

impl Builtin for Netstat {
    const NAME: &'static str = "netstat";
    type Config = Config;
    type Plugin = dyn Input;

    fn build(_: Config) -> Result<Box<dyn Input>> {
        Ok(Box::new(Netstat::with_root(proc_path(""))))
    }
}

impl Netstat {
    /// Read `proc` instead of `$HOST_PROC` (tests).
    pub fn with_root(proc: PathBuf) -> Self {
        Self {
            proc,
            malformed_lines: Arc::default(),
            warned: false,
        }
    }

    /// `malformed_lines`: lines skipped since the start.
    pub fn malformed_lines(&self) -> u64 {
        self.malformed_lines.load(Ordering::Relaxed)
    }

    /// Count the sockets. `tcp` is required (as gopsutil's read is); the
    /// others may be missing (no IPv6, no Unix sockets in a fake root).
    pub fn counts(&self) -> Result<Counts> {
        let mut c = Counts::default();
        c.add_tcp(&read(&self.proc.join("net/tcp"))?);
        let optional = |name: &str| std::fs::read_to_string(self.proc.join(name)).ok();
        if let Some(t) = optional("net/tcp6") {
            c.add_tcp(&t);
        }
        for name in ["net/udp", "net/udp6"] {
            if let Some(t) = optional(name) {
                c.add_udp(&t);
            }
        }
        if let Some(t) = optional("net/unix") {
            c.add_unix(&t);
        }
        Ok(c)
    }

    /// One sample.
    pub fn sample(&mut self, ts: i64) -> Result<Batch> {
        let c = self.counts()?;
        self.malformed_lines
            .fetch_add(c.malformed, Ordering::Relaxed);
        if c.malformed > 0 && !self.warned {
            tracing::warn!(
                lines = c.malformed,
                "lines of /proc/net/{{tcp,udp,unix}} could not be read and were skipped (counted in malformed_lines)"
            );
        }
        self.warned = c.malformed > 0;
        let mut b = BatchBuilder::new();
        let mut m = b.metric("netstat", ts);
        for (name, n) in TCP_STATES.iter().zip(c.tcp) {
            m.field(name, n);
        }
        m.field("tcp_none", c.tcp_none)
            .field("udp_socket", c.udp_socket);
        drop(m);
        Ok(b.finish())
    }
}

#[async_trait]
impl Input for Netstat {
    fn attach_counters(&mut self, counters: Arc<Counters>) {
        self.malformed_lines = counters.counter("malformed_lines");
    }

    async fn gather(&mut self) -> Result<Batch, CallError> {
        self.sample(now_ns()).map_err(super::failed)
    }
}

#[cfg(test)]
#[path = "netstat_tests.rs"]
mod tests;
