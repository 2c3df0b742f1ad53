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
    /// Faults of a WASM plugin, in total and by kind.
    pub faults: AtomicU64,
    pub faults_trap: AtomicU64,
    pub faults_deadline: AtomicU64,
    pub faults_memory: AtomicU64,
    pub faults_fuel: AtomicU64,
    pub faults_contract: AtomicU64,
    pub faults_start: AtomicU64,
    /// WASM instances re-created after a fault.
    pub restarts: AtomicU64,
    /// WASM instances replaced because of `limits.recycle_memory`.
    pub recycles: AtomicU64,
    /// Attempts to touch something the plugin's permissions do not grant.
    pub denied: AtomicU64,
    /// Log lines of a plugin dropped by its rate limit.
    pub log_suppressed: AtomicU64,
    pub call_time_ns: AtomicU64,
    pub buffer_size: AtomicU64,
    pub buffer_limit: AtomicU64,
    /// Lines, frames or packets a service input could not read.
    pub parse_errors: Arc<AtomicU64>,
    /// A plugin's own counters (limit hits, timeouts), by name.
    pub counters: Arc<graft_api::counters::Counters>,
}

impl PluginStats {
    /// Add `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Count a fault of `kind` (a call skipped while an instance waits to
    /// restart is no new fault).
    pub fn fault(&self, kind: graft_api::FaultKind) {
        use graft_api::FaultKind as K;
        if kind == K::Restarting {
            return;
        }
        Self::add(&self.faults, 1);
        Self::add(
            match kind {
                K::Trap => &self.faults_trap,
                K::Deadline => &self.faults_deadline,
                K::Memory => &self.faults_memory,
                K::Fuel => &self.faults_fuel,
                K::Contract => &self.faults_contract,
                K::Start | K::Restarting => &self.faults_start,
            },
            1,
        );
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

    /// Forget the plugins whose counters `keep` refuses (gone in a reload).
    pub fn retain(&self, keep: impl Fn(&Arc<PluginStats>) -> bool) {
        self.entries
            .lock()
            .expect("stats lock")
            .retain(|(_, s)| keep(s));
    }

    /// A snapshot of every plugin's counters.
    pub fn snapshot(&self) -> Vec<(PluginId, Arc<PluginStats>)> {
        self.entries.lock().expect("stats lock").clone()
    }
}
