//! The input side: `data_format` and the parser keys of an input's table,
//! and the parser built from them, which reads one message body into a
//! batch. What cannot be read is counted and skipped, never the rest: a
//! bad line of line protocol costs that line, a bad JSON document or graft
//! batch costs its message.

use anyhow::Result;
use graft_core::BatchBuilder;
use graft_core::lineparse::{ParseOptions, Precision, parse_bytes_into};
use serde::Deserialize;

use super::graphite::GraphiteParser;
use super::json::{self, JsonParser};
use super::time::TimeFormat;
use super::{DataFormat, GRAFT_MAGIC};
use crate::collectd;
use crate::config::SharedKeys;
use crate::prometheus::remote_parse as remote;

/// The parser keys of an input's table, as Telegraf names them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParserConfig {
    /// `data_format` (default `"influx"`): `influx`, `json`, `graphite`,
    /// `prometheusremotewrite`, `collectd` or `graft`.
    #[serde(default)]
    pub data_format: DataFormat,
    /// `influx_timestamp_precision` (default `"1ns"`): the unit of line
    /// protocol timestamps (`1ns`, `1us`, `1ms`, `1s`).
    #[serde(default)]
    pub influx_timestamp_precision: Option<String>,
    /// `influx_parser_type` (`"internal"` or `"upstream"`): accepted; graft
    /// has one line protocol parser.
    #[serde(default)]
    pub influx_parser_type: Option<String>,
    /// `influx_max_tags` (default 1000): a line with more tags is skipped.
    #[serde(default = "default_max_tags")]
    pub influx_max_tags: usize,
    /// `influx_max_fields` (default 10000): a line with more fields is
    /// skipped.
    #[serde(default = "default_max_fields")]
    pub influx_max_fields: usize,
    /// `json_query` (default none): the GJSON path (keys and indices) of
    /// the part of the document to read.
    #[serde(default)]
    pub json_query: String,
    /// `tag_keys` (default none): globs of the (flattened) keys that become
    /// tags.
    #[serde(default)]
    pub tag_keys: Vec<String>,
    /// `json_string_fields` (default none): globs of the keys whose strings
    /// (or booleans) become string fields.
    #[serde(default)]
    pub json_string_fields: Vec<String>,
    /// `json_name_key` (default none): the key whose string is the
    /// measurement name.
    #[serde(default)]
    pub json_name_key: String,
    /// `json_time_key` (default none): the key that holds the time; with
    /// `json_time_format`.
    #[serde(default)]
    pub json_time_key: String,
    /// `json_time_format`: `unix`, `unix_ms`, `unix_us`, `unix_ns` or an
    /// RFC 3339 layout.
    #[serde(default)]
    pub json_time_format: String,
    /// `json_timezone`: accepted; the RFC 3339 layouts carry their offset.
    #[serde(default)]
    pub json_timezone: String,
    /// `json_strict` (default true): one bad object in an array costs the
    /// whole document; false skips only that object.
    #[serde(default = "yes")]
    pub json_strict: bool,
    /// `collectd_auth_file` (default `"/etc/collectd/auth_file"`): the
    /// `user: password` file for signed and encrypted collectd packets.
    #[serde(default)]
    pub collectd_auth_file: Option<String>,
    /// `collectd_security_level` (default `"none"`): `none`, `sign` or
    /// `encrypt`, the least protection a collectd value list needs.
    #[serde(default)]
    pub collectd_security_level: Option<String>,
    /// `collectd_typesdb` (default none): collectd types.db files.
    #[serde(default)]
    pub collectd_typesdb: Vec<String>,
    /// `collectd_parse_multivalue` (default `"split"`): `split` or `join`.
    #[serde(default)]
    pub collectd_parse_multivalue: Option<String>,
    /// `prometheus_metric_version` (default 2): the shape of remote write
    /// samples, 1 (measurement = metric name, field `value`) or 2
    /// (measurement `prometheus_remote_write`, field = metric name).
    #[serde(default)]
    pub prometheus_metric_version: Option<u8>,
    /// `templates` (default none; graphite): Telegraf's graphite templates,
    /// `[filter] template [tags]`, turning a path into a measurement, tags
    /// and a field.
    #[serde(default)]
    pub templates: Vec<String>,
    /// `separator` (default `"."`; graphite): joins template parts of one
    /// kind.
    #[serde(default = "dot")]
    pub separator: String,
}

fn dot() -> String {
    ".".into()
}

fn default_max_tags() -> usize {
    1000
}

fn default_max_fields() -> usize {
    10_000
}

fn yes() -> bool {
    true
}

