//! `graft config check`: everything `graft run` would do before the first
//! gather, without running anything. First the whole configuration is
//! validated (pure, no I/O: `[agent]`, every section's options for its kind
//! and its WASM keys, then each built-in's own table), and every error is
//! reported at once; then every plugin is built (WASM plugins
//! compiled and initialised, strictly); with `connect`, every output tries
//! to connect, and those it could not reach are listed.

use std::sync::Arc;

use anyhow::{Context, Result, bail};

use super::build::{Stage, validate};
use super::plan::{self, RunningKeys};
use crate::config::{Config, ConfigError, PluginSection};
use crate::pipeline::aggregate::RunningAggregator;
use crate::pipeline::blocking;
use crate::pipeline::chain::{RunningProcessor, Slot};
use crate::pipeline::input::RunningInput;
use crate::pipeline::output::RunningOutput;
use crate::stats::StatsRegistry;

/// What a check found.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub files: usize,
    pub inputs: usize,
    pub processors: usize,
    pub aggregators: usize,
    pub outputs: usize,
    /// Outputs that could not connect (with `connect`): location and why.
    pub unreachable: Vec<(String, String)>,
}

/// The plugin's own table of every section of kind `S` that `problems`
/// (the agent and the kind's options) found nothing wrong with.
fn validate_tables<S: Stage>(
    sections: &[PluginSection],
    problems: &[ConfigError],
    errors: &mut Vec<String>,
) {
    for s in sections {
        let location = s.location();
        if problems
            .iter()
            .any(|p| p.section.as_deref() == Some(location.as_str()))
        {
            continue;
        }
        if let Err(e) = validate::<S>(s) {
            errors.push(format!("{}: {e:#}", s.context()));
        }
    }
}

/// Check `config`; see the module documentation. An invalid or unbuildable
/// configuration is an error; an unreachable output is reported, not an
/// error.
pub async fn check(config: Config, connect: bool) -> Result<CheckReport> {
    let problems = config.problems();
    let mut errors: Vec<String> = problems.iter().map(ToString::to_string).collect();
    validate_tables::<RunningInput>(&config.inputs, &problems, &mut errors);
    validate_tables::<RunningProcessor>(&config.processors, &problems, &mut errors);
    validate_tables::<RunningAggregator>(&config.aggregators, &problems, &mut errors);
    validate_tables::<RunningOutput>(&config.outputs, &problems, &mut errors);
    match errors.len() {
        0 => {}
        1 => bail!("{}", errors[0]),
        n => bail!("{n} sections are invalid:\n  {}", errors.join("\n  ")),
    }
    let files = config.files.len();
    let plan = blocking(move || {
        plan::plan(
            &config,
            &RunningKeys::default(),
            None,
            Arc::new(StatsRegistry::default()),
            false,
        )
    })
    .await??;
    let mut report = CheckReport {
        files,
        inputs: plan.inputs.len(),
        processors: plan.processors.len(),
        aggregators: plan.aggregators.len(),
        outputs: plan.outputs.len(),
        unreachable: Vec::new(),
    };
    if connect {
        for p in plan.outputs {
            let Slot::New(mut o) = p.slot else { continue };
            let connected = o
                .plugin
                .probe()
                .await
                .with_context(|| p.key.location.clone());
            match connected {
                Ok(()) => {
                    let _ = o.plugin.close().await;
                }
                Err(e) => report
                    .unreachable
                    .push((p.key.location, format!("{:#}", e.root_cause()))),
            }
        }
    }
    Ok(report)
}
