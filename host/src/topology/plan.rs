//! The difference between what runs and a configuration: for every section,
//! keep the running plugin with the same [`PluginKey::fingerprint`] (its
//! settings, the agent settings it depends on, and for WASM plugins the
//! digest of the `.wasm` file), or build a new one. Start-up is the plan
//! against nothing running, a reload the plan against what runs. Nothing
//! running is touched here.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use super::build::{Agent, Builder, Stage, place};
use crate::config::{AgentConfig, Config, PluginSection};
use crate::kind::WASM;
use crate::pipeline::aggregate::RunningAggregator;
use crate::pipeline::chain::{RunningProcessor, Slot};
use crate::pipeline::input::RunningInput;
use crate::pipeline::output::RunningOutput;
use crate::pipeline::wasm_section;
use crate::stats::{PluginStats, StatsRegistry};
use crate::wasm::WasmRuntime;

/// Which plugin a running one is, across reloads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PluginKey {
    /// `outputs.influxdb[0]`, where it is in the configuration.
    pub location: String,
    /// Its `alias`. A changed plugin at the same location with the same
    /// alias takes over the old one's counters (and, for outputs, its
    /// buffer); with another alias it is another plugin.
    pub alias: Option<String>,
    /// Digest of everything the plugin is built from; equal means unchanged.
    pub fingerprint: String,
}

/// What runs, per kind in running order.
#[derive(Default)]
pub struct RunningKeys {
    pub inputs: Vec<PluginKey>,
    pub processors: Vec<PluginKey>,
    pub aggregators: Vec<PluginKey>,
    pub outputs: Vec<PluginKey>,
    /// Counters of running plugins by [`PluginKey::place`].
    pub stats: HashMap<String, Arc<PluginStats>>,
}

impl PluginKey {
    /// Location and alias: what a changed plugin must share with a running
    /// one to take over its counters and buffer.
    pub fn place(&self) -> String {
        place(&self.location, self.alias.as_deref())
    }
}

/// One section of the new configuration: the running plugin it keeps, or
/// the one built for it.
pub struct Planned<S> {
    pub key: PluginKey,
    pub slot: Slot<S>,
    /// `drop_original` (aggregators).
    pub drops_original: bool,
}

/// A configuration, built: new plugins, and slots for running ones kept.
pub struct Plan {
    pub settings: AgentConfig,
    pub inputs: Vec<Planned<RunningInput>>,
    /// In chain order.
    pub processors: Vec<Planned<RunningProcessor>>,
    pub aggregators: Vec<Planned<RunningAggregator>>,
    pub outputs: Vec<Planned<RunningOutput>>,
    pub runtime: Option<Arc<WasmRuntime>>,
}

/// Hex SHA-256 of what a plugin at `section` is built from: its table, the
/// agent settings it depends on (`context`), and for WASM plugins the bytes
/// of its `.wasm` file.
pub fn fingerprint(section: &PluginSection, context: &str) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(section.kind.section());
    h.update(b"\0");
    h.update(&section.name);
    h.update(b"\0");
    h.update(toml::to_string(&section.table).context("fingerprinting the section")?);
    h.update(b"\0");
    h.update(context);
    if section.name == WASM
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

/// Plan the sections of one kind against the running plugins of that kind:
/// first every section that matches a running plugin keeps it, then the
/// others are built (taking over the counters of a running plugin at their
/// place that nothing keeps).
fn plan_kind<S: Stage>(
    sections: &[PluginSection],
    running: &[PluginKey],
    builder: &mut Builder<'_>,
    context: &str,
) -> Result<Vec<Planned<S>>> {
    let context = if S::USES_AGENT { context } else { "" };
    let mut taken = vec![false; running.len()];
    let mut read = Vec::with_capacity(sections.len());
    for s in sections {
        let at = || s.context();
        let mut section = s.clone();
        let options = S::options(&mut section).with_context(at)?;
        let key = PluginKey {
            location: s.location(),
            alias: S::common(&options).alias.clone(),
            fingerprint: fingerprint(s, context).with_context(at)?,
        };
        let kept = running
            .iter()
            .enumerate()
            .position(|(i, k)| !taken[i] && k.fingerprint == key.fingerprint);
        if let Some(i) = kept {
            taken[i] = true;
        }
        read.push((s, section, options, key, kept));
    }
    let reusable: HashSet<String> = running
        .iter()
        .zip(&taken)
        .filter(|(_, taken)| !**taken)
        .map(|(k, _)| k.place())
        .collect();
    let mut planned = Vec::with_capacity(read.len());
    for (s, section, options, key, kept) in read {
        let (order, drops_original) = (S::order(&options), S::drops_original(&options));
        let slot = match kept {
            Some(i) => Slot::Keep(i),
            None => Slot::New(
                builder
                    .build::<S>(section, options, &reusable)
                    .with_context(|| s.context())?,
            ),
        };
        planned.push((
            order,
            Planned {
                key,
                slot,
                drops_original,
            },
        ));
    }
    // Processors run by ascending `order`, then file order (a stable sort).
    planned.sort_by_key(|(order, _)| *order);
    Ok(planned.into_iter().map(|(_, p)| p).collect())
}

/// Validate `config` and build every plugin that is not running already
/// (by fingerprint, in `running`). Blocking: WASM plugins are compiled and
/// initialised here. With `recover`, a WASM plugin that faults in `init`
/// starts poisoned and recovers with backoff instead of failing the plan.
pub fn plan(
    config: &Config,
    running: &RunningKeys,
    runtime: Option<Arc<WasmRuntime>>,
    stats: Arc<StatsRegistry>,
    recover: bool,
) -> Result<Plan> {
    if config.inputs.is_empty() {
        bail!("the configuration has no input");
    }
    // Checked here too, not only by `config check`: two outputs on one
    // disk log would each write part of it.
    if let Some(e) = config.buffer_problems().into_iter().next() {
        return Err(e.into());
    }
    let agent = Agent::of(config);
    let context = agent.fingerprint();
    let mut b = Builder {
        agent,
        runtime,
        stats,
        reuse_stats: &running.stats,
        recover,
    };
    Ok(Plan {
        settings: config.agent.clone(),
        inputs: plan_kind(&config.inputs, &running.inputs, &mut b, &context)?,
        processors: plan_kind(&config.processors, &running.processors, &mut b, &context)?,
        aggregators: plan_kind(&config.aggregators, &running.aggregators, &mut b, &context)?,
        outputs: plan_kind(&config.outputs, &running.outputs, &mut b, &context)?,
        runtime: b.runtime,
    })
}
