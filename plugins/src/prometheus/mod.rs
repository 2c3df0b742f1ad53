//! Prometheus: the names, exposition formats and remote-write messages that
//! `inputs.prometheus`, `outputs.prometheus_client`, the
//! `prometheusremotewrite` data format and their tests share.
//!
//! - [`naming`]: Telegraf's rules from a measurement and field to a metric
//!   name, and the sanitising of metric and label names
//! - [`expose`]: metrics kept as metric families for scraping, written in
//!   the text format or OpenMetrics (`outputs.prometheus_client`)

pub mod expose;
pub mod naming;
