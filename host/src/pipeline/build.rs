//! Turning a [`Config`] into running plugins: validate each section, build
//! each plugin (compile and instantiate WASM ones, check their contract and
//! run their `init`). Nothing runs yet; `graft config check` stops here.
//!
//! On a reload the same code makes a [`Plan`]: every section whose
//! [`PluginKey::fingerprint`] (its settings, the agent settings it depends
//! on, and for WASM plugins the digest of the `.wasm` file) matches a running
//! plugin is kept as it is, with its state; only the others are built.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use graft_api::{Aggregator, Input, Output, Processor};

use super::aggregate::RunningAggregator;
use super::buffer::OutputBuffer;
use super::input::{RunningInput, Schedule};
use super::output::RunningOutput;
use super::process::{OnError, RunningProcessor, Slot};
use super::{Agent, wasm_section};
use crate::config::{Config, PluginSection};
use crate::registry;
use crate::stats::{PluginId, PluginStats, StatsRegistry};
use crate::wasm::adapters::{WasmAggregator, WasmInput, WasmOutput, WasmProcessor};
use crate::wasm::instance::StartError;
use crate::wasm::{PluginKind, PluginSpec, RuntimeOptions, WasmInstance, WasmRuntime};

/// Which plugin a running one is, across reloads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PluginKey {
    /// `outputs.influxdb[0]`: a changed plugin at the same place takes over
    /// the old one's counters (and, for outputs, its buffer).
    pub location: String,
    /// Digest of everything the plugin is built from; equal means unchanged.
    pub fingerprint: String,
}

/// What a reload finds running, per kind, in running order.
#[derive(Default)]
pub struct RunningKeys {
    pub inputs: Vec<PluginKey>,
    pub processors: Vec<PluginKey>,
    pub aggregators: Vec<PluginKey>,
    pub outputs: Vec<PluginKey>,
    /// Counters of running plugins by location.
    pub stats: HashMap<String, Arc<PluginStats>>,
}

/// A configuration, built: new plugins, and slots for running ones kept.
pub struct Plan {
    pub settings: crate::config::AgentConfig,
    pub inputs: Vec<(PluginKey, Slot<RunningInput>)>,
    /// In chain order.
    pub processors: Vec<(PluginKey, Slot<RunningProcessor>)>,
    pub aggregators: Vec<(PluginKey, Slot<RunningAggregator>, bool)>,
    pub outputs: Vec<(PluginKey, Slot<RunningOutput>)>,
    pub runtime: Option<Arc<WasmRuntime>>,
}

/// Builds plugins, creating the WASM runtime the first time one needs it.
struct Builder<'a> {
    config: &'a Config,
    runtime: Option<Arc<WasmRuntime>>,
    stats: Arc<StatsRegistry>,
    reuse_stats: &'a HashMap<String, Arc<PluginStats>>,
    /// Whether a WASM plugin that faults in `init` may start anyway (and
    /// recover with backoff) instead of failing the build.
    recover: bool,
}

