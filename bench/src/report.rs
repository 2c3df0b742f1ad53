//! The results as Markdown: one table per comparison, the targets with
//! their ratios, a closing note for each target missed, and the machine.

use std::fmt::Write as _;

use crate::buffer::{Buffered, LINES_PER_REQUEST};
use crate::disk;
use crate::footprint::Footprint;
use crate::peers;
use crate::relay;

/// Everything one run measured (a part may be skipped with `--only`).
#[derive(Default)]
pub struct Results {
    pub footprint: Option<Footprint>,
    pub relays: Option<Vec<relay::Row>>,
    pub wasm: Option<Vec<relay::Row>>,
    pub buffered: Option<Buffered>,
    pub disk: Option<disk::Figures>,
    pub bus: Option<Vec<relay::Row>>,
}

/// One target of the issue, checked.
pub struct Target {
    pub what: &'static str,
    pub figure: String,
    pub met: bool,
    /// For a target missed: by how much, and why.
    pub note: Option<String>,
}

fn mb(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

impl Results {
    /// The tables.
    pub fn tables(&self) -> String {
        let mut s = String::new();
        if let Some(f) = &self.footprint {
            let o = f.options;
            let _ = writeln!(
                s,
                "## Agent footprint\n\nAll four side by side, every {} s; {} s warm-up, then CPU over a {} s window and memory at its end. CPU is each process's time on a CPU, all threads, user and system (from `/proc/<pid>/task/*/schedstat`); the harness scrapes node-exporter, and the scrapes' cost on the harness's side is not node-exporter's. RSS is `VmRSS`, split into anonymous and file-backed pages; PSS shares each page among the processes that map it. MB = MiB.\n",
                o.interval.as_secs(),
                o.warmup.as_secs(),
                o.window.as_secs()
            );
            s.push_str("| agent | RSS MB | anon MB | file MB | PSS MB | threads | CPU-s in window | CPU ms per interval | RSS ÷ graft's | CPU ÷ graft's | per interval |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
            let graft_rss = f.rows[0].memory.rss as f64;
            let graft_cpu = f.rows[0].cpu_s;
            let intervals = o.window.as_secs_f64() / o.interval.as_secs_f64();
            for r in &f.rows {
                let m = r.memory;
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} | {:.3} | {:.1} | {:.2} | {:.2} | {} |",
                    r.name,
                    mb(m.rss),
                    mb(m.anon),
                    mb(m.file),
                    mb(m.pss),
                    m.threads,
                    r.cpu_s,
                    r.cpu_s * 1000.0 / intervals,
                    m.rss as f64 / graft_rss,
                    r.cpu_s / graft_cpu,
                    r.output
                );
            }
            s.push('\n');
            for r in &f.rows {
                let _ = writeln!(s, "- {}: {}", r.name, r.setup);
            }
            let ticks: Vec<String> = f
                .rows
                .iter()
                .map(|r| format!("{} {:.2}", r.name, r.cpu_ticks_s))
                .collect();
            let _ = writeln!(
                s,
                "- CPU from /proc/<pid>/stat clock ticks, as a cross-check (s): {}\n",
                ticks.join(", ")
            );
        }
        if let Some(rows) = &self.relays {
            s.push_str("## Relay throughput\n\nCarbon plaintext in over one TCP connection, carbon plaintext out to a sink that checks every line arrived unchanged. CPU of the relay process from the first byte sent to the last line received; median of alternating passes.\n\n");
            relay_table(&mut s, rows, "relay", "graft");
        }
        if let Some(rows) = &self.wasm {
            s.push_str("## WASM overhead\n\nThe relay above with a processor renaming the field `value` to `gauge` (every path gains `.gauge`; the sink checks it): the built-in `processors.rename` against the example WASM processor (`examples/rename-processor`).\n\n");
            relay_table(&mut s, rows, "pipeline", "graft, processors.rename");
        }
        if let Some(b) = &self.buffered {
            let _ = writeln!(
                s,
                "## Memory per buffered metric\n\n{} metrics shaped like Telegraf's `cpu` input (tags `cpu`, `host`; ten float fields) written to `inputs.influxdb_listener` in requests of {LINES_PER_REQUEST} lines, held by an `outputs.influxdb` whose server refuses connections. Resident memory before (after {} warm-up metrics) and after; `inputs.internal` reported the buffer holding {} metrics, {} dropped.\n",
                b.metrics, 20_000, b.buffer_size, b.dropped
            );
            s.push_str("| | RSS MB | anon MB | bytes per metric |\n|---|---|---|---|\n");
            let _ = writeln!(
                s,
                "| before | {} | {} | |",
                mb(b.before.rss),
                mb(b.before.anon)
            );
            let _ = writeln!(
                s,
                "| after | {} | {} | |",
                mb(b.after.rss),
                mb(b.after.anon)
            );
            let _ = writeln!(
                s,
                "| growth | {} | {} | **{:.0}** (anon: {:.0}) |",
                mb(b.after.rss.saturating_sub(b.before.rss)),
                mb(b.after.anon.saturating_sub(b.before.anon)),
                b.bytes_per_metric(),
                b.anon_bytes_per_metric()
            );
            s.push_str("\nTelegraf's figure, about 2.3 KB per buffered metric, is the marginal RSS between `metric_buffer_limit` = 10 000 and 1 000 000 in its wiki's sizing table (issue #10644); the metric shape behind it is not stated.\n\n");
        }
        if let Some(d) = &self.disk {
            s.push_str(&d.table());
        }
        if let Some(rows) = &self.bus {
            s.push_str("## Message bus\n\nThe relay above split over NATS JetStream (`nats-server -js`, one node, file storage): an edge graft takes the carbon lines and publishes them with `outputs.nats` to a stream, every publish acknowledged by the stream; a consumer graft reads the stream with `inputs.nats_consumer` through a durable consumer, acknowledging each message once `outputs.graphite` wrote it to the sink, which checks every line. CPU of the three processes together (edge, nats-server, consumer) per million metrics, beside graft relaying directly; alternating passes in one run. Wire formats: line protocol one metric a message (Telegraf's default), line protocol a batch a message (`use_batch_format = true`), and graft's columnar batch (`data_format = \"graft\"`).\n\n");
            relay_table(&mut s, rows, "chain", "graft, carbon → graphite");
        }
        s
    }

    /// Each target of the issue that this run measured.
    pub fn targets(&self) -> Vec<Target> {
        let mut out = Vec::new();
        if let Some(f) = &self.footprint {
            let rss = |i: usize| f.rows[i].memory.rss as f64;
            let ne = rss(2).min(rss(3));
            out.push(Target {
                what: "graft's resident memory below node-exporter's",
                figure: format!(
                    "{} MB vs {} MB (defaults) and {} MB (matching): {:.2}× and {:.2}×",
                    mb(f.rows[0].memory.rss),
                    mb(f.rows[2].memory.rss),
                    mb(f.rows[3].memory.rss),
                    rss(0) / rss(2),
                    rss(0) / rss(3)
                ),
                met: rss(0) < ne,
                note: (rss(0) >= ne).then(|| {
                    format!(
                        "graft's RSS is {:.0}% above node-exporter's smaller figure.",
                        (rss(0) / ne - 1.0) * 100.0
                    )
                }),
            });
            let ratio = rss(0) / rss(1);
            out.push(Target {
                what: "graft's resident memory within 2× of collectd's",
                figure: format!(
                    "{} MB vs {} MB: {ratio:.2}×",
                    mb(f.rows[0].memory.rss),
                    mb(f.rows[1].memory.rss)
                ),
                met: ratio <= 2.0,
                note: (ratio > 2.0).then(|| rss_note(f, ratio)),
            });
        }
        if let Some(rows) = &self.relays {
            let ratio = rows[0].cpu_per_million / rows[1].cpu_per_million;
            out.push(Target {
                what: "relay CPU per million metrics at or below carbon-c-relay's",
                figure: format!(
                    "{:.3} s vs {:.3} s: {ratio:.2}× (carbon-relay: {:.1} s)",
                    rows[0].cpu_per_million, rows[1].cpu_per_million, rows[2].cpu_per_million
                ),
                met: ratio <= 1.0,
                note: (ratio > 1.0).then(|| {
                    format!(
                        "graft used {:.0}% more CPU per million metrics than carbon-c-relay.",
                        (ratio - 1.0) * 100.0
                    )
                }),
            });
        }
        if let Some(rows) = &self.wasm {
            let ratio = rows[1].cpu_per_million / rows[0].cpu_per_million;
            out.push(Target {
                what: "WASM pipeline within 1.5× of the native one",
                figure: format!(
                    "{:.3} s vs {:.3} s per million: {ratio:.2}×",
                    rows[1].cpu_per_million, rows[0].cpu_per_million
                ),
                met: ratio <= 1.5,
                note: (ratio > 1.5).then(|| {
                    format!(
                        "the WASM pipeline used {:.2}× the native one's CPU, {:.0}% over the target.",
                        ratio,
                        (ratio / 1.5 - 1.0) * 100.0
                    )
                }),
            });
        }
        if let Some(b) = &self.buffered {
            let bytes = b.bytes_per_metric();
            out.push(Target {
                what: "under 300 bytes per buffered metric",
                figure: format!(
                    "{bytes:.0} bytes ({:.1}× less than Telegraf's ~2.3 KB)",
                    2300.0 / bytes
                ),
                met: bytes < 300.0,
                note: (bytes >= 300.0).then(|| {
                    format!(
                        "{bytes:.0} bytes per metric, {:.0} over the target.",
                        bytes - 300.0
                    )
                }),
            });
        }
        if let Some(d) = &self.disk {
            let (what, figure, met, note) = d.target();
            out.push(Target {
                what,
                figure,
                met,
                note,
            });
        }
        out
    }

    /// The targets table and the closing notes.
    pub fn verdict(&self) -> String {
        let targets = self.targets();
        let mut s = String::from("## Targets\n\n| target | this run | |\n|---|---|---|\n");
        for t in &targets {
            let _ = writeln!(
                s,
                "| {} | {} | {} |",
                t.what,
                t.figure,
                if t.met { "✓" } else { "✗" }
            );
        }
        let missed: Vec<&Target> = targets.iter().filter(|t| !t.met).collect();
        if missed.is_empty() {
            s.push_str("\nEvery target measured in this run was met.\n");
        } else {
            s.push_str("\n**Missed:**\n\n");
            for t in missed {
                let _ = writeln!(s, "- {}: {}", t.what, t.note.as_deref().unwrap_or(""));
            }
        }
        s
    }
}

