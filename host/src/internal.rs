//! `inputs.internal`: graft's own metrics, in the shape of Telegraf's
//! `internal` input so that existing dashboards read them: `internal_agent`
//! (totals), `internal_gather` per input, `internal_process` per processor,
//! `internal_aggregate` per aggregator, `internal_write` per output, plus
//! `internal_memstats` with the agent's resident memory.

use std::sync::Arc;

use anyhow::Result;
use async_trait::async_trait;
use graft_api::{CallError, Input};
use graft_core::{Batch, BatchBuilder};
use serde::Deserialize;

use crate::kind::Kind;
use crate::stats::{PluginStats, StatsRegistry};

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

/// Read the plugin's table.
pub fn validate(table: toml::Table) -> Result<Config> {
    graft_plugins::config::parse(table)
}

/// Build from the plugin's table and the agent's counters.
pub fn build(table: toml::Table, stats: Arc<StatsRegistry>) -> Result<Box<dyn Input>> {
    let config = validate(table)?;
    Ok(Box::new(Internal { config, stats }))
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
                Kind::Input => {
                    gathered += get(&s.metrics_gathered);
                    gather_errors += get(&s.errors);
                }
                Kind::Output => {
                    written += get(&s.metrics_written);
                    dropped += get(&s.metrics_dropped);
                    rejected += get(&s.metrics_rejected);
                    write_errors += get(&s.errors);
                }
                Kind::Processor | Kind::Aggregator => {}
            }
            let (measurement, tag) = id.kind.internal_measurement();
            let mut m = b.metric(measurement, ts);
            m.tag(tag, &id.name);
            if let Some(alias) = &id.alias {
                m.tag("alias", alias);
            }
            for (name, n) in s.fields(id.kind, id.is_wasm()) {
                m.field(name, n as i64);
            }
            if id.kind == Kind::Output {
                // A field, not a tag: internal_write keeps Telegraf's tags.
                let disk = get(&s.buffer_disk) == 1;
                m.field("buffer_strategy", if disk { "disk" } else { "memory" });
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
