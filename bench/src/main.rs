//! `graft-bench`: graft side by side with the tools its users would pick
//! instead, on one machine in one run, printed as tables with ratios and
//! written to `bench/RESULTS.md`. `bench/run` installs the peers, builds
//! graft and the WASM example, and runs this.
//!
//! Layout:
//! - [`footprint`]: graft, collectd and node-exporter collecting system
//!   metrics: CPU over a window, resident memory
//! - [`relay`]: carbon relaying (graft, carbon-c-relay, carbon-relay) and the
//!   WASM overhead of a rename processor: CPU per million metrics
//! - [`buffer`]: resident bytes per metric held by an unreachable output
//! - [`disk`]: the relay through a disk buffer against the memory buffer
//!   (CPU, bytes written per metric) and the drain of a backlog
//! - [`bus`]: the relay split over NATS JetStream (edge → stream →
//!   consumer), per wire format, beside the direct relay
//! - [`report`]: tables, targets, notes and the machine, as Markdown;
//!   [`results`]: a run limited with `--only` updates RESULTS.md in place
//! - [`peers`]: starting each program with its own directory and ports
//! - [`procfs`], [`elf`]: CPU and memory from `/proc`, resident pages by
//!   ELF section
//! - [`net`]: the line sink, an HTTP scraper and poster

mod buffer;
mod bus;
mod disk;
mod elf;
mod footprint;
mod net;
mod peers;
mod procfs;
mod relay;
mod report;
mod results;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};

/// One comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Part {
    Footprint,
    Relay,
    Wasm,
    Buffer,
    Disk,
    Bus,
}

/// graft side by side with collectd, prometheus-node-exporter,
/// carbon-c-relay and carbon-relay.
#[derive(Parser, Debug)]
struct Args {
    /// The graft binary (default: target/release/graft).
    #[arg(long)]
    graft: Option<PathBuf>,
    /// The WASM rename processor (default: the example built with the
    /// `plugin` profile under target/wasm-plugins).
    #[arg(long)]
    wasm: Option<PathBuf>,
    /// Where to write the results (default: bench/RESULTS.md; with --quick,
    /// nowhere). With --only, the parts measured replace theirs in that
    /// file and the rest is kept.
    #[arg(long)]
    out: Option<PathBuf>,
    /// A short run (about 1.5 minutes) to see that everything works; its
    /// figures are noisier.
    #[arg(long)]
    quick: bool,
    /// Run only these comparisons (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Part>,
    /// Footprint: seconds of warm-up (default 30; quick 10).
    #[arg(long)]
    warmup: Option<u64>,
    /// Footprint: seconds measured (default 120; quick 30).
    #[arg(long)]
    window: Option<u64>,
    /// Relay and WASM: metrics per pass (default 1000000; quick 200000).
    #[arg(long)]
    metrics: Option<usize>,
    /// Relay: metrics per pass for carbon-relay (default 200000; quick 20000).
    #[arg(long)]
    carbon_relay_metrics: Option<usize>,
    /// Relay and WASM: alternating passes per relay (default 5; quick 1).
    #[arg(long)]
    rounds: Option<usize>,
    /// Buffer: metrics held (default 1000000; quick 200000).
    #[arg(long)]
    buffer_metrics: Option<usize>,
    /// Bus: metrics per pass through JetStream one metric a message
    /// (default 200000; quick 50000); the batched chains use --metrics.
    #[arg(long)]
    bus_per_message_metrics: Option<usize>,
    /// Disk: metrics held while the sink is down, then drained (default
    /// 2000000; quick 500000). Its relay passes use --metrics and --rounds.
    #[arg(long)]
    disk_backlog: Option<usize>,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ sits in the workspace")
        .to_path_buf()
}

