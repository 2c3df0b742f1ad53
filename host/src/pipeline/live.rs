//! A running agent: its plugins as tasks and threads, started from a built
//! [`Agent`] and stopped in order. Its reload is in [`reload`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::aggregate::{self, AggregatorFeed, RunningAggregator};
use super::build::{self, PluginKey, RunningKeys};
use super::input::RunningInput;
use super::output::{OutputStop, RunningOutput};
use super::process::{self, ChainMsg, ChainSwap, Fanout, OutputSink, Slot};
use super::{Agent, CHAIN_QUEUE, blocking};
use crate::config::{AgentConfig, Config};
use crate::stats::{PluginStats, StatsRegistry};
use crate::wasm::WasmRuntime;

mod reload;

/// Reads the configuration again, for a reload.
pub type ConfigLoader = Arc<dyn Fn() -> Result<Config> + Send + Sync>;

/// A request to reload, and where to say how it went.
pub struct ReloadRequest {
    /// Why (`SIGHUP`, `config.toml changed`), for the log.
    pub reason: String,
    pub reply: Option<oneshot::Sender<Result<ReloadReport, String>>>,
}

impl ReloadRequest {
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            reply: None,
        }
    }
}

/// What a reload did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Plugins left running as they were.
    pub kept: usize,
    /// Plugins started (new or changed).
    pub started: usize,
    /// Plugins stopped (removed or changed).
    pub stopped: usize,
    /// From the request to the new plugins serving.
    pub took: Duration,
}

struct LiveInput {
    key: PluginKey,
    stats: Arc<PluginStats>,
    stop: watch::Sender<bool>,
    /// Ends with the input, stopped, so that it can be started again.
    task: JoinHandle<RunningInput>,
}

struct LiveAggregator {
    key: PluginKey,
    stats: Arc<PluginStats>,
    thread: std::thread::JoinHandle<()>,
}

struct LiveOutput {
    key: PluginKey,
    sink: OutputSink,
    stop: watch::Sender<OutputStop>,
    task: JoinHandle<RunningOutput>,
}

/// The agent while it runs.
pub struct Live {
    settings: AgentConfig,
    runtime: Option<Arc<WasmRuntime>>,
    stats: Arc<StatsRegistry>,
    inputs: Vec<LiveInput>,
    processors: Vec<(PluginKey, Arc<PluginStats>)>,
    aggregators: Vec<LiveAggregator>,
    outputs: Vec<LiveOutput>,
    chain_tx: mpsc::Sender<ChainMsg>,
    chain: Option<std::thread::JoinHandle<()>>,
    fanout: Arc<Fanout>,
}

fn spawn_output(o: RunningOutput, key: PluginKey) -> LiveOutput {
    let sink = o.sink();
    let (stop, stop_rx) = watch::channel(OutputStop::Run);
    LiveOutput {
        key,
        sink,
        stop,
        task: tokio::spawn(o.run(stop_rx)),
    }
}

fn spawn_aggregator(
    agg: RunningAggregator,
    key: PluginKey,
    fanout: &Arc<Fanout>,
    round: bool,
) -> Result<(LiveAggregator, AggregatorFeed)> {
    let (tx, rx) = std::sync::mpsc::sync_channel(CHAIN_QUEUE);
    let fanout = fanout.clone();
    let stats = agg.stats.clone();
    let feed = AggregatorFeed::new(tx, agg.id.clone(), stats.clone());
    let thread = std::thread::Builder::new()
        .name(format!("graft-{}", agg.id))
        .spawn(move || aggregate::run_aggregator(agg, rx, fanout, round))
        .context("starting an aggregator thread")?;
    Ok((LiveAggregator { key, stats, thread }, feed))
}

