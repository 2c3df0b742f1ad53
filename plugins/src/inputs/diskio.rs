//! `inputs.diskio`: block-device counters from `/proc/diskstats` (every
//! device with a non-zero counter, partitions and dm devices included), with
//! Telegraf's fields; from the second gather on, `io_await`, `io_svctm` and
//! `io_util` from the changes since the previous one.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use graft_api::{CallError, Input};
use graft_core::{Batch, BatchBuilder, MetricKind};
use serde::Deserialize;

use super::{now_ns, proc_path, read};
use crate::builtin::{self, Builtin};

/// `[[inputs.diskio]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `devices` (default: all): device names or globs (`sd*`).
    #[serde(default)]
    pub devices: Vec<String>,
    /// `skip_serial_number` (default true): leave out the `serial` tag.
    #[serde(default = "yes")]
    pub skip_serial_number: bool,
    /// `device_tags` (default `[]`): udev properties added as tags.
    #[serde(default)]
    pub device_tags: Vec<String>,
    /// `name_templates` (default `[]`): not supported yet.
    #[serde(default)]
    pub name_templates: Vec<String>,
}

fn yes() -> bool {
    true
}

/// Counters of one device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub major: u32,
    pub minor: u32,
    pub reads: u64,
    pub merged_reads: u64,
    pub read_bytes: u64,
    pub read_time: u64,
    pub writes: u64,
    pub merged_writes: u64,
    pub write_bytes: u64,
    pub write_time: u64,
    pub iops_in_progress: u64,
    pub io_time: u64,
    pub weighted_io_time: u64,
}

/// Parse `/proc/diskstats`, leaving out devices whose counters are all zero.
pub fn parse_diskstats(text: &str) -> Vec<(String, Stats)> {
    text.lines()
        .filter_map(|l| {
            let p: Vec<&str> = l.split_whitespace().collect();
            if p.len() < 14 {
                return None;
            }
            let n = |i: usize| p[i].parse::<u64>().unwrap_or(0);
            let s = Stats {
                major: p[0].parse().ok()?,
                minor: p[1].parse().ok()?,
                reads: n(3),
                merged_reads: n(4),
                read_bytes: n(5) * 512,
                read_time: n(6),
                writes: n(7),
                merged_writes: n(8),
                write_bytes: n(9) * 512,
                write_time: n(10),
                iops_in_progress: n(11),
                io_time: n(12),
                weighted_io_time: n(13),
            };
            let zero = Stats {
                major: s.major,
                minor: s.minor,
                ..Stats::default()
            };
            (s != zero).then(|| (p[2].to_owned(), s))
        })
        .collect()
}

/// `E:KEY=value` properties from the udev database for a device.
fn udev_properties(major: u32, minor: u32) -> HashMap<String, String> {
    let run = std::env::var("HOST_RUN").unwrap_or_else(|_| "/run".into());
    let path = format!("{run}/udev/data/b{major}:{minor}");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            l.strip_prefix("E:")?
                .split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect()
}

/// The `diskio` input.
pub struct DiskIo {
    config: Config,
    devices: Option<globset::GlobSet>,
    last: HashMap<String, (Stats, Instant)>,
}

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Input>> {
    builtin::build::<DiskIo>(table)
}

impl Builtin for DiskIo {
    const NAME: &'static str = "diskio";
    type Config = Config;
    type Plugin = dyn Input;

    fn validate(config: &Config) -> Result<()> {
        device_globs(config).map(drop)
    }

    fn build(config: Config) -> Result<Box<dyn Input>> {
        Ok(Box::new(DiskIo::new(config)?))
    }
}

/// The `devices` globs (`None`: every device); refuses what graft cannot do.
fn device_globs(config: &Config) -> Result<Option<globset::GlobSet>> {
    if !config.name_templates.is_empty() {
        bail!("name_templates: not supported yet");
    }
    if config.devices.is_empty() {
        return Ok(None);
    }
    let mut b = globset::GlobSetBuilder::new();
    for (i, d) in config.devices.iter().enumerate() {
        let d = d.strip_prefix("/dev/").unwrap_or(d);
        b.add(globset::Glob::new(d).with_context(|| format!("devices[{i}]"))?);
    }
    Ok(Some(b.build()?))
}

impl DiskIo {
    /// Check the config.
    pub fn new(config: Config) -> Result<Self> {
        let devices = device_globs(&config)?;
        Ok(Self {
            config,
            devices,
            last: HashMap::new(),
        })
    }

