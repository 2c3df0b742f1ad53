//! The `[agent]` table: schedule, batching and buffering defaults, and the
//! `host` tag. Names and defaults are Telegraf's.
//!
//! [`AgentTable`] is the table as written (serde, unknown keys refused);
//! [`AgentConfig`] is what the runtime sees, each `[agent]` table of each
//! file applied over the last.

use super::buffer::{AgentBuffer, BufferStrategy, FsyncPolicy};
use std::path::PathBuf;
use std::time::Duration;

use graft_core::units::DurationValue;
use serde::Deserialize;

use super::error::{ConfigError, from_table};
pub use super::values::MAX_COUNT;
use super::values::{Count, PositiveDuration};

/// `interval` when none is given.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// `flush_interval` when none is given.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(10);
/// `metric_batch_size` when none is given.
pub const DEFAULT_BATCH_SIZE: usize = 1000;
/// `metric_buffer_limit` when none is given.
pub const DEFAULT_BUFFER_LIMIT: usize = 10000;

/// One `[agent]` table as written; a key left out keeps its value from an
/// earlier file, or its default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentTable {
    /// `interval` (default [`DEFAULT_INTERVAL`], 10s; above zero): how often
    /// inputs gather.
    pub interval: Option<PositiveDuration>,
    /// `round_interval` (default true): align gathers to multiples of the
    /// interval.
    pub round_interval: Option<bool>,
    /// `collection_jitter` (default 0): random delay before each gather.
    pub collection_jitter: Option<DurationValue>,
    /// `collection_offset` (default 0): constant shift of the schedule.
    pub collection_offset: Option<DurationValue>,
    /// `flush_interval` (default [`DEFAULT_FLUSH_INTERVAL`], 10s; above
    /// zero): how often outputs write.
    pub flush_interval: Option<PositiveDuration>,
    /// `flush_jitter` (default 0): random extra delay on every flush.
    pub flush_jitter: Option<DurationValue>,
    /// `metric_batch_size` (default [`DEFAULT_BATCH_SIZE`], 1000): most
    /// metrics per write.
    pub metric_batch_size: Option<Count>,
    /// `metric_buffer_limit` (default [`DEFAULT_BUFFER_LIMIT`], 10000): most
    /// unsent metrics per output; at least `metric_batch_size`.
    pub metric_buffer_limit: Option<Count>,
    /// `precision` (default 0: derived from the interval): timestamp rounding.
    pub precision: Option<DurationValue>,
    /// `hostname` (default `""`: the machine's name): value of the `host` tag.
    pub hostname: Option<String>,
    /// `omit_hostname` (default false): leave the `host` tag out.
    pub omit_hostname: Option<bool>,
    /// `debug` (default false): log at debug level.
    pub debug: Option<bool>,
    /// `quiet` (default false): log errors only.
    pub quiet: Option<bool>,
    /// `wasm_cache_dir` (default `~/.cache/graft`): compiled WASM plugins;
    /// `""` turns the cache off.
    pub wasm_cache_dir: Option<String>,
    /// `buffer_strategy` (default `"memory"`): every output's, unless the
    /// output sets its own.
    pub buffer_strategy: Option<BufferStrategy>,
    /// `buffer_directory` (default none): where disk buffers live, one
    /// directory per output.
    pub buffer_directory: Option<String>,
    /// `statefile` (default none): where plugins keep state across
    /// restarts (`inputs.tail`'s positions), beside this path; unset, in
    /// graft's state directory (`$STATE_DIRECTORY`, `$XDG_STATE_HOME/graft`
    /// or `~/.local/state/graft`).
    pub statefile: Option<String>,
    /// `buffer_disk_sync` (Telegraf's; default: `buffer_fsync`'s default,
    /// `"batch"`): `true` fsyncs every append, `false` never.
    pub buffer_disk_sync: Option<bool>,
}

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
    /// `buffer_strategy`, `buffer_directory`, `buffer_disk_sync`.
    pub buffer: AgentBuffer,
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
    /// `statefile`: where plugins keep state across restarts, if set.
    pub statefile: Option<PathBuf>,
    metric_buffer_limit_set: bool,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            interval: DEFAULT_INTERVAL,
            round_interval: true,
            collection_jitter: Duration::ZERO,
            collection_offset: Duration::ZERO,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            flush_jitter: Duration::ZERO,
            metric_batch_size: DEFAULT_BATCH_SIZE,
            metric_buffer_limit: DEFAULT_BUFFER_LIMIT,
            buffer: AgentBuffer::default(),
            precision: None,
            hostname: None,
            omit_hostname: false,
            debug: false,
            quiet: false,
            wasm_cache_dir: None,
            wasm_cache_dir_set: false,
            statefile: None,
            metric_buffer_limit_set: false,
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
    "log_level",
    "structured_log_message_key",
    "always_include_local_tags",
    "always_include_global_tags",
    "skip_processors_before_aggregators",
    "skip_processors_after_aggregators",
    "snmp_translator",
    "config_url_retry_attempts",
    "config_url_watch_interval",
];

