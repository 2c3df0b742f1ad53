//! Built-in inputs.

pub mod carbon;
pub mod cpu;
pub mod disk;
pub mod diskio;
pub mod exec;
pub mod execd;
pub mod http;
pub mod http_client;
pub mod http_listener_v2;
pub mod http_response;
pub mod influxdb_listener;
pub mod interrupts;
pub mod kernel;
pub mod linux_sysctl_fs;
pub mod mem;
pub mod mqtt_consumer;
pub mod mysql;
pub mod nats_consumer;
pub mod net;
pub mod netstat;
pub mod nginx;
pub mod nstat;
pub mod opentelemetry;
pub mod postgresql;
pub mod processes;
pub mod procstat;
pub mod prometheus;
pub mod redis;
pub mod statsd;
pub mod swap;
pub mod system;
pub mod tail;

use std::path::PathBuf;

/// `$HOST_PROC` (default `/proc`), as Telegraf reads it, joined with `rel`.
pub fn proc_path(rel: &str) -> PathBuf {
    std::env::var_os("HOST_PROC")
        .map_or_else(|| PathBuf::from("/proc"), PathBuf::from)
        .join(rel)
}

/// `$HOST_SYS` (default `/sys`) joined with `rel`.
pub fn sys_path(rel: &str) -> PathBuf {
    std::env::var_os("HOST_SYS")
        .map_or_else(|| PathBuf::from("/sys"), PathBuf::from)
        .join(rel)
}

/// Wall-clock now in nanoseconds.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Read a file, naming it in the error.
pub fn read(path: &std::path::Path) -> anyhow::Result<String> {
    use anyhow::Context;
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// A gather that failed: the plugin's returned error, with the whole chain.
pub fn failed(e: anyhow::Error) -> graft_api::CallError {
    graft_api::CallError::Returned(graft_core::PluginError::new(format!("{e:#}")))
}
