//! A section becomes a running plugin here, the same way for every kind:
//! the kind's options are taken out of the section, the plugin is built
//! (from the [`registry`] or, for `[[kind.wasm]]`, compiled, checked and
//! instantiated), and the kind's [`Stage`] puts graft's own machinery
//! around it (schedule, filters, modifiers, buffer, span, counters).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use graft_api::{Aggregator, Input, Output, Processor};

use crate::config::buffer::BufferSpec;
use crate::config::section::{
    AggregatorOptions, CommonOptions, InputOptions, OutputOptions, ProcessorOptions,
};
use crate::config::{AgentConfig, ConfigError, PluginSection};
use crate::kind::{Kind, WASM};
use crate::pipeline::aggregate::RunningAggregator;
use crate::pipeline::buffer::OutputBuffer;
use crate::pipeline::chain::{OnError, RunningProcessor};
use crate::pipeline::input::{RunningInput, Schedule};
use crate::pipeline::output::RunningOutput;
use crate::pipeline::wasm_section;
use crate::registry::{self, BuildContext, Entry};
use crate::stats::{PluginId, PluginStats, StatsRegistry};
use crate::wasm::adapters::{WasmAggregator, WasmInput, WasmOutput, WasmProcessor};
use crate::wasm::instance::StartError;
use crate::wasm::{PluginSpec, RuntimeOptions, WasmInstance, WasmRuntime};

/// One plugin kind as the builder sees it.
pub trait Stage: Sized + Send + 'static {
    /// The kind.
    const KIND: Kind;
    /// Whether what it does depends on `[agent]` and `[global_tags]`
    /// (so that a change there restarts it on a reload).
    const USES_AGENT: bool = true;
    /// The kind's trait object: `dyn Input`, ...
    type Plugin: ?Sized;
    /// The options graft applies to every plugin of the kind.
    type Options;

    /// Take the kind's options out of `section`; what is left is the
    /// plugin's own table. Pure.
    fn options(section: &mut PluginSection) -> Result<Self::Options, ConfigError>;
    fn common(options: &Self::Options) -> &CommonOptions;
    /// The built-ins of the kind.
    fn registry() -> &'static [Entry<Self::Plugin>];
    /// A WASM instance of the kind, as the kind's trait object.
    fn from_wasm(instance: WasmInstance) -> Box<Self::Plugin>;
    /// The running stage around a built plugin.
    fn assemble(parts: Parts<Self>, agent: &Agent) -> Result<Self>;
    /// Position in the processor chain (`order`); 0 for other kinds.
    fn order(_options: &Self::Options) -> i64 {
        0
    }
    /// Whether originals stop at this plugin (`drop_original`).
    fn drops_original(_options: &Self::Options) -> bool {
        false
    }
}

/// A built plugin and what the builder knows about it.
pub struct Parts<S: Stage> {
    pub id: PluginId,
    /// `outputs.influxdb[0]`, where its section is.
    pub location: String,
    pub stats: Arc<PluginStats>,
    pub plugin: Box<S::Plugin>,
    pub options: S::Options,
    /// `on_error` of a WASM processor; the default for everything else.
    pub on_error: OnError,
}

/// What every plugin of a configuration shares: `[agent]` and the tags
/// added to every metric.
pub struct Agent {
    pub settings: AgentConfig,
    pub global_tags: Arc<BTreeMap<String, String>>,
}

impl Agent {
    /// The agent part of `config`: settings, and global tags with `host`
    /// unless `omit_hostname`.
    pub fn of(config: &crate::config::Config) -> Self {
        let mut tags = config.global_tags.clone();
        if !config.agent.omit_hostname {
            let host = config.agent.hostname.clone().unwrap_or_else(hostname);
            tags.entry("host".into()).or_insert(host);
        }
        Self {
            settings: config.agent.clone(),
            global_tags: Arc::new(tags),
        }
    }

    /// What inputs, aggregators and outputs take from outside their section,
    /// for fingerprints.
    pub fn fingerprint(&self) -> String {
        format!("{:?}\n{:?}", self.settings, self.global_tags)
    }
}

