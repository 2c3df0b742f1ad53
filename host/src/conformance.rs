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

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use graft_api::{Aggregator, CallError, Processor};
use graft_core::lineparse::{Precision, parse_into};
use graft_core::{Batch, BatchBuilder, FieldRef};
use serde::Serialize;

use crate::stats::PluginStats;
use crate::wasm::adapters::{WasmAggregator, WasmProcessor, gather_now, write_now};
use crate::wasm::instance::StartError;
use crate::wasm::{
    LoadedPlugin, PluginKind, PluginSpec, RuntimeOptions, WasmInstance, WasmRuntime,
};

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

/// How a check ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Warn,
    Skip,
}

/// One check.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub group: &'static str,
    pub name: String,
    pub status: Status,
    pub detail: String,
    pub millis: f64,
}

/// Everything `graft plugin test` found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub plugin: String,
    pub kind: Option<String>,
    pub contract: Option<String>,
    pub checks: Vec<Check>,
}

impl Report {
    fn add(&mut self, group: &'static str, name: impl Into<String>, started: Instant, r: Outcome) {
        let (status, detail) = r;
        self.checks.push(Check {
            group,
            name: name.into(),
            status,
            detail,
            millis: started.elapsed().as_secs_f64() * 1e3,
        });
    }

    /// Whether any check failed.
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.status == Status::Fail)
    }

    /// For a terminal.
    pub fn human(&self) -> String {
        let mut out = format!("{}\n", self.plugin);
        if let (Some(k), Some(v)) = (&self.kind, &self.contract) {
            let _ = writeln!(out, "  {k} plugin, contract graft:plugin@{v}");
        }
        for c in &self.checks {
            let mark = match c.status {
                Status::Pass => "ok  ",
                Status::Fail => "FAIL",
                Status::Warn => "warn",
                Status::Skip => "skip",
            };
            let _ = write!(out, "  {mark} {}: {}", c.group, c.name);
            if !c.detail.is_empty() {
                let _ = write!(out, " — {}", c.detail);
            }
            out.push('\n');
        }
        let failed = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .count();
        let _ = writeln!(out, "{} checks, {failed} failed", self.checks.len());
        out
    }

    /// For machines.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// For CI systems that read JUnit XML.
    pub fn junit(&self) -> String {
        let esc = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
        };
        let failures = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .count();
        let skipped = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Skip)
            .count();
        let mut out = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"graft plugin test: {}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\">\n",
            esc(&self.plugin),
            self.checks.len()
        );
        for c in &self.checks {
            let _ = write!(
                out,
                "  <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                c.group,
                esc(&c.name),
                c.millis / 1e3
            );
            match c.status {
                Status::Fail => {
                    let _ = writeln!(out, "><failure message=\"{}\"/></testcase>", esc(&c.detail));
                }
                Status::Skip => {
                    let _ = writeln!(out, "><skipped message=\"{}\"/></testcase>", esc(&c.detail));
                }
                _ => {
                    let _ = writeln!(
                        out,
                        "><system-out>{}</system-out></testcase>",
                        esc(&c.detail)
                    );
                }
            }
        }
        out.push_str("</testsuite>\n");
        out
    }
}

type Outcome = (Status, String);

fn pass(detail: impl Into<String>) -> Outcome {
    (Status::Pass, detail.into())
}

fn fail(detail: impl Into<String>) -> Outcome {
    (Status::Fail, detail.into())
}

/// A plugin instance and the kind's calls.
enum Subject {
    Input(WasmInstance),
    Processor(WasmProcessor),
    Aggregator(WasmAggregator),
    Output(WasmInstance),
}

/// What one exercise of the kind's main path gave.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // short-lived, one at a time
enum Ran {
    /// Metrics out (inputs, processors, aggregators).
    Batch(Batch),
    /// An output took the batch.
    Written,
    /// The plugin returned an error on purpose.
    Error(String),
    /// The plugin faulted (trap, deadline, memory, contract).
    Fault(String),
}

