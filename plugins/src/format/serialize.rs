//! The output side: `data_format` and the serializer keys of an output's
//! table, and the serializer built from them, which writes one metric or a
//! whole batch as one message body.

use std::time::Duration;

use anyhow::Result;
use graft_core::lineproto::{self, SerializerOptions};
use graft_core::{Batch, BatchBuilder, MetricRef};
use serde::Deserialize;

use super::json::{self, JsonTime};
use super::time::TimeFormat;
use super::{DataFormat, FormatError, GRAFT_MAGIC};
use crate::config::SharedKeys;
use crate::duration::de_duration;
use crate::prometheus::remote_serialize as remote;

/// The serializer keys of an output's table, as Telegraf names them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SerializerConfig {
    /// `data_format` (default `"influx"`): `influx`, `json`,
    /// `prometheusremotewrite` or `graft`.
    #[serde(default)]
    pub data_format: DataFormat,
    /// `influx_sort_fields` (default false).
    #[serde(default)]
    pub influx_sort_fields: bool,
    /// `influx_uint_support` (default false).
    #[serde(default)]
    pub influx_uint_support: bool,
    /// `influx_omit_timestamp` (default false).
    #[serde(default)]
    pub influx_omit_timestamp: bool,
    /// `influx_max_line_bytes` (default 0 = no limit).
    #[serde(default)]
    pub influx_max_line_bytes: usize,
    /// `json_timestamp_units` (default 1s): the unit of JSON timestamps,
    /// truncated to a power of ten.
    #[serde(default = "one_second", deserialize_with = "de_duration")]
    pub json_timestamp_units: Duration,
    /// `json_timestamp_format` (default none): write JSON timestamps as
    /// RFC 3339 text instead (Go's `time.RFC3339` or `time.RFC3339Nano`
    /// layout).
    #[serde(default)]
    pub json_timestamp_format: Option<String>,
    /// `prometheus_sort_metrics` (default false): remote write series
    /// sorted by their labels.
    #[serde(default)]
    pub prometheus_sort_metrics: bool,
    /// `prometheus_string_as_label` (default false): string fields become
    /// labels of the metric's series.
    #[serde(default)]
    pub prometheus_string_as_label: bool,
    /// `prometheus_export_timestamp`: accepted; remote write samples always
    /// carry the metric's time (the protocol needs one).
    #[serde(default)]
    pub prometheus_export_timestamp: Option<bool>,
}

fn one_second() -> Duration {
    Duration::from_secs(1)
}

impl Default for SerializerConfig {
    fn default() -> Self {
        Self {
            data_format: DataFormat::default(),
            influx_sort_fields: false,
            influx_uint_support: false,
            influx_omit_timestamp: false,
            influx_max_line_bytes: 0,
            json_timestamp_units: one_second(),
            json_timestamp_format: None,
            prometheus_sort_metrics: false,
            prometheus_string_as_label: false,
            prometheus_export_timestamp: None,
        }
    }
}

impl SharedKeys for SerializerConfig {
    const KEYS: &'static [&'static str] = &[
        "data_format",
        "influx_sort_fields",
        "influx_uint_support",
        "influx_omit_timestamp",
        "influx_max_line_bytes",
        "json_timestamp_units",
        "json_timestamp_format",
        "prometheus_sort_metrics",
        "prometheus_string_as_label",
        "prometheus_export_timestamp",
    ];
}

impl SerializerConfig {
    /// What the types cannot say. Pure.
    pub fn validate(&self) -> Result<()> {
        self.build().map(drop)
    }

