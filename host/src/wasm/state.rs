//! What each plugin's `Store` holds: its WASI context (only what its
//! permissions grant), its resource limiter, and the host API it may call.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::bindings::{host_api, types};
use super::console::Console;
use super::denials::{Denials, PerSecond};
use super::http_guard::HttpHooks;
use crate::stats::PluginStats;

/// The per-store state of one plugin instance.
pub struct HostState {
    pub(crate) name: Arc<str>,
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) console: Console,
    pub(crate) http: WasiHttpCtx,
    pub(crate) http_hooks: HttpHooks,
    /// Resource handles of the empty root mount (see `sandbox`).
    pub(crate) empty_roots: Vec<u32>,
    /// Resource handles and names of the granted directories' mounts.
    pub(crate) granted_dirs: Vec<(u32, String)>,
    pub(crate) denials: Arc<Denials>,
    /// When the call in progress must end (see `instance`).
    pub(crate) call_deadline: Instant,
    log_window: PerSecond,
    stats: Arc<PluginStats>,
}

impl HostState {
    pub(crate) fn new(
        name: Arc<str>,
        wasi: WasiCtx,
        limiter: Limiter,
        console: Console,
        http_hooks: HttpHooks,
        stats: Arc<PluginStats>,
    ) -> Self {
        Self {
            name,
            wasi,
            table: ResourceTable::new(),
            limiter,
            console,
            denials: http_hooks.denials.clone(),
            http: WasiHttpCtx::new(),
            http_hooks,
            empty_roots: Vec::new(),
            granted_dirs: Vec::new(),
            call_deadline: Instant::now(),
            log_window: PerSecond::new(LOG_LINES_PER_SECOND),
            stats,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_hooks,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps a plugin's memory and records how far it grew.
#[derive(Debug)]
pub struct Limiter {
    /// Largest size any one linear memory may reach, in bytes.
    pub memory_cap: usize,
    /// Largest size a linear memory reached, in bytes.
    pub memory_peak: usize,
    /// Whether a growth was refused since the last check.
    pub memory_denied: bool,
}

impl Limiter {
    pub(crate) fn new(memory_cap: usize) -> Self {
        Self {
            memory_cap,
            memory_peak: 0,
            memory_denied: false,
        }
    }
}

/// Table elements a plugin may have; generous, but not unbounded.
const TABLE_ELEMENTS_CAP: usize = 1 << 20;

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_cap {
            self.memory_denied = true;
            return Ok(false);
        }
        self.memory_peak = self.memory_peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= TABLE_ELEMENTS_CAP)
    }
}

/// At most this many log lines per second per instance; the rest are
/// counted and reported once the second is over.
const LOG_LINES_PER_SECOND: u32 = 200;
/// Longest log message kept, in bytes.
const LOG_LINE_MAX: usize = 4096;

impl host_api::Host for HostState {
    fn log(&mut self, level: host_api::Level, mut message: String) {
        let (fits, suppressed) = self.log_window.admit();
        if suppressed > 0 {
            tracing::warn!(plugin = %self.name, suppressed,
                "plugin logged more than {LOG_LINES_PER_SECOND} lines a second; the rest were dropped");
        }
        if !fits {
            PluginStats::add(&self.stats.log_suppressed, 1);
            return;
        }
        if message.len() > LOG_LINE_MAX {
            let mut cut = LOG_LINE_MAX;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str(" [truncated]");
        }
        let plugin = &*self.name;
        match level {
            host_api::Level::Trace => tracing::trace!(plugin, "{message}"),
            host_api::Level::Debug => tracing::debug!(plugin, "{message}"),
            host_api::Level::Info => tracing::info!(plugin, "{message}"),
            host_api::Level::Warn => tracing::warn!(plugin, "{message}"),
            host_api::Level::Error => tracing::error!(plugin, "{message}"),
        }
    }

    fn plugin_name(&mut self) -> String {
        self.name.to_string()
    }

    fn now(&mut self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0)
    }
}

impl types::Host for HostState {}