impl Subject {
    fn start(plugin: &LoadedPlugin, config: &str) -> Result<Self, StartError> {
        Self::start_capped(plugin, config, None, None)
    }

    /// Start with linear memory capped at `memory` bytes (default limits
    /// otherwise).
    fn start_capped(
        plugin: &LoadedPlugin,
        config: &str,
        memory: Option<usize>,
        recycle: Option<usize>,
    ) -> Result<Self, StartError> {
        let mut spec = PluginSpec::new("plugin-test", config);
        if let Some(m) = memory {
            spec.limits.memory_bytes = m;
        }
        spec.limits.recycle_memory = recycle;
        let inst = WasmInstance::start(plugin.clone(), spec)?;
        Ok(match plugin.contract.kind {
            PluginKind::Input => Subject::Input(inst),
            PluginKind::Processor => Subject::Processor(WasmProcessor::new(inst)),
            PluginKind::Aggregator => Subject::Aggregator(WasmAggregator::new(inst)),
            PluginKind::Output => Subject::Output(inst),
        })
    }

    fn instance(&self) -> &WasmInstance {
        match self {
            Subject::Input(i) | Subject::Output(i) => i,
            Subject::Processor(p) => p.instance(),
            Subject::Aggregator(a) => a.instance(),
        }
    }

    /// Run the kind's main path on `input`: process it, gather (input
    /// ignored), add then push and reset, or write it.
    fn exercise(&mut self, input: &Batch) -> Ran {
        fn from<E: std::fmt::Display>(e: CallError<E>) -> Ran {
            match e {
                CallError::Returned(e) => Ran::Error(e.to_string()),
                CallError::Fault(f) => Ran::Fault(f.to_string()),
            }
        }
        match self {
            Subject::Input(i) => match gather_now(i) {
                Ok(b) => Ran::Batch(b),
                Err(e) => from(e),
            },
            Subject::Processor(p) => {
                let mut b = input.clone();
                match p.process(&mut b) {
                    Ok(()) => Ran::Batch(b),
                    Err(e) => from(e),
                }
            }
            Subject::Aggregator(a) => {
                if let Err(e) = a.add(input) {
                    return from(e);
                }
                let out = match a.push() {
                    Ok(b) => b,
                    Err(e) => return from(e),
                };
                match a.reset() {
                    Ok(()) => Ran::Batch(out),
                    Err(e) => from(e),
                }
            }
            Subject::Output(i) => match write_now(i, input.clone()) {
                Ok(()) => Ran::Written,
                Err(e) => from(e),
            },
        }
    }
}

/// `n` metrics like a system input's.
fn generated(n: usize) -> Batch {
    let mut b = BatchBuilder::new();
    for i in 0..n {
        let host = format!("host-{:02}", i % 20);
        b.metric("cpu", 1_700_000_000_000_000_000 + i as i64)
            .tag("cpu", "cpu-total")
            .tag("host", &host)
            .field("usage_idle", 90.5 - (i % 10) as f64)
            .field("usage_user", 5.25)
            .field("count", i as i64);
    }
    b.finish()
}

/// Names, tags and strings well past ASCII.
fn unicode() -> Batch {
    let mut b = BatchBuilder::new();
    b.metric("温度 sensor ü", 1_700_000_000_000_000_000)
        .tag("lieu", "Zürich, Gare")
        .tag("部屋", "会議室 🌡")
        .field("值", 21.5)
        .field("note", "naïve \"quoted\" 🙂\nline two");
    b.metric("ascii", 1_700_000_000_000_000_001)
        .tag("k", "v")
        .field("f", 1i64);
    b.finish()
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
        && let Err(e) = golden_cases(&plugin, dir, &mut report)
    {
        report.add("golden", "cases", Instant::now(), fail(format!("{e:#}")));
    }
    metering(&plugin, opts, &mut report);
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

/// A case's comparison options (`options.toml`).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseOptions {
    /// Compare as sets of lines (default true).
    sort: Option<bool>,
    /// Leave timestamps out of the comparison.
    #[serde(default)]
    ignore_timestamps: bool,
    /// Floats equal within this relative tolerance.
    #[serde(default)]
    float_tolerance: f64,
}

