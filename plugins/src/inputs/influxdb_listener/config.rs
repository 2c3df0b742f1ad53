//! The table of `[[inputs.influxdb_listener]]` and
//! `[[inputs.influxdb_v2_listener]]`: address, timeouts, the limits on what
//! a peer may send, authentication and the tags kept from a request.

use std::time::Duration;

use serde::Deserialize;

use crate::duration::{de_duration, de_size};

/// `[[inputs.influxdb_listener]]` / `[[inputs.influxdb_v2_listener]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `service_address` (default `":8186"`, v2 `":8086"`): `host:port`;
    /// `:port` listens on every interface.
    #[serde(default)]
    pub service_address: Option<String>,
    /// `read_timeout` (default 10s; under 1s means the default, as in
    /// Telegraf): reading one request's headers, and its body; also how
    /// long an idle keep-alive connection stays open.
    #[serde(default = "ten_seconds", deserialize_with = "de_duration")]
    pub read_timeout: Duration,
    /// `write_timeout` (default 10s; under 1s means the default): how long
    /// an answer may wait for a peer that does not read it; then the
    /// connection is closed.
    #[serde(default = "ten_seconds", deserialize_with = "de_duration")]
    pub write_timeout: Duration,
    /// `max_body_size` (default 0 = 32 MiB).
    #[serde(default, deserialize_with = "de_size")]
    pub max_body_size: u64,
    /// `max_line_size`: deprecated in Telegraf and ignored (lines have no
    /// limit of their own).
    #[serde(default, deserialize_with = "de_size")]
    pub max_line_size: u64,
    /// `max_connections` (default 256): open connections at most; one more
    /// is closed at once and counted.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// `max_tags` (default 1000): tags one line may have; a line with more
    /// is a bad line, counted. InfluxDB 1.x's 64 KiB series key allows
    /// about 16 000 at most.
    #[serde(default = "default_max_tags")]
    pub max_tags: usize,
    /// `max_fields` (default 10000): fields one line may have; a line with
    /// more is a bad line, counted.
    #[serde(default = "default_max_fields")]
    pub max_fields: usize,
    /// `max_concurrent_writes` (default 8): write requests read and parsed
    /// at once, which bounds the memory bodies take (each up to
    /// `max_body_size`, twice with gzip); one more is answered 503 with
    /// `Retry-After`, as InfluxDB 1.x's `max-concurrent-write-limit` does.
    #[serde(default = "default_max_concurrent_writes")]
    pub max_concurrent_writes: usize,
    /// `basic_username`, `basic_password`.
    #[serde(default)]
    pub basic_username: String,
    /// `basic_password` (default none): with `basic_username`.
    #[serde(default)]
    pub basic_password: String,
    /// `token`: require `Authorization: Token <token>`.
    #[serde(default)]
    pub token: String,
    /// `database_tag` (default none): keep a v1 request's `db` as this tag.
    #[serde(default)]
    pub database_tag: String,
    /// `retention_policy_tag` (default none): keep a v1 request's `rp` as this
    /// tag.
    #[serde(default)]
    pub retention_policy_tag: String,
    /// `bucket_tag` (default none): keep a v2 request's `bucket` as this tag.
    #[serde(default)]
    pub bucket_tag: String,
    /// `max_undelivered_metrics` (default 0 = no limit).
    #[serde(default)]
    pub max_undelivered_metrics: u64,
    /// `acknowledge` (graft's; default `"received"`): when a write is
    /// answered 204. `"received"`, as Telegraf, once its metrics are parsed
    /// and queued; `"durable"`, only once every output has written them or
    /// holds them in a disk buffer, so that a sender that retries what was
    /// not answered 204 loses nothing even if graft is killed. A write
    /// waiting for its acknowledgement holds no `max_concurrent_writes`
    /// slot (its body is parsed and handed on); each connection has at most
    /// one request in flight, so `max_connections` bounds how many wait.
    #[serde(default)]
    pub acknowledge: Acknowledge,
    /// `acknowledge_timeout` (default 30s): with `acknowledge = "durable"`,
    /// how long a write waits for its metrics to be settled; past it the
    /// answer is 503 with `Retry-After` (the metrics may still arrive, and
    /// a retry may then store them twice).
    #[serde(default = "thirty_seconds", deserialize_with = "de_duration")]
    pub acknowledge_timeout: Duration,
    /// `parser_type`: Telegraf's choice of parser; graft has one.
    #[serde(default)]
    pub parser_type: Option<String>,
    /// TLS (`tls_cert`, `tls_key`, `tls_allowed_cacerts`): refused for now.
    #[serde(default)]
    pub tls_cert: Option<String>,
    /// `tls_key`: refused for now, as `tls_cert`.
    #[serde(default)]
    pub tls_key: Option<String>,
    /// `tls_allowed_cacerts`: refused for now, as `tls_cert`.
    #[serde(default)]
    pub tls_allowed_cacerts: Option<Vec<String>>,
}

/// `acknowledge`: when a write is answered 204.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Acknowledge {
    /// Once parsed and queued (Telegraf's behaviour).
    #[default]
    Received,
    /// Once written by every output or held in a disk buffer.
    Durable,
}

fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}

pub(super) fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}

/// As Telegraf: a timeout under a second (0 included) means the default.
pub(super) fn at_least_a_second(d: Duration) -> Duration {
    if d < Duration::from_secs(1) {
        ten_seconds()
    } else {
        d
    }
}

pub(super) fn default_max_connections() -> usize {
    256
}

pub(super) fn default_max_tags() -> usize {
    1000
}

pub(super) fn default_max_fields() -> usize {
    10_000
}

pub(super) fn default_max_concurrent_writes() -> usize {
    8
}

pub(super) const DEFAULT_MAX_BODY: u64 = 32 << 20;
