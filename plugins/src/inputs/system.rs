//! `inputs.system`: load, CPU counts, users and uptime, as Telegraf's
//! default (`include = ["legacy"]`) reports them: a gauge line (`load1`,
//! `load5`, `load15`, `n_cpus`, `n_physical_cpus`, and `n_users`,
//! `n_unique_users` when utmp is readable), a counter line (`uptime`) and an
//! untyped line (`uptime_format`).

use std::collections::HashSet;

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use graft_api::{CallError, Input};
use graft_core::{Batch, BatchBuilder, MetricKind};
use serde::Deserialize;

use super::{now_ns, proc_path, read, sys_path};
use crate::builtin::{self, Builtin};

/// `[[inputs.system]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `include` (default `["legacy"]`): only `legacy` so far.
    #[serde(default = "legacy")]
    pub include: Vec<String>,
}

fn legacy() -> Vec<String> {
    vec!["legacy".into()]
}

/// The `system` input.
pub struct System;

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Input>> {
    builtin::build::<System>(table)
}

impl Builtin for System {
    const NAME: &'static str = "system";
    type Config = Config;
    type Plugin = dyn Input;

    fn validate(config: &Config) -> Result<()> {
        for (i, inc) in config.include.iter().enumerate() {
            if inc != "legacy" {
                bail!(
                    "include[{i}]: {inc:?} is not supported yet; graft reports the \"legacy\" set"
                );
            }
        }
        Ok(())
    }

    fn build(_: Config) -> Result<Box<dyn Input>> {
        Ok(Box::new(System))
    }
}

/// Telegraf's uptime text: `"14 days, 11:07"`, `"1 day,  3:05"`, `" 3:05"`.
pub fn format_uptime(secs: u64) -> String {
    let days = secs / 86400;
    let hours = (secs / 3600) % 24;
    let minutes = (secs / 60) % 60;
    let mut s = String::new();
    if days != 0 {
        s.push_str(&format!("{days} day{}, ", if days > 1 { "s" } else { "" }));
    }
    s.push_str(&format!("{hours:2}:{minutes:02}"));
    s
}

/// Logical CPUs (`processor` lines) and physical cores (distinct
/// physical id / core id pairs, else distinct sibling sets in sysfs).
pub fn cpu_counts(cpuinfo: &str) -> (i64, i64) {
    let logical = cpuinfo
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("processor"))
        .count() as i64;
    let mut cores = HashSet::new();
    let (mut phys, mut core) = (None, None);
    for line in cpuinfo.lines().chain(std::iter::once("")) {
        if line.trim().is_empty() {
            if let (Some(p), Some(c)) = (phys.take(), core.take()) {
                cores.insert((p, c));
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            match k.trim() {
                "physical id" => phys = Some(v.trim().to_owned()),
                "core id" => core = Some(v.trim().to_owned()),
                _ => {}
            }
        }
    }
    let physical = if cores.is_empty() {
        let mut sets = HashSet::new();
        for cpu in 0..logical {
            if let Ok(s) = std::fs::read_to_string(sys_path(&format!(
                "devices/system/cpu/cpu{cpu}/topology/thread_siblings_list"
            ))) {
                sets.insert(s.trim().to_owned());
            }
        }
        if sets.is_empty() {
            logical
        } else {
            sets.len() as i64
        }
    } else {
        cores.len() as i64
    };
    (logical, physical)
}

/// Logged-in users from a utmp file: (sessions, distinct names).
pub fn utmp_users(data: &[u8]) -> (i64, i64) {
    const RECORD: usize = 384;
    const USER_PROCESS: i16 = 7;
    let mut sessions = 0;
    let mut names = HashSet::new();
    for rec in data.chunks_exact(RECORD) {
        if i16::from_ne_bytes([rec[0], rec[1]]) != USER_PROCESS {
            continue;
        }
        let user = &rec[44..76];
        let end = user.iter().position(|&b| b == 0).unwrap_or(user.len());
        sessions += 1;
        names.insert(user[..end].to_vec());
    }
    (sessions, names.len() as i64)
}