/// A metric, for comparing.
#[derive(Clone, Debug, PartialEq)]
struct Norm {
    name: String,
    tags: Vec<(String, String)>,
    fields: Vec<(String, NormValue)>,
    ts: Option<i64>,
}

#[derive(Clone, Debug, PartialEq)]
enum NormValue {
    Float(f64),
    Int(i64),
    Uint(u64),
    Bool(bool),
    Str(String),
}

fn normalize(batches: &[Batch], opts: &CaseOptions) -> Vec<Norm> {
    let mut out: Vec<Norm> = batches
        .iter()
        .flat_map(|b| b.iter())
        .map(|m| {
            let mut tags: Vec<_> = m
                .tags()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            tags.sort();
            let mut fields: Vec<_> = m
                .fields()
                .map(|(k, v)| {
                    let v = match v {
                        FieldRef::Float(x) => NormValue::Float(x),
                        FieldRef::Int(x) => NormValue::Int(x),
                        FieldRef::Uint(x) => NormValue::Uint(x),
                        FieldRef::Bool(x) => NormValue::Bool(x),
                        FieldRef::Str(s) => NormValue::Str(s.to_owned()),
                    };
                    (k.to_owned(), v)
                })
                .collect();
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Norm {
                name: m.name().to_owned(),
                tags,
                fields,
                ts: (!opts.ignore_timestamps).then(|| m.timestamp()),
            }
        })
        .collect();
    if opts.sort.unwrap_or(true) {
        out.sort_by_cached_key(|m| format!("{m:?}"));
    }
    out
}

fn same(a: &[Norm], b: &[Norm], tolerance: f64) -> bool {
    let value_eq = |x: &NormValue, y: &NormValue| match (x, y) {
        (NormValue::Float(x), NormValue::Float(y)) => {
            x == y || (x - y).abs() <= tolerance * x.abs().max(y.abs())
        }
        _ => x == y,
    };
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.name == y.name
                && x.tags == y.tags
                && x.ts == y.ts
                && x.fields.len() == y.fields.len()
                && x.fields
                    .iter()
                    .zip(&y.fields)
                    .all(|((kx, vx), (ky, vy))| kx == ky && value_eq(vx, vy))
        })
}

fn read_lp(path: &Path) -> Result<Batch> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut b = BatchBuilder::new();
    let errors = parse_into(&text, Precision::Nanoseconds, 0, &mut b);
    if let Some(e) = errors.first() {
        bail!("{}: {e}", path.display());
    }
    Ok(b.finish())
}

/// The plugin config of a case: `config.json`, or `config.toml` (a table).
fn case_config(dir: &Path) -> Result<String> {
    let json = dir.join("config.json");
    if json.exists() {
        return std::fs::read_to_string(&json)
            .with_context(|| format!("reading {}", json.display()));
    }
    let toml_path = dir.join("config.toml");
    if toml_path.exists() {
        let text = std::fs::read_to_string(&toml_path)?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| {
            anyhow::anyhow!("{}: {}", toml_path.display(), e.to_string().trim_end())
        })?;
        return Ok(serde_json::to_string(&table)?);
    }
    Ok("{}".into())
}

/// What one run of a case gave: metrics or an error text.
fn run_case(plugin: &LoadedPlugin, config: &str, input: &Batch) -> Result<Vec<Batch>, String> {
    let mut s = Subject::start(plugin, config).map_err(|e| e.to_string())?;
    match s.exercise(input) {
        Ran::Batch(b) => Ok(vec![b]),
        Ran::Written => Ok(Vec::new()),
        Ran::Error(e) | Ran::Fault(e) => Err(e),
    }
}