    /// One sample from `/proc/diskstats` text, taken at `now`.
    pub fn sample_from(&mut self, text: &str, ts: i64, now: Instant) -> Batch {
        let mut b = BatchBuilder::new();
        for (name, s) in parse_diskstats(text) {
            if self.devices.as_ref().is_some_and(|g| !g.is_match(&name)) {
                continue;
            }
            let props = if self.config.skip_serial_number && self.config.device_tags.is_empty() {
                HashMap::new()
            } else {
                udev_properties(s.major, s.minor)
            };
            let mut m = b.metric("diskio", ts);
            m.kind(MetricKind::Counter);
            m.tag("name", &name);
            if !self.config.skip_serial_number {
                let serial = props
                    .get("ID_SERIAL_SHORT")
                    .or(props.get("ID_SERIAL"))
                    .filter(|v| !v.is_empty());
                m.tag("serial", serial.map_or("unknown", String::as_str));
            }
            for key in &self.config.device_tags {
                if let Some(v) = props.get(key) {
                    m.tag(key, v);
                }
            }
            m.field("reads", s.reads)
                .field("writes", s.writes)
                .field("read_bytes", s.read_bytes)
                .field("write_bytes", s.write_bytes)
                .field("read_time", s.read_time)
                .field("write_time", s.write_time)
                .field("io_time", s.io_time)
                .field("weighted_io_time", s.weighted_io_time)
                .field("iops_in_progress", s.iops_in_progress)
                .field("merged_reads", s.merged_reads)
                .field("merged_writes", s.merged_writes);
            if let Some((last, then)) = self.last.insert(name.clone(), (s, now)) {
                let d = |a: u64, b: u64| a.checked_sub(b);
                if let (Some(dr), Some(dw), Some(drt), Some(dwt), Some(dio)) = (
                    d(s.reads, last.reads),
                    d(s.writes, last.writes),
                    d(s.read_time, last.read_time),
                    d(s.write_time, last.write_time),
                    d(s.io_time, last.io_time),
                ) {
                    let ios = dr + dw;
                    let wall_ms = now.duration_since(then).as_secs_f64() * 1000.0;
                    if ios > 0 {
                        m.field("io_await", (drt + dwt) as f64 / ios as f64)
                            .field("io_svctm", dio as f64 / ios as f64);
                    }
                    if wall_ms > 0.0 {
                        m.field("io_util", 100.0 * dio as f64 / wall_ms);
                    }
                }
            }
        }
        b.finish()
    }
}

#[async_trait]
impl Input for DiskIo {
    async fn gather(&mut self) -> Result<Batch, CallError> {
        read(&proc_path("diskstats"))
            .map(|text| self.sample_from(&text, now_ns(), Instant::now()))
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

    const STATS1: &str = "   8       0 sda 100 5 2000 40 50 2 800 60 0 90 100 0 0 0 0\n   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0\n";
    const STATS2: &str = "   8       0 sda 110 5 2100 60 60 2 900 80 1 100 140 0 0 0 0\n   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0\n";

    #[test]
    fn counters_and_derived_fields_follow_telegraf() {
        let mut io = DiskIo::new(config("")).unwrap();
        let t0 = Instant::now();
        let b1 = io.sample_from(STATS1, 1, t0);
        assert_eq!(b1.len(), 1, "all-zero devices are left out");
        let m = b1.get(0);
        assert_eq!(m.tag("name"), Some("sda"));
        assert_eq!(m.field("read_bytes"), Some(FieldRef::Uint(2000 * 512)));
        assert_eq!(m.field("io_await"), None, "derived fields need two samples");
        assert!(m.fields().all(|(_, v)| v.type_name() == "uint"));

        let b2 = io.sample_from(STATS2, 2, t0 + std::time::Duration::from_millis(1000));
        let m = b2.get(0);
        // 20 IOs, 40 ms of read+write time, 10 ms busy, over 1000 ms.
        assert_eq!(m.field("io_await"), Some(FieldRef::Float(2.0)));
        assert_eq!(m.field("io_svctm"), Some(FieldRef::Float(0.5)));
        assert_eq!(m.field("io_util"), Some(FieldRef::Float(1.0)));
    }

    #[test]
    fn device_globs_select() {
        let mut io = DiskIo::new(config(r#"devices = ["/dev/nvme*"]"#)).unwrap();
        assert!(io.sample_from(STATS1, 1, Instant::now()).is_empty());
        assert!(DiskIo::new(config(r#"name_templates = ["$X"]"#)).is_err());
    }

    #[test]
    fn real_diskstats_match() {
        let text = std::fs::read_to_string("/proc/diskstats").unwrap();
        let expected = parse_diskstats(&text);
        let mut io = DiskIo::new(config("")).unwrap();
        let b = io.sample_from(&text, 1, Instant::now());
        assert_eq!(b.len(), expected.len());
        for (m, (name, s)) in b.iter().zip(&expected) {
            assert_eq!(m.tag("name"), Some(name.as_str()));
            assert_eq!(m.field("reads"), Some(FieldRef::Uint(s.reads)));
        }
    }
}
