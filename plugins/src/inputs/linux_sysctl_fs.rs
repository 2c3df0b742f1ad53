//! `inputs.linux_sysctl_fs`: the file system counters of
//! `$HOST_PROC/sys/fs` (aio, dquot, super, inode, dentry and file
//! handles) as one `linux_sysctl_fs` metric of unsigned fields, with
//! Telegraf's names. A file the kernel lacks is left out.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use async_trait::async_trait;
use graft_api::{CallError, Input};
use graft_core::{Batch, BatchBuilder};
use serde::Deserialize;

use super::{now_ns, proc_path};
use crate::builtin::{self, Builtin};

/// `[[inputs.linux_sysctl_fs]]`: no keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {}

/// The `linux_sysctl_fs` input.
pub struct LinuxSysctlFs {
    /// `$HOST_PROC/sys/fs`.
    root: PathBuf,
}

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Input>> {
    builtin::build::<LinuxSysctlFs>(table)
}

impl Builtin for LinuxSysctlFs {
    const NAME: &'static str = "linux_sysctl_fs";
    type Config = Config;
    type Plugin = dyn Input;

    fn build(_: Config) -> Result<Box<dyn Input>> {
        Ok(Box::new(LinuxSysctlFs::new(proc_path("sys/fs"))))
    }
}

/// Files holding one number, named as their field.
const SINGLE: &[&str] = &[
    "aio-nr",
    "aio-max-nr",
    "dquot-nr",
    "dquot-max",
    "super-nr",
    "super-max",
];

/// Files holding tab-separated numbers, and the fields of the first ones
/// (`""`: a column not reported).
const LISTS: &[(&str, &[&str])] = &[
    (
        "inode-state",
        &["inode-nr", "inode-free-nr", "inode-preshrink-nr"],
    ),
    (
        "dentry-state",
        &[
            "dentry-nr",
            "dentry-unused-nr",
            "dentry-age-limit",
            "dentry-want-pages",
        ],
    ),
    ("file-nr", &["file-nr", "", "file-max"]),
];

impl LinuxSysctlFs {
    /// Read the files under `root` (`$HOST_PROC/sys/fs`).
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// One sample, stamped `ts`.
    pub fn sample(&self, ts: i64) -> Result<Batch> {
        let mut b = BatchBuilder::new();
        let mut m = b.metric("linux_sysctl_fs", ts);
        for name in SINGLE {
            if let Some(text) = read_optional(&self.root, name)? {
                m.field(name, number(name, text.trim_end_matches('\n'))?);
            }
        }
        for (file, names) in LISTS {
            let Some(text) = read_optional(&self.root, file)? else {
                continue;
            };
            for (name, value) in names.iter().zip(text.trim_end_matches('\n').split('\t')) {
                if !name.is_empty() {
                    m.field(name, number(file, value)?);
                }
            }
        }
        drop(m);
        Ok(b.finish())
    }
}

