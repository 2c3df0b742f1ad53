//! `inputs.mem`: virtual memory from `/proc/meminfo`, with Telegraf's
//! fields and types (bytes as uint; `used` = total − available).

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use async_trait::async_trait;
use graft_api::{CallError, Input};
use graft_core::{Batch, BatchBuilder, MetricKind};
use serde::Deserialize;

use crate::builtin::{self, Builtin};

/// `[[inputs.mem]]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `collect_extended` (default false): also active/inactive anon/file,
    /// percpu and unevictable.
    #[serde(default)]
    pub collect_extended: bool,
}

/// The `mem` input.
pub struct Mem {
    config: Config,
    meminfo: PathBuf,
}

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Input>> {
    builtin::build::<Mem>(table)
}

impl Builtin for Mem {
    const NAME: &'static str = "mem";
    type Config = Config;
    type Plugin = dyn Input;

    fn build(config: Config) -> Result<Box<dyn Input>> {
        Ok(Box::new(Mem::new(config)))
    }
}

impl Mem {
    /// Read `$HOST_PROC/meminfo` (default `/proc/meminfo`).
    pub fn new(config: Config) -> Self {
        let proc =
            std::env::var_os("HOST_PROC").map_or_else(|| PathBuf::from("/proc"), PathBuf::from);
        Self {
            config,
            meminfo: proc.join("meminfo"),
        }
    }

    /// One sample as a batch.
    pub fn sample(&self, timestamp: i64) -> Result<Batch> {
        let text = std::fs::read_to_string(&self.meminfo)
            .with_context(|| format!("reading {}", self.meminfo.display()))?;
        let info = parse_meminfo(&text);
        let kb = |key: &str| info.get(key).copied().unwrap_or(0).saturating_mul(1024);
        let count = |key: &str| info.get(key).copied().unwrap_or(0);

        let total = kb("MemTotal");
        let available = match info.get("MemAvailable") {
            Some(v) => v * 1024,
            // Kernels before 3.14: estimate as free + buffers + cached.
            None => kb("MemFree") + kb("Buffers") + kb("Cached"),
        };
        let used = total.saturating_sub(available);
        let percent = |x: u64| {
            if total == 0 {
                0.0
            } else {
                100.0 * x as f64 / total as f64
            }
        };

        let mut b = BatchBuilder::new();
        let mut m = b.metric("mem", timestamp);
        m.kind(MetricKind::Gauge);
        m.field("total", total)
            .field("available", available)
            .field("used", used)
            .field("used_percent", percent(used))
            .field("available_percent", percent(available))
            .field("active", kb("Active"))
            .field("buffered", kb("Buffers"))
            .field("cached", kb("Cached") + kb("SReclaimable"))
            .field("commit_limit", kb("CommitLimit"))
            .field("committed_as", kb("Committed_AS"))
            .field("dirty", kb("Dirty"))
            .field("free", kb("MemFree"))
            .field("high_free", kb("HighFree"))
            .field("high_total", kb("HighTotal"))
            .field("huge_pages_free", count("HugePages_Free"))
            .field("huge_page_size", kb("Hugepagesize"))
            .field("huge_pages_total", count("HugePages_Total"))
            .field("inactive", kb("Inactive"))
            .field("low_free", kb("LowFree"))
            .field("low_total", kb("LowTotal"))
            .field("mapped", kb("Mapped"))
            .field("page_tables", kb("PageTables"))
            .field("shared", kb("Shmem"))
            .field("slab", kb("Slab"))
            .field("sreclaimable", kb("SReclaimable"))
            .field("sunreclaim", kb("SUnreclaim"))
            .field("swap_cached", kb("SwapCached"))
            .field("swap_free", kb("SwapFree"))
            .field("swap_total", kb("SwapTotal"))
            .field("vmalloc_chunk", kb("VmallocChunk"))
            .field("vmalloc_total", kb("VmallocTotal"))
            .field("vmalloc_used", kb("VmallocUsed"))
            .field("write_back_tmp", kb("WritebackTmp"))
            .field("write_back", kb("Writeback"));
        if self.config.collect_extended {
            let int = |key: &str| kb(key).min(i64::MAX as u64) as i64;
            m.field("active_anon", int("Active(anon)"))
                .field("active_file", int("Active(file)"))
                .field("inactive_anon", int("Inactive(anon)"))
                .field("inactive_file", int("Inactive(file)"))
                .field("percpu", int("Percpu"))
                .field("unevictable", int("Unevictable"));
        }
        drop(m);
        Ok(b.finish())
    }
}

/// `Key: value [kB]` lines into a map of the numbers as written.
pub fn parse_meminfo(text: &str) -> HashMap<&str, u64> {
    text.lines()
        .filter_map(|line| {
            let (key, rest) = line.split_once(':')?;
            let value = rest.split_whitespace().next()?.parse().ok()?;
            Some((key.trim(), value))
        })
        .collect()
}

#[async_trait]
impl Input for Mem {
    async fn gather(&mut self) -> Result<Batch, CallError> {
        self.sample(super::now_ns()).map_err(super::failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use graft_core::FieldRef;

    #[test]
    fn parses_meminfo_lines() {
        let info = parse_meminfo("MemTotal:       16000 kB\nHugePages_Total:       4\nbogus\n");
        assert_eq!(info["MemTotal"], 16000);
        assert_eq!(info["HugePages_Total"], 4);
        assert_eq!(info.len(), 2);
    }

    #[test]
    fn reads_the_real_meminfo_with_telegraf_types() {
        let mem = Mem::new(Config {
            collect_extended: true,
        });
        let batch = mem.sample(1).unwrap();
        assert_eq!(batch.len(), 1);
        let m = batch.get(0);
        assert_eq!(m.name(), "mem");
        assert_eq!(m.kind(), MetricKind::Gauge);
        assert_eq!(m.tags().count(), 0);
        for (key, value) in m.fields() {
            let expected = match key {
                "used_percent" | "available_percent" => "float",
                "active_anon" | "active_file" | "inactive_anon" | "inactive_file" | "percpu"
                | "unevictable" => "int",
                _ => "uint",
            };
            assert_eq!(value.type_name(), expected, "field {key}");
        }
        assert_eq!(m.fields().count(), 40);
        let (Some(FieldRef::Uint(total)), Some(FieldRef::Uint(used)), Some(FieldRef::Uint(avail))) =
            (m.field("total"), m.field("used"), m.field("available"))
        else {
            panic!("missing fields");
        };
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
        let info = parse_meminfo(&meminfo);
        assert_eq!(total, info["MemTotal"] * 1024, "MemTotal is constant");
        assert_eq!(used + avail, total);
        let kb = |k: &str| info[k] * 1024;
        // Changing values, read moments apart: within 256 MiB.
        assert!(avail.abs_diff(kb("MemAvailable")) < 256 << 20);
        let Some(FieldRef::Uint(free)) = m.field("free") else {
            panic!("free")
        };
        assert!(free.abs_diff(kb("MemFree")) < 256 << 20);
        assert_eq!(m.field("swap_total"), Some(FieldRef::Uint(kb("SwapTotal"))));
    }
}