    /// The serializer.
    pub fn build(&self) -> Result<Serializer> {
        let kind = match self.data_format {
            DataFormat::Influx => Kind::Influx(lineproto::Serializer::new(SerializerOptions {
                sort_fields: self.influx_sort_fields,
                uint_support: self.influx_uint_support,
                omit_timestamp: self.influx_omit_timestamp,
                max_line_bytes: self.influx_max_line_bytes,
                ..SerializerOptions::default()
            })),
            DataFormat::Json => Kind::Json(match &self.json_timestamp_format {
                Some(layout) if !layout.is_empty() => {
                    match TimeFormat::parse("json_timestamp_format", layout)? {
                        TimeFormat::Rfc3339 => JsonTime::Text { fraction: false },
                        TimeFormat::Rfc3339Nano => JsonTime::Text { fraction: true },
                        TimeFormat::Unix(unit) => JsonTime::Units(unit),
                    }
                }
                _ => {
                    let ns =
                        i64::try_from(self.json_timestamp_units.as_nanos()).unwrap_or(i64::MAX);
                    JsonTime::Units(json::timestamp_unit(ns.max(1)))
                }
            }),
            DataFormat::Graft => Kind::Graft,
            DataFormat::Graphite => anyhow::bail!(
                "data_format: \"graphite\" is read by inputs; outputs.graphite and outputs.file write it"
            ),
            DataFormat::Collectd => {
                anyhow::bail!("data_format: \"collectd\" is read by inputs, not written")
            }
            DataFormat::PrometheusRemoteWrite => Kind::RemoteWrite(remote::Options {
                sort_metrics: self.prometheus_sort_metrics,
                string_as_label: self.prometheus_string_as_label,
            }),
        };
        Ok(Serializer { kind })
    }
}

/// Writes metrics as message bodies in one data format.
#[derive(Debug, Clone)]
pub struct Serializer {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Influx(lineproto::Serializer),
    Json(JsonTime),
    Graft,
    RemoteWrite(remote::Options),
}

impl Serializer {
    /// The format written.
    pub fn format(&self) -> DataFormat {
        match self.kind {
            Kind::Influx(_) => DataFormat::Influx,
            Kind::Json(_) => DataFormat::Json,
            Kind::Graft => DataFormat::Graft,
            Kind::RemoteWrite(_) => DataFormat::PrometheusRemoteWrite,
        }
    }

    /// Append one metric as one message body (a line protocol line, a
    /// JSON object and newline, a one-metric remote write request, or a
    /// one-metric graft batch).
    pub fn metric(&self, m: MetricRef<'_>, out: &mut Vec<u8>) -> Result<(), FormatError> {
        match &self.kind {
            Kind::Influx(s) => s.write_metric(m, out)?,
            Kind::Json(time) => {
                json::write_metric(m, *time, out);
                out.push(b'\n');
            }
            Kind::Graft => {
                let mut one = BatchBuilder::new();
                one.push(m);
                write_graft(&one.finish(), out);
            }
            Kind::RemoteWrite(options) => {
                let mut one = BatchBuilder::new();
                one.push(m);
                let request = remote::serialize(&one.finish(), *options);
                if request.series == 0 {
                    return Err(FormatError::NoSamples {
                        name: m.name().to_owned(),
                    });
                }
                out.extend_from_slice(&request.body);
            }
        }
        Ok(())
    }

    /// Append the whole batch as one message body; returns how many
    /// metrics were left out (each logged at debug level).
    pub fn batch(&self, batch: &Batch, out: &mut Vec<u8>) -> usize {
        match &self.kind {
            Kind::Influx(s) => {
                let errors = s.write_batch(batch, out);
                for e in &errors {
                    tracing::debug!(error = %e, "metric left out of the message");
                }
                errors.len()
            }
            Kind::Json(time) => {
                out.extend_from_slice(b"{\"metrics\":[");
                for (i, m) in batch.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    json::write_metric(m, *time, out);
                }
                out.extend_from_slice(b"]}\n");
                0
            }
            Kind::Graft => {
                write_graft(batch, out);
                0
            }
            Kind::RemoteWrite(options) => {
                let request = remote::serialize(batch, *options);
                if let Some(e) = &request.last_error {
                    tracing::debug!(
                        fields = request.skipped_fields,
                        metrics = request.metrics_left_out,
                        last_error = %e,
                        "fields that are not Prometheus samples were left out"
                    );
                }
                out.extend_from_slice(&request.body);
                request.metrics_left_out
            }
        }
    }
}

fn write_graft(batch: &Batch, out: &mut Vec<u8>) {
    out.reserve(GRAFT_MAGIC.len() + graft_core::batch::codec::encoded_len(batch));
    out.extend_from_slice(GRAFT_MAGIC);
    graft_core::batch::codec::encode(batch, out);
}
