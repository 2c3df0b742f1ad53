//! The agent's pipeline: inputs on their schedules → the processor chain →
//! aggregators and outputs, each output with its own buffer.
//!
//! ```text
//! inputs (tokio tasks) ─► channel ─► processor chain (thread) ─┬─► aggregators (threads) ─┐
//!                                                               └─────────────────────────┴─► output buffers ─► outputs (tokio tasks)
//! ```
//!
//! Shutdown runs in the same order: inputs stop, the chain drains, the
//! aggregators push once more, and every output flushes a last time. A
//! reload ([`live`]) swaps changed plugins between two batches while the
//! rest runs on.
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
pub mod live;
pub mod modify;
pub mod output;
pub mod process;
pub mod wasm_section;

use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use graft_core::Batch;
use tokio::sync::{mpsc, watch};

use crate::config::AgentConfig;
use crate::stats::StatsRegistry;
use crate::wasm::WasmRuntime;
use aggregate::RunningAggregator;
use build::RunningKeys;
use input::RunningInput;
pub use live::{ConfigLoader, Live, ReloadReport, ReloadRequest};
use output::RunningOutput;
use process::{Fanout, RunningProcessor};

/// Batches that may wait between the inputs and the processor chain.
const CHAIN_QUEUE: usize = 64;

/// A built agent, ready to run.
pub struct Agent {
    pub settings: AgentConfig,
    pub inputs: Vec<RunningInput>,
    pub processors: Vec<RunningProcessor>,
    pub aggregators: Vec<RunningAggregator>,
    pub outputs: Vec<RunningOutput>,
    /// Which plugin each is, per kind in the order above (for reloads).
    pub keys: RunningKeys,
    pub stats: Arc<StatsRegistry>,
    pub runtime: Option<Arc<WasmRuntime>>,
}

/// Read the configuration again and apply it, logging the outcome.
async fn reload(live: &mut Live, loader: &ConfigLoader, reason: &str) -> Result<ReloadReport> {
    tracing::info!(reason, "reloading the configuration");
    let loader = loader.clone();
    let result = async {
        let config = blocking(move || loader()).await??;
        live.reload(config).await
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
            "reload failed; the running configuration stays: {e:#}"
        ),
    }
    result
}

/// Connect an output before it first writes: the one way outputs are
/// connected, at start-up and by a reload. A failure names the output.
pub(crate) async fn connect_output(o: &mut RunningOutput) -> Result<()> {
    o.plugin
        .connect()
        .await
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| format!("{}: connecting", o.id))
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
    /// Validate and build from a config, off the reactor. A WASM plugin
    /// that faults in `init` starts anyway and recovers with backoff.
    pub async fn build(config: crate::config::Config) -> Result<Self> {
        blocking(move || build::build(&config, true)).await?
    }

    /// [`Self::build`], failing on any plugin that cannot start
    /// (`graft config check`).
    pub async fn build_strict(config: crate::config::Config) -> Result<Self> {
        blocking(move || build::build(&config, false)).await?
    }

    /// Connect every output; a failure names the output.
    pub async fn connect(&mut self) -> Result<()> {
        for o in &mut self.outputs {
            connect_output(o).await?;
        }
        Ok(())
    }

    fn fanout(&self) -> Arc<Fanout> {
        Arc::new(Fanout::new(
            self.outputs.iter().map(RunningOutput::sink).collect(),
        ))
    }

    /// Run until `stop` turns true, then shut down in order.
    pub async fn run(self, stop: watch::Receiver<bool>) -> Result<()> {
        let (_keep, reloads) = mpsc::channel(1);
        self.run_reloadable(
            stop,
            reloads,
            Arc::new(|| bail!("reloading is not enabled")),
        )
        .await
    }

    /// Run until `stop` turns true, reloading with the configuration
    /// `loader` reads whenever a request arrives on `reloads`; then shut
    /// down in order. A reload that fails is logged and leaves the agent as
    /// it was.
    pub async fn run_reloadable(
        self,
        mut stop: watch::Receiver<bool>,
        mut reloads: mpsc::Receiver<ReloadRequest>,
        loader: ConfigLoader,
    ) -> Result<()> {
        let mut live = Live::start(self).await?;
        tracing::info!("graft is running");
        loop {
            tokio::select! {
                _ = stopped(&mut stop) => break,
                Some(request) = reloads.recv() => {
                    let result = reload(&mut live, &loader, &request.reason).await;
                    if let Some(reply) = request.reply {
                        let _ = reply.send(result.map_err(|e| format!("{e:#}")));
                    }
                }
            }
        }
        live.shutdown().await?;
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
