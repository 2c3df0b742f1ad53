//! `inputs.kernel`: counters from `/proc/stat` and entropy, with Telegraf's
//! names and int types; `collect = ["ksm"]` adds `/sys/kernel/mm/ksm/*`,
//! `collect = ["psi"]` adds the `pressure` measurement from `/proc/pressure`.

use anyhow::{Result, bail};
use async_trait::async_trait;
use graft_api::{CallError, Input};
use graft_core::{Batch, BatchBuilder, MetricKind};
use serde::Deserialize;

use super::{now_ns, proc_path, read, sys_path};
use crate::builtin::{self, Builtin};

/// `[[inputs.kernel]]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `collect` (default `[]`): extra groups, `"ksm"` and/or `"psi"`.
    #[serde(default)]
    pub collect: Vec<String>,
}

/// The `kernel` input.
pub struct Kernel {
    ksm: bool,
    psi: bool,
}

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Input>> {
    builtin::build::<Kernel>(table)
}

impl Builtin for Kernel {
    const NAME: &'static str = "kernel";
    type Config = Config;
    type Plugin = dyn Input;

    fn validate(config: &Config) -> Result<()> {
        for (i, c) in config.collect.iter().enumerate() {
            if c != "ksm" && c != "psi" {
                bail!("collect[{i}]: {c:?} is not \"ksm\" or \"psi\"");
            }
        }
        Ok(())
    }

    fn build(config: Config) -> Result<Box<dyn Input>> {
        Ok(Box::new(Kernel::new(&config)?))
    }
}

const KSM_FILES: &[&str] = &[
    "full_scans",
    "max_page_sharing",
    "merge_across_nodes",
    "pages_shared",
    "pages_sharing",
    "pages_to_scan",
    "pages_unshared",
    "pages_volatile",
    "run",
    "sleep_millisecs",
    "stable_node_chains",
    "stable_node_chains_prune_millisecs",
    "stable_node_dups",
    "use_zero_pages",
    "general_profit",
];

impl Kernel {
    /// Check the config.
    pub fn new(config: &Config) -> Result<Self> {
        <Self as Builtin>::validate(config)?;
        Ok(Self {
            ksm: config.collect.iter().any(|c| c == "ksm"),
            psi: config.collect.iter().any(|c| c == "psi"),
        })
    }

    /// One sample.
    pub fn sample(&self, ts: i64) -> Result<Batch> {
        let stat = read(&proc_path("stat"))?;
        let mut b = BatchBuilder::new();
        let mut m = b.metric("kernel", ts);
        m.kind(MetricKind::Counter);
        for line in stat.lines() {
            let mut parts = line.split_whitespace();
            let key = parts.next().unwrap_or("");
            let first = || parts.clone().next().and_then(|v| v.parse::<i64>().ok());
            match key {
                "btime" => first().map(|v| m.field("boot_time", v)),
                "ctxt" => first().map(|v| m.field("context_switches", v)),
                "intr" => first().map(|v| m.field("interrupts", v)),
                "processes" => first().map(|v| m.field("processes_forked", v)),
                "page" => {
                    let mut p = parts.clone().filter_map(|v| v.parse::<i64>().ok());
                    if let (Some(i), Some(o)) = (p.next(), p.next()) {
                        m.field("disk_pages_in", i).field("disk_pages_out", o);
                    }
                    None
                }
                _ => None,
            };
        }
        if let Ok(e) = std::fs::read_to_string(proc_path("sys/kernel/random/entropy_avail"))
            && let Ok(e) = e.trim().parse::<i64>()
        {
            m.field("entropy_avail", e);
        }
        if self.ksm {
            for name in KSM_FILES {
                if let Ok(v) = std::fs::read_to_string(sys_path(&format!("kernel/mm/ksm/{name}")))
                    && let Ok(v) = v.trim().parse::<i64>()
                {
                    m.field(&format!("ksm_{name}"), v);
                }
            }
        }
        drop(m);
        if self.psi {
            for resource in ["cpu", "memory", "io"] {
                let text = read(&proc_path(&format!("pressure/{resource}")))?;
                for line in text.lines() {
                    let mut parts = line.split_whitespace();
                    let kind = parts.next().unwrap_or("");
                    if resource == "cpu" && kind == "full" {
                        continue;
                    }
                    let values: Vec<(&str, &str)> =
                        parts.filter_map(|p| p.split_once('=')).collect();
                    let get = |k: &str| values.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
                    let mut gauge = b.metric("pressure", ts);
                    gauge
                        .kind(MetricKind::Gauge)
                        .tag("resource", resource)
                        .tag("type", kind);
                    for avg in ["avg10", "avg60", "avg300"] {
                        if let Some(v) = get(avg).and_then(|v| v.parse::<f64>().ok()) {
                            gauge.field(avg, v);
                        }
                    }
                    drop(gauge);
                    if let Some(total) = get("total").and_then(|v| v.parse::<u64>().ok()) {
                        b.metric("pressure", ts)
                            .kind(MetricKind::Counter)
                            .tag("resource", resource)
                            .tag("type", kind)
                            .field("total", total);
                    }
                }
            }
        }
        Ok(b.finish())
    }
}

