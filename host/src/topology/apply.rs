//! Applying a configuration: it applies completely, or not at all. The
//! one path by which plugins start, are replaced and stop, at start-up
//! (against an empty topology) and on every reload.
//!
//! 1. **Plan** ([`plan::plan`]): parse and validate the configuration,
//!    build every new or changed plugin (WASM ones compiled and
//!    initialised). Nothing running is touched.
//! 2. **Prepare**, while the old plugins run on: connect the new outputs,
//!    stop the inputs that go and start the new ones (a listener binds
//!    here; a changed listener may keep its port), start the new
//!    aggregators' threads. If a step fails, what was prepared is undone in
//!    reverse — new outputs closed, new listeners stopped with what they
//!    accepted passed on, the stopped inputs started again — and the error
//!    is returned: the running configuration stays.
//! 3. **Swap**, which cannot fail: outputs (a changed one finishes the
//!    write in progress and hands its buffer to its successor; the fan-out
//!    switches between two batches), then processors and aggregators (one
//!    message to the chain, between two batches), then the new inputs run;
//!    outputs no longer configured flush a last time.
//!
//! No batch is lost or doubled on the way: inputs keep feeding the same
//! chain, and buffers carry over. Counters of plugins that are not running
//! afterwards (gone, or built for a reload that failed) are forgotten.

use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::anyhow;

use super::plan::{self, Plan, Planned};
use super::*;
use crate::config::buffer::BufferSpec;
use crate::pipeline::aggregate::Periods;
use crate::pipeline::buffer::OutputBuffer;
use crate::pipeline::chain::{ChainSwap, RunningProcessor, Slot};

/// A new aggregator whose thread runs, waiting for its first batch.
type StartedAggregator = (LiveAggregator, AggregatorFeed);

/// What a reload has readied while the old configuration runs on.
struct Ready {
    settings: AgentConfig,
    runtime: Option<Arc<WasmRuntime>>,
    /// New outputs connected.
    outputs: Vec<(PluginKey, Slot<RunningOutput>)>,
    processors: Vec<Planned<RunningProcessor>>,
    aggregators: Vec<(PluginKey, Slot<StartedAggregator>)>,
    pass_originals: bool,
    /// New inputs started (listeners bound), not yet running.
    inputs: Vec<(PluginKey, Slot<RunningInput>)>,
    /// The running inputs, by index; the ones the new configuration does not
    /// keep are taken out and stopped (in `stopped`).
    old_inputs: Vec<Option<LiveInput>>,
    stopped: Vec<(usize, PluginKey, RunningInput)>,
}

