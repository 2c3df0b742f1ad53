//! Stopping `graft run` in bounded time, whatever a plugin is doing.
//!
//! On the first SIGTERM or SIGINT the agent stops in order (inputs, the
//! processor chain, aggregators, a last flush of every output). Every WASM
//! call still running or started after [`CALLS_END`] is taken back at that
//! point, so a stuck plugin costs at most that. Should the orderly stop
//! still not be over after [`GRACE`] (a built-in output hanging on its
//! server), or should a second signal arrive, graft logs how many metrics
//! each output still held and exits at once with status 1.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::stats::{PluginStats, StatsRegistry};

/// Longest time from the stop signal to the end of the process.
pub const GRACE: Duration = Duration::from_secs(10);

/// Time from the stop signal after which no WASM call runs any more.
pub const CALLS_END: Duration = Duration::from_secs(8);

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops graft");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Called once the agent has been asked to stop: bound the time the stop
/// may take, and end the process when it is over (or at a second signal).
/// `stats` are the running plugins' counters, to report what is lost.
pub async fn enforce(stats: Arc<StatsRegistry>) {
    let asked = Instant::now();
    crate::wasm::end_calls_by(asked + CALLS_END);
    let reason = tokio::select! {
        () = tokio::time::sleep(GRACE) => "the orderly stop took longer than its grace",
        () = signal() => "a second stop signal arrived",
    };
    let lost = report_lost(&stats);
    tracing::error!(
        grace_s = GRACE.as_secs(),
        waited_ms = asked.elapsed().as_millis() as u64,
        lost,
        "{reason}; exiting now"
    );
    std::process::exit(1);
}

/// Log, per output, the metrics it was given and has not written (those
/// in its buffer and those of a write in progress); their total.
fn report_lost(stats: &StatsRegistry) -> u64 {
    let mut total = 0;
    for (id, s) in stats.snapshot() {
        if id.kind != crate::kind::Kind::Output {
            continue;
        }
        let get = |c| PluginStats::get(c);
        let unwritten = get(&s.metrics_added)
            .saturating_sub(get(&s.metrics_written))
            .saturating_sub(get(&s.metrics_rejected))
            .saturating_sub(get(&s.metrics_dropped));
        // A buffer handed over by a reload was added under another's counters.
        let lost = unwritten.max(get(&s.buffer_size));
        if get(&s.buffer_disk) == 1 {
            // Appended metrics survive the exit; what the log had not
            // appended yet was never acknowledged.
            if lost > 0 {
                tracing::warn!(plugin = %id, waiting = lost,
                    "metrics wait in the output's disk buffer; the next start writes them");
            }
            continue;
        }
        if lost > 0 {
            PluginStats::add(&s.metrics_dropped, lost);
            tracing::warn!(plugin = %id, lost, "metrics still in the output's buffer at exit are lost");
            total += lost;
        }
    }
    total
}
