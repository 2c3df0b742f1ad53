//! The running topology: every plugin of the configuration as a task or a
//! thread, wired input → processor chain → aggregators → fan-out → outputs.
//!
//! There is one way plugins come to run: [`Topology::apply`] plans a
//! configuration against what runs ([`plan`]: keep what is unchanged,
//! build the rest) and applies the plan ([`apply`]: connect, bind, swap,
//! stop, or undo everything if a step fails). Start-up is `apply` on an
//! empty topology; a reload is `apply` on the running one. Shutdown stops
//! in order: inputs, the chain (aggregators push once more), outputs
//! (a last flush).
//!
//! Layout:
//! - [`plan`]: the difference between what runs and a configuration
//! - [`build`]: a section becomes a running plugin, the same way for every
//!   kind
//! - [`apply`]: connecting, starting, swapping and stopping
//! - [`once`]: `graft run --once` and `graft test`
//! - [`check`]: `graft config check`

pub mod apply;
pub mod build;
pub mod check;
pub mod once;
pub mod plan;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::config::{AgentConfig, Config};
use crate::pipeline::aggregate::{self, AggregatorFeed, Periods, RunningAggregator};
use crate::pipeline::chain::{self, ChainMsg};
use crate::pipeline::fanout::{Fanout, OutputSink};
use crate::pipeline::input::RunningInput;
use crate::pipeline::output::{OutputStop, RunningOutput};
use crate::pipeline::{CHAIN_QUEUE, blocking, stopped};
use crate::stats::{PluginStats, StatsRegistry};
use crate::wasm::WasmRuntime;
use plan::{PluginKey, RunningKeys};

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

/// What applying a configuration did.
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

/// How inputs run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// On their schedules, service inputs listening, until shutdown.
    Run,
    /// Every input that gathers gathers once; service inputs are not
    /// started (Telegraf's `--once` and `--test`).
    Once,
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
pub struct Topology {
    mode: Mode,
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

impl Topology {
    /// Nothing running but an empty processor chain.
    fn empty(mode: Mode) -> Result<Self> {
        let fanout = Arc::new(Fanout::default());
        let (chain_tx, rx) = mpsc::channel::<ChainMsg>(CHAIN_QUEUE);
        let chain_fanout = fanout.clone();
        let chain = std::thread::Builder::new()
            .name("graft-processors".into())
            .spawn(move || chain::run_chain(rx, Vec::new(), Vec::new(), true, chain_fanout))
            .context("starting the processor thread")?;
        Ok(Self {
            mode,
            settings: AgentConfig::default(),
            runtime: None,
            stats: Arc::new(StatsRegistry::default()),
            inputs: Vec::new(),
            processors: Vec::new(),
            aggregators: Vec::new(),
            outputs: Vec::new(),
            chain_tx,
            chain: Some(chain),
            fanout,
        })
    }

    /// Start every plugin of `config`: the plan against nothing running,
    /// applied. A WASM plugin that faults in `init` starts anyway and
    /// recovers with backoff; anything else that fails (a listener that
    /// cannot bind, an output that cannot connect) stops the start, naming
    /// the plugin, with everything started so far stopped again.
    pub async fn start(config: Config, mode: Mode) -> Result<Self> {
        Self::start_with(config, mode, None).await
    }

    /// [`Self::start`]; with a `collector`, every metric goes there instead
    /// of the configured outputs (`graft test`).
    async fn start_with(
        config: Config,
        mode: Mode,
        collector: Option<RunningOutput>,
    ) -> Result<Self> {
        let mut topology = Self::empty(mode)?;
        match topology.apply(config, true, collector).await {
            Ok(_) => Ok(topology),
            Err(e) => {
                if let Err(stopping) = topology.shutdown().await {
                    tracing::error!(
                        error = format!("{stopping:#}"),
                        "stopping what the failed start had started did not succeed"
                    );
                }
                Err(e)
            }
        }
    }

    /// Apply a new configuration while metrics flow; see [`apply`]. On an
    /// error the running agent is as it was.
    pub async fn reload(&mut self, config: Config) -> Result<ReloadReport> {
        self.apply(config, false, None).await
    }

    /// Every running plugin's counters.
    pub fn stats(&self) -> Arc<StatsRegistry> {
        self.stats.clone()
    }

