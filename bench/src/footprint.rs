//! Agent footprint: graft with its eight system inputs, collectd with the
//! matching plugins and prometheus-node-exporter (its defaults, and only the
//! matching collectors), all on the same interval, side by side. After a
//! warm-up, each one's CPU time over a fixed window and its resident memory
//! at the end of it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::net::http_get;
use crate::peers::{self, Running};
use crate::procfs::{CpuMeter, Memory};

/// How long to run.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub interval: Duration,
    pub warmup: Duration,
    pub window: Duration,
}

/// One agent's figures.
#[derive(Debug, Clone)]
pub struct Row {
    pub name: String,
    /// What it collects, briefly.
    pub setup: String,
    pub memory: Memory,
    /// CPU seconds in the window (schedstat) and the same from clock ticks.
    pub cpu_s: f64,
    pub cpu_ticks_s: f64,
    /// What it produced per interval, in its own unit.
    pub output: String,
}

/// The agents' rows, and where graft's file-backed pages are.
pub struct Footprint {
    pub options: Options,
    pub rows: Vec<Row>,
    /// graft's resident pages of its own binary, by ELF section (KiB).
    pub graft_sections: Vec<(String, u64)>,
}

/// The eight system inputs, like the Telegraf sample config, into a file.
fn graft_config(interval_s: u64) -> String {
    format!(
        r#"[agent]
  interval = "{interval_s}s"
  flush_interval = "{interval_s}s"
[[inputs.cpu]]
[[inputs.mem]]
[[inputs.disk]]
[[inputs.diskio]]
[[inputs.processes]]
[[inputs.swap]]
[[inputs.kernel]]
[[inputs.system]]
[[outputs.file]]
  files = ["{{dir}}/metrics.out"]
"#
    )
}

/// The collectors of node-exporter that match graft's eight inputs.
const MATCHING_COLLECTORS: &[&str] = &[
    "--collector.disable-defaults",
    "--collector.cpu",
    "--collector.meminfo",
    "--collector.filesystem",
    "--collector.diskstats",
    "--collector.processes",
    "--collector.vmstat",
    "--collector.stat",
    "--collector.loadavg",
];

/// What the harness's scraper of one node-exporter saw.
#[derive(Default)]
struct Scrapes {
    ok: AtomicU64,
    failed: AtomicU64,
    samples: AtomicU64,
}

