//! The `[agent]` table: schedule, batching and buffering defaults, and the
//! `host` tag. Names and defaults are Telegraf's.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::duration::parse_duration_value;

/// The resolved `[agent]` settings.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentConfig {
    /// `interval` (default `"10s"`): how often inputs gather.
    pub interval: Duration,
    /// `round_interval` (default true): align gathers to multiples of the interval.
    pub round_interval: bool,
    /// `collection_jitter` (default 0): random delay before each gather.
    pub collection_jitter: Duration,
    /// `collection_offset` (default 0): constant shift of the schedule.
    pub collection_offset: Duration,
    /// `flush_interval` (default `"10s"`): how often outputs write.
    pub flush_interval: Duration,
    /// `flush_jitter` (default 0): random extra delay on every flush.
    pub flush_jitter: Duration,
    /// `metric_batch_size` (default 1000): most metrics per write.
    pub metric_batch_size: usize,
    /// `metric_buffer_limit` (default 10000): most unsent metrics per output.
    pub metric_buffer_limit: usize,
    /// `precision` (default: derived from the interval): timestamp rounding.
    pub precision: Option<Duration>,
    /// `hostname` (default: the machine's): value of the `host` tag.
    pub hostname: Option<String>,
    /// `omit_hostname` (default false): leave the `host` tag out.
    pub omit_hostname: bool,
    /// `debug` (default false): log at debug level.
    pub debug: bool,
    /// `quiet` (default false): log errors only.
    pub quiet: bool,
    /// `wasm_cache_dir` (default `~/.cache/graft`): compiled WASM plugins;
    /// `""` turns the cache off.
    pub wasm_cache_dir: Option<PathBuf>,
    wasm_cache_dir_set: bool,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(10),
            round_interval: true,
            collection_jitter: Duration::ZERO,
            collection_offset: Duration::ZERO,
            flush_interval: Duration::from_secs(10),
            flush_jitter: Duration::ZERO,
            metric_batch_size: 1000,
            metric_buffer_limit: 10000,
            precision: None,
            hostname: None,
            omit_hostname: false,
            debug: false,
            quiet: false,
            wasm_cache_dir: None,
            wasm_cache_dir_set: false,
        }
    }
}

/// Telegraf agent keys graft reads but does not act on yet; they are
/// accepted so that existing configs run, and a warning says so.
const ACCEPTED_WITHOUT_EFFECT: &[&str] = &[
    "logtarget",
    "logformat",
    "logfile",
    "logfile_rotation_interval",
    "logfile_rotation_max_size",
    "logfile_rotation_max_archives",
    "log_with_timezone",
    "structured_log_message_key",
    "statefile",
    "always_include_local_tags",
    "always_include_global_tags",
    "skip_processors_before_aggregators",
    "skip_processors_after_aggregators",
    "buffer_strategy",
    "buffer_directory",
    "buffer_disk_sync",
    "snmp_translator",
    "config_url_retry_attempts",
];

impl AgentConfig {
    /// Apply the keys of one `[agent]` table.
    pub fn merge(&mut self, table: toml::Table) -> Result<()> {
        for (key, value) in table {
            let ctx = || format!("key `{key}`");
            match key.as_str() {
                "interval" => {
                    self.interval =
                        positive(parse_duration_value(&value).with_context(ctx)?, &key)?;
                }
                "round_interval" => self.round_interval = boolean(&value).with_context(ctx)?,
                "collection_jitter" => {
                    self.collection_jitter = parse_duration_value(&value).with_context(ctx)?;
                }
                "collection_offset" => {
                    self.collection_offset = parse_duration_value(&value).with_context(ctx)?;
                }
                "flush_interval" => {
                    self.flush_interval =
                        positive(parse_duration_value(&value).with_context(ctx)?, &key)?;
                }
                "flush_jitter" => {
                    self.flush_jitter = parse_duration_value(&value).with_context(ctx)?;
                }
                "metric_batch_size" => self.metric_batch_size = count(&value).with_context(ctx)?,
                "metric_buffer_limit" => {
                    self.metric_buffer_limit = count(&value).with_context(ctx)?;
                }
                "precision" => {
                    let p = parse_duration_value(&value).with_context(ctx)?;
                    self.precision = (!p.is_zero()).then_some(p);
                }
                "hostname" => {
                    let h = string(&value).with_context(ctx)?;
                    self.hostname = (!h.is_empty()).then_some(h);
                }
                "omit_hostname" => self.omit_hostname = boolean(&value).with_context(ctx)?,
                "debug" => self.debug = boolean(&value).with_context(ctx)?,
                "quiet" => self.quiet = boolean(&value).with_context(ctx)?,
                "wasm_cache_dir" => {
                    let d = string(&value).with_context(ctx)?;
                    self.wasm_cache_dir = (!d.is_empty()).then(|| PathBuf::from(d));
                    self.wasm_cache_dir_set = true;
                }
                k if ACCEPTED_WITHOUT_EFFECT.contains(&k) => {
                    tracing::warn!(
                        key = k,
                        "[agent] {k} is accepted for Telegraf compatibility but has no effect in graft yet"
                    );
                }
                other => bail!("unknown key `{other}`"),
            }
        }
        if self.metric_buffer_limit < self.metric_batch_size {
            bail!(
                "metric_buffer_limit ({}) must be at least metric_batch_size ({})",
                self.metric_buffer_limit,
                self.metric_batch_size
            );
        }
        Ok(())
    }

    /// Whether `wasm_cache_dir` was given (possibly as `""`, meaning off).
    pub fn wasm_cache_dir_is_set(&self) -> bool {
        self.wasm_cache_dir_set
    }

    /// Timestamp precision for inputs with this interval: the configured
    /// one, else derived from the interval as Telegraf does.
    pub fn precision_for(&self, interval: Duration) -> Duration {
        if let Some(p) = self.precision {
            return p;
        }
        if interval >= Duration::from_secs(1) {
            Duration::from_secs(1)
        } else if interval >= Duration::from_millis(1) {
            Duration::from_millis(1)
        } else if interval >= Duration::from_micros(1) {
            Duration::from_micros(1)
        } else {
            Duration::from_nanos(1)
        }
    }
}

pub(crate) fn positive(d: Duration, key: &str) -> Result<Duration> {
    if d.is_zero() {
        bail!("key `{key}`: must be greater than zero");
    }
    Ok(d)
}

pub(crate) fn boolean(v: &toml::Value) -> Result<bool> {
    v.as_bool()
        .ok_or_else(|| anyhow::anyhow!("expected true or false, found {}", v.type_str()))
}

pub(crate) fn string(v: &toml::Value) -> Result<String> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("expected a string, found {}", v.type_str()))
}

/// The largest count (`metric_batch_size`, `metric_buffer_limit`) graft
/// accepts: a billion metrics.
pub const MAX_COUNT: usize = 1_000_000_000;

pub(crate) fn count(v: &toml::Value) -> Result<usize> {
    match v.as_integer() {
        Some(n) if n > 0 && n as u64 <= MAX_COUNT as u64 => Ok(n as usize),
        Some(n) if n > 0 => bail!("{n} is too large: the most graft accepts is {MAX_COUNT}"),
        _ => bail!("expected a positive whole number, found {v}"),
    }
}