impl Default for ParserConfig {
    fn default() -> Self {
        // An empty table reads as the defaults; the table type says so.
        toml::Value::Table(toml::Table::new())
            .try_into()
            .unwrap_or_else(|_| unreachable!("every parser key has a default"))
    }
}

impl SharedKeys for ParserConfig {
    const KEYS: &'static [&'static str] = &[
        "data_format",
        "influx_timestamp_precision",
        "influx_parser_type",
        "influx_max_tags",
        "influx_max_fields",
        "json_query",
        "tag_keys",
        "json_string_fields",
        "json_name_key",
        "json_time_key",
        "json_time_format",
        "json_timezone",
        "json_strict",
        "collectd_auth_file",
        "collectd_security_level",
        "collectd_typesdb",
        "collectd_parse_multivalue",
        "prometheus_metric_version",
        "templates",
        "separator",
    ];
}

impl ParserConfig {
    /// What the types cannot say. Pure.
    pub fn validate(&self) -> Result<()> {
        if self.data_format == DataFormat::Collectd {
            // Pure: types.db files are read by `build`.
            return self.collectd_keys().settings().map(drop);
        }
        self.build("validate").map(drop)
    }

    /// The collectd keys of the table.
    fn collectd_keys(&self) -> collectd::Keys {
        collectd::Keys {
            collectd_auth_file: self.collectd_auth_file.clone(),
            collectd_security_level: self.collectd_security_level.clone(),
            collectd_typesdb: self.collectd_typesdb.clone(),
            collectd_parse_multivalue: self.collectd_parse_multivalue.clone(),
        }
    }

    /// The parser; metrics without a name of their own (JSON without
    /// `json_name_key`) are called `name`, the input's name in Telegraf.
    pub fn build(&self, name: &str) -> Result<Parser> {
        let kind = match self.data_format {
            DataFormat::Influx => {
                let precision = match self.influx_timestamp_precision.as_deref() {
                    None | Some("" | "1ns" | "ns") => Precision::Nanoseconds,
                    Some("1us" | "us") => Precision::Microseconds,
                    Some("1ms" | "ms") => Precision::Milliseconds,
                    Some("1s" | "s") => Precision::Seconds,
                    Some(other) => anyhow::bail!(
                        "influx_timestamp_precision: {other:?} is not one of \"1ns\", \"1us\", \"1ms\", \"1s\""
                    ),
                };
                Kind::Influx(ParseOptions {
                    precision,
                    default_time: 0,
                    max_tags: self.influx_max_tags,
                    max_fields: self.influx_max_fields,
                })
            }
            DataFormat::Json => {
                let time_key = (!self.json_time_key.is_empty()).then(|| self.json_time_key.clone());
                let time_format = match (&time_key, self.json_time_format.as_str()) {
                    (None, _) => None,
                    (Some(_), "") => anyhow::bail!("json_time_format: needed with json_time_key"),
                    (Some(_), layout) => Some(TimeFormat::parse("json_time_format", layout)?),
                };
                Kind::Json(Box::new(JsonParser {
                    query: json::query_path(&self.json_query)?,
                    tag_keys: json::globs("tag_keys", &self.tag_keys)?,
                    string_fields: json::globs("json_string_fields", &self.json_string_fields)?,
                    name_key: (!self.json_name_key.is_empty()).then(|| self.json_name_key.clone()),
                    time_key,
                    time_format,
                    strict: self.json_strict,
                }))
            }
            DataFormat::Graft => Kind::Graft,
            DataFormat::Graphite => {
                Kind::Graphite(GraphiteParser::new(&self.templates, &self.separator)?)
            }
            DataFormat::Collectd => Kind::Collectd(std::sync::Arc::new(collectd::Decoder::load(
                &self.collectd_keys().settings()?,
            )?)),
            DataFormat::PrometheusRemoteWrite => {
                let metric_version = match self.prometheus_metric_version {
                    None | Some(0 | 2) => 2,
                    Some(1) => 1,
                    Some(other) => {
                        anyhow::bail!("prometheus_metric_version: {other} is not 1 or 2")
                    }
                };
                Kind::RemoteWrite(remote::ParseOptions {
                    metric_version,
                    ..remote::ParseOptions::default()
                })
            }
        };
        Ok(Parser {
            kind,
            name: name.to_owned(),
        })
    }
}

/// Reads message bodies in one data format.
#[derive(Debug, Clone)]
pub struct Parser {
    kind: Kind,
    name: String,
}

#[derive(Debug, Clone)]
enum Kind {
    Influx(ParseOptions),
    Json(Box<JsonParser>),
    Graft,
    Collectd(std::sync::Arc<collectd::Decoder>),
    RemoteWrite(remote::ParseOptions),
    Graphite(GraphiteParser),
}

