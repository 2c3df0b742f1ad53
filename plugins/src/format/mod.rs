//! Data formats on the wire, for the plugins that carry metrics as message
//! bodies (the message-bus inputs and outputs): Telegraf's `data_format`
//! and its options, as serializers for outputs and parsers for inputs.
//!
//! - `"influx"` (the default, as in Telegraf): line protocol, written as
//!   Telegraf's `influx` serializer writes it and read as InfluxDB 1.x
//!   reads it (`graft_core::lineproto`, `graft_core::lineparse`).
//! - `"json"`: Telegraf's JSON serializer shape,
//!   `{"fields":{..},"name":"..","tags":{..},"timestamp":..}` (or
//!   `{"metrics":[..]}` for a whole batch), and Telegraf's `json` parser
//!   (numbers become float fields, nested objects are flattened with `_`,
//!   strings only through `json_string_fields`, tags through `tag_keys`).
//! - `"prometheusremotewrite"`: Prometheus remote write 1.0, a
//!   snappy-compressed protobuf `WriteRequest` per body, written and read
//!   as Telegraf's serializer and parser do (`crate::prometheus::remote_*`).
//! - `"graphite"`: Graphite plaintext lines through Telegraf's templates
//!   (`templates`, `separator`; [`graphite`]).
//! - `"collectd"`: collectd's binary network protocol, read as Telegraf's
//!   `collectd` parser reads it (`crate::collectd`); input side only.
//! - `"graft"`: graft's columnar batch (`graft_core::batch::codec`) behind a
//!   four-byte magic, for graft-to-graft traffic: no text to write or read.
//!
//! Layout: [`serialize`] (the output side), [`parse`] (the input side),
//! [`json`] (both directions of JSON), [`time`] (timestamps as text).

pub mod graphite;
pub mod json;
pub mod parse;
pub mod serialize;
pub mod time;

use anyhow::bail;
use serde::Deserialize;

pub use parse::{Parsed, Parser, ParserConfig};
pub use serialize::{Serializer, SerializerConfig};

/// The first bytes of a message in graft's own format.
pub const GRAFT_MAGIC: &[u8; 4] = b"GRF1";

/// `data_format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum DataFormat {
    /// `"influx"`: line protocol.
    #[default]
    Influx,
    /// `"json"`: Telegraf's JSON.
    Json,
    /// `"graft"`: graft's columnar batch.
    Graft,
    /// `"collectd"`: collectd's binary network protocol (parsers only).
    Collectd,
    /// `"prometheusremotewrite"`: Prometheus remote write.
    PrometheusRemoteWrite,
    /// `"graphite"`: Graphite plaintext lines (parsers only).
    Graphite,
}

impl TryFrom<String> for DataFormat {
    type Error = anyhow::Error;

    fn try_from(s: String) -> anyhow::Result<Self> {
        Ok(match s.as_str() {
            "" | "influx" => Self::Influx,
            "json" => Self::Json,
            "graft" => Self::Graft,
            "collectd" => Self::Collectd,
            "prometheusremotewrite" => Self::PrometheusRemoteWrite,
            "graphite" => Self::Graphite,
            other => bail!(
                "data_format: {other:?} is not supported here; use \"influx\", \"json\", \"graphite\", \"prometheusremotewrite\", \"collectd\" or \"graft\""
            ),
        })
    }
}

impl DataFormat {
    /// The name as written in a config.
    pub fn name(self) -> &'static str {
        match self {
            Self::Influx => "influx",
            Self::Json => "json",
            Self::Graft => "graft",
            Self::Collectd => "collectd",
            Self::PrometheusRemoteWrite => "prometheusremotewrite",
            Self::Graphite => "graphite",
        }
    }
}

/// Why a metric could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error(transparent)]
    Influx(#[from] graft_core::lineproto::SerializeError),
    #[error("metric {name:?} has no field JSON can carry")]
    NoJsonFields { name: String },
    #[error("metric {name:?} has no field that is a Prometheus sample")]
    NoSamples { name: String },
}

#[cfg(test)]
mod tests;