fn golden_cases(plugin: &LoadedPlugin, dir: &Path, report: &mut Report) -> Result<()> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading cases in {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    if cases.is_empty() {
        bail!("{} holds no case folders", dir.display());
    }
    for case in cases {
        let name = case
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let t = Instant::now();
        let outcome = one_case(plugin, &case).unwrap_or_else(|e| fail(format!("{e:#}")));
        report.add("golden", name, t, outcome);
    }
    Ok(())
}

fn one_case(plugin: &LoadedPlugin, case: &Path) -> Result<Outcome> {
    let config = case_config(case)?;
    let options: CaseOptions = match std::fs::read_to_string(case.join("options.toml")) {
        Ok(text) => toml::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "{}: {}",
                case.join("options.toml").display(),
                e.to_string().trim_end()
            )
        })?,
        Err(_) => CaseOptions::default(),
    };
    let input_path = case.join("input.lp");
    let input = if input_path.exists() {
        read_lp(&input_path)?
    } else {
        Batch::new()
    };
    let first = run_case(plugin, &config, &input);
    let second = run_case(plugin, &config, &input);
    let show = |r: &Result<Vec<Batch>, String>| match r {
        Ok(b) => format!("{} metrics", b.iter().map(Batch::len).sum::<usize>()),
        Err(e) => format!("error {e:?}"),
    };
    let deterministic = match (&first, &second) {
        (Ok(a), Ok(b)) => same(
            &normalize(a, &options),
            &normalize(b, &options),
            options.float_tolerance,
        ),
        (Err(a), Err(b)) => a == b,
        _ => false,
    };
    if !deterministic {
        return Ok(fail(format!(
            "not deterministic: two runs on fresh instances differ ({} / {})",
            show(&first),
            show(&second)
        )));
    }
    let expected_error = case.join("expected_error.txt");
    if expected_error.exists() {
        let want = std::fs::read_to_string(&expected_error)?.trim().to_owned();
        return Ok(match first {
            Err(e) if e.contains(&want) => pass(format!("error as expected: {e}")),
            other => fail(format!(
                "expected an error containing {want:?}, got {}",
                show(&other)
            )),
        });
    }
    let expected_path = case.join("expected.lp");
    let got = match first {
        Ok(b) => b,
        Err(e) => return Ok(fail(format!("unexpected error: {e}"))),
    };
    if !expected_path.exists() {
        return Ok(pass("ran twice alike (no expected.lp to compare)"));
    }
    let expected = normalize(&[read_lp(&expected_path)?], &options);
    let actual = normalize(&got, &options);
    Ok(if same(&actual, &expected, options.float_tolerance) {
        pass(format!("{} metrics as expected", actual.len()))
    } else {
        let first_diff = actual
            .iter()
            .zip(&expected)
            .position(|(a, e)| {
                !same(
                    std::slice::from_ref(a),
                    std::slice::from_ref(e),
                    options.float_tolerance,
                )
            })
            .unwrap_or(actual.len().min(expected.len()));
        fail(format!(
            "{} metrics, {} expected; first difference at {first_diff}: got {:?}, expected {:?}",
            actual.len(),
            expected.len(),
            actual.get(first_diff),
            expected.get(first_diff)
        ))
    })
}

