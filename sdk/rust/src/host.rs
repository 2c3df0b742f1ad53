//! What the host offers a plugin: logging, its own name, the clock.

use crate::bindings::wit_host;

/// Log levels, as graft's log knows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something is off but the plugin goes on.
    Warn,
    /// Something failed.
    Error,
}

/// Write a line to graft's log, attributed to this plugin.
pub fn log(level: Level, message: &str) {
    let level = match level {
        Level::Trace => wit_host::Level::Trace,
        Level::Debug => wit_host::Level::Debug,
        Level::Info => wit_host::Level::Info,
        Level::Warn => wit_host::Level::Warn,
        Level::Error => wit_host::Level::Error,
    };
    wit_host::log(level, message);
}

/// The plugin's name in graft's configuration (its alias or section).
pub fn plugin_name() -> String {
    wit_host::plugin_name()
}

/// Wall-clock time, nanoseconds since the Unix epoch.
pub fn now() -> i64 {
    wit_host::now()
}
