//! Where an output's metrics wait: the buffer keys, Telegraf's
//! `buffer_strategy` and `buffer_directory` (in `[agent]` and, as graft
//! adds, per output) with graft's own for the disk buffer's durability and
//! size, resolved into one [`BufferSpec`] per output.

use std::path::{Path, PathBuf};
use std::time::Duration;

use graft_core::units::SizeValue;
use serde::Deserialize;

use super::ConfigError;
use super::options::OptionTable;
use super::values::PositiveDuration;

/// `buffer_max_bytes` when none is given: 1 GiB on disk per output.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;
/// `buffer_segment_size` when none is given.
pub const DEFAULT_SEGMENT_BYTES: u64 = 16 << 20;
/// `buffer_fsync_interval` when none is given.
pub const DEFAULT_FSYNC_INTERVAL: Duration = Duration::from_secs(1);
/// Smallest `buffer_segment_size`: a segment holds a few batches.
const MIN_SEGMENT_BYTES: u64 = 64 << 10;

/// `buffer_strategy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BufferStrategy {
    /// In memory (the default): lost if graft stops before writing it.
    #[default]
    Memory,
    /// A write-ahead log on disk; `disk_write_through` is Telegraf's
    /// canonical name for it.
    #[serde(alias = "disk_write_through")]
    Disk,
}

/// `buffer_fsync`: when the disk buffer's appends are flushed to the device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsyncPolicy {
    /// After every append (the default, as Telegraf's `buffer_disk_sync =
    /// true`): an acknowledged metric survives a power cut.
    #[default]
    Batch,
    /// At most every `buffer_fsync_interval`: an acknowledged metric
    /// survives graft being killed, but a power cut can lose the last
    /// interval.
    Interval,
    /// Left to the kernel.
    Never,
}

/// The buffer keys of one output section, as written.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BufferOptions {
    pub strategy: Option<BufferStrategy>,
    pub directory: Option<PathBuf>,
    pub fsync: Option<FsyncPolicy>,
    pub fsync_interval: Option<Duration>,
    pub max_bytes: Option<u64>,
    pub segment_size: Option<u64>,
}

/// The buffer keys of `[agent]`: defaults for every output.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AgentBuffer {
    /// `buffer_strategy` (default `"memory"`).
    pub strategy: BufferStrategy,
    /// `buffer_directory`: each disk-buffered output gets a directory in it.
    pub directory: Option<PathBuf>,
    /// Telegraf's `buffer_disk_sync`: `true` is `buffer_fsync = "batch"`,
    /// `false` is `"never"`.
    pub fsync: Option<FsyncPolicy>,
}

/// How one output buffers, resolved.
#[derive(Clone, Debug, PartialEq)]
pub enum BufferSpec {
    Memory,
    Disk(DiskSpec),
}

/// A disk buffer, resolved: its own directory and settings.
#[derive(Clone, Debug, PartialEq)]
pub struct DiskSpec {
    /// This output's own directory (inside `buffer_directory`).
    pub dir: PathBuf,
    pub fsync: FsyncPolicy,
    pub fsync_interval: Duration,
    pub max_bytes: u64,
    pub segment_bytes: u64,
}

/// The buffer keys of an output section, as read.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BufferTable {
    pub buffer_strategy: Option<BufferStrategy>,
    pub buffer_directory: Option<String>,
    pub buffer_fsync: Option<FsyncPolicy>,
    pub buffer_fsync_interval: Option<PositiveDuration>,
    pub buffer_max_bytes: Option<SizeValue>,
    pub buffer_segment_size: Option<SizeValue>,
}

impl OptionTable for BufferTable {
    const KEYS: &'static [&'static str] = &[
        "buffer_strategy",
        "buffer_directory",
        "buffer_fsync",
        "buffer_fsync_interval",
        "buffer_max_bytes",
        "buffer_segment_size",
    ];
}

impl BufferTable {
    /// The options, checked one by one; the error names the key.
    pub fn options(self) -> Result<BufferOptions, ConfigError> {
        let directory = match self.buffer_directory {
            Some(d) if d.trim().is_empty() => {
                return Err(ConfigError::key(
                    "buffer_directory",
                    "is empty; leave it out to use [agent] buffer_directory",
                ));
            }
            d => d.map(PathBuf::from),
        };
        let size = |key: &str, v: Option<SizeValue>, min: u64| match v {
            Some(SizeValue(n)) if n < min => Err(ConfigError::key(
                key,
                format!("{n} bytes is too small; at least {min}"),
            )),
            v => Ok(v.map(|s| s.0)),
        };
        Ok(BufferOptions {
            strategy: self.buffer_strategy,
            directory,
            fsync: self.buffer_fsync,
            fsync_interval: self.buffer_fsync_interval.map(|d| d.0),
            max_bytes: size("buffer_max_bytes", self.buffer_max_bytes, MIN_SEGMENT_BYTES)?,
            segment_size: size(
                "buffer_segment_size",
                self.buffer_segment_size,
                MIN_SEGMENT_BYTES,
            )?,
        })
    }
}