/// What one body gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Metrics added to the batch.
    pub metrics: usize,
    /// Lines (line protocol), series (remote write) or whole bodies (JSON,
    /// graft) skipped.
    pub malformed: usize,
    /// Why the first of them was skipped.
    pub first_error: Option<String>,
    /// Of them, those skipped for passing a limit (remote write: series
    /// with more labels than allowed).
    pub limit_hits: usize,
    /// collectd: the whole report, for the receiver's collectd counters.
    pub collectd: Option<Box<collectd::Report>>,
}

impl Parser {
    /// The format read.
    pub fn format(&self) -> DataFormat {
        match self.kind {
            Kind::Influx(_) => DataFormat::Influx,
            Kind::Json(_) => DataFormat::Json,
            Kind::Graft => DataFormat::Graft,
            Kind::Collectd(_) => DataFormat::Collectd,
            Kind::RemoteWrite(_) => DataFormat::PrometheusRemoteWrite,
            Kind::Graphite(_) => DataFormat::Graphite,
        }
    }

    /// Bound what one body may become once decompressed (a snappy remote
    /// write body sent without `Content-Encoding`); 32 MiB by default.
    pub fn with_max_body(mut self, bytes: usize) -> Self {
        if let Kind::RemoteWrite(options) = &mut self.kind {
            options.max_decompressed_bytes = bytes;
        }
        self
    }

    /// Skip remote write series with more than `labels` labels (256 by
    /// default).
    pub fn with_max_labels(mut self, labels: usize) -> Self {
        if let Kind::RemoteWrite(options) = &mut self.kind {
            options.max_labels = labels;
        }
        self
    }

    /// Read `body` into `out`; metrics without a time get `now_ns`.
    pub fn parse(&self, body: &[u8], now_ns: i64, out: &mut BatchBuilder) -> Parsed {
        let before = out.len();
        let failed = |e: String| Parsed {
            metrics: 0,
            malformed: 1,
            first_error: Some(e),
            ..Parsed::default()
        };
        match &self.kind {
            Kind::Influx(options) => {
                let options = ParseOptions {
                    default_time: now_ns,
                    ..options.clone()
                };
                let errors = parse_bytes_into(body, &options, out);
                Parsed {
                    metrics: out.len() - before,
                    malformed: errors.len(),
                    first_error: errors
                        .first()
                        .map(|e| format!("line {}: {}", e.line, e.reason)),
                    ..Parsed::default()
                }
            }
            Kind::Json(parser) => match parser.parse(body, &self.name, now_ns, out) {
                Ok(metrics) => Parsed {
                    metrics,
                    ..Parsed::default()
                },
                Err(e) => failed(format!("JSON: {e:#}")),
            },
            Kind::Graft => {
                let Some(encoded) = body.strip_prefix(GRAFT_MAGIC.as_slice()) else {
                    return failed("not a graft batch (no magic)".into());
                };
                match graft_core::batch::codec::decode(encoded) {
                    Ok(batch) => {
                        let metrics = batch.len();
                        if out.is_empty() {
                            // The common case: the decoded batch is the batch.
                            *out = BatchBuilder::from_batch(batch);
                        } else {
                            batch.iter().for_each(|m| out.push(m));
                        }
                        Parsed {
                            metrics,
                            ..Parsed::default()
                        }
                    }
                    Err(e) => failed(format!("graft batch: {e}")),
                }
            }
            Kind::Collectd(decoder) => {
                let r = decoder.decode(body, now_ns, out);
                // As Telegraf (go-collectd): value lists refused by the
                // security level or missing from types.db are skipped, not
                // an error; only unreadable parts and limit hits are.
                Parsed {
                    metrics: r.metrics,
                    malformed: r.malformed + r.limit_hits(),
                    limit_hits: 0,
                    first_error: r.first_error.clone().map(|e| format!("collectd: {e}")),
                    collectd: Some(Box::new(r)),
                }
            }
            Kind::RemoteWrite(options) => match remote::parse_any(body, options, now_ns, out) {
                Ok(r) => Parsed {
                    metrics: r.metrics,
                    malformed: r.bad_series,
                    first_error: r.first_error,
                    limit_hits: r.labels_limit_hits,
                    collectd: None,
                },
                Err(e) => Parsed {
                    metrics: out.len() - before,
                    malformed: 1,
                    first_error: Some(format!("remote write: {e}")),
                    limit_hits: usize::from(matches!(
                        e,
                        crate::prometheus::remote::RemoteError::TooLarge { .. }
                    )),
                    collectd: None,
                },
            },
            Kind::Graphite(parser) => parser.parse(body, now_ns, out),
        }
    }
}