impl Topology {
    /// Apply `config`; see the module documentation. `recover`: a WASM
    /// plugin that faults in `init` starts anyway (start-up) instead of
    /// failing the plan (reloads). With a `collector`, the configured
    /// outputs are built (so that they are checked) but never connected,
    /// and every metric goes to the collector instead. On an error the
    /// running agent is as it was.
    pub(super) async fn apply(
        &mut self,
        config: Config,
        recover: bool,
        collector: Option<RunningOutput>,
    ) -> Result<ReloadReport> {
        let started = Instant::now();
        // Before any plugin is built: where plugins keep state across
        // restarts (`inputs.tail`'s positions).
        graft_plugins::state::set_path(config.agent.statefile.clone());
        let running = self.running_keys();
        let (rt, stats) = (self.runtime.clone(), self.stats.clone());
        let planned = blocking(move || plan::plan(&config, &running, rt, stats, recover))
            .await
            .and_then(|p| p);
        let result = match planned {
            Ok(mut plan) => {
                if let Some(o) = collector {
                    plan.outputs = vec![Planned {
                        key: PluginKey {
                            location: o.id.to_string(),
                            alias: None,
                            fingerprint: String::new(),
                        },
                        slot: Slot::New(o),
                        drops_original: false,
                    }];
                }
                match self.prepare(plan).await {
                    Ok(ready) => Ok(self.swap(ready).await),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        self.forget_gone_stats();
        let mut report = result?;
        report.took = started.elapsed();
        Ok(report)
    }

    /// Step 2 of the module documentation.
    async fn prepare(&mut self, plan: Plan) -> Result<Ready> {
        let Plan {
            settings,
            inputs,
            processors,
            aggregators,
            outputs,
            runtime,
        } = plan;
        let mut ready = Ready {
            pass_originals: !aggregators.iter().any(|a| a.drops_original),
            settings,
            runtime,
            outputs: Vec::new(),
            processors,
            aggregators: Vec::new(),
            inputs: Vec::new(),
            old_inputs: std::mem::take(&mut self.inputs)
                .into_iter()
                .map(Some)
                .collect(),
            stopped: Vec::new(),
        };
        if let Err(e) = self
            .prepare_steps(&mut ready, outputs, inputs, aggregators)
            .await
        {
            tracing::warn!("a reload step did not succeed; undoing what was prepared");
            self.undo(ready).await;
            return Err(e);
        }
        Ok(ready)
    }

    async fn prepare_steps(
        &mut self,
        ready: &mut Ready,
        outputs: Vec<Planned<RunningOutput>>,
        inputs: Vec<Planned<RunningInput>>,
        aggregators: Vec<Planned<RunningAggregator>>,
    ) -> Result<()> {
        for Planned { key, slot, .. } in outputs {
            let slot = match slot {
                Slot::New(mut o) => {
                    let opened = open_buffer(&mut o);
                    if let Err(e) = opened {
                        ready.outputs.push((key.clone(), Slot::New(o)));
                        return Err(e.context(format!("{}: its buffer", key.location)));
                    }
                    // Pushed first, so that a failure closes it with the rest.
                    let connected = connect(&mut o).await;
                    ready.outputs.push((key.clone(), Slot::New(o)));
                    connected.with_context(|| format!("{}: connecting", key.location))?;
                    continue;
                }
                Slot::Keep(i) => Slot::Keep(i),
            };
            ready.outputs.push((key, slot));
        }

        let kept: Vec<usize> = inputs
            .iter()
            .filter_map(|p| match p.slot {
                Slot::Keep(i) => Some(i),
                Slot::New(_) => None,
            })
            .collect();
        for (i, slot) in ready.old_inputs.iter_mut().enumerate() {
            if !kept.contains(&i)
                && let Some(input) = slot.take()
            {
                let _ = input.stop.send(true);
                match input.task.await {
                    Ok(stopped) => ready.stopped.push((i, input.key, stopped)),
                    Err(e) => tracing::error!(location = %input.key.location, error = %e,
                        "an input ended abnormally while stopping for a reload"),
                }
            }
        }
        for Planned { key, slot, .. } in inputs {
            let slot = match slot {
                Slot::New(mut input) => {
                    let bound = self.start_input(&mut input).await;
                    ready.inputs.push((key.clone(), Slot::New(input)));
                    bound.with_context(|| format!("{}: starting", key.location))?;
                    continue;
                }
                Slot::Keep(i) => Slot::Keep(i),
            };
            ready.inputs.push((key, slot));
        }

        let periods = match self.mode {
            Mode::Run => Periods::Timed {
                round: ready.settings.round_interval,
            },
            Mode::Once => Periods::AtEnd,
        };
        for Planned { key, slot, .. } in aggregators {
            let slot = match slot {
                Slot::New(a) => Slot::New(spawn_aggregator(a, key.clone(), &self.fanout, periods)?),
                Slot::Keep(i) => Slot::Keep(i),
            };
            ready.aggregators.push((key, slot));
        }
        Ok(())
    }

    /// Undo a preparation that failed, in reverse: the running plugins are
    /// as they were before the reload.
    async fn undo(&mut self, ready: Ready) {
        let Ready {
            outputs,
            aggregators,
            inputs,
            mut old_inputs,
            stopped,
            ..
        } = ready;
        let threads: Vec<_> = aggregators
            .into_iter()
            .filter_map(|(_, s)| match s {
                // Without its sender the thread ends; it has seen no batch.
                Slot::New((live, _tx)) => Some(live.thread),
                Slot::Keep(_) => None,
            })
            .collect();
        let _ = blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
        for (_, slot) in inputs {
            if let Slot::New(input) = slot {
                // Started or not: stop it, passing on what it accepted.
                let (stop, stop_rx) = watch::channel(true);
                let span = input.span.clone();
                let _ = input
                    .run(self.chain_tx.clone(), stop_rx, false)
                    .instrument(span)
                    .await;
                drop(stop);
            }
        }
        for (i, key, mut input) in stopped {
            match self.start_input(&mut input).await {
                Ok(()) => old_inputs[i] = Some(self.run_input(input, key)),
                Err(e) => tracing::error!(parent: &input.span, error = format!("{e:#}"),
                    "could not start again after the failed reload, so it is not running"),
            }
        }
        self.inputs = old_inputs.into_iter().flatten().collect();
        for (_, slot) in outputs {
            if let Slot::New(mut o) = slot
                && let Err(e) = o.plugin.close().await
            {
                tracing::warn!(parent: &o.span, error = %e,
                    "closing an output prepared for the abandoned reload did not succeed");
            }
        }
    }

    /// Step 3 of the module documentation.
    async fn swap(&mut self, ready: Ready) -> ReloadReport {
        let mut report = ReloadReport::default();
        if ready.runtime.is_some() {
            self.runtime = ready.runtime;
        }
        self.settings = ready.settings;

        // Outputs.
        let mut old: Vec<Option<LiveOutput>> = std::mem::take(&mut self.outputs)
            .into_iter()
            .map(Some)
            .collect();
        // A new output takes over the buffer of a running one at its place
        // that nothing keeps.
        let kept: Vec<usize> = ready
            .outputs
            .iter()
            .filter_map(|(_, s)| match s {
                Slot::Keep(i) => Some(*i),
                Slot::New(_) => None,
            })
            .collect();
        let mut next = Vec::new();
        for (key, slot) in ready.outputs {
            match slot {
                Slot::Keep(i) => {
                    let mut o = old[i].take().expect("each running output is kept once");
                    o.key = key;
                    next.push(NextOutput::Kept(o));
                    report.kept += 1;
                }
                Slot::New(mut o) => {
                    // Its predecessor: the running output at its place, or
                    // (moved in the file) the one whose disk log it shares.
                    let predecessor = old.iter().enumerate().position(|(j, x)| {
                        !kept.contains(&j)
                            && x.as_ref().is_some_and(|x| {
                                x.key.place() == key.place()
                                    || Arc::ptr_eq(&x.sink.buffer, &o.buffer)
                            })
                    });
                    let mut from = None;
                    if let Some(j) = predecessor {
                        let prev = old[j].take().expect("found above");
                        let _ = prev.stop.send(OutputStop::Detach);
                        match prev.task.await {
                            Ok(prev) => from = take_over(&prev, &mut o),
                            Err(e) => tracing::error!(location = %key.location, error = %e,
                                "a replaced output ended abnormally; its buffer is lost"),
                        }
                        report.stopped += 1;
                    }
                    next.push(NextOutput::New(o, key, from));
                    report.started += 1;
                }
            }
        }
        // The fan-out feeds the new buffers before the old ones are emptied
        // into them, so that no batch lands in a buffer nobody writes.
        self.fanout.replace(
            next.iter()
                .map(|n| match n {
                    NextOutput::Kept(o) => o.sink.clone(),
                    NextOutput::New(o, ..) => o.sink(),
                })
                .collect(),
        );
        for n in next {
            match n {
                NextOutput::Kept(o) => self.outputs.push(o),
                NextOutput::New(o, key, from) => {
                    if let Some(from) = from {
                        move_buffer(from, o.buffer.clone(), o.span.clone()).await;
                        o.refresh_stats();
                    }
                    self.outputs.push(spawn_output(o, key));
                }
            }
        }
        let removed_outputs: Vec<LiveOutput> = old.into_iter().flatten().collect();

        // Processors and aggregators, swapped by the chain.
        let mut old_aggs: Vec<Option<LiveAggregator>> = std::mem::take(&mut self.aggregators)
            .into_iter()
            .map(Some)
            .collect();
        let mut agg_slots = Vec::new();
        for (key, slot) in ready.aggregators {
            match slot {
                Slot::Keep(i) => {
                    let mut a = old_aggs[i].take().expect("each aggregator is kept once");
                    a.key = key;
                    self.aggregators.push(a);
                    agg_slots.push(Slot::Keep(i));
                    report.kept += 1;
                }
                Slot::New((live, tx)) => {
                    self.aggregators.push(live);
                    agg_slots.push(Slot::New(tx));
                    report.started += 1;
                }
            }
        }
        let mut proc_slots = Vec::new();
        let mut procs = Vec::new();
        for Planned { key, slot, .. } in ready.processors {
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
        let kept_procs = proc_slots
            .iter()
            .filter(|s| matches!(s, Slot::Keep(_)))
            .count();
        report.stopped += self.processors.len() - kept_procs;
        self.processors = procs;
        let (done, swapped) = oneshot::channel();
        let sent = self
            .chain_tx
            .send(ChainMsg::Swap(ChainSwap {
                processors: proc_slots,
                aggregators: agg_slots,
                pass_originals: ready.pass_originals,
                done,
            }))
            .await;
        if sent.is_err() || swapped.await.is_err() {
            tracing::error!("the processor chain has stopped; metrics no longer flow");
        }

        // Inputs: the stopped ones are gone, the new ones run.
        report.stopped += ready.stopped.len();
        let mut old_inputs = ready.old_inputs;
        for (key, slot) in ready.inputs {
            match slot {
                Slot::Keep(i) => {
                    let mut input = old_inputs[i].take().expect("each input is kept once");
                    input.key = key;
                    self.inputs.push(input);
                    report.kept += 1;
                }
                Slot::New(input) => {
                    self.inputs.push(self.run_input(input, key));
                    report.started += 1;
                }
            }
        }

        // What is gone: outputs flush a last time, aggregators finish.
        for o in removed_outputs {
            let _ = o.stop.send(OutputStop::Flush);
            let _ = o.task.await;
            report.stopped += 1;
        }
        let gone: Vec<_> = old_aggs.into_iter().flatten().map(|a| a.thread).collect();
        report.stopped += gone.len();
        let _ = blocking(move || {
            for t in gone {
                let _ = t.join();
            }
        })
        .await;
        report
    }

    /// Forget the counters of every plugin that is not running now.
    fn forget_gone_stats(&self) {
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
    }
}

/// Connect an output before it first writes.
async fn connect(o: &mut RunningOutput) -> Result<()> {
    let span = o.span.clone();
    o.plugin.attach_counters(o.stats.counters.clone());
    o.plugin
        .connect()
        .instrument(span)
        .await
        .map_err(|e| anyhow!("{e}"))
}

/// Open the disk buffer of a new output (the running one's, when it
/// replaces an output with the same directory), and say what it replays.
fn open_buffer(o: &mut RunningOutput) -> Result<()> {
    let BufferSpec::Disk(spec) = &o.buffer_spec else {
        return Ok(());
    };
    let (buffer, recovery) = OutputBuffer::open_disk(spec, o.buffer.limit(), o.batch_size)?;
    o.buffer = buffer;
    let stats = &o.stats;
    stats.buffer_disk.store(1, Ordering::Relaxed);
    if let Some(r) = recovery {
        stats.buffer_replayed.store(r.metrics, Ordering::Relaxed);
        stats
            .buffer_corrupt_records
            .store(r.corrupt_records, Ordering::Relaxed);
        if r.metrics > 0 || r.corrupt_records > 0 {
            tracing::info!(parent: &o.span, dir = %spec.dir.display(), replayed = r.metrics,
                records = r.records, corrupt_records = r.corrupt_records,
                corrupt_bytes = r.corrupt_bytes,
                "disk buffer opened; what was not written before is written first");
        }
    }
    o.refresh_stats();
    Ok(())
}

/// A new output takes over what its predecessor holds: the same buffer
/// when both use it (memory, or the same disk directory); else the
/// predecessor's buffer, returned, to be moved into the new one once the
/// fan-out feeds the new one.
fn take_over(prev: &RunningOutput, o: &mut RunningOutput) -> Option<Arc<OutputBuffer>> {
    if Arc::ptr_eq(&prev.buffer, &o.buffer) {
        return None;
    }
    if !prev.buffer.is_durable() && !o.buffer.is_durable() {
        prev.buffer.resize(o.buffer.limit(), o.batch_size);
        o.buffer = prev.buffer.clone();
        return None;
    }
    Some(prev.buffer.clone())
}

/// Move what waits in an old buffer of another kind (or directory) into
/// an output's new one; a disk log that stays keeps what does not fit, for
/// a later start.
async fn move_buffer(from: Arc<OutputBuffer>, to: Arc<OutputBuffer>, span: tracing::Span) {
    let from_ = from.clone();
    let left = blocking(move || {
        // From one log to another the metrics stay where they are: a copy
        // committed out of the old log before the new one has appended it
        // could be lost to a kill.
        let left = if from_.is_durable() && to.is_durable() {
            from_.len()
        } else {
            from_.move_into(&to)
        };
        from_.close();
        left
    })
    .await
    .unwrap_or(0);
    if left > 0 {
        tracing::warn!(parent: &span, left,
            dir = %from.dir().map(|d| d.display().to_string()).unwrap_or_default(),
            "the output no longer uses this disk buffer; the metrics that did not fit stay there, written when an output uses it again");
    }
}

/// An output after a reload: kept running, or new (with the buffer of its
/// predecessor to empty into its own, if any).
enum NextOutput {
    Kept(LiveOutput),
    New(RunningOutput, PluginKey, Option<Arc<OutputBuffer>>),
}
