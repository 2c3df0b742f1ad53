//! The table of `[[inputs.opentelemetry]]`: Telegraf's keys, graft's OTLP/HTTP
//! listener, the limits on what a peer may send and when an exporter is
//! answered.

use std::time::Duration;

use serde::Deserialize;

use crate::duration::{de_duration, de_size};
use crate::opentelemetry::Schema;

/// `[[inputs.opentelemetry]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `service_address` (default `"0.0.0.0:4317"`): the OTLP/gRPC
    /// listener, `host:port`; `""` turns it off (with
    /// `http_service_address` set).
    #[serde(default = "default_service_address")]
    pub service_address: String,
    /// `http_service_address` (graft's; default none): an OTLP/HTTP
    /// listener, `host:port` (OTLP's port is 4318), serving
    /// `POST /v1/metrics` in protobuf or JSON. Telegraf has no HTTP
    /// listener.
    #[serde(default)]
    pub http_service_address: Option<String>,
    /// `timeout` (default 5s): how long a request may take to arrive
    /// (gRPC: the whole call, plus `acknowledge_timeout` when durable;
    /// HTTP: the request's headers, its body, and an idle connection).
    #[serde(default = "five_seconds", deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// `max_msg_size` (default 4MiB, as gRPC's): the largest request,
    /// after decompression too; a larger one is refused (gRPC
    /// RESOURCE_EXHAUSTED, HTTP 413) and counted.
    #[serde(default = "default_max_msg_size", deserialize_with = "de_size")]
    pub max_msg_size: u64,
    /// `max_data_points` (graft's; default 100000): data points one request
    /// may carry; a request with more is refused whole (gRPC
    /// INVALID_ARGUMENT, HTTP 400) and counted.
    #[serde(default = "default_max_data_points")]
    pub max_data_points: u64,
    /// `max_attributes` (graft's; default 256): attributes one data point
    /// may carry, its resource's and scope's included; a point with more
    /// is dropped and reported as OTLP's partial success.
    #[serde(default = "default_max_attributes")]
    pub max_attributes: usize,
    /// `max_connections` (graft's; default 256): open connections per
    /// listener; one more is closed at once and counted.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// `max_concurrent_requests` (graft's; default 8): requests mapped at
    /// once over both listeners (and gRPC streams per connection); one
    /// more is answered UNAVAILABLE / 503, which exporters retry.
    #[serde(default = "default_max_concurrent_requests")]
    pub max_concurrent_requests: usize,
    /// `metrics_schema` (default `"prometheus-v1"`): `"prometheus-v1"` or
    /// `"prometheus-v2"`.
    #[serde(default)]
    pub metrics_schema: Schema,
    /// `acknowledge` (graft's; default `"received"`): when an export is
    /// answered OK. `"received"`: once mapped and queued, as Telegraf.
    /// `"durable"`: once every output has written its metrics or holds
    /// them in a disk buffer; UNAVAILABLE / 503 (which exporters retry)
    /// when some were lost or `acknowledge_timeout` passed.
    #[serde(default)]
    pub acknowledge: Acknowledge,
    /// `acknowledge_timeout` (default 30s): with `acknowledge = "durable"`.
    #[serde(default = "thirty_seconds", deserialize_with = "de_duration")]
    pub acknowledge_timeout: Duration,
    /// `span_dimensions`: accepted; graft receives metrics only (trace and
    /// log exports are answered UNIMPLEMENTED / 404).
    #[serde(default)]
    pub span_dimensions: Vec<String>,
    /// `log_record_dimensions`: accepted, as `span_dimensions`.
    #[serde(default)]
    pub log_record_dimensions: Vec<String>,
    /// `profile_dimensions`: accepted, as `span_dimensions`.
    #[serde(default)]
    pub profile_dimensions: Vec<String>,
    /// `tls_cert`, `tls_key`, `tls_allowed_cacerts`: refused for now (put a
    /// TLS-terminating proxy in front).
    #[serde(default)]
    pub tls_cert: Option<String>,
    /// `tls_key`: as `tls_cert`.
    #[serde(default)]
    pub tls_key: Option<String>,
    /// `tls_allowed_cacerts`: as `tls_cert`.
    #[serde(default)]
    pub tls_allowed_cacerts: Option<Vec<String>>,
}

/// `acknowledge`: when an export is answered OK.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Acknowledge {
    /// Once mapped and queued (Telegraf's behaviour).
    #[default]
    Received,
    /// Once written by every output or held in a disk buffer.
    Durable,
}

fn default_service_address() -> String {
    "0.0.0.0:4317".to_owned()
}

fn five_seconds() -> Duration {
    Duration::from_secs(5)
}

fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}

fn default_max_msg_size() -> u64 {
    4 << 20
}

fn default_max_data_points() -> u64 {
    100_000
}

fn default_max_attributes() -> usize {
    crate::opentelemetry::to_graft::DEFAULT_MAX_ATTRIBUTES
}

fn default_max_connections() -> usize {
    256
}

fn default_max_concurrent_requests() -> usize {
    8
}
