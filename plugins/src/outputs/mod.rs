//! Built-in outputs.

pub mod file;
mod influx_http;
pub mod influxdb;
pub mod influxdb_v2;