/// `root/<name>`, or `None` when it does not exist.
fn read_optional(root: &Path, name: &str) -> Result<Option<String>> {
    let path = root.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn number(file: &str, text: &str) -> Result<u64> {
    text.parse()
        .with_context(|| format!("sys/fs/{file}: {text:?} is not an unsigned number"))
}

#[async_trait]
impl Input for LinuxSysctlFs {
    async fn gather(&mut self) -> Result<Batch, CallError> {
        self.sample(now_ns()).map_err(super::failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use graft_core::FieldRef;

    /// Telegraf's README: every field an unsigned integer.
    const SCHEMA: &[&str] = &[
        "aio-max-nr",
        "aio-nr",
        "dentry-age-limit",
        "dentry-nr",
        "dentry-unused-nr",
        "dentry-want-pages",
        "dquot-max",
        "dquot-nr",
        "inode-free-nr",
        "inode-nr",
        "inode-preshrink-nr",
        "super-max",
        "super-nr",
        "file-max",
        "file-nr",
    ];

    fn proc_fs() -> LinuxSysctlFs {
        LinuxSysctlFs::new("/proc/sys/fs".into())
    }

    fn proc(name: &str) -> Vec<u64> {
        std::fs::read_to_string(format!("/proc/sys/fs/{name}"))
            .unwrap()
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect()
    }

    fn uint(m: &graft_core::MetricRef<'_>, key: &str) -> u64 {
        match m.field(key) {
            Some(FieldRef::Uint(v)) => v,
            other => panic!("{key}: {other:?}"),
        }
    }

    #[test]
    fn schema_is_telegrafs() {
        let b = proc_fs().sample(1).unwrap();
        assert_eq!(b.len(), 1);
        let m = b.get(0);
        assert_eq!(m.name(), "linux_sysctl_fs");
        assert_eq!(m.tags().count(), 0);
        let mut got: Vec<&str> = m.fields().map(|(k, _)| k).collect();
        got.sort_unstable();
        let mut want: Vec<&str> = SCHEMA
            .iter()
            .copied()
            .filter(|name| {
                // Fields whose file this kernel lacks (dquot-* without quota
                // support, super-* on current kernels) are left out.
                let file = match name.split('-').next().unwrap() {
                    "inode" => "inode-state",
                    "dentry" => "dentry-state",
                    "file" => "file-nr",
                    _ => name,
                };
                std::path::Path::new("/proc/sys/fs").join(file).exists()
            })
            .collect();
        want.sort_unstable();
        assert_eq!(got, want);
        for (k, v) in m.fields() {
            assert!(matches!(v, FieldRef::Uint(_)), "{k} is {v:?}, not unsigned");
        }
    }

    #[test]
    fn values_match_proc_read_around_the_sample() {
        let before = (proc("aio-max-nr"), proc("file-nr"), proc("inode-state"));
        let b = proc_fs().sample(1).unwrap();
        let after = (proc("aio-max-nr"), proc("file-nr"), proc("inode-state"));
        let m = b.get(0);
        // Limits do not move while the test runs.
        assert_eq!(before.0, after.0);
        assert_eq!(uint(&m, "aio-max-nr"), after.0[0]);
        assert_eq!(uint(&m, "file-max"), after.1[2]);
        // Counts may move; the sample lies between the two reads' bounds.
        let files = uint(&m, "file-nr");
        let (lo, hi) = (before.1[0].min(after.1[0]), before.1[0].max(after.1[0]));
        assert!(
            lo.saturating_sub(1000) <= files && files <= hi + 1000,
            "{files} vs {lo}..{hi}"
        );
        let inode = uint(&m, "inode-nr");
        let (lo, hi) = (before.2[0].min(after.2[0]), before.2[0].max(after.2[0]));
        assert!(
            lo.saturating_sub(1000) <= inode && inode <= hi + 1000,
            "{inode} vs {lo}..{hi}"
        );
        let inode = after.2;
        let dentry = proc("dentry-state");
        assert_eq!(uint(&m, "dentry-age-limit"), dentry[2]);
        assert_eq!(uint(&m, "dentry-want-pages"), dentry[3]);
        assert_eq!(uint(&m, "inode-preshrink-nr"), inode[2]);
    }

    #[test]
    fn missing_files_left_out_bad_ones_named() {
        let dir = tempfile::tempdir().unwrap();
        let fs = dir.path().join("sys/fs");
        std::fs::create_dir_all(&fs).unwrap();
        std::fs::write(fs.join("aio-nr"), "7\n").unwrap();
        std::fs::write(fs.join("file-nr"), "1568\t0\t44222\n").unwrap();
        std::fs::write(fs.join("dentry-state"), "64340\t55274\t45\t0\t0\t0\n").unwrap();
        let input = LinuxSysctlFs::new(fs.clone());
        let b = input.sample(1).unwrap();
        let m = b.get(0);
        let fields: Vec<(String, u64)> = m
            .fields()
            .map(|(k, _)| (k.to_owned(), uint(&m, k)))
            .collect();
        let want = [
            ("aio-nr", 7),
            ("dentry-nr", 64340),
            ("dentry-unused-nr", 55274),
            ("dentry-age-limit", 45),
            ("dentry-want-pages", 0),
            ("file-nr", 1568),
            ("file-max", 44222),
        ];
        assert_eq!(fields, want.map(|(k, v)| (k.to_owned(), v)).to_vec());
        std::fs::write(fs.join("super-nr"), "lots\n").unwrap();
        let e = input.sample(1).unwrap_err();
        assert!(format!("{e:#}").contains("super-nr"), "{e:#}");
    }
}
