//! `inputs.cpu`: CPU time from `/proc/stat`, as Telegraf reports it: per CPU
//! (`cpu=cpu0`...) and in total (`cpu=cpu-total`), `usage_*` percentages
//! from the change since the previous gather (none on the first), and with
//! `collect_cpu_time` the raw `time_*` seconds as a second line.

use std::collections::HashMap;

use anyhow::{Result, bail};
use async_trait::async_trait;
use graft_api::{CallError, Input};
use graft_core::{Batch, BatchBuilder, MetricKind};
use serde::Deserialize;

use super::{now_ns, proc_path, read};
use crate::builtin::{self, Builtin};

/// Ticks per second of `/proc/stat` (Linux's USER_HZ, 100 on every
/// architecture graft builds for).
const USER_HZ: f64 = 100.0;

/// `[[inputs.cpu]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `percpu` (default true): one metric per CPU.
    #[serde(default = "yes")]
    pub percpu: bool,
    /// `totalcpu` (default true): a `cpu-total` metric.
    #[serde(default = "yes")]
    pub totalcpu: bool,
    /// `collect_cpu_time` (default false): also the raw `time_*` fields.
    #[serde(default)]
    pub collect_cpu_time: bool,
    /// `report_active` (default false): also `usage_active` / `time_active`.
    #[serde(default)]
    pub report_active: bool,
    /// `core_tags` (default false): tags `core_id` and `physical_id`.
    #[serde(default)]
    pub core_tags: bool,
}

fn yes() -> bool {
    true
}

/// Seconds a CPU spent in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Times {
    pub user: f64,
    pub nice: f64,
    pub system: f64,
    pub idle: f64,
    pub iowait: f64,
    pub irq: f64,
    pub softirq: f64,
    pub steal: f64,
    pub guest: f64,
    pub guest_nice: f64,
}

impl Times {
    /// Total time; guest time is already inside user and nice.
    pub fn total(&self) -> f64 {
        self.user
            + self.system
            + self.nice
            + self.iowait
            + self.irq
            + self.softirq
            + self.steal
            + self.idle
    }
}

/// `cpu` lines of `/proc/stat`: (`cpu-total` or `cpuN`, times).
pub fn parse_stat(text: &str) -> Vec<(String, Times)> {
    text.lines()
        .filter(|l| l.starts_with("cpu"))
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let label = parts.next()?;
            let v: Vec<f64> = parts
                .map(|p| p.parse::<f64>().unwrap_or(0.0) / USER_HZ)
                .collect();
            let at = |i: usize| v.get(i).copied().unwrap_or(0.0);
            let name = if label == "cpu" {
                "cpu-total".to_owned()
            } else {
                label.to_owned()
            };
            Some((
                name,
                Times {
                    user: at(0),
                    nice: at(1),
                    system: at(2),
                    idle: at(3),
                    iowait: at(4),
                    irq: at(5),
                    softirq: at(6),
                    steal: at(7),
                    guest: at(8),
                    guest_nice: at(9),
                },
            ))
        })
        .collect()
}

/// The `cpu` input.
pub struct Cpu {
    config: Config,
    last: HashMap<String, Times>,
    cores: HashMap<String, (String, String)>,
}

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Input>> {
    builtin::build::<Cpu>(table)
}

impl Builtin for Cpu {
    const NAME: &'static str = "cpu";
    type Config = Config;
    type Plugin = dyn Input;

    fn validate(config: &Config) -> Result<()> {
        if !config.percpu && !config.totalcpu {
            bail!("percpu and totalcpu are both false: nothing to report");
        }
        Ok(())
    }

    fn build(config: Config) -> Result<Box<dyn Input>> {
        Ok(Box::new(Cpu::new(config)?))
    }
}

/// `cpuN` to (core id, physical id), from `/proc/cpuinfo`.
fn core_ids(cpuinfo: &str) -> HashMap<String, (String, String)> {
    let mut out = HashMap::new();
    for block in cpuinfo.split("\n\n") {
        let get = |key: &str| {
            block.lines().find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.trim() == key)
                    .map(|(_, v)| v.trim().to_owned())
            })
        };
        if let (Some(p), Some(core), Some(phys)) =
            (get("processor"), get("core id"), get("physical id"))
        {
            out.insert(format!("cpu{p}"), (core, phys));
        }
    }
    out
}

impl Cpu {
    /// Check the config.
    pub fn new(config: Config) -> Result<Self> {
        <Self as Builtin>::validate(&config)?;
        let cores = if config.core_tags {
            core_ids(&read(&proc_path("cpuinfo"))?)
        } else {
            HashMap::new()
        };
        Ok(Self {
            config,
            last: HashMap::new(),
            cores,
        })
    }

