//! The agent's pipeline: inputs on their schedules → the processor chain →
//! aggregators and outputs, each output with its own buffer.
//!
//! ```text
//! inputs (tokio tasks) ─► channel ─► processor chain (thread) ─┬─► aggregators (threads) ─┐
//!                                                               └─────────────────────────┴─► output buffers ─► outputs (tokio tasks)
//! ```
//!
//! Shutdown runs in the same order: inputs stop, the chain drains, the
//! aggregators push once more, and every output flushes a last time.
//!
//! Layout:
//! - [`build`]: sections to running plugins (validate, build)
//! - [`input`], [`process`], [`aggregate`], [`output`]: the running stages
//! - [`buffer`]: an output's buffer
//! - [`modify`]: renames and tags applied to a plugin's metrics
//! - [`wasm_section`]: the keys of a `[[kind.wasm]]` section

pub mod aggregate;
pub mod buffer;
pub mod build;
pub mod input;
pub mod modify;
pub mod output;
pub mod process;
pub mod wasm_section;

use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use graft_core::Batch;
use tokio::sync::{mpsc, watch};

use crate::config::AgentConfig;
use crate::stats::StatsRegistry;
use crate::wasm::WasmRuntime;
use aggregate::RunningAggregator;
use input::RunningInput;
use output::RunningOutput;
use process::{Fanout, OutputSink, RunningProcessor};

/// Batches that may wait between the inputs and the processor chain.
const CHAIN_QUEUE: usize = 64;

/// A built agent, ready to run.
pub struct Agent {
    pub settings: AgentConfig,
    pub inputs: Vec<RunningInput>,
    pub processors: Vec<RunningProcessor>,
    pub aggregators: Vec<RunningAggregator>,
    pub outputs: Vec<RunningOutput>,
    pub stats: Arc<StatsRegistry>,
    pub runtime: Option<Arc<WasmRuntime>>,
}

/// Resolves once `stop` turns true (or its sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Run blocking work (WASM calls, thread joins) off the reactor.
async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Result<R> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| anyhow!("worker failed: {e}"))
}

impl Agent {
    /// Validate and build from a config, off the reactor.
    pub async fn build(config: crate::config::Config) -> Result<Self> {
        blocking(move || build::build(&config)).await?
    }

    /// Connect every output; a failure names the output.
    pub async fn connect(&mut self) -> Result<()> {
        for o in &mut self.outputs {
            o.plugin
                .connect()
                .await
                .map_err(|e| anyhow!("{e}"))
                .with_context(|| format!("{}: connecting", o.id))?;
        }
        Ok(())
    }

    /// Start every service input (listeners bind here); a failure names the
    /// input.
    pub async fn start_services(&mut self) -> Result<()> {
        let buffers: Vec<_> = self.outputs.iter().map(|o| o.stats.clone()).collect();
        let undelivered: Arc<dyn Fn() -> u64 + Send + Sync> = Arc::new(move || {
            buffers
                .iter()
                .map(|s| crate::stats::PluginStats::get(&s.buffer_size))
                .max()
                .unwrap_or(0)
        });
        for i in &mut self.inputs {
            i.start(undelivered.clone())
                .await
                .map_err(|e| anyhow!("{e}"))
                .with_context(|| format!("{}: starting", i.id))?;
        }
        Ok(())
    }

    fn fanout(&self) -> Arc<Fanout> {
        Arc::new(Fanout {
            sinks: self
                .outputs
                .iter()
                .map(|o| OutputSink {
                    id: o.id.clone(),
                    filter: o.filter.clone(),
                    buffer: o.buffer.clone(),
                    stats: o.stats.clone(),
                })
                .collect(),
        })
    }

    /// Run until `stop` turns true, then shut down in order.
    pub async fn run(self, stop: watch::Receiver<bool>) -> Result<()> {
        let fanout = self.fanout();
        let Agent {
            settings,
            inputs,
            processors,
            aggregators,
            outputs,
            ..
        } = self;

        let (out_stop_tx, out_stop_rx) = watch::channel(false);
        let output_tasks: Vec<_> = outputs
            .into_iter()
            .map(|o| tokio::spawn(o.run(out_stop_rx.clone())))
            .collect();

        let pass_originals = !aggregators.iter().any(|a| a.drop_original);
        let mut agg_senders = Vec::new();
        let mut agg_threads = Vec::new();
        for agg in aggregators {
            let (tx, rx) = std::sync::mpsc::sync_channel(CHAIN_QUEUE);
            let fanout = fanout.clone();
            let round = settings.round_interval;
            let name = format!("graft-{}", agg.id);
            agg_threads.push(
                std::thread::Builder::new()
                    .name(name)
                    .spawn(move || aggregate::run_aggregator(agg, rx, fanout, round))
                    .context("starting an aggregator thread")?,
            );
            agg_senders.push(tx);
        }

        let (tx, rx) = mpsc::channel::<Batch>(CHAIN_QUEUE);
        let chain_fanout = fanout.clone();
        let chain = std::thread::Builder::new()
            .name("graft-processors".into())
            .spawn(move || {
                process::run_chain(rx, processors, agg_senders, pass_originals, chain_fanout);
            })
            .context("starting the processor thread")?;

        let input_tasks: Vec<_> = inputs
            .into_iter()
            .map(|i| tokio::spawn(i.run(tx.clone(), stop.clone())))
            .collect();
        drop(tx);
        tracing::info!("graft is running");

        for t in input_tasks {
            let _ = t.await;
        }
        tracing::info!("inputs stopped; draining processors and aggregators");
        blocking(move || {
            let _ = chain.join();
            for t in agg_threads {
                let _ = t.join();
            }
        })
        .await?;
        tracing::info!("flushing outputs");
        let _ = out_stop_tx.send(true);
        for t in output_tasks {
            let _ = t.await;
        }
        tracing::info!("graft stopped");
        Ok(())
    }

    /// Gather every input once, process, aggregate, and return everything
    /// that would reach the outputs (aggregates last).
    pub async fn gather_once(&mut self) -> Result<Vec<Batch>> {
        let mut gathered = Vec::new();
        for input in &mut self.inputs {
            if let Some(b) = input.gather_once().await {
                gathered.push(b);
            }
        }
        let mut processors = std::mem::take(&mut self.processors);
        let mut aggregators = std::mem::take(&mut self.aggregators);
        let (processors, aggregators, out) = blocking(move || {
            let mut out = Vec::new();
            let pass_originals = !aggregators.iter().any(|a| a.drop_original);
            for b in gathered {
                let Some(b) = process::run_all(&mut processors, b) else {
                    continue;
                };
                for a in &mut aggregators {
                    a.add(&b);
                }
                if pass_originals {
                    out.push(b);
                }
            }
            for a in &mut aggregators {
                out.extend(a.push());
            }
            (processors, aggregators, out)
        })
        .await?;
        self.processors = processors;
        self.aggregators = aggregators;
        Ok(out)
    }

    /// `graft run --once`: gather once, deliver to the outputs, flush, exit.
    pub async fn run_once(mut self) -> Result<()> {
        let batches = self.gather_once().await?;
        let fanout = self.fanout();
        for b in batches {
            fanout.deliver(&Arc::new(b));
        }
        for o in &mut self.outputs {
            o.shutdown().await;
        }
        Ok(())
    }
}
