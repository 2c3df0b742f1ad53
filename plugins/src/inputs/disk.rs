//! `inputs.disk`: space and inodes of mounted filesystems (`statvfs` of
//! every mount in `/proc/self/mounts`), with Telegraf's tags (`path`,
//! `device`, `fstype`, `mode`, `label`) and fields; `free` is the space
//! available to non-root and `used_percent` is used/(used+free), as `df`.

use std::collections::HashSet;

use anyhow::Result;
use async_trait::async_trait;
use graft_api::{CallError, Input};
use graft_core::{Batch, BatchBuilder, MetricKind};
use serde::Deserialize;

use super::{now_ns, proc_path, read, sys_path};
use crate::builtin::{self, Builtin};

/// `[[inputs.disk]]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `mount_points` (default: all): only these mount points.
    #[serde(default)]
    pub mount_points: Vec<String>,
    /// `ignore_fs` (default `[]`): filesystem types to skip (`autofs` always is).
    #[serde(default)]
    pub ignore_fs: Vec<String>,
    /// `ignore_mount_opts` (default `[]`): skip mounts with any of these options.
    #[serde(default)]
    pub ignore_mount_opts: Vec<String>,
}

/// One line of a mounts file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub device: String,
    pub path: String,
    pub fstype: String,
    pub options: Vec<String>,
}

/// Undo the octal escapes of mount paths (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse `/proc/self/mounts`.
pub fn parse_mounts(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|l| {
            let mut p = l.split_whitespace();
            Some(Mount {
                device: unescape(p.next()?),
                path: unescape(p.next()?),
                fstype: p.next()?.to_owned(),
                options: p.next()?.split(',').map(str::to_owned).collect(),
            })
        })
        .collect()
}

/// The `disk` input.
pub struct Disk {
    config: Config,
}

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Input>> {
    builtin::build::<Disk>(table)
}

impl Builtin for Disk {
    const NAME: &'static str = "disk";
    type Config = Config;
    type Plugin = dyn Input;

    fn build(config: Config) -> Result<Box<dyn Input>> {
        Ok(Box::new(Disk { config }))
    }
}

impl Disk {
    /// The mounts this input reports.
    pub fn mounts(&self) -> Result<Vec<Mount>> {
        let mut seen = HashSet::new();
        Ok(parse_mounts(&read(&proc_path("self/mounts"))?)
            .into_iter()
            .filter(|m| m.fstype != "autofs" && !self.config.ignore_fs.contains(&m.fstype))
            .filter(|m| {
                self.config.mount_points.is_empty() || self.config.mount_points.contains(&m.path)
            })
            .filter(|m| {
                !m.options
                    .iter()
                    .any(|o| self.config.ignore_mount_opts.contains(o))
            })
            .filter(|m| seen.insert(m.path.clone()))
            .collect())
    }

