//! Prometheus: the names, exposition formats and remote-write messages that
//! `inputs.prometheus`, `outputs.prometheus_client`, the
//! `prometheusremotewrite` data format and their tests share.
//!
//! - [`naming`]: Telegraf's rules from a measurement and field to a metric
//!   name, and the sanitising of metric and label names

pub mod naming;