impl Builder<'_> {
    /// Counters for the plugin at `section`: the old ones when a plugin at
    /// the same place is being replaced.
    fn stats_for(&self, section: &PluginSection, id: &PluginId) -> Arc<PluginStats> {
        match self.reuse_stats.get(&section.location()) {
            Some(s) => s.clone(),
            None => self.stats.register(id.clone()),
        }
    }

    fn runtime(&mut self) -> Result<Arc<WasmRuntime>> {
        if let Some(rt) = &self.runtime {
            return Ok(rt.clone());
        }
        let agent = &self.config.agent;
        let options = if agent.wasm_cache_dir_is_set() {
            RuntimeOptions {
                cache_dir: agent.wasm_cache_dir.clone(),
            }
        } else {
            RuntimeOptions::with_default_cache()
        };
        let rt = WasmRuntime::new(&options).context("starting the WASM runtime")?;
        self.runtime = Some(rt.clone());
        Ok(rt)
    }

    fn id(section: &PluginSection, alias: &Option<String>) -> PluginId {
        PluginId {
            kind: section.kind.as_str(),
            name: section.name.clone(),
            alias: alias.clone(),
        }
    }

    /// Compile, check and start a WASM plugin of `kind`.
    fn wasm(
        &mut self,
        ws: &wasm_section::WasmSection,
        kind: PluginKind,
        id: &PluginId,
        stats: &Arc<PluginStats>,
    ) -> Result<WasmInstance> {
        let rt = self.runtime()?;
        let plugin = rt.load_with(&ws.path, ws.limits.fuel.is_some())?;
        if plugin.contract.kind != kind {
            bail!(
                "{} is {} {} plugin, but it is configured as [[{}.wasm]]; move it to [[{}.wasm]]",
                ws.path.display(),
                if plugin.contract.kind == PluginKind::Input {
                    "an"
                } else {
                    "a"
                },
                plugin.contract.kind,
                kind.section(),
                plugin.contract.kind.section()
            );
        }
        let spec = PluginSpec {
            name: id.to_string().into(),
            config_json: ws.config_json.clone(),
            permissions: ws.permissions.clone(),
            limits: ws.limits.clone(),
            stats: stats.clone(),
        };
        let started = if self.recover {
            WasmInstance::start_or_recover(plugin, spec)
        } else {
            WasmInstance::start(plugin, spec)
        };
        started.map_err(|e| match e {
            StartError::Init(e) => anyhow!(
                "{}: plugin rejected its config: {}",
                ws.path.display(),
                config_error(&e)
            ),
            StartError::Fault(f) => anyhow!("{}: plugin failed to start: {f}", ws.path.display()),
        })
    }

    fn input(
        &mut self,
        mut section: PluginSection,
        global_tags: &Arc<BTreeMap<String, String>>,
    ) -> Result<RunningInput> {
        let opts = section.input_options()?;
        let id = Self::id(&section, &opts.common.alias);
        let stats = self.stats_for(&section, &id);
        let plugin: Box<dyn Input> = if section.name == registry::WASM {
            let ws = wasm_section::parse(&mut section, false)?;
            Box::new(WasmInput::new(self.wasm(
                &ws,
                PluginKind::Input,
                &id,
                &stats,
            )?))
        } else {
            let build = registry::find(registry::INPUTS, &section.name).ok_or_else(|| {
                anyhow!(
                    "unknown input `{}`; built-in inputs are: {}",
                    section.name,
                    registry::names(registry::INPUTS)
                )
            })?;
            let cx = registry::BuildContext {
                stats: self.stats.clone(),
            };
            build(std::mem::take(&mut section.table), &cx)?
        };
        let agent = &self.config.agent;
        let interval = opts.interval.unwrap_or(agent.interval);
        // What a listener receives keeps the sender's timestamps unless a
        // precision is set explicitly; gathered metrics are rounded to the
        // interval's precision as in Telegraf.
        let precision = if plugin.is_service() {
            opts.precision.or(agent.precision).unwrap_or_default()
        } else {
            opts.precision
                .unwrap_or_else(|| agent.precision_for(interval))
        };
        Ok(RunningInput {
            stats,
            id,
            plugin,
            schedule: Schedule {
                interval,
                round_interval: agent.round_interval,
                jitter: opts.collection_jitter.unwrap_or(agent.collection_jitter),
                offset: opts.collection_offset.unwrap_or(agent.collection_offset),
            },
            precision,
            modifiers: opts.modifiers,
            filter: opts.common.filter,
            global_tags: global_tags.clone(),
            service: None,
        })
    }

    fn processor(&mut self, mut section: PluginSection) -> Result<RunningProcessor> {
        let opts = section.processor_options()?;
        let id = Self::id(&section, &opts.common.alias);
        let stats = self.stats_for(&section, &id);
        let (plugin, on_error): (Box<dyn Processor>, OnError) = if section.name == registry::WASM {
            let ws = wasm_section::parse(&mut section, true)?;
            let inst = self.wasm(&ws, PluginKind::Processor, &id, &stats)?;
            (Box::new(WasmProcessor::new(inst)), ws.on_error)
        } else {
            let build = registry::find(registry::PROCESSORS, &section.name).ok_or_else(|| {
                anyhow!(
                    "unknown processor `{}`; built-in processors are: {}",
                    section.name,
                    registry::names(registry::PROCESSORS)
                )
            })?;
            (
                build(std::mem::take(&mut section.table))?,
                OnError::default(),
            )
        };
        Ok(RunningProcessor {
            stats,
            id,
            order: opts.order,
            on_error,
            filter: opts.common.filter,
            plugin,
        })
    }

    fn aggregator(
        &mut self,
        mut section: PluginSection,
        global_tags: &Arc<BTreeMap<String, String>>,
    ) -> Result<RunningAggregator> {
        let opts = section.aggregator_options()?;
        let id = Self::id(&section, &opts.common.alias);
        let stats = self.stats_for(&section, &id);
        let plugin: Box<dyn Aggregator> = if section.name == registry::WASM {
            let ws = wasm_section::parse(&mut section, false)?;
            Box::new(WasmAggregator::new(self.wasm(
                &ws,
                PluginKind::Aggregator,
                &id,
                &stats,
            )?))
        } else {
            bail!(
                "unknown aggregator `{}`; aggregators so far: wasm",
                section.name
            );
        };
        Ok(RunningAggregator {
            stats,
            id,
            period: opts.period,
            drop_original: opts.drop_original,
            modifiers: opts.modifiers,
            filter: opts.common.filter,
            global_tags: global_tags.clone(),
            plugin,
        })
    }

    fn output(&mut self, mut section: PluginSection) -> Result<RunningOutput> {
        let opts = section.output_options()?;
        let id = Self::id(&section, &opts.common.alias);
        let stats = self.stats_for(&section, &id);
        let plugin: Box<dyn Output> = if section.name == registry::WASM {
            let ws = wasm_section::parse(&mut section, false)?;
            Box::new(WasmOutput::new(self.wasm(
                &ws,
                PluginKind::Output,
                &id,
                &stats,
            )?))
        } else {
            let build = registry::find(registry::OUTPUTS, &section.name).ok_or_else(|| {
                anyhow!(
                    "unknown output `{}`; built-in outputs are: {}",
                    section.name,
                    registry::names(registry::OUTPUTS)
                )
            })?;
            build(std::mem::take(&mut section.table))?
        };
        let agent = &self.config.agent;
        let batch_size = opts.metric_batch_size.unwrap_or(agent.metric_batch_size);
        let limit = opts
            .metric_buffer_limit
            .unwrap_or(agent.metric_buffer_limit);
        if limit < batch_size {
            bail!(
                "metric_buffer_limit ({limit}) must be at least metric_batch_size ({batch_size})"
            );
        }
        stats
            .buffer_limit
            .store(limit as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(RunningOutput {
            stats,
            id,
            filter: opts.common.filter,
            plugin,
            buffer: Arc::new(OutputBuffer::new(limit, batch_size)),
            flush_interval: opts.flush_interval.unwrap_or(agent.flush_interval),
            flush_jitter: opts.flush_jitter.unwrap_or(agent.flush_jitter),
            batch_size,
        })
    }
}