impl System {
    /// One sample.
    pub fn sample(ts: i64) -> Result<Batch> {
        let loadavg = read(&proc_path("loadavg"))?;
        let loads: Vec<f64> = loadavg
            .split_whitespace()
            .take(3)
            .map(|v| v.parse().context("parsing /proc/loadavg"))
            .collect::<Result<_>>()?;
        let (n_cpus, n_physical) = cpu_counts(&read(&proc_path("cpuinfo"))?);
        let uptime: f64 = read(&proc_path("uptime"))?
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .context("parsing /proc/uptime")?;
        let uptime = uptime as u64;

        let mut b = BatchBuilder::new();
        let mut gauge = b.metric("system", ts);
        gauge
            .kind(MetricKind::Gauge)
            .field("load1", loads[0])
            .field("load5", loads[1])
            .field("load15", loads[2])
            .field("n_cpus", n_cpus)
            .field("n_physical_cpus", n_physical);
        if let Ok(data) = std::fs::read("/var/run/utmp") {
            let (users, unique) = utmp_users(&data);
            gauge
                .field("n_users", users)
                .field("n_unique_users", unique);
        }
        drop(gauge);
        b.metric("system", ts)
            .kind(MetricKind::Counter)
            .field("uptime", uptime);
        b.metric("system", ts)
            .field("uptime_format", format_uptime(uptime).as_str());
        Ok(b.finish())
    }
}

#[async_trait]
impl Input for System {
    async fn gather(&mut self) -> Result<Batch, CallError> {
        Self::sample(now_ns()).map_err(super::failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use graft_core::FieldRef;

    #[test]
    fn uptime_format_matches_telegraf() {
        assert_eq!(format_uptime(3 * 3600 + 5 * 60), " 3:05");
        assert_eq!(
            format_uptime(86400 + 3 * 3600 + 5 * 60 + 59),
            "1 day,  3:05"
        );
        assert_eq!(
            format_uptime(14 * 86400 + 11 * 3600 + 7 * 60),
            "14 days, 11:07"
        );
    }

    #[test]
    fn cpu_counts_from_cpuinfo() {
        let info = "processor\t: 0\nphysical id\t: 0\ncore id\t: 0\n\nprocessor\t: 1\nphysical id\t: 0\ncore id\t: 0\n\n\
                    processor\t: 2\nphysical id\t: 0\ncore id\t: 1\n\n";
        assert_eq!(cpu_counts(info), (3, 2));
    }

    #[test]
    fn utmp_counts_user_sessions() {
        let mut data = vec![0u8; 384 * 3];
        for (i, name) in [(0, "alice"), (1, "bob"), (2, "alice")] {
            data[i * 384..i * 384 + 2].copy_from_slice(&7i16.to_ne_bytes());
            data[i * 384 + 44..i * 384 + 44 + name.len()].copy_from_slice(name.as_bytes());
        }
        data[384..386].copy_from_slice(&8i16.to_ne_bytes()); // bob: DEAD_PROCESS
        assert_eq!(utmp_users(&data), (2, 1));
    }

    #[test]
    fn matches_proc_with_telegraf_types() {
        let b = System::sample(1).unwrap();
        assert_eq!(b.len(), 3);
        let kinds: Vec<MetricKind> = b.iter().map(|m| m.kind()).collect();
        assert_eq!(
            kinds,
            [MetricKind::Gauge, MetricKind::Counter, MetricKind::Untyped]
        );
        let gauge = b.get(0);
        for key in ["load1", "load5", "load15"] {
            assert!(
                matches!(gauge.field(key), Some(FieldRef::Float(x)) if x >= 0.0),
                "{key}"
            );
        }
        let cpus = std::fs::read_to_string("/proc/cpuinfo")
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("processor"))
            .count() as i64;
        assert_eq!(gauge.field("n_cpus"), Some(FieldRef::Int(cpus)));
        let Some(FieldRef::Int(phys)) = gauge.field("n_physical_cpus") else {
            panic!("n_physical_cpus")
        };
        assert!(phys >= 1 && phys <= cpus);
        let proc_uptime: f64 = std::fs::read_to_string("/proc/uptime")
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let Some(FieldRef::Uint(up)) = b.get(1).field("uptime") else {
            panic!("uptime")
        };
        assert!(
            (proc_uptime - up as f64).abs() < 5.0,
            "{proc_uptime} vs {up}"
        );
        assert_eq!(
            b.get(2).field("uptime_format"),
            Some(FieldRef::Str(&format_uptime(up)))
        );
    }
}