    /// What runs now, for planning.
    fn running_keys(&self) -> RunningKeys {
        let mut stats = HashMap::new();
        let mut keys = RunningKeys::default();
        for i in &self.inputs {
            keys.inputs.push(i.key.clone());
            stats.insert(i.key.place(), i.stats.clone());
        }
        for (k, s) in &self.processors {
            keys.processors.push(k.clone());
            stats.insert(k.place(), s.clone());
        }
        for a in &self.aggregators {
            keys.aggregators.push(a.key.clone());
            stats.insert(a.key.place(), a.stats.clone());
        }
        for o in &self.outputs {
            keys.outputs.push(o.key.clone());
            stats.insert(o.key.place(), o.sink.stats.clone());
        }
        keys.stats = stats;
        keys
    }

    /// Run until `stop` turns true, applying the configuration `loader`
    /// reads whenever a request arrives on `reloads`; then shut down in
    /// order. A reload that fails is logged and leaves the agent as it was.
    pub async fn run(
        mut self,
        mut stop: watch::Receiver<bool>,
        mut reloads: mpsc::Receiver<ReloadRequest>,
        loader: ConfigLoader,
    ) -> Result<()> {
        tracing::info!("graft is running");
        loop {
            tokio::select! {
                _ = stopped(&mut stop) => break,
                Some(request) = reloads.recv() => {
                    let result = self.reload_from(&loader, &request.reason).await;
                    if let Some(reply) = request.reply {
                        let _ = reply.send(result.map_err(|e| format!("{e:#}")));
                    }
                }
            }
        }
        self.shutdown().await?;
        tracing::info!("graft stopped");
        Ok(())
    }

    /// Read the configuration again and apply it, logging the outcome.
    async fn reload_from(&mut self, loader: &ConfigLoader, reason: &str) -> Result<ReloadReport> {
        tracing::info!(reason, "reloading the configuration");
        let loader = loader.clone();
        let result = async {
            let config = blocking(move || loader()).await??;
            self.reload(config).await
        }
        .await;
        match &result {
            Ok(r) => tracing::info!(
                kept = r.kept,
                started = r.started,
                stopped = r.stopped,
                took_ms = r.took.as_secs_f64() * 1e3,
                "configuration reloaded"
            ),
            Err(e) => tracing::error!(
                reason,
                error = format!("{e:#}"),
                "reload failed; the running configuration stays"
            ),
        }
        result
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
        let Topology {
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

    /// Run an input already started (or, once, not started).
    fn run_input(&self, input: RunningInput, key: PluginKey) -> LiveInput {
        let (stop, stop_rx) = watch::channel(false);
        let stats = input.stats.clone();
        let span = input.span.clone();
        let once = self.mode == Mode::Once;
        let task = tokio::spawn(
            input
                .run(self.chain_tx.clone(), stop_rx, once)
                .instrument(span),
        );
        LiveInput {
            key,
            stats,
            stop,
            task,
        }
    }

    /// Start an input: a service input binds and starts receiving here
    /// (not in [`Mode::Once`]).
    async fn start_input(&self, input: &mut RunningInput) -> Result<()> {
        if self.mode == Mode::Once {
            return Ok(());
        }
        let fanout = self.fanout.clone();
        let span = input.span.clone();
        input
            .start(Arc::new(move || fanout.undelivered()))
            .instrument(span)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
    }
}

fn spawn_output(o: RunningOutput, key: PluginKey) -> LiveOutput {
    let sink = o.sink();
    let (stop, stop_rx) = watch::channel(OutputStop::Run);
    let span = o.span.clone();
    LiveOutput {
        key,
        sink,
        stop,
        task: tokio::spawn(o.run(stop_rx).instrument(span)),
    }
}

fn spawn_aggregator(
    agg: RunningAggregator,
    key: PluginKey,
    fanout: &Arc<Fanout>,
    periods: Periods,
) -> Result<(LiveAggregator, AggregatorFeed)> {
    let (tx, rx) = std::sync::mpsc::sync_channel(CHAIN_QUEUE);
    let fanout = fanout.clone();
    let stats = agg.stats.clone();
    let waits = periods == Periods::AtEnd;
    let feed = AggregatorFeed::new(tx, agg.span.clone(), stats.clone(), waits);
    let thread = std::thread::Builder::new()
        .name(format!("graft-{}", agg.id))
        .spawn(move || aggregate::run_aggregator(agg, rx, fanout, periods))
        .context("starting an aggregator thread")?;
    Ok((LiveAggregator { key, stats, thread }, feed))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod buffer_tests;
