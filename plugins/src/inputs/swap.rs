//! `inputs.swap`: swap space and swap traffic, as Telegraf reports them: a
//! gauge line (`total`, `free`, `used`, `used_percent`) and a counter line
//! (`in`, `out`: bytes swapped, pages × 4096).

use anyhow::Result;
use async_trait::async_trait;
use graft_api::{CallError, Input};
use graft_core::{Batch, BatchBuilder, MetricKind};
use serde::Deserialize;

use super::mem::parse_meminfo;
use super::{now_ns, proc_path, read};
use crate::builtin::{self, Builtin};

/// `[[inputs.swap]]` has no options.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {}

/// The `swap` input.
pub struct Swap;

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Input>> {
    builtin::build::<Swap>(table)
}

impl Builtin for Swap {
    const NAME: &'static str = "swap";
    type Config = Config;
    type Plugin = dyn Input;

    fn build(_: Config) -> Result<Box<dyn Input>> {
        Ok(Box::new(Swap))
    }
}

/// `key value` lines of `/proc/vmstat`.
pub fn parse_vmstat(text: &str) -> std::collections::HashMap<&str, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k, v.trim().parse().ok()?))
        })
        .collect()
}

impl Swap {
    /// One sample.
    pub fn sample(ts: i64) -> Result<Batch> {
        let meminfo = read(&proc_path("meminfo"))?;
        let info = parse_meminfo(&meminfo);
        let total = info.get("SwapTotal").copied().unwrap_or(0) * 1024;
        let free = info.get("SwapFree").copied().unwrap_or(0) * 1024;
        let used = total.saturating_sub(free);
        let vmstat = read(&proc_path("vmstat"))?;
        let vm = parse_vmstat(&vmstat);
        let mut b = BatchBuilder::new();
        b.metric("swap", ts)
            .kind(MetricKind::Gauge)
            .field("total", total)
            .field("free", free)
            .field("used", used)
            .field(
                "used_percent",
                if total == 0 {
                    0.0
                } else {
                    100.0 * used as f64 / total as f64
                },
            );
        b.metric("swap", ts)
            .kind(MetricKind::Counter)
            .field("in", vm.get("pswpin").copied().unwrap_or(0) * 4096)
            .field("out", vm.get("pswpout").copied().unwrap_or(0) * 4096);
        Ok(b.finish())
    }
}

#[async_trait]
impl Input for Swap {
    async fn gather(&mut self) -> Result<Batch, CallError> {
        Self::sample(now_ns()).map_err(super::failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use graft_core::FieldRef;

    #[test]
    fn matches_proc_with_telegraf_types() {
        let b = Swap::sample(1).unwrap();
        assert_eq!(b.len(), 2);
        let gauge = b.get(0);
        let info = std::fs::read_to_string("/proc/meminfo").unwrap();
        let info = parse_meminfo(&info);
        assert_eq!(
            gauge.field("total"),
            Some(FieldRef::Uint(info["SwapTotal"] * 1024))
        );
        let (Some(FieldRef::Uint(t)), Some(FieldRef::Uint(f)), Some(FieldRef::Uint(u))) = (
            gauge.field("total"),
            gauge.field("free"),
            gauge.field("used"),
        ) else {
            panic!("types");
        };
        assert_eq!(t, f + u);
        assert!(matches!(
            gauge.field("used_percent"),
            Some(FieldRef::Float(_))
        ));
        let counter = b.get(1);
        assert_eq!(
            (gauge.kind(), counter.kind()),
            (MetricKind::Gauge, MetricKind::Counter)
        );
        let vmstat = std::fs::read_to_string("/proc/vmstat").unwrap();
        let pswpin = parse_vmstat(&vmstat)["pswpin"];
        let Some(FieldRef::Uint(inb)) = counter.field("in") else {
            panic!("in")
        };
        assert!(inb >= pswpin * 4096, "counter never goes back");
        assert!(matches!(counter.field("out"), Some(FieldRef::Uint(_))));
    }
}