/// Run the agents and measure them.
pub fn run(graft_bin: &Path, opts: Options) -> Result<Footprint> {
    let interval_s = opts.interval.as_secs().max(1);
    let mut graft = peers::graft("graft", graft_bin, &graft_config(interval_s))?;
    let mut collectd = peers::collectd(interval_s)?;
    let (mut ne_all, port_all) = peers::node_exporter("node-exporter (defaults)", &[])?;
    let (mut ne_same, port_same) =
        peers::node_exporter("node-exporter (matching collectors)", MATCHING_COLLECTORS)?;

    // The scraper Prometheus would be: every interval, each node-exporter.
    let stop = Arc::new(AtomicBool::new(false));
    let scrapes: [Arc<Scrapes>; 2] = Default::default();
    let scraper = {
        let (stop, scrapes) = (stop.clone(), scrapes.clone());
        std::thread::spawn(move || {
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                if Instant::now() >= next {
                    for (port, s) in [port_all, port_same].into_iter().zip(&scrapes) {
                        match http_get(port, "/metrics") {
                            Ok(body) => {
                                s.ok.fetch_add(1, Ordering::Relaxed);
                                s.samples.store(samples(&body), Ordering::Relaxed);
                            }
                            Err(_) => {
                                s.failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    next += Duration::from_secs(interval_s);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };

    let mut agents: [&mut Running; 4] = [&mut graft, &mut collectd, &mut ne_all, &mut ne_same];
    let result = measure(&mut agents, opts);
    stop.store(true, Ordering::Relaxed);
    let _ = scraper.join();
    let (memory, cpu) = result?;

    let graft_out = graft_output(&graft.dir.path().join("metrics.out"))?;
    let graft_sections =
        crate::procfs::resident_by_section(graft.pid(), graft_bin).unwrap_or_default();
    let collectd_out = collectd_output(&collectd.dir.path().join("csv"))?;
    for (s, name) in scrapes.iter().zip(["defaults", "matching collectors"]) {
        let ok = s.ok.load(Ordering::Relaxed);
        if ok == 0 || s.failed.load(Ordering::Relaxed) > 0 {
            bail!(
                "node-exporter ({name}): {ok} scrapes answered, {} failed",
                s.failed.load(Ordering::Relaxed)
            );
        }
    }
    let rows = vec![
        Row {
            name: "graft".into(),
            setup: "inputs cpu, mem, disk, diskio, processes, swap, kernel, system; outputs.file"
                .into(),
            memory: memory[0],
            cpu_s: cpu[0].0,
            cpu_ticks_s: cpu[0].1,
            output: format!("{:.0} metrics, {:.0} fields", graft_out.0, graft_out.1),
        },
        Row {
            name: "collectd".into(),
            setup: "plugins cpu, memory, df, disk, load, processes, swap; csv".into(),
            memory: memory[1],
            cpu_s: cpu[1].0,
            cpu_ticks_s: cpu[1].1,
            output: format!("{collectd_out:.0} values"),
        },
        Row {
            name: "node-exporter".into(),
            setup: "default collectors, scraped every interval".into(),
            memory: memory[2],
            cpu_s: cpu[2].0,
            cpu_ticks_s: cpu[2].1,
            output: format!("{} samples", scrapes[0].samples.load(Ordering::Relaxed)),
        },
        Row {
            name: "node-exporter (matching)".into(),
            setup: format!(
                "collectors {}, scraped every interval",
                MATCHING_COLLECTORS[1..]
                    .iter()
                    .map(|c| c.trim_start_matches("--collector."))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            memory: memory[3],
            cpu_s: cpu[3].0,
            cpu_ticks_s: cpu[3].1,
            output: format!("{} samples", scrapes[1].samples.load(Ordering::Relaxed)),
        },
    ];
    if graft_out.0 == 0.0 || collectd_out == 0.0 {
        bail!(
            "an agent wrote nothing: graft {} metrics, collectd {collectd_out} values per interval",
            graft_out.0
        );
    }
    Ok(Footprint {
        options: opts,
        rows,
        graft_sections,
    })
}

/// Warm up, then measure every agent over the window: (memory at the end,
/// (CPU seconds, CPU seconds from ticks)).
#[allow(clippy::type_complexity)]
fn measure(
    agents: &mut [&mut Running; 4],
    opts: Options,
) -> Result<([Memory; 4], [(f64, f64); 4])> {
    let start = Instant::now();
    while start.elapsed() < opts.warmup {
        for a in agents.iter_mut() {
            a.check_alive()?;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let mut meters = Vec::new();
    for a in agents.iter() {
        meters.push(CpuMeter::start(a.pid())?);
    }
    let start = Instant::now();
    while start.elapsed() < opts.window {
        std::thread::sleep(Duration::from_millis(500).min(opts.window - start.elapsed()));
        for (a, m) in agents.iter_mut().zip(&mut meters) {
            a.check_alive()?;
            m.sample();
        }
    }
    let mut memory = [Memory::default(); 4];
    let mut cpu = [(0.0, 0.0); 4];
    for (i, (a, m)) in agents.iter().zip(&mut meters).enumerate() {
        cpu[i] = (m.seconds(), m.tick_seconds());
        memory[i] = Memory::of(a.pid()).with_context(|| a.name.clone())?;
    }
    Ok((memory, cpu))
}

/// Sample lines in a Prometheus exposition.
fn samples(body: &[u8]) -> u64 {
    body.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty() && l[0] != b'#')
        .count() as u64
}

/// (metrics, fields) per collection in graft's line-protocol file; a
/// collection is a timestamp (they are rounded to the interval).
fn graft_output(path: &Path) -> Result<(f64, f64)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("graft wrote no {}", path.display()))?;
    let mut metrics = 0u64;
    let mut fields = 0u64;
    let mut names = std::collections::BTreeSet::new();
    let mut times = std::collections::BTreeSet::new();
    for line in text.lines() {
        metrics += 1;
        names.insert(line.split([',', ' ']).next().unwrap_or("").to_owned());
        // measurement,tags fields timestamp: no escaped spaces in these.
        let parts: Vec<&str> = line.split(' ').collect();
        fields += parts.get(1).map_or(0, |f| f.split(',').count()) as u64;
        times.insert(parts.last().copied().unwrap_or("").to_owned());
    }
    let want = [
        "cpu",
        "mem",
        "disk",
        "diskio",
        "processes",
        "swap",
        "kernel",
        "system",
    ];
    let missing: Vec<_> = want.iter().filter(|w| !names.contains(**w)).collect();
    if !missing.is_empty() {
        bail!("graft wrote no metrics of {missing:?}");
    }
    let n = times.len().max(1) as f64;
    Ok((metrics as f64 / n, fields as f64 / n))
}

/// Values per collection that collectd's csv plugin wrote: each file gets
/// one line (after its header) per collection, each column after the time
/// is one value.
fn collectd_output(dir: &Path) -> Result<f64> {
    let mut values = 0u64;
    let mut collections = 0u64;
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in
            std::fs::read_dir(&d).with_context(|| format!("collectd wrote no {}", d.display()))?
        {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let text = std::fs::read_to_string(&p)?;
            let cols = text
                .lines()
                .next()
                .map_or(0, |h| h.split(',').count().saturating_sub(1));
            let rows = text.lines().skip(1).count() as u64;
            values += rows * cols as u64;
            collections = collections.max(rows);
        }
    }
    Ok(values as f64 / collections.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_prometheus_samples() {
        let body = b"# HELP x y\n# TYPE x gauge\nx 1\nx{a=\"b\"} 2\n\n";
        assert_eq!(samples(body), 2);
    }

    #[test]
    fn graft_output_needs_every_input() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m");
        std::fs::write(&p, "cpu,cpu=cpu0 a=1,b=2 1\n").unwrap();
        assert!(graft_output(&p).is_err());
        let all: String = [
            "cpu",
            "mem",
            "disk",
            "diskio",
            "processes",
            "swap",
            "kernel",
            "system",
        ]
        .iter()
        .map(|m| format!("{m},host=h a=1,b=2i 10\n{m},host=h a=1,b=2i 20\n"))
        .collect();
        std::fs::write(&p, all).unwrap();
        assert_eq!(graft_output(&p).unwrap(), (8.0, 16.0));
    }
}
