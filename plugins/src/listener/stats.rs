//! The counters a listener keeps of the limits peers hit, shown by
//! `inputs.internal` in the input's `internal_gather` fields (names in
//! `docs/instrumentation.md`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use graft_api::MetricSink;

/// One counter.
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// Add one.
    pub fn hit(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// The count so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Where a listener's counters live: the sink's named counters, so the
/// host reports them beside `parse_errors`.
fn counter(sink: &MetricSink, name: &'static str) -> Counter {
    Counter(sink.counter(name))
}

/// Limit hits of the connection and framing layer.
#[derive(Debug, Clone, Default)]
pub struct ListenerStats {
    /// `connections_limit_hits`: connections refused at the listener's own
    /// maximum (`max_connections`, `max_tcp_connections`).
    pub connections_limit_hits: Counter,
    /// `process_connections_limit_hits`: connections refused because the
    /// process-wide budget had no slot left for this listener.
    pub process_connections_limit_hits: Counter,
    /// `line_size_limit_hits`: lines dropped for being over the maximum.
    pub line_size_limit_hits: Counter,
    /// `datagram_size_limit_hits`: datagrams dropped for being over the
    /// maximum.
    pub datagram_size_limit_hits: Counter,
    /// `idle_timeouts`: connections closed after `read_timeout` idle.
    pub idle_timeouts: Counter,
}

impl ListenerStats {
    /// The counters, registered with the sink (reported at zero until hit).
    pub fn for_sink(sink: &MetricSink) -> Self {
        Self {
            connections_limit_hits: counter(sink, "connections_limit_hits"),
            process_connections_limit_hits: counter(sink, "process_connections_limit_hits"),
            line_size_limit_hits: counter(sink, "line_size_limit_hits"),
            datagram_size_limit_hits: counter(sink, "datagram_size_limit_hits"),
            idle_timeouts: counter(sink, "idle_timeouts"),
        }
    }
}

/// Limit hits of the pickle receiver.
#[derive(Debug, Clone, Default)]
pub struct PickleStats {
    /// `frame_size_limit_hits`: frames over `max_frame_size`, read past.
    pub frame_size_limit_hits: Counter,
    /// `pickle_depth_limit_hits`: frames nested deeper than allowed.
    pub pickle_depth_limit_hits: Counter,
    /// `pickle_memo_entries_limit_hits`: frames with too many memo entries.
    pub pickle_memo_entries_limit_hits: Counter,
    /// `pickle_decoded_size_limit_hits`: frames that would decode to more
    /// than allowed (shared references counted each time they are used).
    pub pickle_decoded_size_limit_hits: Counter,
    /// `pickle_metrics_limit_hits`: frames carrying more points than
    /// allowed.
    pub pickle_metrics_limit_hits: Counter,
}

impl PickleStats {
    /// The counters, registered with the sink.
    pub fn for_sink(sink: &MetricSink) -> Self {
        Self {
            frame_size_limit_hits: counter(sink, "frame_size_limit_hits"),
            pickle_depth_limit_hits: counter(sink, "pickle_depth_limit_hits"),
            pickle_memo_entries_limit_hits: counter(sink, "pickle_memo_entries_limit_hits"),
            pickle_decoded_size_limit_hits: counter(sink, "pickle_decoded_size_limit_hits"),
            pickle_metrics_limit_hits: counter(sink, "pickle_metrics_limit_hits"),
        }
    }
}
