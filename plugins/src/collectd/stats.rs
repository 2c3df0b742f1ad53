//! The counters of a collectd receiver, shown by `inputs.internal` in the
//! input's `internal_gather` fields (names in `docs/instrumentation.md`),
//! and the log line for each sender's first refused packet of each kind.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use graft_api::MetricSink;

use super::wire::Report;

/// Senders remembered for once-per-sender logging; past this many, new
/// senders are counted but not logged.
const MAX_LOGGED_SENDERS: usize = 1024;

/// The counters, registered with the sink (reported at zero until hit).
#[derive(Clone)]
pub struct CollectdStats {
    sink: MetricSink,
    insecure_packets: Arc<AtomicU64>,
    signature_failures: Arc<AtomicU64>,
    decrypt_failures: Arc<AtomicU64>,
    unknown_types: Arc<AtomicU64>,
    packet_size_limit_hits: Arc<AtomicU64>,
    parts_limit_hits: Arc<AtomicU64>,
    values_limit_hits: Arc<AtomicU64>,
    string_size_limit_hits: Arc<AtomicU64>,
    nesting_limit_hits: Arc<AtomicU64>,
    logged: Arc<std::sync::Mutex<HashSet<(IpAddr, &'static str)>>>,
}

impl CollectdStats {
    /// Register the counters with `sink`.
    pub fn for_sink(sink: &MetricSink) -> Self {
        Self {
            insecure_packets: sink.counter("collectd_insecure_packets"),
            signature_failures: sink.counter("collectd_signature_failures"),
            decrypt_failures: sink.counter("collectd_decrypt_failures"),
            unknown_types: sink.counter("collectd_unknown_types"),
            packet_size_limit_hits: sink.counter("collectd_packet_size_limit_hits"),
            parts_limit_hits: sink.counter("collectd_parts_limit_hits"),
            values_limit_hits: sink.counter("collectd_values_limit_hits"),
            string_size_limit_hits: sink.counter("collectd_string_size_limit_hits"),
            nesting_limit_hits: sink.counter("collectd_nesting_limit_hits"),
            sink: sink.clone(),
            logged: Arc::default(),
        }
    }

    /// Count what one packet from `peer` cost, and log it when it is this
    /// sender's first of its kind.
    pub fn record(&self, report: &Report, peer: IpAddr) {
        self.count(report);
        let unreadable = report.malformed + report.unknown_types + report.limit_hits();
        if unreadable > 0 {
            self.sink.malformed(unreadable as u64);
        }
        let dropped = report.dropped();
        if dropped == 0 {
            return;
        }
        let kind = kind_of(report);
        let first = {
            let mut logged = self.logged.lock().unwrap_or_else(|e| e.into_inner());
            logged.len() < MAX_LOGGED_SENDERS && logged.insert((peer, kind))
        };
        if first {
            tracing::warn!(
                %peer,
                kind,
                dropped,
                error = report.first_error.as_deref().unwrap_or(""),
                "collectd packet refused in part or whole (further ones from this sender are counted, not logged)"
            );
        }
    }

    /// Add what `report` cost to the per-kind counters only (the caller
    /// counts malformed input and logs as its protocol wants).
    pub fn count(&self, report: &Report) {
        let add = |c: &AtomicU64, n: usize| {
            if n > 0 {
                c.fetch_add(n as u64, Ordering::Relaxed);
            }
        };
        add(&self.insecure_packets, usize::from(report.insecure > 0));
        add(&self.signature_failures, report.bad_signatures);
        add(&self.decrypt_failures, report.decrypt_failures);
        add(&self.unknown_types, report.unknown_types);
        add(&self.packet_size_limit_hits, report.packet_size_limit_hits);
        add(&self.parts_limit_hits, report.parts_limit_hits);
        add(&self.values_limit_hits, report.values_limit_hits);
        add(&self.string_size_limit_hits, report.string_size_limit_hits);
        add(&self.nesting_limit_hits, report.nesting_limit_hits);
    }
}

/// The counter a refused packet is logged under.
fn kind_of(r: &Report) -> &'static str {
    if r.bad_signatures > 0 {
        "signature"
    } else if r.decrypt_failures > 0 {
        "decrypt"
    } else if r.insecure > 0 {
        "insecure"
    } else if r.limit_hits() > 0 {
        "limit"
    } else if r.unknown_types > 0 {
        "unknown_type"
    } else {
        "malformed"
    }
}