/// `field: message`, without repeating the field when the message names it.
fn config_error(e: &graft_core::PluginError) -> String {
    match &e.field {
        Some(f) => format!("config.{f}: {}", e.message),
        None => e.message.clone(),
    }
}

/// The machine's host name, for the `host` tag.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Hex SHA-256 of what a plugin at `section` is built from: its table, the
/// agent settings it depends on (`context`), and for WASM plugins the bytes
/// of its `.wasm` file.
pub fn fingerprint(section: &PluginSection, context: &str) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(section.kind.as_str());
    h.update(b"\0");
    h.update(&section.name);
    h.update(b"\0");
    h.update(toml::to_string(&section.table).context("fingerprinting the section")?);
    h.update(b"\0");
    h.update(context);
    if section.name == registry::WASM
        && let Some(path) = section.table.get("path").and_then(toml::Value::as_str)
    {
        let path = wasm_section::resolve(section, Path::new(path));
        // An unreadable file makes the build fail later with the reason.
        if let Ok(bytes) = std::fs::read(&path) {
            h.update(b"\0wasm\0");
            h.update(Sha256::digest(&bytes));
        }
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The first running plugin with `fingerprint` not yet taken.
fn take_match(running: &[PluginKey], taken: &mut [bool], fingerprint: &str) -> Option<usize> {
    let i = running
        .iter()
        .enumerate()
        .position(|(i, k)| !taken[i] && k.fingerprint == fingerprint)?;
    taken[i] = true;
    Some(i)
}

/// Validate `config` and build every plugin that is not running already
/// (by fingerprint, in `running`). Blocking: WASM plugins are compiled and
/// initialised here. Nothing running is touched.
pub fn plan(
    config: &Config,
    running: &RunningKeys,
    runtime: Option<Arc<WasmRuntime>>,
    stats: Arc<StatsRegistry>,
    recover: bool,
) -> Result<Plan> {
    let mut global = config.global_tags.clone();
    if !config.agent.omit_hostname {
        let host = config.agent.hostname.clone().unwrap_or_else(hostname);
        global.entry("host".into()).or_insert(host);
    }
    // What inputs, aggregators and outputs take from outside their section.
    let context = format!("{:?}\n{:?}", config.agent, global);
    let global = Arc::new(global);
    let mut b = Builder {
        config,
        runtime,
        stats,
        reuse_stats: &running.stats,
        recover,
    };
    let ctx = |s: &PluginSection| s.context();
    let key = |s: &PluginSection, context: &str| -> Result<PluginKey> {
        Ok(PluginKey {
            location: s.location(),
            fingerprint: fingerprint(s, context).with_context(|| ctx(s))?,
        })
    };

    let mut inputs = Vec::new();
    let mut taken = vec![false; running.inputs.len()];
    for s in &config.inputs {
        let k = key(s, &context)?;
        let slot = match take_match(&running.inputs, &mut taken, &k.fingerprint) {
            Some(i) => Slot::Keep(i),
            None => Slot::New(b.input(s.clone(), &global).with_context(|| ctx(s))?),
        };
        inputs.push((k, slot));
    }
    let mut processors = Vec::new();
    let mut taken = vec![false; running.processors.len()];
    for s in &config.processors {
        // Processors depend on nothing outside their section.
        let k = key(s, "")?;
        let (order, slot) = match take_match(&running.processors, &mut taken, &k.fingerprint) {
            Some(i) => (
                s.clone().processor_options().with_context(|| ctx(s))?.order,
                Slot::Keep(i),
            ),
            None => {
                let p = b.processor(s.clone()).with_context(|| ctx(s))?;
                (p.order, Slot::New(p))
            }
        };
        processors.push((order, k, slot));
    }
    processors.sort_by_key(|(order, ..)| *order);
    let processors = processors.into_iter().map(|(_, k, s)| (k, s)).collect();
    let mut aggregators = Vec::new();
    let mut taken = vec![false; running.aggregators.len()];
    for s in &config.aggregators {
        let k = key(s, &context)?;
        let (drop_original, slot) =
            match take_match(&running.aggregators, &mut taken, &k.fingerprint) {
                Some(i) => (
                    s.clone()
                        .aggregator_options()
                        .with_context(|| ctx(s))?
                        .drop_original,
                    Slot::Keep(i),
                ),
                None => {
                    let a = b.aggregator(s.clone(), &global).with_context(|| ctx(s))?;
                    (a.drop_original, Slot::New(a))
                }
            };
        aggregators.push((k, slot, drop_original));
    }
    let mut outputs = Vec::new();
    let mut taken = vec![false; running.outputs.len()];
    for s in &config.outputs {
        let k = key(s, &context)?;
        let slot = match take_match(&running.outputs, &mut taken, &k.fingerprint) {
            Some(i) => Slot::Keep(i),
            None => Slot::New(b.output(s.clone()).with_context(|| ctx(s))?),
        };
        outputs.push((k, slot));
    }
    if inputs.is_empty() {
        bail!("the configuration has no input");
    }
    Ok(Plan {
        settings: config.agent.clone(),
        inputs,
        processors,
        aggregators,
        outputs,
        runtime: b.runtime,
    })
}

/// A plugin built from scratch (nothing was running to keep).
fn fresh<T>(slot: Slot<T>) -> T {
    match slot {
        Slot::New(p) => p,
        Slot::Keep(_) => unreachable!("nothing was running"),
    }
}

/// Validate and build every plugin of `config`. Blocking: WASM plugins are
/// compiled and initialised here. With `recover`, a WASM plugin that faults
/// in `init` starts poisoned and recovers with backoff, instead of failing
/// the build (`graft run`; `graft config check` and reloads are strict).
pub fn build(config: &Config, recover: bool) -> Result<Agent> {
    let stats = Arc::new(StatsRegistry::default());
    let plan = plan(
        config,
        &RunningKeys::default(),
        None,
        stats.clone(),
        recover,
    )?;
    let mut keys = RunningKeys::default();
    let mut inputs = Vec::new();
    for (k, s) in plan.inputs {
        keys.inputs.push(k);
        inputs.push(fresh(s));
    }
    let mut processors = Vec::new();
    for (k, s) in plan.processors {
        keys.processors.push(k);
        processors.push(fresh(s));
    }
    let mut aggregators = Vec::new();
    for (k, s, _) in plan.aggregators {
        keys.aggregators.push(k);
        aggregators.push(fresh(s));
    }
    let mut outputs = Vec::new();
    for (k, s) in plan.outputs {
        keys.outputs.push(k);
        outputs.push(fresh(s));
    }
    Ok(Agent {
        settings: plan.settings,
        inputs,
        processors,
        aggregators,
        outputs,
        keys,
        stats,
        runtime: plan.runtime,
    })
}
