//! Prometheus: the names, exposition formats and remote-write messages that
//! `inputs.prometheus`, `outputs.prometheus_client`, the
//! `prometheusremotewrite` data format and their tests share.
//!
//! - [`naming`]: Telegraf's rules from a measurement and field to a metric
//!   name, and the sanitising of metric and label names
//! - [`remote`], [`remote_serialize`], [`remote_parse`]: remote write 1.0
//!   (prompb messages, snappy, bounded reading) and the
//!   `prometheusremotewrite` data format's two directions

pub mod naming;
pub mod remote;
pub mod remote_parse;
pub mod remote_serialize;