impl BufferOptions {
    /// Resolve against the agent's defaults for the output at `location`
    /// (`outputs.influxdb[0]`) with `alias`; the error names the key.
    pub fn resolve(
        &self,
        agent: &AgentBuffer,
        location: &str,
        alias: Option<&str>,
    ) -> Result<BufferSpec, ConfigError> {
        if self.strategy.unwrap_or(agent.strategy) == BufferStrategy::Memory {
            return Ok(BufferSpec::Memory);
        }
        let Some(root) = self.directory.as_ref().or(agent.directory.as_ref()) else {
            return Err(ConfigError::key(
                "buffer_strategy",
                "\"disk\" needs a directory: set buffer_directory in [agent] or in this section",
            ));
        };
        let max_bytes = self.max_bytes.unwrap_or(DEFAULT_MAX_BYTES);
        let segment_bytes = self.segment_size.unwrap_or(DEFAULT_SEGMENT_BYTES);
        if segment_bytes > max_bytes {
            return Err(ConfigError::key(
                "buffer_segment_size",
                format!("{segment_bytes} bytes is more than buffer_max_bytes ({max_bytes})"),
            ));
        }
        Ok(BufferSpec::Disk(DiskSpec {
            dir: root.join(dir_name(location, alias)),
            fsync: self.fsync.or(agent.fsync).unwrap_or_default(),
            fsync_interval: self.fsync_interval.unwrap_or(DEFAULT_FSYNC_INTERVAL),
            max_bytes,
            segment_bytes,
        }))
    }
}

/// The directory of an output's log inside `buffer_directory`: named by its
/// alias when it has one (so that moving the section keeps the log), else
/// by its place, `outputs.influxdb[0]`.
pub fn dir_name(location: &str, alias: Option<&str>) -> String {
    match alias {
        Some(a) => {
            let kind_and_name = location.split('[').next().unwrap_or(location);
            let safe: String = a
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            format!("{kind_and_name}@{safe}")
        }
        None => location.to_owned(),
    }
}

/// Whether two resolved directories are the same place.
pub fn same_dir(a: &Path, b: &Path) -> bool {
    a == b
        || matches!(
            (a.canonicalize(), b.canonicalize()),
            (Ok(x), Ok(y)) if x == y
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Result<BufferOptions, ConfigError> {
        let t: BufferTable =
            toml::from_str(text).map_err(|e| ConfigError::key("?", e.message()))?;
        t.options()
    }

    #[test]
    fn memory_is_the_default_and_disk_needs_a_directory() {
        let agent = AgentBuffer::default();
        let o = table("").unwrap();
        assert_eq!(
            o.resolve(&agent, "outputs.file[0]", None).unwrap(),
            BufferSpec::Memory
        );
        let o = table("buffer_strategy = \"disk\"").unwrap();
        let e = o.resolve(&agent, "outputs.file[0]", None).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("buffer_strategy"), "{e}");
        let agent = AgentBuffer {
            strategy: BufferStrategy::Disk,
            directory: Some("/var/lib/graft".into()),
            fsync: None,
        };
        let BufferSpec::Disk(d) = table("")
            .unwrap()
            .resolve(&agent, "outputs.file[1]", None)
            .unwrap()
        else {
            panic!("the agent's strategy applies")
        };
        assert_eq!(d.dir, Path::new("/var/lib/graft/outputs.file[1]"));
        assert_eq!(
            (d.fsync, d.max_bytes, d.segment_bytes),
            (FsyncPolicy::Batch, DEFAULT_MAX_BYTES, DEFAULT_SEGMENT_BYTES)
        );
    }

    #[test]
    fn an_alias_names_the_directory_and_keys_are_checked() {
        assert_eq!(
            dir_name("outputs.influxdb[2]", Some("edge/1")),
            "outputs.influxdb@edge_1"
        );
        let o = table(
            "buffer_strategy = \"disk_write_through\"\nbuffer_directory = \"/d\"\n\
             buffer_fsync = \"interval\"\nbuffer_max_bytes = \"10MiB\"\nbuffer_segment_size = \"1MiB\"",
        )
        .unwrap();
        let BufferSpec::Disk(d) = o
            .resolve(&AgentBuffer::default(), "outputs.x[0]", Some("a"))
            .unwrap()
        else {
            panic!("disk")
        };
        assert_eq!(d.dir, Path::new("/d/outputs.x@a"));
        assert_eq!(
            (d.fsync, d.max_bytes, d.segment_bytes),
            (FsyncPolicy::Interval, 10 << 20, 1 << 20)
        );
        for (text, key) in [
            ("buffer_directory = \"\"", "buffer_directory"),
            ("buffer_max_bytes = \"1KiB\"", "buffer_max_bytes"),
        ] {
            assert_eq!(table(text).unwrap_err().key.as_deref(), Some(key), "{text}");
        }
        let e = table("buffer_strategy = \"disk\"\nbuffer_directory = \"/d\"\nbuffer_max_bytes = \"1MiB\"\nbuffer_segment_size = \"2MiB\"")
            .unwrap()
            .resolve(&AgentBuffer::default(), "outputs.x[0]", None)
            .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("buffer_segment_size"), "{e}");
    }
}
