//! The table of `[[inputs.statsd]]`: Telegraf's keys, graft's own limits
//! (`max_line_size`, `read_timeout`), and keys accepted for Telegraf
//! configs without effect.

use std::time::Duration;

use serde::Deserialize;

use crate::duration::{de_duration, de_size};

/// `[[inputs.statsd]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `protocol` (default `udp`): udp, udp4, udp6, tcp, tcp4, tcp6.
    #[serde(default = "udp")]
    pub protocol: String,
    /// `service_address` (default `":8125"`).
    #[serde(default = "default_address")]
    pub service_address: String,
    /// `delete_gauges` (default true): forget gauges once emitted.
    #[serde(default = "yes")]
    pub delete_gauges: bool,
    /// `delete_counters` (default true): forget counters once emitted.
    #[serde(default = "yes")]
    pub delete_counters: bool,
    /// `delete_sets` (default true): forget sets once emitted.
    #[serde(default = "yes")]
    pub delete_sets: bool,
    /// `delete_timings` (default true): forget timings once emitted.
    #[serde(default = "yes")]
    pub delete_timings: bool,
    /// `percentiles` (default 50, 90, 99, 99.9, 99.95, 100).
    #[serde(default = "default_percentiles")]
    pub percentiles: Vec<f64>,
    /// `percentile_limit` (default 1000): samples kept per timing.
    #[serde(default = "default_limit")]
    pub percentile_limit: usize,
    /// `metric_separator` (default `_`).
    #[serde(default = "underscore")]
    pub metric_separator: String,
    /// `templates` (default none): graphite templates for bucket names.
    #[serde(default)]
    pub templates: Vec<String>,
    /// `datadog_extensions`: read `|#tag:value,...`.
    #[serde(default)]
    pub datadog_extensions: bool,
    /// `datadog_distributions`: accept the `d` type.
    #[serde(default)]
    pub datadog_distributions: bool,
    /// `datadog_keep_container_tag`: keep `|c:<id>` as `container`.
    #[serde(default)]
    pub datadog_keep_container_tag: bool,
    /// `float_counters` (default false): counters as float.
    #[serde(default)]
    pub float_counters: bool,
    /// `float_timings` (default false): timing counts as float.
    #[serde(default)]
    pub float_timings: bool,
    /// `float_sets` (default false): set sizes as float.
    #[serde(default)]
    pub float_sets: bool,
    /// `max_ttl` (default 0 = forever): forget kept entries not updated.
    #[serde(default, deserialize_with = "de_duration")]
    pub max_ttl: Duration,
    /// `max_tcp_connections` (default 250).
    #[serde(default = "default_connections")]
    pub max_tcp_connections: usize,
    /// `max_line_size` (default 64 KiB): longer lines are dropped and
    /// counted (graft's own option).
    #[serde(default = "default_line", deserialize_with = "de_size")]
    pub max_line_size: u64,
    /// `read_timeout` (default 0 = never): close TCP connections idle this
    /// long (graft's own option).
    #[serde(default, deserialize_with = "de_duration")]
    pub read_timeout: Duration,
    /// Accepted for Telegraf configs, without effect in graft.
    #[serde(default)]
    pub tcp_keep_alive: bool,
    /// `tcp_keep_alive_period` (default 0): without effect.
    #[serde(default, deserialize_with = "de_duration")]
    pub tcp_keep_alive_period: Duration,
    /// `allowed_pending_messages` (default 0): without effect.
    #[serde(default)]
    pub allowed_pending_messages: usize,
    /// `number_workers_threads` (default 0): without effect.
    #[serde(default)]
    pub number_workers_threads: usize,
    /// `udp_packet_size` (default 0): without effect; datagrams up to 64 KiB
    /// are read.
    #[serde(default, deserialize_with = "de_size")]
    pub udp_packet_size: u64,
    /// `read_buffer_size` (default 0): without effect.
    #[serde(default, deserialize_with = "de_size")]
    pub read_buffer_size: u64,
    /// Deprecated in Telegraf: the same as `datadog_extensions`.
    #[serde(default)]
    pub parse_data_dog_tags: bool,
}

pub(super) fn udp() -> String {
    "udp".into()
}
pub(super) fn default_address() -> String {
    ":8125".into()
}
pub(super) fn yes() -> bool {
    true
}
pub(super) fn default_percentiles() -> Vec<f64> {
    vec![50.0, 90.0, 99.0, 99.9, 99.95, 100.0]
}
pub(super) fn default_limit() -> usize {
    1000
}
pub(super) fn underscore() -> String {
    "_".into()
}
pub(super) fn default_connections() -> usize {
    250
}
pub(super) fn default_line() -> u64 {
    64 << 10
}
