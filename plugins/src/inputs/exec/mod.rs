//! `inputs.exec`: runs commands at every interval and parses what they
//! print with the input's `data_format` (JSON by default, as in Telegraf;
//! influx, graphite and every format [`crate::format`] reads).
//!
//! - All commands of one gather run at once, each in its own process
//!   group; a wildcard in a program path runs every match (Telegraf's
//!   rule), otherwise the program is looked up in `PATH`.
//! - A command past `timeout` is killed with everything it spawned, and
//!   reaped; one that writes more than `max_output_size` to stdout is
//!   killed too, its output dropped. Stderr is kept up to 64 KiB per run.
//! - A command that exits non-zero gives an error with the first line of
//!   its stderr and none of its metrics, unless `ignore_error`.
//! - A failing command is logged when it starts failing and when it
//!   recovers; every failure is counted. The other commands go on.
//!
//! Counters (`internal_gather`): `command_failures`, `timeouts`,
//! `output_size_limit_hits`, `stderr_size_limit_hits`; lines (or
//! documents) the parser skipped are `parse_errors`.

mod config;
mod run;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Result;
use async_trait::async_trait;
use graft_api::counters::Counters;
use graft_api::{CallError, Input, MetricSink};
use graft_core::{Batch, BatchBuilder, PluginError};

use crate::builtin::{self, Builtin};
pub use config::{CommandSpec, Config, Options, Settings};
use run::{Ran, RunError};

/// Most commands one wildcard may expand to.
const MAX_GLOB_MATCHES: usize = 1000;

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Input>> {
    builtin::build::<Exec>(table)
}

impl Builtin for Exec {
    const NAME: &'static str = "exec";
    type Config = Config;
    type Plugin = dyn Input;

    fn validate(config: &Config) -> Result<()> {
        Settings::resolve(config).map(drop)
    }

    fn build(config: Config) -> Result<Box<dyn Input>> {
        Ok(Box::new(Exec::new(&config)?))
    }
}

/// The input.
pub struct Exec {
    settings: Settings,
    /// Per command line: whether its last run failed.
    failing: HashMap<String, bool>,
    /// Per command line: whether its last output had parts skipped.
    bad_output: HashMap<String, bool>,
    stats: Stats,
    sink: Option<MetricSink>,
}

/// The input's own counters (`docs/instrumentation.md`).
struct Stats {
    command_failures: Arc<AtomicU64>,
    timeouts: Arc<AtomicU64>,
    output_size_limit_hits: Arc<AtomicU64>,
    stderr_size_limit_hits: Arc<AtomicU64>,
}