fn main() -> ExitCode {
    match run(Args::parse()) {
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

fn run(args: Args) -> Result<()> {
    let root = workspace_root();
    let graft = args
        .graft
        .clone()
        .unwrap_or_else(|| root.join("target/release/graft"));
    let wasm = args.wasm.clone().unwrap_or_else(|| {
        root.join("target/wasm-plugins/wasm32-wasip2/plugin/example_rename_processor.wasm")
    });
    let wants = |p: Part| args.only.is_empty() || args.only.contains(&p);
    // Absolute: the programs run in directories of their own.
    let graft = graft.canonicalize().with_context(|| {
        format!(
            "{} is missing: cargo build --release -p graft",
            graft.display()
        )
    })?;
    let wasm = if wants(Part::Wasm) {
        wasm.canonicalize().with_context(|| {
            format!(
                "{} is missing: build examples/rename-processor for wasm32-wasip2 with --profile plugin",
                wasm.display()
            )
        })?
    } else {
        wasm
    };
    let q = args.quick;
    let pick = |v: Option<u64>, full: u64, quick: u64| v.unwrap_or(if q { quick } else { full });
    let footprint = footprint::Options {
        interval: Duration::from_secs(10),
        warmup: Duration::from_secs(pick(args.warmup, 30, 10)),
        window: Duration::from_secs(pick(args.window, 120, 30)),
    };
    let relay = relay::Options {
        metrics: pick(args.metrics.map(|n| n as u64), 1_000_000, 200_000) as usize,
        carbon_relay_metrics: pick(args.carbon_relay_metrics.map(|n| n as u64), 200_000, 20_000)
            as usize,
        rounds: pick(args.rounds.map(|n| n as u64), 5, 1).max(1) as usize,
    };
    let buffer_metrics = pick(args.buffer_metrics.map(|n| n as u64), 1_000_000, 200_000) as usize;
    let disk = disk::Options {
        rounds: relay.rounds,
        backlog: pick(args.disk_backlog.map(|n| n as u64), 2_000_000, 500_000) as usize,
    };

    // How busy the machine is before anything starts (the load average
    // would still count the builds that bench/run just did).
    let idle_before = procfs::machine_ticks();
    std::thread::sleep(Duration::from_secs(3));
    let load = procfs::busy_share(idle_before, procfs::machine_ticks());
    if load > 0.2 {
        println!(
            "warning: the CPUs were {:.0}% busy before the run: something else is running, and the figures will be noisier",
            load * 100.0
        );
    }
    let ticks_before = procfs::machine_ticks();
    let mut results = report::Results::default();
    if wants(Part::Footprint) {
        println!(
            "footprint: {} s warm-up, {} s window...",
            footprint.warmup.as_secs(),
            footprint.window.as_secs()
        );
        results.footprint = Some(footprint::run(&graft, footprint).context("footprint")?);
    }
    let bus = bus::Options {
        rounds: relay.rounds,
        per_message_metrics: pick(
            args.bus_per_message_metrics.map(|n| n as u64),
            200_000,
            50_000,
        ) as usize,
    };
    if wants(Part::Relay) || wants(Part::Wasm) || wants(Part::Disk) || wants(Part::Bus) {
        let input = relay::input(relay.metrics);
        if wants(Part::Relay) {
            println!("relay: {} metrics per pass...", relay.metrics);
            results.relays = Some(relay::relays(&graft, &input, relay).context("relay")?);
        }
        if wants(Part::Wasm) {
            println!("wasm overhead: {} metrics per pass...", relay.metrics);
            results.wasm =
                Some(relay::wasm_overhead(&graft, &wasm, &input, relay).context("WASM overhead")?);
        }
        if wants(Part::Disk) {
            println!(
                "disk buffer: {} metrics per pass, then a backlog of {}...",
                relay.metrics, disk.backlog
            );
            results.disk = Some(disk::run(&graft, &input, disk).context("disk buffer")?);
        }
        if wants(Part::Bus) {
            println!(
                "message bus: {} metrics per pass ({} a metric a message)...",
                relay.metrics, bus.per_message_metrics
            );
            results.bus = Some(bus::run(&graft, &input, bus).context("message bus")?);
        }
    }
    if wants(Part::Buffer) {
        println!("memory per buffered metric: {buffer_metrics} metrics...");
        results.buffered = Some(buffer::run(&graft, buffer_metrics).context("buffer")?);
    }

    let ticks_after = procfs::machine_ticks();
    let busy = procfs::busy_share(ticks_before, ticks_after);
    let tables = results.tables();
    let verdict = results.verdict();
    let machine = report::machine(&graft, load, busy);
    println!("\n{tables}{verdict}\n{machine}");

    let out = match (&args.out, q) {
        (Some(p), _) => Some(p.clone()),
        (None, false) => Some(root.join("bench/RESULTS.md")),
        (None, true) => None,
    };
    if let Some(out) = out {
        let date = report::command("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_default();
        let mode = if q { " (--quick)" } else { "" };
        let existing = std::fs::read_to_string(&out).ok();
        let text = if let (false, Some(existing)) = (args.only.is_empty(), existing) {
            let parts: Vec<String> = args
                .only
                .iter()
                .filter_map(|p| p.to_possible_value().map(|v| v.get_name().to_owned()))
                .collect();
            let commit = report::command("git", &["describe", "--always", "--dirty"])
                .unwrap_or_else(|| "unknown".into());
            let stamp = format!(
                "_Measured by `bench/run --only {}`{mode} on {date}, graft at commit {commit}, on {} ({:.0}% busy during the run); the machine at the end is the full run's._",
                parts.join(","),
                report::cpu(),
                busy * 100.0
            );
            results::merge(&existing, &tables, &results.targets(), &stamp)
        } else {
            format!(
                "# graft side by side: results\n\nWritten by `bench/run`{mode} on {date}. Every figure below comes from one run on the machine described at the end; run `bench/run` to measure yours.\n\n{verdict}\n{tables}{machine}"
            )
        };
        std::fs::write(&out, text).with_context(|| format!("writing {}", out.display()))?;
        println!("results written to {}", out.display());
    }
    Ok(())
}
