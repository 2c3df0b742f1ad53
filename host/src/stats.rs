//! Self-metrics: counters every running plugin keeps (gathered, written,
//! dropped, errors, faults, ...), collected in one registry that the
//! `internal` input and the logs read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Counters of one running plugin. Names follow Telegraf's `internal_*`.
#[derive(Debug, Default)]
pub struct PluginStats {
    pub metrics_gathered: AtomicU64,
    pub metrics_processed: AtomicU64,
    pub metrics_added: AtomicU64,
    pub metrics_written: AtomicU64,
    pub metrics_dropped: AtomicU64,
    pub metrics_filtered: AtomicU64,
    pub metrics_rejected: AtomicU64,
    pub errors: AtomicU64,
    pub faults: AtomicU64,
    pub call_time_ns: AtomicU64,
    pub buffer_size: AtomicU64,
    pub buffer_limit: AtomicU64,
    /// Lines, frames or packets a service input could not read.
    pub parse_errors: Arc<AtomicU64>,
}

impl PluginStats {
    /// Add `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Read a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Where a plugin is: kind, name, alias.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginId {
    /// `inputs`, `processors`, `aggregators` or `outputs`.
    pub kind: &'static str,
    /// `mem`, `file`, `wasm`...
    pub name: String,
    /// The `alias` option, if any.
    pub alias: Option<String>,
}

impl std::fmt::Display for PluginId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.alias {
            Some(a) => write!(f, "{}.{}::{a}", self.kind, self.name),
            None => write!(f, "{}.{}", self.kind, self.name),
        }
    }
}

/// Every running plugin's counters.
#[derive(Debug, Default)]
pub struct StatsRegistry {
    entries: Mutex<Vec<(PluginId, Arc<PluginStats>)>>,
}

impl StatsRegistry {
    /// Counters for a new plugin.
    pub fn register(&self, id: PluginId) -> Arc<PluginStats> {
        let stats = Arc::new(PluginStats::default());
        self.entries
            .lock()
            .expect("stats lock")
            .push((id, stats.clone()));
        stats
    }

    /// A snapshot of every plugin's counters.
    pub fn snapshot(&self) -> Vec<(PluginId, Arc<PluginStats>)> {
        self.entries.lock().expect("stats lock").clone()
    }
}