    /// One sample from `/proc/stat` text.
    pub fn sample_from(&mut self, stat: &str, ts: i64) -> Result<Batch> {
        let mut b = BatchBuilder::new();
        for (label, t) in parse_stat(stat) {
            let total_line = label == "cpu-total";
            if (total_line && !self.config.totalcpu) || (!total_line && !self.config.percpu) {
                continue;
            }
            let tag = |m: &mut graft_core::MetricBuilder<'_>| {
                m.tag("cpu", &label);
                if let Some((core, phys)) = self.cores.get(&label) {
                    m.tag("core_id", core).tag("physical_id", phys);
                }
            };
            if self.config.collect_cpu_time {
                let mut m = b.metric("cpu", ts);
                tag(&mut m);
                m.kind(MetricKind::Counter)
                    .field("time_user", t.user)
                    .field("time_system", t.system)
                    .field("time_idle", t.idle)
                    .field("time_nice", t.nice)
                    .field("time_iowait", t.iowait)
                    .field("time_irq", t.irq)
                    .field("time_softirq", t.softirq)
                    .field("time_steal", t.steal)
                    .field("time_guest", t.guest)
                    .field("time_guest_nice", t.guest_nice);
                if self.config.report_active {
                    m.field("time_active", t.total() - t.idle);
                }
            }
            let Some(last) = self.last.insert(label.clone(), t) else {
                continue; // the first gather has no usage
            };
            let dt = t.total() - last.total();
            if dt == 0.0 {
                continue;
            }
            if dt < 0.0 {
                bail!(
                    "{label}: total CPU time went backwards ({} s to {} s)",
                    last.total(),
                    t.total()
                );
            }
            let pct = |now: f64, then: f64| 100.0 * (now - then) / dt;
            let mut m = b.metric("cpu", ts);
            tag(&mut m);
            m.kind(MetricKind::Gauge)
                .field("usage_user", pct(t.user - t.guest, last.user - last.guest))
                .field("usage_system", pct(t.system, last.system))
                .field("usage_idle", pct(t.idle, last.idle))
                .field(
                    "usage_nice",
                    pct(t.nice - t.guest_nice, last.nice - last.guest_nice),
                )
                .field("usage_iowait", pct(t.iowait, last.iowait))
                .field("usage_irq", pct(t.irq, last.irq))
                .field("usage_softirq", pct(t.softirq, last.softirq))
                .field("usage_steal", pct(t.steal, last.steal))
                .field("usage_guest", pct(t.guest, last.guest))
                .field("usage_guest_nice", pct(t.guest_nice, last.guest_nice));
            if self.config.report_active {
                m.field(
                    "usage_active",
                    pct(t.total() - t.idle, last.total() - last.idle),
                );
            }
        }
        Ok(b.finish())
    }
}

#[async_trait]
impl Input for Cpu {
    async fn gather(&mut self) -> Result<Batch, CallError> {
        read(&proc_path("stat"))
            .and_then(|stat| self.sample_from(&stat, now_ns()))
            .map_err(super::failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use graft_core::FieldRef;

    fn config(toml: &str) -> Config {
        crate::config::parse(toml::from_str(toml).unwrap()).unwrap()
    }

    fn float(m: graft_core::MetricRef<'_>, key: &str) -> f64 {
        match m.field(key) {
            Some(FieldRef::Float(x)) => x,
            other => panic!("{key}: {other:?}"),
        }
    }

    #[test]
    fn usage_from_two_samples_follows_telegraf() {
        let mut cpu = Cpu::new(config("report_active = true")).unwrap();
        let first = "cpu  100 10 50 800 20 5 5 10 30 0\ncpu0 100 10 50 800 20 5 5 10 30 0\n";
        assert!(
            cpu.sample_from(first, 1).unwrap().is_empty(),
            "first gather: no usage"
        );
        // +1000 ticks in total: user +300 (of which guest +100), idle +500, iowait +100, system +100.
        let second =
            "cpu  400 10 150 1300 120 5 5 10 130 0\ncpu0 400 10 150 1300 120 5 5 10 130 0\n";
        let b = cpu.sample_from(second, 2).unwrap();
        assert_eq!(b.len(), 2);
        let total = b
            .iter()
            .find(|m| m.tag("cpu") == Some("cpu-total"))
            .unwrap();
        // Usage is a gauge, as Telegraf's AddGauge makes it.
        assert_eq!(total.kind(), MetricKind::Gauge);
        assert!((float(total, "usage_user") - 20.0).abs() < 1e-9);
        assert!((float(total, "usage_guest") - 10.0).abs() < 1e-9);
        assert!((float(total, "usage_idle") - 50.0).abs() < 1e-9);
        assert!((float(total, "usage_iowait") - 10.0).abs() < 1e-9);
        assert!(
            (float(total, "usage_active") - 50.0).abs() < 1e-9,
            "active includes iowait"
        );
    }

    #[test]
    fn real_proc_stat_usage_adds_up_and_times_match() {
        let mut cpu = Cpu::new(config("collect_cpu_time = true")).unwrap();
        let before = parse_stat(&std::fs::read_to_string("/proc/stat").unwrap());
        let b1 = cpu
            .sample_from(&std::fs::read_to_string("/proc/stat").unwrap(), 1)
            .unwrap();
        let after = parse_stat(&std::fs::read_to_string("/proc/stat").unwrap());
        let cpus = before.len();
        assert_eq!(b1.len(), cpus, "time lines only on the first gather");
        let t = b1
            .iter()
            .find(|m| m.tag("cpu") == Some("cpu-total"))
            .unwrap();
        // Times are counters, as Telegraf's AddCounter makes them.
        assert_eq!(t.kind(), MetricKind::Counter);
        let user = float(t, "time_user");
        assert!(before[0].1.user <= user && user <= after[0].1.user);

        std::thread::sleep(std::time::Duration::from_millis(300));
        let b2 = cpu
            .sample_from(&std::fs::read_to_string("/proc/stat").unwrap(), 2)
            .unwrap();
        for m in b2.iter().filter(|m| m.field("usage_idle").is_some()) {
            let sum: f64 = [
                "user",
                "system",
                "idle",
                "nice",
                "iowait",
                "irq",
                "softirq",
                "steal",
                "guest",
                "guest_nice",
            ]
            .iter()
            .map(|k| float(m, &format!("usage_{k}")))
            .sum();
            assert!((sum - 100.0).abs() < 1e-6, "{:?}: {sum}", m.tag("cpu"));
            assert!(m.fields().all(|(_, v)| v.type_name() == "float"));
        }
    }

    #[test]
    fn nothing_to_report_is_an_error() {
        assert!(Cpu::new(config("percpu = false\ntotalcpu = false")).is_err());
    }
}