impl Live {
    /// Start every plugin of a built agent: outputs, aggregators, the
    /// processor chain, then inputs (listeners bind here; a failure names
    /// the input and stops the start).
    pub async fn start(agent: Agent) -> Result<Self> {
        let Agent {
            settings,
            inputs,
            processors,
            aggregators,
            outputs,
            keys,
            stats,
            runtime,
        } = agent;
        let fanout = Arc::new(Fanout::default());
        let outputs: Vec<LiveOutput> = outputs
            .into_iter()
            .zip(keys.outputs)
            .map(|(o, k)| spawn_output(o, k))
            .collect();
        fanout.replace(outputs.iter().map(|o| o.sink.clone()).collect());

        let pass_originals = !aggregators.iter().any(|a| a.drop_original);
        let mut live_aggs = Vec::new();
        let mut senders = Vec::new();
        for (a, k) in aggregators.into_iter().zip(keys.aggregators) {
            let (live, tx) = spawn_aggregator(a, k, &fanout, settings.round_interval)?;
            live_aggs.push(live);
            senders.push(tx);
        }

        let live_procs = processors
            .iter()
            .zip(keys.processors)
            .map(|(p, k)| (k, p.stats.clone()))
            .collect();
        let (chain_tx, rx) = mpsc::channel::<ChainMsg>(CHAIN_QUEUE);
        let chain_fanout = fanout.clone();
        let chain = std::thread::Builder::new()
            .name("graft-processors".into())
            .spawn(move || {
                process::run_chain(rx, processors, senders, pass_originals, chain_fanout);
            })
            .context("starting the processor thread")?;

        let mut live = Self {
            settings,
            runtime,
            stats,
            inputs: Vec::new(),
            processors: live_procs,
            aggregators: live_aggs,
            outputs,
            chain_tx,
            chain: Some(chain),
            fanout,
        };
        for (i, k) in inputs.into_iter().zip(keys.inputs) {
            let id = i.id.clone();
            let input = live
                .spawn_input(i, k)
                .await
                .with_context(|| format!("{id}: starting"))?;
            live.inputs.push(input);
        }
        Ok(live)
    }

    /// Start an input (a listener binds here) and run it.
    async fn spawn_input(&self, mut input: RunningInput, key: PluginKey) -> Result<LiveInput> {
        let fanout = self.fanout.clone();
        input
            .start(Arc::new(move || fanout.undelivered()))
            .await
            .map_err(|e| anyhow!("{e}"))?;
        Ok(self.run_input(input, key))
    }

    /// Run an input already started.
    fn run_input(&self, input: RunningInput, key: PluginKey) -> LiveInput {
        let (stop, stop_rx) = watch::channel(false);
        let stats = input.stats.clone();
        let task = tokio::spawn(input.run(self.chain_tx.clone(), stop_rx));
        LiveInput {
            key,
            stats,
            stop,
            task,
        }
    }

    /// What runs now, for planning a reload.
    fn running_keys(&self) -> RunningKeys {
        let mut stats = HashMap::new();
        let mut keys = RunningKeys::default();
        for i in &self.inputs {
            keys.inputs.push(i.key.clone());
            stats.insert(i.key.location.clone(), i.stats.clone());
        }
        for (k, s) in &self.processors {
            keys.processors.push(k.clone());
            stats.insert(k.location.clone(), s.clone());
        }
        for a in &self.aggregators {
            keys.aggregators.push(a.key.clone());
            stats.insert(a.key.location.clone(), a.stats.clone());
        }
        for o in &self.outputs {
            keys.outputs.push(o.key.clone());
            stats.insert(o.key.location.clone(), o.sink.stats.clone());
        }
        keys.stats = stats;
        keys
    }

    /// Stop in order: inputs, the chain (and with it the aggregators, which
    /// push once more), then every output flushes a last time.
    pub async fn shutdown(mut self) -> Result<()> {
        for i in &self.inputs {
            let _ = i.stop.send(true);
        }
        for i in std::mem::take(&mut self.inputs) {
            let _ = i.task.await;
        }
        tracing::info!("inputs stopped; draining processors and aggregators");
        let Live {
            chain_tx,
            chain,
            aggregators,
            outputs,
            ..
        } = self;
        drop(chain_tx);
        blocking(move || {
            if let Some(chain) = chain {
                let _ = chain.join();
            }
            for a in aggregators {
                let _ = a.thread.join();
            }
        })
        .await?;
        tracing::info!("flushing outputs");
        for o in &outputs {
            let _ = o.stop.send(OutputStop::Flush);
        }
        for o in outputs {
            let _ = o.task.await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
