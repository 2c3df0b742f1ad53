//! `graft run --once` and `graft test`: the topology in [`Mode::Once`].
//! Every input that gathers gathers once, then everything stops in order,
//! so that processors, aggregators and outputs run exactly as on a normal
//! stop: aggregators push their period, outputs flush a last time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use async_trait::async_trait;
use graft_api::{CallError, Output};
use graft_core::{Batch, WriteError};

use super::{Mode, Topology};
use crate::config::Config;
use crate::config::agent::MAX_COUNT;
use crate::filter::MetricFilter;
use crate::kind::Kind;
use crate::pipeline::buffer::OutputBuffer;
use crate::pipeline::output::RunningOutput;
use crate::stats::{PluginId, PluginStats};

/// Gather once, deliver to the outputs, flush, stop.
pub async fn run_once(config: Config) -> Result<()> {
    Topology::start(config, Mode::Once).await?.shutdown().await
}

/// Gather once, process and aggregate, and return everything that would
/// reach the outputs (aggregates last). The configured outputs are built,
/// so that a broken one fails the test, but never connected.
pub async fn test(config: Config) -> Result<Vec<Batch>> {
    let collected = Arc::new(Mutex::new(Vec::new()));
    let collector = RunningOutput {
        id: PluginId {
            kind: Kind::Output,
            name: "test".into(),
            alias: None,
        },
        filter: MetricFilter::default(),
        plugin: Box::new(Collector(collected.clone())),
        // Nothing is dropped: the collector holds what one gather makes.
        buffer: Arc::new(OutputBuffer::memory(
            MAX_COUNT,
            config.agent.metric_batch_size,
        )),
        buffer_spec: crate::config::buffer::BufferSpec::Memory,
        flush_interval: Duration::from_secs(3600),
        flush_jitter: Duration::ZERO,
        batch_size: config.agent.metric_batch_size,
        // Not registered: `inputs.internal` reports configured plugins only.
        stats: Arc::new(PluginStats::default()),
        span: tracing::Span::none(),
    };
    Topology::start_with(config, Mode::Once, Some(collector))
        .await?
        .shutdown()
        .await?;
    let batches = std::mem::take(&mut *collected.lock().expect("collector lock"));
    Ok(batches)
}

/// An output keeping every batch it is given.
struct Collector(Arc<Mutex<Vec<Batch>>>);

#[async_trait]
impl Output for Collector {
    async fn write(&mut self, batch: &Batch) -> Result<(), CallError<WriteError>> {
        self.0.lock().expect("collector lock").push(batch.clone());
        Ok(())
    }
}
