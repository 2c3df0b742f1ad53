//! Built-in outputs.

pub mod file;
pub mod graphite;
pub mod http;
mod influx_http;
pub mod influxdb;
pub mod influxdb_v2;
pub mod mqtt;
pub mod nats;
pub mod opentelemetry;
pub mod prometheus_client;