fn metering(plugin: &LoadedPlugin, opts: &Options, report: &mut Report) {
    let t = Instant::now();
    let Ok(mut subject) = Subject::start(plugin, &opts.config_json) else {
        report.add(
            "metering",
            "fuel and memory",
            t,
            (Status::Skip, "init failed".into()),
        );
        return;
    };
    let batch = generated(1000);
    // The first call warms up; the second is measured.
    let _ = subject.exercise(&batch);
    let timed = Instant::now();
    let _ = subject.exercise(&batch);
    let micros = timed.elapsed().as_secs_f64() * 1e6 / batch.len() as f64;
    let fuel = subject.instance().last_fuel().unwrap_or(0);
    let per_metric = fuel / batch.len() as u64;
    let memory = subject.instance().memory_peak();
    let outcome = match opts.fuel_per_metric {
        Some(budget) if per_metric > budget => fail(format!(
            "{per_metric} fuel per metric, over the budget of {budget}"
        )),
        _ => pass(format!(
            "{per_metric} fuel per metric, {micros:.2} µs per metric on the metered engine \
             (1000-metric batch)"
        )),
    };
    report.add("metering", "fuel per metric", t, outcome);
    let outcome = match opts.memory_bytes {
        Some(budget) if memory > budget => fail(format!(
            "linear memory reached {memory} bytes, over the budget of {budget}"
        )),
        _ => pass(format!(
            "linear memory high-water mark {} KiB",
            memory / 1024
        )),
    };
    report.add("metering", "memory high-water mark", t, outcome);

    // The soak: memory must level off. It runs on a fresh instance whose
    // linear memory is capped not far above what the plugin needed so far
    // (half as much again, at least 4 MiB more): memory that grows without
    // bound hits the cap and faults, while a garbage-collected heap, which
    // would otherwise grow a long way before its first collection, is made
    // to collect. The peak is sampled every quarter; still rising through
    // the last three quarters also fails.
    let t = Instant::now();
    let small = generated(100);
    let warm = subject.instance().memory_peak();
    let cap = warm + (warm / 2).max(4 << 20);
    // Recycling lets memory reach the threshold before a fresh instance.
    let cap = opts
        .recycle_memory
        .map_or(cap, |r| cap.max(r + (r / 2).max(4 << 20)));
    let cap = opts.memory_bytes.map_or(cap, |m| cap.min(m));
    let calls = opts.soak_calls.max(8);
    let mut quarters = Vec::new();
    let mut error = None;
    let mut soak_stats: std::sync::Arc<PluginStats> = std::sync::Arc::default();
    match Subject::start_capped(plugin, &opts.config_json, Some(cap), opts.recycle_memory) {
        Err(e) => {
            error = Some(format!(
                "could not start under a cap of {} KiB: {e}",
                cap / 1024
            ));
        }
        Ok(mut soaked) => {
            soak_stats = soaked.instance().stats().clone();
            for i in 1..=calls {
                if let Ran::Fault(f) = soaked.exercise(&small) {
                    error = Some(format!(
                        "faulted on call {i} with memory capped at {} KiB ({} KiB after warm-up): {f}",
                        cap / 1024,
                        warm / 1024
                    ));
                    break;
                }
                if i % (calls / 4) == 0 {
                    quarters.push(soaked.instance().memory_peak());
                }
            }
        }
    }
    let shown = quarters
        .iter()
        .map(|q| (q / 1024).to_string())
        .collect::<Vec<_>>()
        .join(" → ");
    let hint = if opts.recycle_memory.is_none() {
        " (a runtime that never frees memory, like componentize-js, needs \
         limits.recycle_memory in graft.toml; test with --recycle-memory)"
    } else {
        ""
    };
    let outcome = if let Some(e) = error {
        fail(format!("memory grows without levelling off: {e}{hint}"))
    } else if opts.recycle_memory.is_none()
        && quarters.len() >= 4
        && quarters[1] < quarters[2]
        && quarters[2] < quarters[3]
    {
        fail(format!(
            "memory grows without levelling off: still rising after {calls} calls: {shown} KiB at each quarter{hint}"
        ))
    } else {
        let recycled = match opts.recycle_memory {
            Some(r) => format!(
                ", recycled {} times past {} KiB",
                PluginStats::get(&soak_stats.recycles),
                r / 1024
            ),
            None => String::new(),
        };
        pass(format!(
            "levels off over {calls} calls under a cap of {} KiB: {shown} KiB at each quarter{recycled}",
            cap / 1024
        ))
    };
    report.add("metering", "soak", t, outcome);
}
