//! `graft config check`: everything `graft run` would do before the first
//! gather, without running anything. First every section is validated
//! (pure: the kind's options and the plugin's own table, no I/O), and every
//! error is reported at once; then every plugin is built (WASM plugins
//! compiled and initialised, strictly); with `connect`, every output tries
//! to connect, and those it could not reach are listed.

use std::sync::Arc;

use anyhow::{Context, Result, bail};

use super::build::{Stage, validate};
use super::plan::{self, RunningKeys};
use crate::config::{Config, PluginSection};
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

fn validate_all<S: Stage>(sections: &[PluginSection], errors: &mut Vec<String>) {
    for s in sections {
        if let Err(e) = validate::<S>(s) {
            errors.push(format!("{}: {e:#}", s.context()));
        }
    }
}

/// Check `config`; see the module documentation. An invalid or unbuildable
/// configuration is an error; an unreachable output is reported, not an
/// error.
pub async fn check(config: Config, connect: bool) -> Result<CheckReport> {
    let mut errors = Vec::new();
    validate_all::<RunningInput>(&config.inputs, &mut errors);
    validate_all::<RunningProcessor>(&config.processors, &mut errors);
    validate_all::<RunningAggregator>(&config.aggregators, &mut errors);
    validate_all::<RunningOutput>(&config.outputs, &mut errors);
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
                .connect()
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