fn relay_table(s: &mut String, rows: &[relay::Row], label: &str, base: &str) {
    let base_cpu = rows
        .iter()
        .find(|r| r.name == base)
        .map_or(1.0, |r| r.cpu_per_million);
    let _ = writeln!(
        s,
        "| {label} | metrics per pass | passes | CPU-s per million | ÷ {base} | lowest–highest pass | wall s per pass | metrics/s | CPU-s per million (ticks) |\n|---|---|---|---|---|---|---|---|---|"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.3} | {:.2} | {:.3}–{:.3} | {:.2} | {:.0} | {:.2} |",
            r.name,
            r.metrics,
            r.passes,
            r.cpu_per_million,
            r.cpu_per_million / base_cpu,
            r.cpu_range.0,
            r.cpu_range.1,
            r.wall_s,
            r.rate(),
            r.cpu_ticks_per_million
        );
    }
    s.push('\n');
}

/// Why graft's RSS is what it is, from this run's own readings.
fn rss_note(f: &Footprint, ratio: f64) -> String {
    let (g, c) = (f.rows[0].memory, f.rows[1].memory);
    let own: u64 = f.graft_sections.iter().map(|(_, k)| k).sum();
    let top: Vec<String> = f
        .graft_sections
        .iter()
        .take(4)
        .map(|(name, k)| format!("{name} {}", mb(*k)))
        .collect();
    format!(
        "graft's RSS is {ratio:.2}× collectd's, {:.0}% over the 2× target. Anonymous memory (heap, stacks) \
         is {} MB against collectd's {} MB ({:.2}×); the rest is pages mapped from files: {} MB against {} MB. \
         {} MB of them are graft's own binary (MB: {}): code the kernel maps in 64 KiB blocks around each page \
         run (fault-around) out of a large text segment where the code that runs is scattered, and, for a \
         position-independent executable, the relocation table the loader reads at start and the data it relocates. \
         Those pages are clean or shared and reclaimable; they are not per-metric cost.",
        (ratio / 2.0 - 1.0) * 100.0,
        mb(g.anon),
        mb(c.anon),
        g.anon as f64 / c.anon.max(1) as f64,
        mb(g.file),
        mb(c.file),
        mb(own),
        top.join(", ")
    )
}