/// A key that Telegraf releases dropped or renamed, or that circulates in
/// copied configs though Telegraf never read it. A config that sets one
/// still runs: the key is ignored, with a warning that says why and which
/// key to use instead.
struct Retired {
    key: &'static str,
    instead: Option<&'static str>,
    why: &'static str,
}

const RETIRED: &[Retired] = &[
    Retired {
        key: "connection_jitter",
        instead: Some("collection_jitter"),
        why: "Telegraf never read this key (it circulates in configs copied from old guides)",
    },
    Retired {
        key: "flush_buffer_when_full",
        instead: None,
        why: "deprecated in Telegraf 0.13 and ignored since",
    },
    Retired {
        key: "utc",
        instead: None,
        why: "deprecated in Telegraf 1.0 and ignored since: timestamps are always UTC",
    },
];

impl AgentConfig {
    /// Apply the keys of one `[agent]` table. Returns a warning (naming the
    /// key) for each Telegraf key graft accepts without acting on it, and
    /// for each key Telegraf retired; the caller adds file and section.
    pub fn merge(&mut self, mut table: toml::Table) -> Result<Vec<ConfigError>, ConfigError> {
        let mut warnings = Vec::new();
        for key in ACCEPTED_WITHOUT_EFFECT {
            if table.remove(*key).is_some() {
                warnings.push(ConfigError::key(
                    *key,
                    "accepted for Telegraf compatibility, but has no effect in graft yet",
                ));
            }
        }
        for r in RETIRED {
            if table.remove(r.key).is_some() {
                let message = match r.instead {
                    Some(k) => format!("ignored: {}; did you mean `{k}`?", r.why),
                    None => format!("ignored: {}", r.why),
                };
                warnings.push(ConfigError::key(r.key, message));
            }
        }
        self.apply(from_table(table)?);
        self.check()?;
        Ok(warnings)
    }

    /// Apply the keys `t` gives.
    pub fn apply(&mut self, t: AgentTable) {
        let AgentTable {
            interval,
            round_interval,
            collection_jitter,
            collection_offset,
            flush_interval,
            flush_jitter,
            metric_batch_size,
            metric_buffer_limit,
            precision,
            hostname,
            omit_hostname,
            debug,
            quiet,
            wasm_cache_dir,
            statefile,
            buffer_strategy,
            buffer_directory,
            buffer_disk_sync,
        } = t;
        set(&mut self.buffer.strategy, buffer_strategy);
        if let Some(d) = buffer_directory {
            self.buffer.directory = (!d.trim().is_empty()).then(|| PathBuf::from(d));
        }
        if let Some(sync) = buffer_disk_sync {
            self.buffer.fsync = Some(if sync {
                FsyncPolicy::Batch
            } else {
                FsyncPolicy::Never
            });
        }
        set(&mut self.interval, interval.map(|d| d.0));
        set(&mut self.round_interval, round_interval);
        set(&mut self.collection_jitter, collection_jitter.map(|d| d.0));
        set(&mut self.collection_offset, collection_offset.map(|d| d.0));
        set(&mut self.flush_interval, flush_interval.map(|d| d.0));
        set(&mut self.flush_jitter, flush_jitter.map(|d| d.0));
        set(&mut self.metric_batch_size, metric_batch_size.map(|c| c.0));
        self.metric_buffer_limit_set |= metric_buffer_limit.is_some();
        set(
            &mut self.metric_buffer_limit,
            metric_buffer_limit.map(|c| c.0),
        );
        if let Some(p) = precision {
            self.precision = (!p.0.is_zero()).then_some(p.0);
        }
        if let Some(h) = hostname {
            self.hostname = (!h.is_empty()).then_some(h);
        }
        set(&mut self.omit_hostname, omit_hostname);
        set(&mut self.debug, debug);
        set(&mut self.quiet, quiet);
        if let Some(f) = statefile {
            self.statefile = (!f.trim().is_empty()).then(|| PathBuf::from(f));
        }
        if let Some(d) = wasm_cache_dir {
            self.wasm_cache_dir = (!d.is_empty()).then(|| PathBuf::from(d));
            self.wasm_cache_dir_set = true;
        }
    }

    /// What must hold between the settings: the buffer holds a batch.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.metric_buffer_limit < self.metric_batch_size {
            return Err(ConfigError::key(
                "metric_buffer_limit",
                format!(
                    "{} is less than metric_batch_size ({}): the buffer must hold a whole batch",
                    self.metric_buffer_limit, self.metric_batch_size
                ),
            ));
        }
        Ok(())
    }

    /// Whether `metric_buffer_limit` was given: disk buffers are bounded
    /// by it only then (else by `buffer_max_bytes`, as Telegraf's disk
    /// buffer ignores the default).
    pub fn metric_buffer_limit_is_set(&self) -> bool {
        self.metric_buffer_limit_set
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

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}
