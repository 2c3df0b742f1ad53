//! The `graft` command line: `run`, `test`, `config`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use graft_core::lineproto::{Serializer, SerializerOptions};
use tokio::sync::watch;

use crate::config::{Config, sample};
use crate::shutdown;
use crate::topology::{ConfigLoader, Mode, ReloadRequest, Topology};

/// A metrics agent whose plugins can be sandboxed WebAssembly components.
#[derive(Parser, Debug)]
#[command(name = "graft", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the agent (with no --config, a built-in default that prints memory metrics).
    Run {
        #[command(flatten)]
        config: ConfigArgs,
        /// Gather once, write to the outputs, and exit.
        #[arg(long)]
        once: bool,
        /// Reload when a configuration file or a plugin's .wasm file changes
        /// (SIGHUP always reloads).
        #[arg(long)]
        watch_config: bool,
    },
    /// Gather every input once, run the processors and aggregators, print
    /// the metrics as sorted line protocol, and exit.
    Test {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Print a commented sample configuration, or check one.
    Config {
        #[command(subcommand)]
        action: Option<ConfigAction>,
    },
    /// Tools for plugin authors.
    Plugin {
        #[command(subcommand)]
        action: PluginAction,
    },
}

#[derive(Subcommand, Debug)]
enum PluginAction {
    /// List every built-in plugin as `kind.name`, one per line (WASM
    /// plugins go in `[[kind.wasm]]` sections).
    List,
    /// Run the conformance kit on one plugin, alone; exits non-zero on any
    /// failure.
    Test {
        /// The plugin component.
        plugin: PathBuf,
        /// A folder of golden cases (a folder per case: config.toml or
        /// config.json, input.lp, expected.lp or expected_error.txt,
        /// options.toml).
        #[arg(long, value_name = "DIR")]
        cases: Option<PathBuf>,
        /// Report format.
        #[arg(long, default_value = "human", value_parser = ["human", "json", "junit"])]
        format: String,
        /// The plugin's config for the generated checks (JSON).
        #[arg(long, value_name = "JSON", default_value = "{}")]
        config_json: String,
        /// Calls in the memory soak.
        #[arg(long, default_value_t = 1000)]
        soak: usize,
        /// Fail above this much fuel per metric.
        #[arg(long, value_name = "FUEL")]
        fuel_per_metric: Option<u64>,
        /// Fail when linear memory grows past this size ("64MiB" or bytes).
        #[arg(long, value_name = "SIZE", value_parser = parse_size)]
        memory: Option<usize>,
        /// Soak with `limits.recycle_memory` set to this size, as the plugin
        /// will run in graft ("32MiB" or bytes).
        #[arg(long, value_name = "SIZE", value_parser = parse_size)]
        recycle_memory: Option<usize>,
    },
    /// Create a plugin project that builds and passes `graft plugin test`
    /// as generated.
    New {
        /// The project's name (and directory, unless --dir is given).
        name: String,
        /// Which kind of plugin.
        #[arg(long, value_parser = ["input", "processor", "aggregator", "output"])]
        kind: String,
        /// Which language.
        #[arg(long, value_parser = ["rust", "python", "js"])]
        lang: String,
        /// Where to create the project (default: ./NAME).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// The graft-sdk dependency of a Rust project, as a TOML value, for
        /// example '{ git = "https://..." }' (default: the SDK in the source
        /// tree graft was built from).
        #[arg(long, value_name = "TOML")]
        rust_sdk: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigAction {
    /// Validate a configuration and build every plugin (compiling WASM
    /// plugins and running their init) without running anything.
    Check {
        #[command(flatten)]
        config: ConfigArgs,
        /// Also connect every output once, and list those that cannot be
        /// reached (they are not errors: `graft run` retries them).
        #[arg(long)]
        connect: bool,
    },
}

#[derive(Args, Debug, Clone)]
struct ConfigArgs {
    /// Configuration file (may be repeated).
    #[arg(long = "config", short = 'c', value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Directory whose *.toml files are read after --config.
    #[arg(long = "config-directory", value_name = "DIR")]
    directory: Option<PathBuf>,
    /// Log at debug level.
    #[arg(long)]
    debug: bool,
}

impl ConfigArgs {
    fn load(&self) -> Result<Config> {
        if self.files.is_empty() && self.directory.is_none() {
            let mut c = Config::default();
            c.merge_text(sample::DEFAULT, "(built-in default)")?;
            return Ok(c);
        }
        Config::load(&self.files, self.directory.as_deref())
    }
}

fn init_logging(debug: bool) {
    let default = if debug { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("GRAFT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Entry point: run the command and turn errors into a message and exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let debug = match &cli.command {
        Command::Run { config, .. } | Command::Test { config } => config.debug,
        Command::Config {
            action: Some(ConfigAction::Check { config, .. }),
        } => config.debug,
        Command::Config { action: None } | Command::Plugin { .. } => false,
    };
    init_logging(debug);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("graft")
        .build()
        .context("starting the async runtime")
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Config { action: None } => {
            print!("{}", sample::SAMPLE);
            Ok(())
        }
        Command::Config {
            action: Some(ConfigAction::Check { config, connect }),
        } => {
            let config = config.load()?;
            let warnings: Vec<String> = config.warnings.iter().map(|w| w.to_string()).collect();
            let r = runtime()?.block_on(crate::topology::check::check(config, connect))?;
            for w in &warnings {
                println!("warning: {w}");
            }
            println!(
                "configuration OK ({} file(s)): {} inputs, {} processors, {} aggregators, {} outputs",
                r.files, r.inputs, r.processors, r.aggregators, r.outputs
            );
            for (location, why) in &r.unreachable {
                println!("could not reach {location}: {why}");
            }
            Ok(())
        }
        Command::Plugin {
            action: PluginAction::List,
        } => {
            for kind in crate::kind::Kind::ALL {
                for name in crate::registry::names(kind) {
                    if name != crate::kind::WASM {
                        println!("{}.{name}", kind.section());
                    }
                }
            }
            Ok(())
        }
        Command::Plugin {
            action:
                PluginAction::Test {
                    plugin,
                    cases,
                    format,
                    config_json,
                    soak,
                    fuel_per_metric,
                    memory,
                    recycle_memory,
                },
        } => {
            let report = crate::conformance::run(&crate::conformance::Options {
                plugin,
                config_json,
                cases,
                soak_calls: soak,
                fuel_per_metric,
                memory_bytes: memory,
                recycle_memory,
            });
            match format.as_str() {
                "json" => println!("{}", report.json()),
                "junit" => print!("{}", report.junit()),
                _ => print!("{}", report.human()),
            }
            if report.failed() {
                anyhow::bail!("the plugin failed the conformance checks");
            }
            Ok(())
        }
        Command::Plugin {
            action:
                PluginAction::New {
                    name,
                    kind,
                    lang,
                    dir,
                    rust_sdk,
                },
        } => {
            let req = crate::scaffold::Request {
                kind: crate::kind::Kind::from_name(&kind).unwrap_or(crate::kind::Kind::Output),
                lang: crate::scaffold::Lang::parse(&lang)
                    .ok_or_else(|| anyhow::anyhow!("unknown language {lang:?}"))?,
                dir: dir.unwrap_or_else(|| PathBuf::from(&name)),
                name,
                rust_sdk,
            };
            crate::scaffold::generate(&req)?;
            print!("{}", crate::scaffold::next_steps(&req));
            Ok(())
        }
        Command::Test { config } => {
            let config = config.load()?;
            let batches = runtime()?.block_on(crate::topology::once::test(config))?;
            print!("{}", sorted_line_protocol(&batches));
            Ok(())
        }
        Command::Run {
            config: args,
            once,
            watch_config,
        } => {
            let config = args.load()?;
            let rt = runtime()?;
            let ran = rt.block_on(async {
                let wasm_files = crate::watch::wasm_files(&config);
                let config_files = config.files.clone();
                if once {
                    // Like Telegraf's --once: service inputs (listeners) are
                    // not started.
                    return crate::topology::once::run_once(config).await;
                }
                let agent = Topology::start(config, Mode::Run).await?;
                let (stop_tx, stop_rx) = watch::channel(false);
                let stats = agent.stats();
                tokio::spawn(async move {
                    shutdown::signal().await;
                    tracing::info!(
                        grace_s = shutdown::GRACE.as_secs(),
                        "stop requested; shutting down"
                    );
                    let _ = stop_tx.send(true);
                    shutdown::enforce(stats).await;
                });
                let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(4);
                let watcher = if watch_config {
                    let w = crate::watch::ConfigWatcher::start(
                        args.directory.as_deref(),
                        reload_tx.clone(),
                    )?;
                    w.set_files(config_files.into_iter().chain(wasm_files));
                    Some(w)
                } else {
                    None
                };
                tokio::spawn(forward_sighup(reload_tx));
                let loader: ConfigLoader = Arc::new(move || {
                    let config = args.load()?;
                    if let Some(w) = &watcher {
                        let wasm = crate::watch::wasm_files(&config);
                        w.set_files(config.files.iter().cloned().chain(wasm));
                    }
                    Ok(config)
                });
                agent.run(stop_rx, reload_rx, loader).await
            });
            // A blocking task a plugin left behind (a WASI file read that
            // never returns) must not hold up the exit.
            rt.shutdown_background();
            ran
        }
    }
}

/// Turn every SIGHUP into a reload request, as Telegraf does.
async fn forward_sighup(tx: tokio::sync::mpsc::Sender<ReloadRequest>) {
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot listen for SIGHUP, so it does not reload: {e}");
            return;
        }
    };
    while hup.recv().await.is_some() {
        if tx.send(ReloadRequest::new("SIGHUP")).await.is_err() {
            return;
        }
    }
}

/// Every metric as a line of line protocol, lines sorted.
pub fn sorted_line_protocol(batches: &[graft_core::Batch]) -> String {
    let serializer = Serializer::new(SerializerOptions {
        sort_fields: true,
        ..Default::default()
    });
    let mut lines = Vec::new();
    for b in batches {
        let mut buf = Vec::new();
        for e in serializer.write_batch(b, &mut buf) {
            tracing::warn!("metric not printable as line protocol: {e}");
        }
        lines.extend(String::from_utf8_lossy(&buf).lines().map(str::to_owned));
    }
    lines.sort();
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// A size on the command line: `"64MiB"`, `"10MB"` or bytes.
fn parse_size(s: &str) -> Result<usize, String> {
    let v = match s.parse::<i64>() {
        Ok(n) => toml::Value::Integer(n),
        Err(_) => toml::Value::String(s.to_owned()),
    };
    graft_plugins::duration::parse_size_value(&v)
        .map(|n| n as usize)
        .map_err(|e| e.to_string())
}