/// Where a plugin is, for taking over counters and buffers across a
/// reload: its location and alias (`outputs.file[0]::archive`).
pub fn place(location: &str, alias: Option<&str>) -> String {
    match alias {
        Some(a) => format!("{location}::{a}"),
        None => location.to_owned(),
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

/// Builds plugins, creating the WASM runtime the first time one needs it.
pub struct Builder<'a> {
    pub agent: Agent,
    pub runtime: Option<Arc<WasmRuntime>>,
    pub stats: Arc<StatsRegistry>,
    /// Counters of running plugins by place (location and alias): a
    /// changed plugin at the same place takes them over.
    pub reuse_stats: &'a HashMap<String, Arc<PluginStats>>,
    /// Whether a WASM plugin that faults in `init` may start anyway (and
    /// recover with backoff) instead of failing the build.
    pub recover: bool,
}

impl Builder<'_> {
    fn runtime(&mut self) -> Result<Arc<WasmRuntime>> {
        if let Some(rt) = &self.runtime {
            return Ok(rt.clone());
        }
        let agent = &self.agent.settings;
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

    /// Build the plugin of `section` (its kind's options already taken
    /// out) and its running stage. It takes over the counters of the
    /// running plugin at its place if that place is `reusable`.
    pub fn build<S: Stage>(
        &mut self,
        mut section: PluginSection,
        options: S::Options,
        reusable: &HashSet<String>,
    ) -> Result<S> {
        let id = PluginId {
            kind: S::KIND,
            name: section.name.clone(),
            alias: S::common(&options).alias.clone(),
        };
        let place = place(&section.location(), id.alias.as_deref());
        let stats = match self.reuse_stats.get(&place) {
            Some(s) if reusable.contains(&place) => s.clone(),
            _ => self.stats.register(id.clone()),
        };
        let (plugin, on_error) = if section.name == WASM {
            let ws = wasm_section::parse(&mut section, S::KIND == Kind::Processor)?;
            let instance = self.wasm(&ws, S::KIND, &id, &stats)?;
            (S::from_wasm(instance), ws.on_error)
        } else {
            let entry = builtin::<S>(&section.name)?;
            let cx = BuildContext {
                stats: self.stats.clone(),
            };
            let table = std::mem::take(&mut section.table);
            ((entry.build)(table, &cx)?, OnError::default())
        };
        let parts = Parts {
            id,
            location: section.location(),
            stats,
            plugin,
            options,
            on_error,
        };
        S::assemble(parts, &self.agent)
    }

    /// Compile, check and start a WASM plugin of `kind`.
    fn wasm(
        &mut self,
        ws: &wasm_section::WasmSection,
        kind: Kind,
        id: &PluginId,
        stats: &Arc<PluginStats>,
    ) -> Result<WasmInstance> {
        let rt = self.runtime()?;
        let plugin = rt.load_with(&ws.path, ws.limits.fuel.is_some())?;
        let found = plugin.contract.kind;
        if found != kind {
            bail!(
                "{} is {} plugin, but it is configured as [[{}.wasm]]; move it to [[{}.wasm]]",
                ws.path.display(),
                found.with_article(),
                kind.section(),
                found.section()
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
}

/// `config.field: message`, as a WASM plugin's `init` reported it.
fn config_error(e: &graft_core::PluginError) -> String {
    match &e.field {
        Some(f) => format!("config.{f}: {}", e.message),
        None => e.message.clone(),
    }
}

impl Stage for RunningInput {
    const KIND: Kind = Kind::Input;
    type Plugin = dyn Input;
    type Options = InputOptions;

    fn options(section: &mut PluginSection) -> Result<InputOptions, ConfigError> {
        section.input_options()
    }
    fn common(o: &InputOptions) -> &CommonOptions {
        &o.common
    }
    fn registry() -> &'static [Entry<dyn Input>] {
        registry::INPUTS
    }
    fn from_wasm(instance: WasmInstance) -> Box<dyn Input> {
        Box::new(WasmInput::new(instance))
    }
    fn assemble(mut p: Parts<Self>, agent: &Agent) -> Result<Self> {
        p.plugin.attach_counters(p.stats.counters.clone());
        let (o, a) = (p.options, &agent.settings);
        let interval = o.interval.unwrap_or(a.interval);
        // What a listener receives keeps the sender's timestamps unless a
        // precision is set explicitly; gathered metrics are rounded to the
        // interval's precision as in Telegraf.
        let precision = if p.plugin.is_service() {
            o.precision.or(a.precision).unwrap_or_default()
        } else {
            o.precision.unwrap_or_else(|| a.precision_for(interval))
        };
        Ok(RunningInput {
            span: p.id.span(),
            stats: p.stats,
            id: p.id,
            plugin: p.plugin,
            schedule: Schedule {
                interval,
                round_interval: a.round_interval,
                jitter: o.collection_jitter.unwrap_or(a.collection_jitter),
                offset: o.collection_offset.unwrap_or(a.collection_offset),
            },
            precision,
            modifiers: o.modifiers,
            filter: o.common.filter,
            global_tags: agent.global_tags.clone(),
            service: None,
        })
    }
}

impl Stage for RunningProcessor {
    const KIND: Kind = Kind::Processor;
    const USES_AGENT: bool = false;
    type Plugin = dyn Processor;
    type Options = ProcessorOptions;

    fn options(section: &mut PluginSection) -> Result<ProcessorOptions, ConfigError> {
        section.processor_options()
    }
    fn common(o: &ProcessorOptions) -> &CommonOptions {
        &o.common
    }
    fn registry() -> &'static [Entry<dyn Processor>] {
        registry::PROCESSORS
    }
    fn from_wasm(instance: WasmInstance) -> Box<dyn Processor> {
        Box::new(WasmProcessor::new(instance))
    }
    fn assemble(p: Parts<Self>, _: &Agent) -> Result<Self> {
        Ok(RunningProcessor {
            span: p.id.span(),
            stats: p.stats,
            id: p.id,
            order: p.options.order,
            on_error: p.on_error,
            filter: p.options.common.filter,
            plugin: p.plugin,
        })
    }
    fn order(o: &ProcessorOptions) -> i64 {
        o.order
    }
}

impl Stage for RunningAggregator {
    const KIND: Kind = Kind::Aggregator;
    type Plugin = dyn Aggregator;
    type Options = AggregatorOptions;

    fn options(section: &mut PluginSection) -> Result<AggregatorOptions, ConfigError> {
        section.aggregator_options()
    }
    fn common(o: &AggregatorOptions) -> &CommonOptions {
        &o.common
    }
    fn registry() -> &'static [Entry<dyn Aggregator>] {
        registry::AGGREGATORS
    }
    fn from_wasm(instance: WasmInstance) -> Box<dyn Aggregator> {
        Box::new(WasmAggregator::new(instance))
    }
    fn assemble(p: Parts<Self>, agent: &Agent) -> Result<Self> {
        Ok(RunningAggregator {
            span: p.id.span(),
            stats: p.stats,
            id: p.id,
            period: p.options.period,
            drop_original: p.options.drop_original,
            modifiers: p.options.modifiers,
            filter: p.options.common.filter,
            global_tags: agent.global_tags.clone(),
            plugin: p.plugin,
        })
    }
    fn drops_original(o: &AggregatorOptions) -> bool {
        o.drop_original
    }
}

/// `metric_buffer_limit` of a disk buffer when the configuration sets
/// none: its bytes (`buffer_max_bytes`) bound it first.
pub const DISK_METRIC_LIMIT: usize = u32::MAX as usize;

impl Stage for RunningOutput {
    const KIND: Kind = Kind::Output;
    type Plugin = dyn Output;
    type Options = OutputOptions;

    fn options(section: &mut PluginSection) -> Result<OutputOptions, ConfigError> {
        section.output_options()
    }
    fn common(o: &OutputOptions) -> &CommonOptions {
        &o.common
    }
    fn registry() -> &'static [Entry<dyn Output>] {
        registry::OUTPUTS
    }
    fn from_wasm(instance: WasmInstance) -> Box<dyn Output> {
        Box::new(WasmOutput::new(instance))
    }
    fn assemble(p: Parts<Self>, agent: &Agent) -> Result<Self> {
        let (o, a) = (p.options, &agent.settings);
        let batch_size = o.metric_batch_size.unwrap_or(a.metric_batch_size);
        let buffer_spec = o
            .buffer
            .resolve(&a.buffer, &p.location, p.id.alias.as_deref())?;
        // A disk buffer is bounded by buffer_max_bytes, and by
        // metric_buffer_limit only where it is written.
        let limit = match (o.metric_buffer_limit, &buffer_spec) {
            (Some(limit), _) => limit,
            (None, BufferSpec::Disk(_)) if !a.metric_buffer_limit_is_set() => DISK_METRIC_LIMIT,
            (None, _) => a.metric_buffer_limit,
        };
        if limit < batch_size {
            bail!(
                "metric_buffer_limit ({limit}) must be at least metric_batch_size ({batch_size})"
            );
        }
        p.stats
            .buffer_limit
            .store(limit as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(RunningOutput {
            span: p.id.span(),
            stats: p.stats,
            id: p.id,
            filter: o.common.filter,
            plugin: p.plugin,
            // A disk buffer is opened when the output is started
            // (`topology::apply`), never for `graft test` or `config check`.
            buffer: Arc::new(OutputBuffer::memory(limit, batch_size)),
            buffer_spec,
            flush_interval: o.flush_interval.unwrap_or(a.flush_interval),
            flush_jitter: o.flush_jitter.unwrap_or(a.flush_jitter),
            batch_size,
        })
    }
}

/// Validate a section of kind `S` without building anything: the kind's
/// options, then the plugin's own table (a built-in's `validate`, or a
/// WASM section's keys). Pure.
pub fn validate<S: Stage>(section: &PluginSection) -> Result<()> {
    let mut section = section.clone();
    S::options(&mut section)?;
    if section.name == WASM {
        wasm_section::parse(&mut section, S::KIND == Kind::Processor)?;
        return Ok(());
    }
    (builtin::<S>(&section.name)?.validate)(section.table)
}

/// The registry entry of the built-in `name` of kind `S`.
fn builtin<S: Stage>(name: &str) -> Result<&'static Entry<S::Plugin>> {
    registry::find(S::registry(), name).ok_or_else(|| {
        anyhow!(
            "unknown {} `{name}`; built-in {} are: {}",
            S::KIND,
            S::KIND.section(),
            registry::names(S::KIND).join(", ")
        )
    })
}
