//! `inputs.processes`: processes by state from `/proc/[pid]/stat`, with
//! Telegraf's field names (`running`, `sleeping`, `blocked`, `zombies`,
//! `dead`, `stopped`, `paging`, `idle`, `unknown`, `total`, `total_threads`,
//! and `parked` when any process is parked), all int.

use anyhow::Result;
use async_trait::async_trait;
use graft_api::{CallError, Input};
use graft_core::{Batch, BatchBuilder, MetricKind};
use serde::Deserialize;

use super::{now_ns, proc_path};
use crate::builtin::{self, Builtin};

/// `[[inputs.processes]]` (`use_sudo` is for BSD and accepted for compatibility).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `use_sudo` (default false): has no effect on Linux.
    #[serde(default)]
    pub use_sudo: bool,
}

/// The `processes` input.
pub struct Processes;

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Input>> {
    builtin::build::<Processes>(table)
}

impl Builtin for Processes {
    const NAME: &'static str = "processes";
    type Config = Config;
    type Plugin = dyn Input;

    fn build(_: Config) -> Result<Box<dyn Input>> {
        Ok(Box::new(Processes))
    }
}

/// Counts by state.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    pub running: i64,
    pub sleeping: i64,
    pub blocked: i64,
    pub zombies: i64,
    pub dead: i64,
    pub stopped: i64,
    pub paging: i64,
    pub idle: i64,
    pub parked: i64,
    pub unknown: i64,
    pub total: i64,
    pub total_threads: i64,
}

impl Counts {
    /// Count one `/proc/[pid]/stat` line; false when it cannot be read.
    pub fn add(&mut self, stat: &str) -> bool {
        // The command may hold spaces and parentheses: fields follow the last ')'.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            return false;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let Some(state) = fields.first() else {
            return false;
        };
        match *state {
            "R" => self.running += 1,
            "S" => self.sleeping += 1,
            "D" => self.blocked += 1,
            "Z" => self.zombies += 1,
            "X" | "x" => self.dead += 1,
            "T" | "t" => self.stopped += 1,
            "W" => self.paging += 1,
            "I" => self.idle += 1,
            "P" => self.parked += 1,
            _ => self.unknown += 1,
        }
        self.total += 1;
        // num_threads is field 20 of stat; field 3 (state) is fields[0].
        self.total_threads += fields
            .get(17)
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0);
        true
    }

    /// Count every process in `/proc`.
    pub fn read() -> Result<Self> {
        let mut c = Counts::default();
        for entry in std::fs::read_dir(proc_path(""))? {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name();
            if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            // A process may exit between listing and reading: skip it.
            if let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) {
                c.add(&stat);
            }
        }
        Ok(c)
    }
}

impl Processes {
    /// One sample.
    pub fn sample(ts: i64) -> Result<Batch> {
        let c = Counts::read()?;
        let mut b = BatchBuilder::new();
        let mut m = b.metric("processes", ts);
        m.kind(MetricKind::Gauge);
        m.field("blocked", c.blocked)
            .field("dead", c.dead)
            .field("idle", c.idle)
            .field("paging", c.paging)
            .field("running", c.running)
            .field("sleeping", c.sleeping)
            .field("stopped", c.stopped)
            .field("unknown", c.unknown)
            .field("zombies", c.zombies)
            .field("total", c.total)
            .field("total_threads", c.total_threads);
        if c.parked > 0 {
            m.field("parked", c.parked);
        }
        drop(m);
        Ok(b.finish())
    }
}

#[async_trait]
impl Input for Processes {
    async fn gather(&mut self) -> Result<Batch, CallError> {
        Self::sample(now_ns()).map_err(super::failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use graft_core::FieldRef;

    #[test]
    fn parses_commands_with_spaces_and_parentheses() {
        let mut c = Counts::default();
        assert!(c.add("42 (my (odd) cmd) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 7 0 100 0 0"));
        assert!(c.add("43 (z) Z 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 100 0 0"));
        assert!(!c.add("garbage"));
        assert_eq!(
            (c.sleeping, c.zombies, c.total, c.total_threads),
            (1, 1, 2, 8)
        );
    }

    #[test]
    fn matches_proc_with_int_fields() {
        let pids = || {
            std::fs::read_dir("/proc")
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                })
                .count() as i64
        };
        let before = pids();
        let b = Processes::sample(1).unwrap();
        let after = pids();
        let m = b.get(0);
        assert!(m.fields().all(|(_, v)| v.type_name() == "int"));
        let Some(FieldRef::Int(total)) = m.field("total") else {
            panic!("total")
        };
        assert!(
            (total - before).abs() <= 20 && (total - after).abs() <= 20,
            "{total} vs {before}..{after}"
        );
        let Some(FieldRef::Int(threads)) = m.field("total_threads") else {
            panic!("threads")
        };
        assert!(threads >= total);
        let sum: i64 = [
            "blocked", "dead", "idle", "paging", "running", "sleeping", "stopped", "unknown",
            "zombies", "parked",
        ]
        .iter()
        .filter_map(|k| match m.field(k) {
            Some(FieldRef::Int(v)) => Some(v),
            _ => None,
        })
        .sum();
        assert_eq!(sum, total);
    }
}
