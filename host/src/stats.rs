//! Self-metrics: counters every running plugin keeps (gathered, written,
//! dropped, errors, faults, ...), collected in one registry that the
//! `internal` input and the logs read. Which counters a plugin reports
//! follows from its kind ([`PluginStats::fields`]); the names follow the
//! rule in `docs/instrumentation.md`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::kind::Kind;

/// Counters of one running plugin. Names follow Telegraf's `internal_*`.
#[derive(Debug, Default)]
pub struct PluginStats {
    /// Metrics an input produced (after its filters).
    pub metrics_gathered: AtomicU64,
    /// Metrics an aggregator pushed at the end of its periods.
    pub metrics_pushed: AtomicU64,
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
    /// An output's disk buffer: 1 when it has one.
    pub buffer_disk: AtomicU64,
    /// Bytes its log takes on disk.
    pub buffer_bytes: AtomicU64,
    /// When the oldest metric waiting was appended (unix ns; 0: none).
    pub buffer_oldest_ns: AtomicU64,
    /// Metrics found in the log at start, not yet written then.
    pub buffer_replayed: AtomicU64,
    /// Records of the log found torn or corrupted at start, skipped.
    pub buffer_corrupt_records: AtomicU64,
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

    /// How long the oldest metric in an output's disk buffer has waited
    /// (0 when none waits).
    pub fn buffer_oldest_age_ms(&self) -> u64 {
        let oldest = Self::get(&self.buffer_oldest_ns);
        if oldest == 0 {
            return 0;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        now.saturating_sub(oldest) / 1_000_000
    }
}

impl PluginStats {
    /// The fields `inputs.internal` reports for a plugin of `kind`, in
    /// order: the kind's own counters, the plugin's own (limit hits,
    /// timeouts), and for WASM plugins the sandbox's.
    pub fn fields(&self, kind: Kind, wasm: bool) -> Vec<(&'static str, u64)> {
        let g = Self::get;
        let mut f = match kind {
            Kind::Input => vec![
                ("metrics_gathered", g(&self.metrics_gathered)),
                ("gather_time_ns", g(&self.call_time_ns)),
                ("errors", g(&self.errors)),
                ("faults", g(&self.faults)),
                ("parse_errors", g(&self.parse_errors)),
            ],
            Kind::Processor => vec![
                ("metrics_processed", g(&self.metrics_processed)),
                ("metrics_dropped", g(&self.metrics_dropped)),
                ("process_time_ns", g(&self.call_time_ns)),
                ("errors", g(&self.errors)),
                ("faults", g(&self.faults)),
            ],
            Kind::Aggregator => vec![
                ("metrics_pushed", g(&self.metrics_pushed)),
                ("metrics_processed", g(&self.metrics_processed)),
                ("metrics_filtered", g(&self.metrics_filtered)),
                ("metrics_dropped", g(&self.metrics_dropped)),
                ("errors", g(&self.errors)),
                ("faults", g(&self.faults)),
            ],
            Kind::Output => vec![
                ("metrics_added", g(&self.metrics_added)),
                ("metrics_written", g(&self.metrics_written)),
                ("metrics_dropped", g(&self.metrics_dropped)),
                ("metrics_rejected", g(&self.metrics_rejected)),
                ("metrics_filtered", g(&self.metrics_filtered)),
                ("buffer_size", g(&self.buffer_size)),
                ("buffer_limit", g(&self.buffer_limit)),
                ("buffer_bytes", g(&self.buffer_bytes)),
                ("buffer_oldest_age_ms", self.buffer_oldest_age_ms()),
                ("buffer_replayed", g(&self.buffer_replayed)),
                ("buffer_corrupt_records", g(&self.buffer_corrupt_records)),
                ("write_time_ns", g(&self.call_time_ns)),
                ("errors", g(&self.errors)),
                ("faults", g(&self.faults)),
            ],
        };
        f.extend(self.counters.snapshot());
        if wasm {
            f.extend([
                ("faults_trap", g(&self.faults_trap)),
                ("faults_deadline", g(&self.faults_deadline)),
                ("faults_memory", g(&self.faults_memory)),
                ("faults_fuel", g(&self.faults_fuel)),
                ("faults_contract", g(&self.faults_contract)),
                ("faults_start", g(&self.faults_start)),
                ("restarts", g(&self.restarts)),
                ("recycles", g(&self.recycles)),
                ("denied", g(&self.denied)),
                ("log_suppressed", g(&self.log_suppressed)),
            ]);
        }
        f
    }
}

/// Where a plugin is: kind, name, alias.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginId {
    pub kind: Kind,
    /// `mem`, `file`, `wasm`...
    pub name: String,
    /// The `alias` option, if any.
    pub alias: Option<String>,
}

impl std::fmt::Display for PluginId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.alias {
            Some(a) => write!(f, "{}.{}::{a}", self.kind.section(), self.name),
            None => write!(f, "{}.{}", self.kind.section(), self.name),
        }
    }
}

impl PluginId {
    /// Whether it is a WASM plugin (`[[kind.wasm]]`).
    pub fn is_wasm(&self) -> bool {
        self.name == crate::kind::WASM
    }

    /// The tracing span every log line of this plugin instance is under,
    /// its `id` the plugin's section and alias as graft names it
    /// everywhere: `plugin{id=inputs.statsd::edge}: ...`.
    pub fn span(&self) -> tracing::Span {
        // At ERROR level, so that the span is on whatever the log filter.
        tracing::error_span!("plugin", id = %self)
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
