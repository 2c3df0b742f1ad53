//! The table of `[[inputs.http_listener_v2]]`: Telegraf's keys (address,
//! paths, methods, headers, body limits, authentication) and graft's
//! (connection and write limits, durable acknowledgement), beside the
//! parser keys (`data_format`, ...) that [`crate::format::ParserConfig`]
//! reads.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::duration::{de_duration, de_size};
use crate::inputs::influxdb_listener::Acknowledge;

/// `[[inputs.http_listener_v2]]`, without the parser keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// `service_address` (default `":8080"`): `host:port` or
    /// `tcp://host:port`; `:port` listens on every interface. Unix sockets
    /// are not supported.
    #[serde(default = "default_address")]
    pub service_address: String,
    /// `socket_mode`: only for unix sockets, which graft does not serve.
    #[serde(default)]
    pub socket_mode: Option<String>,
    /// `paths` (default `["/telegraf"]`): the paths that take writes;
    /// others answer 404.
    #[serde(default = "default_paths")]
    pub paths: Vec<String>,
    /// `path` (deprecated in Telegraf): one path, added to `paths`.
    #[serde(default)]
    pub path: Option<String>,
    /// `path_tag` (default false): tag each metric with the request's path
    /// as `http_listener_v2_path`.
    #[serde(default)]
    pub path_tag: bool,
    /// `methods` (default `["POST", "PUT"]`): others answer 405.
    #[serde(default = "default_methods")]
    pub methods: Vec<String>,
    /// `http_headers` (default none): headers added to every answer.
    #[serde(default)]
    pub http_headers: BTreeMap<String, String>,
    /// `http_header_tags` (default none): request header → tag key; the
    /// first value of a header present becomes the tag.
    #[serde(default)]
    pub http_header_tags: BTreeMap<String, String>,
    /// `http_success_code` (default 204): the status of a write taken.
    #[serde(default)]
    pub http_success_code: u16,
    /// `read_timeout` (default 10s; under 1s means the default, as in
    /// Telegraf): a request's headers, its body, an idle connection.
    #[serde(default = "ten_seconds", deserialize_with = "de_duration")]
    pub read_timeout: Duration,
    /// `write_timeout` (default 10s): how long an answer may wait for a
    /// peer that does not read it.
    #[serde(default = "ten_seconds", deserialize_with = "de_duration")]
    pub write_timeout: Duration,
    /// `max_body_size` (default 0 = 32 MiB; Telegraf's is 500 MiB): a
    /// body larger than this, before or after decompression, is answered
    /// 413 and counted.
    #[serde(default, deserialize_with = "de_size")]
    pub max_body_size: u64,
    /// `data_source` (default `"body"`): `"body"`, or `"query"` to parse
    /// the URL's query string.
    #[serde(default = "default_source")]
    pub data_source: String,
    /// `basic_username`, `basic_password` (default none): HTTP basic
    /// authentication, both or neither.
    #[serde(default)]
    pub basic_username: String,
    /// `basic_password`: with `basic_username`.
    #[serde(default)]
    pub basic_password: String,
    /// `max_connections` (graft's, default 256): open connections at most.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// `max_concurrent_writes` (graft's, default 8): bodies read and
    /// parsed at once; one more is answered 503 with `Retry-After`.
    #[serde(default = "default_max_concurrent_writes")]
    pub max_concurrent_writes: usize,
    /// `max_labels` (graft's, default 256): labels a remote write series
    /// may have; a series with more is skipped and counted.
    #[serde(default = "default_max_labels")]
    pub max_labels: usize,
    /// `acknowledge` (graft's, default `"received"`): `"durable"` answers
    /// a write only once every output has written its metrics or holds
    /// them in a disk buffer (503 with `Retry-After` otherwise).
    #[serde(default)]
    pub acknowledge: Acknowledge,
    /// `acknowledge_timeout` (default 30s): with `acknowledge = "durable"`.
    #[serde(default = "thirty_seconds", deserialize_with = "de_duration")]
    pub acknowledge_timeout: Duration,
    /// `tls_cert`, `tls_key` (default none): serve HTTPS with this
    /// certificate chain and key (PEM), both or neither.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// See `tls_cert`.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// `tls_allowed_cacerts` (default none): require client certificates
    /// that chain to these CAs (mutual TLS).
    #[serde(default)]
    pub tls_allowed_cacerts: Vec<PathBuf>,
    /// `tls_min_version` (default `"TLS12"`), `tls_max_version` (default
    /// `"TLS13"`).
    #[serde(default)]
    pub tls_min_version: Option<String>,
    /// See `tls_min_version`.
    #[serde(default)]
    pub tls_max_version: Option<String>,
}

fn default_address() -> String {
    ":8080".into()
}

fn default_paths() -> Vec<String> {
    vec!["/telegraf".into()]
}

fn default_methods() -> Vec<String> {
    vec!["POST".into(), "PUT".into()]
}

fn default_source() -> String {
    "body".into()
}

fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}

fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}

fn default_max_connections() -> usize {
    256
}

fn default_max_concurrent_writes() -> usize {
    8
}

fn default_max_labels() -> usize {
    crate::prometheus::remote_parse::DEFAULT_MAX_LABELS
}

/// The default `max_body_size`.
pub const DEFAULT_MAX_BODY: u64 = 32 << 20;