/// The machine and the versions of everything compared.
/// `load` is the share of the machine's CPU time that was busy in the
/// seconds before the run, `busy` the same during the run, the programs
/// measured included.
pub fn machine(graft_bin: &std::path::Path, load: f64, busy: f64) -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let mem_kib: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let os = read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_default();
    let kernel = read("/proc/sys/kernel/osrelease").trim().to_owned();
    let mut s = String::from("## Machine\n\n");
    let _ = writeln!(s, "- CPU: {}", cpu());
    let _ = writeln!(s, "- memory: {:.1} GiB", mem_kib as f64 / 1048576.0);
    let _ = writeln!(s, "- system: {os}, Linux {kernel}");
    let _ = writeln!(
        s,
        "- load: the CPUs were {:.0}% busy just before the run and {:.0}% during it, the programs measured and the harness included",
        load * 100.0,
        busy * 100.0
    );
    let _ = writeln!(
        s,
        "- graft: {} ({} bytes), commit {}",
        graft_bin.display(),
        std::fs::metadata(graft_bin).map_or(0, |m| m.len()),
        command("git", &["describe", "--always", "--dirty"]).unwrap_or_else(|| "unknown".into())
    );
    if let Some(v) = command("rustc", &["--version"]) {
        let _ = writeln!(s, "- {v}");
    }
    for (package, _) in peers::PACKAGES {
        let _ = writeln!(
            s,
            "- {package} {}",
            peers::deb_version(package).unwrap_or_else(|| "not installed".into())
        );
    }
    s
}

/// The CPU's model and the number of cores.
pub fn cpu() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{model}, {cores} cores")
}

/// The first line a command prints, if it runs.
pub fn command(program: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let line = text.lines().next()?.trim().to_owned();
    (out.status.success() && !line.is_empty()).then_some(line)
}
