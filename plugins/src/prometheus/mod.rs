//! Prometheus: the names, exposition formats and remote-write messages that
//! `inputs.prometheus`, `outputs.prometheus_client`, the
//! `prometheusremotewrite` data format and their tests share.
//!
//! - [`naming`]: Telegraf's rules from a measurement and field to a metric
//!   name, and the sanitising of metric and label names
//! - [`remote`], [`remote_serialize`], [`remote_parse`]: remote write 1.0
//!   (prompb messages, snappy, bounded reading) and the
//!   `prometheusremotewrite` data format's two directions
//! - [`expose`]: metrics kept as metric families for scraping, written in
//!   the text format or OpenMetrics (`outputs.prometheus_client`)
//! - [`text`]: the text format 0.0.4 and OpenMetrics text read into metric
//!   families within limits, and Telegraf's `metric_version` 1 and 2
//!   mappings from them to graft metrics

pub mod expose;
pub mod naming;
pub mod remote;
pub mod remote_parse;
pub mod remote_serialize;
pub mod text;