impl Stats {
    fn new(counter: impl Fn(&'static str) -> Arc<AtomicU64>) -> Self {
        Self {
            command_failures: counter("command_failures"),
            timeouts: counter("timeouts"),
            output_size_limit_hits: counter("output_size_limit_hits"),
            stderr_size_limit_hits: counter("stderr_size_limit_hits"),
        }
    }
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Exec {
    /// Resolve the config; nothing runs until the first gather.
    pub fn new(config: &Config) -> Result<Self> {
        let settings = Settings::resolve(config)?;
        if settings.commands.is_empty() {
            tracing::warn!("inputs.exec has no commands: it gathers nothing");
        }
        let local = Arc::new(Counters::default());
        Ok(Self {
            settings,
            failing: HashMap::new(),
            bad_output: HashMap::new(),
            stats: Stats::new(|name| local.counter(name)),
            sink: None,
        })
    }

    /// The command lines to run now, wildcards expanded.
    fn expand(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        for c in &self.settings.commands {
            let matches = c.glob.as_ref().map(|g| {
                let (files, more) = g.files(MAX_GLOB_MATCHES);
                if more {
                    tracing::warn!(
                        pattern = g.pattern(),
                        limit = MAX_GLOB_MATCHES,
                        "the program path matches more files than graft runs; the first ones run"
                    );
                }
                files
            });
            match matches {
                Some(files) if !files.is_empty() => {
                    out.extend(files.into_iter().map(|f| {
                        let mut argv = c.argv.clone();
                        argv[0] = f.display().to_string();
                        argv
                    }));
                }
                _ => out.push(c.argv.clone()),
            }
        }
        out
    }

    /// Count and log what went wrong with `command`, and whether its
    /// output may still be read.
    fn failed(&mut self, command: &str, error: &str) {
        add(&self.stats.command_failures, 1);
        let failing = self.failing.entry(command.to_owned()).or_default();
        if *failing {
            tracing::debug!(command, error, "command failed again");
        } else {
            *failing = true;
            tracing::warn!(
                command,
                error,
                "command failed; the other commands go on (further failures are quiet until it succeeds)"
            );
        }
    }

    fn succeeded(&mut self, command: &str) {
        if let Some(failing) = self.failing.get_mut(command)
            && *failing
        {
            *failing = false;
            tracing::info!(command, "command succeeds again");
        }
    }

    /// What to parse from one run, if anything.
    fn outcome(&mut self, command: &str, result: Result<Ran, RunError>) -> Option<Vec<u8>> {
        let ran = match result {
            Ok(ran) => ran,
            Err(e) => {
                match e {
                    RunError::Timeout(_) => add(&self.stats.timeouts, 1),
                    RunError::OutputTooLarge(_) => add(&self.stats.output_size_limit_hits, 1),
                    _ => {}
                }
                self.failed(command, &e.to_string());
                return None;
            }
        };
        if ran.stderr.exceeded {
            add(&self.stats.stderr_size_limit_hits, 1);
        }
        if self.settings.log_stderr {
            for line in String::from_utf8_lossy(&ran.stderr.bytes).lines() {
                crate::child::log_line(command, line);
            }
        }
        if ran.status.success() {
            self.succeeded(command);
            return Some(ran.stdout);
        }
        let error = format!(
            "{}: {}",
            ran.status,
            crate::child::first_line(&ran.stderr.bytes)
        );
        if self.settings.ignore_error {
            tracing::debug!(
                command,
                error,
                "command failed; its output is read (ignore_error)"
            );
            return Some(ran.stdout);
        }
        self.failed(command, &error);
        None
    }
}

#[async_trait]
impl Input for Exec {
    async fn gather(&mut self) -> Result<Batch, CallError> {
        let now_ns = crate::inputs::now_ns();
        let commands = self.expand();
        let results = {
            let s = &self.settings;
            let runs = commands
                .iter()
                .map(|argv| run::run(argv, &s.environment, s.timeout, s.max_output_size));
            futures_util::future::join_all(runs).await
        };
        let mut out = Batch::default();
        for (argv, result) in commands.iter().zip(results) {
            let command = argv.join(" ");
            let Some(stdout) = self.outcome(&command, result) else {
                continue;
            };
            let parser = self.settings.parser.clone();
            // Parsing up to max_output_size is CPU work: off the reactor.
            let parsed = tokio::task::spawn_blocking(move || {
                let mut b = BatchBuilder::new();
                let parsed = parser.parse(&stdout, now_ns, &mut b);
                (b.finish(), parsed)
            })
            .await;
            let Ok((batch, parsed)) = parsed else {
                continue;
            };
            let bad = self.bad_output.entry(command.clone()).or_default();
            if parsed.malformed > 0 {
                if let Some(sink) = &self.sink {
                    sink.malformed(parsed.malformed as u64);
                }
                if !*bad {
                    tracing::warn!(
                        command,
                        skipped = parsed.malformed,
                        error = parsed.first_error.as_deref().unwrap_or_default(),
                        "output the parser could not read was skipped, the rest kept \
                         (logged again after a clean run)"
                    );
                }
            }
            *bad = parsed.malformed > 0;
            out.append(&batch);
        }
        Ok(out)
    }

    /// A service input only to keep its counters where `inputs.internal`
    /// reads them; it gathers on the agent's interval.
    fn is_service(&self) -> bool {
        true
    }

    async fn start(&mut self, sink: MetricSink) -> Result<(), PluginError> {
        self.stats = Stats::new(|name| sink.counter(name));
        self.sink = Some(sink);
        Ok(())
    }
}