#[async_trait]
impl Input for Kernel {
    async fn gather(&mut self) -> Result<Batch, CallError> {
        self.sample(now_ns()).map_err(super::failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use graft_core::FieldRef;

    fn stat_value(key: &str) -> i64 {
        let stat = std::fs::read_to_string("/proc/stat").unwrap();
        let line = stat
            .lines()
            .find(|l| l.starts_with(&format!("{key} ")))
            .unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[test]
    fn matches_proc_stat_with_int_fields() {
        let before = stat_value("ctxt");
        let b = Kernel::new(&Config::default()).unwrap().sample(1).unwrap();
        let after = stat_value("ctxt");
        let m = b.get(0);
        assert_eq!(m.name(), "kernel");
        assert_eq!(
            m.field("boot_time"),
            Some(FieldRef::Int(stat_value("btime")))
        );
        let Some(FieldRef::Int(ctxt)) = m.field("context_switches") else {
            panic!("ctxt")
        };
        assert!(before <= ctxt && ctxt <= after);
        for key in ["interrupts", "processes_forked", "entropy_avail"] {
            assert!(matches!(m.field(key), Some(FieldRef::Int(_))), "{key}");
        }
        assert!(m.fields().all(|(_, v)| v.type_name() == "int"));
    }

    #[test]
    fn psi_lines_carry_resource_and_type() {
        if !std::path::Path::new("/proc/pressure/cpu").exists() {
            return; // kernel without PSI: nothing to compare against
        }
        let k = Kernel::new(&Config {
            collect: vec!["psi".into()],
        })
        .unwrap();
        let b = k.sample(1).unwrap();
        let pressure: Vec<_> = b.iter().filter(|m| m.name() == "pressure").collect();
        // cpu/some, memory/some+full, io/some+full: a gauge and a counter each.
        assert_eq!(pressure.len(), 10);
        assert!(
            !pressure
                .iter()
                .any(|m| m.tag("resource") == Some("cpu") && m.tag("type") == Some("full"))
        );
        assert!(
            pressure
                .iter()
                .any(|m| matches!(m.field("total"), Some(FieldRef::Uint(_))))
        );
        assert!(
            pressure
                .iter()
                .any(|m| matches!(m.field("avg10"), Some(FieldRef::Float(_))))
        );
    }

    #[test]
    fn unknown_collect_group_is_named() {
        let err = Kernel::new(&Config {
            collect: vec!["ksm".into(), "nope".into()],
        })
        .err()
        .unwrap();
        assert!(err.to_string().contains("collect[1]"), "{err}");
    }
}
