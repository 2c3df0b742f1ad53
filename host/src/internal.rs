//! `inputs.internal`: graft's own metrics, in the shape of Telegraf's
//! `internal` input so that existing dashboards read them: `internal_agent`
//! (totals), `internal_gather` per input, `internal_process` per processor,
//! `internal_aggregate` per aggregator, `internal_write` per output, plus
//! `internal_memstats` with the agent's resident memory.

use std::sync::Arc;

use anyhow::Result;
use async_trait::async_trait;
use graft_api::{CallError, Input};
use graft_core::{Batch, BatchBuilder, MetricBuilder};
use serde::Deserialize;

use crate::stats::{PluginId, PluginStats, StatsRegistry};

/// `[[inputs.internal]]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `collect_memstats` (default true): emit `internal_memstats`.
    #[serde(default = "yes")]
    pub collect_memstats: bool,
}

fn yes() -> bool {
    true
}

/// The `internal` input.
pub struct Internal {
    config: Config,
    stats: Arc<StatsRegistry>,
}

/// Build from the plugin's table and the agent's counters.
pub fn build(table: toml::Table, stats: Arc<StatsRegistry>) -> Result<Box<dyn Input>> {
    let config: Config = graft_plugins::config::parse(table)?;
    Ok(Box::new(Internal { config, stats }))
}

fn tagged<'a>(
    b: &'a mut BatchBuilder,
    name: &str,
    ts: i64,
    key: &str,
    id: &PluginId,
) -> MetricBuilder<'a> {
    let mut m = b.metric(name, ts);
    m.tag(key, &id.name);
    if let Some(alias) = &id.alias {
        m.tag("alias", alias);
    }
    m
}

/// The sandbox's counters, on the metric of every WASM plugin: faults by
/// kind, instance restarts, denied accesses, suppressed log lines.
fn sandbox(m: &mut MetricBuilder<'_>, id: &PluginId, s: &PluginStats) {
    if id.name != crate::registry::WASM {
        return;
    }
    let get = PluginStats::get;
    m.field("faults_trap", get(&s.faults_trap) as i64)
        .field("faults_deadline", get(&s.faults_deadline) as i64)
        .field("faults_memory", get(&s.faults_memory) as i64)
        .field("faults_fuel", get(&s.faults_fuel) as i64)
        .field("faults_contract", get(&s.faults_contract) as i64)
        .field("faults_start", get(&s.faults_start) as i64)
        .field("restarts", get(&s.restarts) as i64)
        .field("recycles", get(&s.recycles) as i64)
        .field("denied", get(&s.denied) as i64)
        .field("log_suppressed", get(&s.log_suppressed) as i64);
}

/// Resident memory of this process, in bytes.
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

impl Internal {
    /// One sample of every counter.
    pub fn sample(&self, ts: i64) -> Batch {
        let get = PluginStats::get;
        let mut b = BatchBuilder::new();
        let (mut gathered, mut written, mut dropped, mut rejected) = (0, 0, 0, 0);
        let (mut gather_errors, mut write_errors) = (0, 0);
        for (id, s) in self.stats.snapshot() {
            match id.kind {
                "inputs" => {
                    gathered += get(&s.metrics_gathered);
                    gather_errors += get(&s.errors);
                    let mut m = tagged(&mut b, "internal_gather", ts, "input", &id);
                    m.field("metrics_gathered", get(&s.metrics_gathered) as i64)
                        .field("gather_time_ns", get(&s.call_time_ns) as i64)
                        .field("errors", get(&s.errors) as i64)
                        .field("faults", get(&s.faults) as i64)
                        .field("parse_errors", get(&s.parse_errors) as i64);
                    for (name, n) in s.counters.snapshot() {
                        m.field(name, n as i64);
                    }
                    sandbox(&mut m, &id, &s);
                }
                "processors" => {
                    let mut m = tagged(&mut b, "internal_process", ts, "process", &id);
                    m.field("metrics_processed", get(&s.metrics_processed) as i64)
                        .field("metrics_dropped", get(&s.metrics_dropped) as i64)
                        .field("process_time_ns", get(&s.call_time_ns) as i64)
                        .field("errors", get(&s.errors) as i64)
                        .field("faults", get(&s.faults) as i64);
                    sandbox(&mut m, &id, &s);
                }
                "aggregators" => {
                    let mut m = tagged(&mut b, "internal_aggregate", ts, "aggregator", &id);
                    m.field("metrics_pushed", get(&s.metrics_gathered) as i64)
                        .field("metrics_processed", get(&s.metrics_processed) as i64)
                        .field("metrics_filtered", get(&s.metrics_filtered) as i64)
                        .field("errors", get(&s.errors) as i64)
                        .field("faults", get(&s.faults) as i64);
                    sandbox(&mut m, &id, &s);
                }
                _ => {
                    written += get(&s.metrics_written);
                    dropped += get(&s.metrics_dropped);
                    rejected += get(&s.metrics_rejected);
                    write_errors += get(&s.errors);
                    let mut m = tagged(&mut b, "internal_write", ts, "output", &id);
                    m.field("metrics_added", get(&s.metrics_added) as i64)
                        .field("metrics_written", get(&s.metrics_written) as i64)
                        .field("metrics_dropped", get(&s.metrics_dropped) as i64)
                        .field("metrics_rejected", get(&s.metrics_rejected) as i64)
                        .field("metrics_filtered", get(&s.metrics_filtered) as i64)
                        .field("buffer_size", get(&s.buffer_size) as i64)
                        .field("buffer_limit", get(&s.buffer_limit) as i64)
                        .field("write_time_ns", get(&s.call_time_ns) as i64)
                        .field("errors", get(&s.errors) as i64)
                        .field("faults", get(&s.faults) as i64);
                    sandbox(&mut m, &id, &s);
                }
            }
        }
        b.metric("internal_agent", ts)
            .tag("version", env!("CARGO_PKG_VERSION"))
            .field("metrics_gathered", gathered as i64)
            .field("metrics_written", written as i64)
            .field("metrics_dropped", dropped as i64)
            .field("metrics_rejected", rejected as i64)
            .field("gather_errors", gather_errors as i64)
            .field("write_errors", write_errors as i64);
        if self.config.collect_memstats
            && let Some(rss) = rss_bytes()
        {
            b.metric("internal_memstats", ts)
                .field("rss_bytes", rss as i64);
        }
        b.finish()
    }
}

#[async_trait]
impl Input for Internal {
    async fn gather(&mut self) -> Result<Batch, CallError> {
        Ok(self.sample(graft_plugins::inputs::now_ns()))
    }
}
