//! The table of `[[outputs.opentelemetry]]`, with Telegraf's keys.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::duration::de_duration;

/// `[[outputs.opentelemetry]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `service_address` (default `"localhost:4317"`): `host:port` sends
    /// OTLP/gRPC; `http://host:port/path` or `https://...` (e.g.
    /// `http://127.0.0.1:4318/v1/metrics`) sends OTLP/HTTP, as Telegraf.
    #[serde(default = "default_service_address")]
    pub service_address: String,
    /// `encoding_type` (default `"protobuf"`; or `"json"`): of OTLP/HTTP
    /// bodies.
    #[serde(default)]
    pub encoding_type: EncodingType,
    /// `timeout` (default 5s): connecting, and each export.
    #[serde(default = "five_seconds", deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// `compression` (default `"gzip"`; or `"none"`).
    #[serde(default)]
    pub compression: Compression,
    /// `name_separator` (default `"_"`): joins measurement and field into a
    /// metric name where the field is not `gauge`/`counter`.
    #[serde(default = "default_separator")]
    pub name_separator: String,
    /// `headers` (default none): gRPC metadata / HTTP headers on every
    /// export.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `attributes` (default none): resource attributes added to every
    /// export (a metric's tag of the same key wins).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// `token` (default none): sent as `authorization: Bearer <token>`.
    #[serde(default)]
    pub token: Option<String>,
    /// `metrics_schema`: Telegraf's older key, accepted; the schema is read
    /// from each metric (measurement `prometheus` is v2).
    #[serde(default)]
    pub metrics_schema: Option<crate::opentelemetry::Schema>,
    /// `tls_ca` (default none): a PEM file of CAs to trust (gRPC: instead
    /// of the system's; HTTP: besides them).
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
    /// `tls_cert` and `tls_key`: a client certificate; both or neither.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// `tls_key`: the private key of `tls_cert`.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// `insecure_skip_verify` (default false): OTLP/HTTP only; refused with
    /// gRPC.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// `tls_server_name`: the name to verify the server's certificate
    /// against (gRPC).
    #[serde(default)]
    pub tls_server_name: Option<String>,
    /// `http_proxy_url` (default none): a proxy for OTLP/HTTP.
    #[serde(default)]
    pub http_proxy_url: Option<String>,
    /// `use_system_proxy`: accepted when false; graft does not read proxy
    /// settings from the environment.
    #[serde(default)]
    pub use_system_proxy: bool,
    /// `use_proxy`, `proxy_url`: a proxy for gRPC; refused when set.
    #[serde(default)]
    pub use_proxy: bool,
    /// `proxy_url`: as `use_proxy`.
    #[serde(default)]
    pub proxy_url: Option<String>,
    /// `[outputs.opentelemetry.coralogix]`: Telegraf's Coralogix dialect;
    /// refused (set its headers with `headers` instead).
    #[serde(default)]
    pub coralogix: Option<toml::Table>,
}

/// `encoding_type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EncodingType {
    #[default]
    Protobuf,
    Json,
}

/// `compression`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    #[default]
    Gzip,
    None,
}

fn default_service_address() -> String {
    "localhost:4317".to_owned()
}

fn default_separator() -> String {
    "_".to_owned()
}

fn five_seconds() -> Duration {
    Duration::from_secs(5)
}
