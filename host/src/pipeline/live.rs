//! A running agent, and its reload.
//!
//! A reload builds a [`Plan`] from the new configuration first: parsed,
//! validated, every changed plugin compiled and initialised. If that fails,
//! nothing has been touched and the error is returned. Then it is applied:
//!
//! 1. outputs: unchanged ones keep running; a changed one finishes the write
//!    in progress and hands its buffer to its successor; the fan-out
//!    switches to the new set between two batches;
//! 2. processors and aggregators: one message to the processor chain swaps
//!    them between two batches; unchanged ones move over with their state,
//!    removed aggregators push a last time;
//! 3. inputs: removed and changed ones stop (what a listener accepted is
//!    passed on), new ones start;
//! 4. outputs no longer configured flush a last time and close.
//!
//! No batch is lost or doubled on the way: inputs keep feeding the same
//! chain, and buffers carry over.

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
    task: JoinHandle<()>,
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

    async fn spawn_input(&self, mut input: RunningInput, key: PluginKey) -> Result<LiveInput> {
        let fanout = self.fanout.clone();
        input
            .start(Arc::new(move || fanout.undelivered()))
            .await
            .map_err(|e| anyhow!("{e}"))?;
        let (stop, stop_rx) = watch::channel(false);
        let stats = input.stats.clone();
        let task = tokio::spawn(input.run(self.chain_tx.clone(), stop_rx));
        Ok(LiveInput {
            key,
            stats,
            stop,
            task,
        })
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

    /// Apply a new configuration; see the module documentation. On an error
    /// before anything was touched, the running agent is as it was.
    pub async fn reload(&mut self, config: Config) -> Result<ReloadReport> {
        let started = Instant::now();
        let running = self.running_keys();
        let (rt, stats) = (self.runtime.clone(), self.stats.clone());
        let plan = blocking(move || build::plan(&config, &running, rt, stats, false)).await??;
        // Nothing was touched up to here.
        let mut report = ReloadReport::default();
        if plan.runtime.is_some() {
            self.runtime = plan.runtime;
        }
        self.settings = plan.settings;

        // 1. Outputs.
        let mut old: Vec<Option<LiveOutput>> = std::mem::take(&mut self.outputs)
            .into_iter()
            .map(Some)
            .collect();
        let mut outputs = Vec::new();
        for (key, slot) in plan.outputs {
            match slot {
                Slot::Keep(i) => {
                    let mut o = old[i].take().expect("each running output is kept once");
                    o.key = key;
                    outputs.push(o);
                    report.kept += 1;
                }
                Slot::New(mut o) => {
                    let same_place = old
                        .iter()
                        .position(|x| x.as_ref().is_some_and(|x| x.key.location == key.location));
                    if let Some(j) = same_place {
                        let prev = old[j].take().expect("found above");
                        let _ = prev.stop.send(OutputStop::Detach);
                        let prev = prev.task.await.context("waiting for a replaced output")?;
                        prev.buffer.resize(o.buffer.limit(), o.batch_size);
                        o.buffer = prev.buffer.clone();
                        report.stopped += 1;
                    }
                    outputs.push(spawn_output(o, key));
                    report.started += 1;
                }
            }
        }
        self.fanout
            .replace(outputs.iter().map(|o| o.sink.clone()).collect());
        self.outputs = outputs;
        let removed_outputs: Vec<LiveOutput> = old.into_iter().flatten().collect();

        // 2. Processors and aggregators, swapped by the chain.
        let mut old_aggs: Vec<Option<LiveAggregator>> = std::mem::take(&mut self.aggregators)
            .into_iter()
            .map(Some)
            .collect();
        let pass_originals = !plan.aggregators.iter().any(|(_, _, d)| *d);
        let mut agg_slots = Vec::new();
        for (key, slot, _) in plan.aggregators {
            match slot {
                Slot::Keep(i) => {
                    let mut a = old_aggs[i].take().expect("each aggregator is kept once");
                    a.key = key;
                    self.aggregators.push(a);
                    agg_slots.push(Slot::Keep(i));
                    report.kept += 1;
                }
                Slot::New(a) => {
                    let (live, tx) =
                        spawn_aggregator(a, key, &self.fanout, self.settings.round_interval)?;
                    self.aggregators.push(live);
                    agg_slots.push(Slot::New(tx));
                    report.started += 1;
                }
            }
        }
        let mut proc_slots = Vec::new();
        let mut procs = Vec::new();
        for (key, slot) in plan.processors {
            match slot {
                Slot::Keep(i) => {
                    procs.push((key, self.processors[i].1.clone()));
                    proc_slots.push(Slot::Keep(i));
                    report.kept += 1;
                }
                Slot::New(p) => {
                    procs.push((key, p.stats.clone()));
                    proc_slots.push(Slot::New(p));
                    report.started += 1;
                }
            }
        }
        report.stopped += self.processors.len() + old_aggs.len()
            - proc_slots
                .iter()
                .filter(|s| matches!(s, Slot::Keep(_)))
                .count()
            - agg_slots
                .iter()
                .filter(|s| matches!(s, Slot::Keep(_)))
                .count();
        self.processors = procs;
        let (done, swapped) = oneshot::channel();
        self.chain_tx
            .send(ChainMsg::Swap(ChainSwap {
                processors: proc_slots,
                aggregators: agg_slots,
                pass_originals,
                done,
            }))
            .await
            .map_err(|_| anyhow!("the processor chain has stopped"))?;
        swapped
            .await
            .map_err(|_| anyhow!("the processor chain stopped during the reload"))?;

        // 3. Inputs: stop what goes, then start what comes.
        let mut old_inputs: Vec<Option<LiveInput>> = std::mem::take(&mut self.inputs)
            .into_iter()
            .map(Some)
            .collect();
        let kept: Vec<usize> = plan
            .inputs
            .iter()
            .filter_map(|(_, s)| match s {
                Slot::Keep(i) => Some(*i),
                Slot::New(_) => None,
            })
            .collect();
        for (i, slot) in old_inputs.iter_mut().enumerate() {
            if !kept.contains(&i)
                && let Some(input) = slot.take()
            {
                let _ = input.stop.send(true);
                let _ = input.task.await;
                report.stopped += 1;
            }
        }
        for (key, slot) in plan.inputs {
            match slot {
                Slot::Keep(i) => {
                    let mut input = old_inputs[i].take().expect("each input is kept once");
                    input.key = key;
                    self.inputs.push(input);
                    report.kept += 1;
                }
                Slot::New(input) => {
                    let id = input.id.clone();
                    match self.spawn_input(input, key).await {
                        Ok(live) => {
                            self.inputs.push(live);
                            report.started += 1;
                        }
                        Err(e) => tracing::error!(plugin = %id,
                            "could not start after the reload, so it is not running: {e:#}"),
                    }
                }
            }
        }

        // 4. What is gone: outputs flush a last time, aggregators finish.
        for o in removed_outputs {
            let _ = o.stop.send(OutputStop::Flush);
            let _ = o.task.await;
            report.stopped += 1;
        }
        let gone: Vec<_> = old_aggs.into_iter().flatten().map(|a| a.thread).collect();
        blocking(move || {
            for t in gone {
                let _ = t.join();
            }
        })
        .await?;

        let current: Vec<Arc<PluginStats>> = self
            .inputs
            .iter()
            .map(|i| i.stats.clone())
            .chain(self.processors.iter().map(|(_, s)| s.clone()))
            .chain(self.aggregators.iter().map(|a| a.stats.clone()))
            .chain(self.outputs.iter().map(|o| o.sink.stats.clone()))
            .collect();
        self.stats
            .retain(|s| current.iter().any(|c| Arc::ptr_eq(c, s)));
        report.took = started.elapsed();
        Ok(report)
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
