//! `graft plugin test`: the conformance kit a plugin author runs in CI.
//!
//! One plugin, alone, outside any pipeline, on the fuel-metered engine:
//!
//! - static: a valid component, which world and contract version it targets
//!   (refused with the reason when this graft does not run it), and which
//!   WASI interfaces it imports that a default config does not grant;
//! - contract: `init` with a bad config returns an error rather than trap;
//!   an empty batch, a large one, unicode names; every batch it returns is
//!   checked against the contract;
//! - golden cases (`--cases DIR`): a folder per case with the plugin's
//!   config, an input and the expected output or error; each case runs
//!   twice, on fresh instances, to catch non-determinism;
//! - metering: fuel per metric and linear-memory high-water mark against
//!   optional budgets, and a soak whose memory must level off.
//!
//! Layout:
//! - `report`: the checks found, rendered for a terminal, JSON or JUnit XML
//! - `subject`: the plugin under test, one instance of any kind, and the
//!   batches the generated checks feed it
//! - `golden`: the golden cases of `--cases DIR`
//! - `metering`: fuel, memory high-water mark and the soak

mod golden;
mod metering;
mod report;
mod subject;

use std::path::PathBuf;
use std::time::Instant;

use graft_core::Batch;

pub use report::{Check, Report, Status};
use report::{fail, pass};
use subject::{Ran, Subject, generated, unicode};

use crate::wasm::instance::StartError;
use crate::wasm::{LoadedPlugin, RuntimeOptions, WasmRuntime};

/// What to test and against which budgets.
#[derive(Clone, Debug)]
pub struct Options {
    pub plugin: PathBuf,
    /// The plugin's config for the generated checks, as JSON.
    pub config_json: String,
    pub cases: Option<PathBuf>,
    /// Calls in the soak.
    pub soak_calls: usize,
    pub fuel_per_metric: Option<u64>,
    pub memory_bytes: Option<usize>,
    /// `limits.recycle_memory` for the soak, as the plugin will run.
    pub recycle_memory: Option<usize>,
}

/// Which grant a WASI import needs, if any.
fn grant_for(import: &str) -> Option<&'static str> {
    let iface = import.split('@').next().unwrap_or(import);
    Some(match iface {
        "wasi:http/outgoing-handler" => "permissions.http",
        "wasi:sockets/tcp" | "wasi:sockets/tcp-create-socket" => "permissions.tcp",
        "wasi:sockets/udp" | "wasi:sockets/udp-create-socket" => "permissions.udp",
        "wasi:filesystem/preopens" => "permissions.read_dirs / write_dirs",
        "wasi:cli/environment" => "permissions.env",
        _ => return None,
    })
}

/// Run every check.
pub fn run(opts: &Options) -> Report {
    let mut report = Report {
        plugin: opts.plugin.display().to_string(),
        ..Default::default()
    };
    let started = Instant::now();
    let rt = match WasmRuntime::new(&RuntimeOptions { cache_dir: None }) {
        Ok(rt) => rt,
        Err(e) => {
            report.add("static", "runtime", started, fail(format!("{e:#}")));
            return report;
        }
    };
    let plugin = match rt.load_with(&opts.plugin, true) {
        Ok(p) => p,
        Err(e) => {
            report.add(
                "static",
                "component and contract",
                started,
                fail(format!("{e:#}")),
            );
            return report;
        }
    };
    report.kind = Some(plugin.contract.kind.to_string());
    report.contract = Some(plugin.contract.version.clone());
    report.add(
        "static",
        "component and contract",
        started,
        pass(format!(
            "targets graft:plugin/{}@{}",
            plugin.contract.kind, plugin.contract.version
        )),
    );
    let needs: Vec<String> = plugin
        .contract
        .imports
        .iter()
        .filter_map(|i| grant_for(i).map(|g| format!("{i} ({g})")))
        .collect();
    report.add(
        "static",
        "imports versus default grants",
        Instant::now(),
        if needs.is_empty() {
            pass("imports nothing a default config withholds")
        } else {
            pass(format!(
                "imports that do nothing until granted: {}",
                needs.join(", ")
            ))
        },
    );

    contract_checks(&plugin, opts, &mut report);
    if let Some(dir) = &opts.cases
        && let Err(e) = golden::golden_cases(&plugin, dir, &mut report)
    {
        report.add("golden", "cases", Instant::now(), fail(format!("{e:#}")));
    }
    metering::metering(&plugin, opts, &mut report);
    report
}

fn contract_checks(plugin: &LoadedPlugin, opts: &Options, report: &mut Report) {
    for (name, bad) in [
        ("init with malformed JSON", "{\"unterminated"),
        ("init with a config of the wrong shape", "[1, 2, 3]"),
    ] {
        let t = Instant::now();
        let outcome = match Subject::start(plugin, bad) {
            Ok(_) => pass("accepted it (the plugin ignores its config)"),
            Err(StartError::Init(e)) => pass(format!("returned an error: {e}")),
            Err(StartError::Fault(f)) => {
                fail(format!("faulted instead of returning an error: {f}"))
            }
        };
        report.add("contract", name, t, outcome);
    }
    let t = Instant::now();
    let mut subject = match Subject::start(plugin, &opts.config_json) {
        Ok(s) => s,
        Err(e) => {
            report.add(
                "contract",
                "init with the given config",
                t,
                fail(format!("{e} (pass the plugin's config with --config-json)")),
            );
            return;
        }
    };
    report.add("contract", "init with the given config", t, pass(""));
    for (name, input) in [
        ("empty batch", Batch::new()),
        ("large batch (10 000 metrics)", generated(10_000)),
        ("unicode names and values", unicode()),
    ] {
        let t = Instant::now();
        let outcome = match subject.exercise(&input) {
            Ran::Batch(b) => pass(format!("{} metrics out, well-formed", b.len())),
            Ran::Written => pass("written"),
            Ran::Error(e) => (Status::Warn, format!("returned an error: {e}")),
            Ran::Fault(f) => fail(f),
        };
        report.add("contract", name, t, outcome);
    }
}