    /// One sample.
    pub fn sample(&self, ts: i64) -> Result<Batch> {
        let prefix = std::env::var("HOST_MOUNT_PREFIX").unwrap_or_default();
        let mut b = BatchBuilder::new();
        for m in self.mounts()? {
            // A mount that vanished or hangs is skipped, as Telegraf does.
            let Ok(st) = rustix::fs::statvfs(m.path.as_str()) else {
                continue;
            };
            let bsize = st.f_frsize;
            let total = st.f_blocks * bsize;
            if total == 0 {
                continue;
            }
            let free = st.f_bavail * bsize;
            let used = (st.f_blocks - st.f_bfree) * bsize;
            let inodes_used = st.f_files.saturating_sub(st.f_ffree);
            let pct = |a: u64, b: u64| {
                if a + b == 0 {
                    0.0
                } else {
                    100.0 * a as f64 / (a + b) as f64
                }
            };
            let path = m
                .path
                .strip_prefix(&prefix)
                .filter(|p| !prefix.is_empty() && !p.is_empty())
                .unwrap_or(&m.path);
            let device = m.device.strip_prefix("/dev/").unwrap_or(&m.device);
            let device = if device.is_empty() || device == "none" {
                m.fstype.as_str()
            } else {
                device
            };
            let mode = if m.options.iter().any(|o| o == "ro") {
                "ro"
            } else if m.options.iter().any(|o| o == "rw") {
                "rw"
            } else {
                "unknown"
            };
            let base = device.rsplit('/').next().unwrap_or(device);
            let label = std::fs::read_to_string(sys_path(&format!("class/block/{base}/dm/name")))
                .ok()
                .map(|l| l.trim().to_owned());
            let mut metric = b.metric("disk", ts);
            metric.kind(MetricKind::Gauge);
            metric
                .tag("path", path)
                .tag("device", device)
                .tag("fstype", &m.fstype)
                .tag("mode", mode);
            if let Some(label) = &label {
                metric.tag("label", label);
            }
            metric
                .field("total", total)
                .field("free", free)
                .field("used", used)
                .field("used_percent", pct(used, free))
                .field("inodes_total", st.f_files)
                .field("inodes_free", st.f_ffree)
                .field("inodes_used", inodes_used)
                .field("inodes_used_percent", pct(inodes_used, st.f_ffree));
        }
        Ok(b.finish())
    }
}

#[async_trait]
impl Input for Disk {
    async fn gather(&mut self) -> Result<Batch, CallError> {
        self.sample(now_ns()).map_err(super::failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use graft_core::FieldRef;

    #[test]
    fn mounts_are_parsed_and_unescaped() {
        let m = parse_mounts(
            "/dev/sda1 /mnt/my\\040disk ext4 rw,relatime 0 0\nproc /proc proc rw 0 0\n",
        );
        assert_eq!(m[0].path, "/mnt/my disk");
        assert_eq!(m[0].options, ["rw", "relatime"]);
        assert_eq!(m[1].device, "proc");
    }

    fn df_root() -> (u64, u64, u64) {
        let out = std::process::Command::new("df")
            .args(["-B1", "--output=size,used,avail", "/"])
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let v: Vec<u64> = text
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        (v[0], v[1], v[2])
    }

    #[test]
    fn root_matches_df() {
        let disk = Disk {
            config: Config {
                mount_points: vec!["/".into()],
                ..Default::default()
            },
        };
        let b = disk.sample(1).unwrap();
        assert_eq!(b.len(), 1);
        let m = b.get(0);
        assert_eq!(m.tag("path"), Some("/"));
        assert!(matches!(m.tag("mode"), Some("rw" | "ro")));
        let (size, used, avail) = df_root();
        let uint = |k: &str| match m.field(k) {
            Some(FieldRef::Uint(v)) => v,
            other => panic!("{k}: {other:?}"),
        };
        assert_eq!(uint("total"), size);
        let slack = 64 << 20; // other processes write meanwhile
        assert!(
            uint("used").abs_diff(used) < slack,
            "{} vs df {used}",
            uint("used")
        );
        assert!(
            uint("free").abs_diff(avail) < slack,
            "{} vs df {avail}",
            uint("free")
        );
        assert!(matches!(m.field("used_percent"), Some(FieldRef::Float(_))));
        assert!(matches!(
            m.field("inodes_used_percent"),
            Some(FieldRef::Float(_))
        ));
        assert_eq!(
            uint("inodes_total"),
            uint("inodes_free") + uint("inodes_used")
        );
    }

    #[test]
    fn ignore_fs_and_autofs() {
        let disk = Disk {
            config: Config {
                ignore_fs: vec!["proc".into(), "sysfs".into()],
                ..Default::default()
            },
        };
        let mounts = disk.mounts().unwrap();
        assert!(
            mounts
                .iter()
                .all(|m| m.fstype != "proc" && m.fstype != "sysfs" && m.fstype != "autofs")
        );
        assert!(mounts.iter().any(|m| m.path == "/"));
    }
}
