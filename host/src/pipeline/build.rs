//! Turning a [`Config`] into running plugins: validate each section, build
//! each plugin (compile and instantiate WASM ones, check their contract and
//! run their `init`). Nothing runs yet; `graft config check` stops here.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use graft_core::{Aggregator, Input, Output, Processor};

use super::aggregate::RunningAggregator;
use super::buffer::OutputBuffer;
use super::input::{RunningInput, Schedule};
use super::output::RunningOutput;
use super::process::{OnError, RunningProcessor};
use super::{Agent, wasm_section};
use crate::config::{Config, PluginSection};
use crate::registry;
use crate::stats::{PluginId, StatsRegistry};
use crate::wasm::adapters::{WasmAggregator, WasmInput, WasmOutput, WasmProcessor};
use crate::wasm::instance::StartError;
use crate::wasm::{PluginKind, PluginSpec, RuntimeOptions, WasmInstance, WasmRuntime};

/// Builds plugins, creating the WASM runtime the first time one needs it.
struct Builder<'a> {
    config: &'a Config,
    runtime: Option<Arc<WasmRuntime>>,
    stats: Arc<StatsRegistry>,
}

impl Builder<'_> {
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
    ) -> Result<WasmInstance> {
        let rt = self.runtime()?;
        let plugin = rt.load(&ws.path)?;
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
        };
        WasmInstance::start(plugin, spec).map_err(|e| match e {
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
        let plugin: Box<dyn Input> = if section.name == registry::WASM {
            let ws = wasm_section::parse(&mut section, false)?;
            Box::new(WasmInput::new(self.wasm(&ws, PluginKind::Input, &id)?))
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
            stats: self.stats.register(id.clone()),
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
        let (plugin, on_error): (Box<dyn Processor>, OnError) = if section.name == registry::WASM {
            let ws = wasm_section::parse(&mut section, true)?;
            let inst = self.wasm(&ws, PluginKind::Processor, &id)?;
            (Box::new(WasmProcessor::new(inst)), ws.on_error)
        } else {
            bail!(
                "unknown processor `{}`; processors so far: wasm",
                section.name
            );
        };
        Ok(RunningProcessor {
            stats: self.stats.register(id.clone()),
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
        let plugin: Box<dyn Aggregator> = if section.name == registry::WASM {
            let ws = wasm_section::parse(&mut section, false)?;
            Box::new(WasmAggregator::new(self.wasm(
                &ws,
                PluginKind::Aggregator,
                &id,
            )?))
        } else {
            bail!(
                "unknown aggregator `{}`; aggregators so far: wasm",
                section.name
            );
        };
        Ok(RunningAggregator {
            stats: self.stats.register(id.clone()),
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
        let plugin: Box<dyn Output> = if section.name == registry::WASM {
            let ws = wasm_section::parse(&mut section, false)?;
            Box::new(WasmOutput::new(self.wasm(&ws, PluginKind::Output, &id)?))
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
        let stats = self.stats.register(id.clone());
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

/// Validate and build every plugin of `config`. Blocking: WASM plugins are
/// compiled and initialised here.
pub fn build(config: &Config) -> Result<Agent> {
    let mut global = config.global_tags.clone();
    if !config.agent.omit_hostname {
        let host = config.agent.hostname.clone().unwrap_or_else(hostname);
        global.entry("host".into()).or_insert(host);
    }
    let global = Arc::new(global);
    let mut b = Builder {
        config,
        runtime: None,
        stats: Arc::new(StatsRegistry::default()),
    };
    let ctx = |s: &PluginSection| s.context();

    let mut inputs = Vec::new();
    for s in &config.inputs {
        inputs.push(b.input(s.clone(), &global).with_context(|| ctx(s))?);
    }
    let mut processors = Vec::new();
    for s in &config.processors {
        processors.push(b.processor(s.clone()).with_context(|| ctx(s))?);
    }
    processors.sort_by_key(|p| p.order);
    let mut aggregators = Vec::new();
    for s in &config.aggregators {
        aggregators.push(b.aggregator(s.clone(), &global).with_context(|| ctx(s))?);
    }
    let mut outputs = Vec::new();
    for s in &config.outputs {
        outputs.push(b.output(s.clone()).with_context(|| ctx(s))?);
    }
    if inputs.is_empty() {
        bail!("the configuration has no input");
    }
    Ok(Agent {
        settings: config.agent.clone(),
        inputs,
        processors,
        aggregators,
        outputs,
        stats: b.stats,
        runtime: b.runtime,
    })
}
