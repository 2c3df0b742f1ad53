//! OpenTelemetry metrics (OTLP) and graft metrics, mapped both ways as
//! Telegraf maps them (influxdb-observability's `otel2influx` and
//! `influx2otel`), for `inputs.opentelemetry` and `outputs.opentelemetry`.
//!
//! - [`to_graft`]: an `ExportMetricsServiceRequest` into a batch, with the
//!   `prometheus-v1` or `prometheus-v2` schema; every data point that cannot
//!   be mapped is counted and described, the others go on.
//! - [`from_graft`]: a batch into an `ExportMetricsServiceRequest`, the
//!   schema read from each metric (measurement `prometheus` is v2).
//! - [`attributes`]: OTLP attribute values as tag strings, and which tag
//!   keys are resource attributes.
//!
//! The protobuf types are the official definitions from the
//! `opentelemetry-proto` crate, re-exported as [`proto`].

pub mod attributes;
pub mod from_graft;
pub mod to_graft;

use serde::Deserialize;

/// The official OTLP protobuf types (`opentelemetry-proto`, tonic flavour).
pub mod proto {
    pub use opentelemetry_proto::tonic::collector::metrics::v1 as collector;
    pub use opentelemetry_proto::tonic::common::v1 as common;
    pub use opentelemetry_proto::tonic::metrics::v1 as metrics;
    pub use opentelemetry_proto::tonic::resource::v1 as resource;
}

/// `metrics_schema`: how OTLP metrics become graft metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum Schema {
    /// `"prometheus-v1"` (default): measurement = metric name, fields
    /// `gauge`, `counter`, `count`, `sum`, bucket bounds, quantiles.
    #[default]
    #[serde(rename = "prometheus-v1")]
    PrometheusV1,
    /// `"prometheus-v2"`: measurement `prometheus`, field = metric name
    /// (with `_count`, `_sum`, `_bucket` + `le` tag, `quantile` tag).
    #[serde(rename = "prometheus-v2")]
    PrometheusV2,
}

/// Field and tag names shared by both directions (influxdb-observability's
/// `common` constants).
pub(crate) mod names {
    /// The measurement of schema `prometheus-v2`.
    pub const PROMETHEUS: &str = "prometheus";
    pub const GAUGE: &str = "gauge";
    pub const COUNTER: &str = "counter";
    pub const COUNT: &str = "count";
    pub const SUM: &str = "sum";
    pub const MIN: &str = "min";
    pub const MAX: &str = "max";
    pub const INF: &str = "+Inf";
    pub const LE: &str = "le";
    pub const QUANTILE: &str = "quantile";
    pub const START_TIME: &str = "start_time_unix_nano";
    /// statsd's start time (RFC 3339), read back by the output.
    pub const START_TIME_STATSD: &str = "start_time";
    pub const SCOPE_NAME: &str = "otel.library.name";
    pub const SCOPE_VERSION: &str = "otel.library.version";
}

/// A float as Go's `strconv.FormatFloat(f, 'f', -1, 64)` writes it: the
/// shortest text that reads back exactly, never an exponent; `+Inf`,
/// `-Inf`, `NaN`.
pub(crate) fn format_bound(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_owned()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests;
