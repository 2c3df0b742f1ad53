//! Disk buffer cost: the relay of [`crate::relay`] (carbon plaintext in,
//! graphite out) with its output behind a disk buffer (the default fsync
//! policy, and `buffer_fsync = "interval"`) against the same relay with the
//! memory buffer, alternating passes in one run: CPU per million metrics and bytes written to storage
//! per metric. Then a backlog held for a sink that is down, and the rate at
//! which it drains once the sink comes up.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::buffer::output_state;
use crate::net::LineSink;
use crate::peers;
use crate::procfs::{CpuMeter, Memory, io_written};
use crate::relay::{self, Input, Row};

/// The output's extra keys that put its buffer on disk (in graft's own
/// directory), everything else at its default.
const DISK: &str = "  buffer_strategy = \"disk\"\n  buffer_directory = \"{dir}/buffer\"\n";
/// The same with the fsync at most once a second.
const DISK_INTERVAL: &str = "  buffer_strategy = \"disk\"\n  buffer_directory = \"{dir}/buffer\"\n  buffer_fsync = \"interval\"\n";

/// The goal of issue 17: the disk buffer's CPU at most this many times the
/// memory buffer's.
pub const GOAL: f64 = 1.3;

/// How much to send.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Alternating passes per buffer kind.
    pub rounds: usize,
    /// Metrics held while the sink is down.
    pub backlog: usize,
}

/// Bytes a relay wrote to storage during its passes.
#[derive(Clone, Copy, Debug)]
pub struct Written {
    pub bytes: u64,
    pub cancelled: u64,
    pub metrics: usize,
}

/// One backlog held and drained.
#[derive(Clone, Debug)]
pub struct Drain {
    pub name: String,
    pub metrics: usize,
    /// From the first byte sent to the buffer reporting all of it.
    pub fill_s: f64,
    /// graft's memory while it holds the backlog.
    pub held: Memory,
    /// `buffer_bytes` of the output while it holds the backlog, if reported.
    pub buffer_bytes: Option<u64>,
    /// From the sink coming up to its first line (the output's reconnect
    /// backoff).
    pub wait_s: f64,
    /// From the first line to the last.
    pub drain_s: f64,
    /// graft's CPU from the sink coming up to the last line.
    pub cpu_s: f64,
}

impl Drain {
    pub fn rate(&self) -> f64 {
        self.metrics as f64 / self.drain_s
    }
}

/// Everything this part measured.
#[derive(Clone, Debug)]
pub struct Figures {
    /// The memory buffer's row, the disk buffer's, the disk buffer's with
    /// an fsync at most every second.
    pub rows: Vec<Row>,
    pub written: Vec<Written>,
    pub drains: Vec<Drain>,
}

/// The relay through each buffer kind, then a backlog through each.
pub fn run(graft_bin: &Path, input: &Input, opts: Options) -> Result<Figures> {
    let sink = LineSink::start("servers.")?;
    let (mut mem, mem_port) =
        relay::start_graft_with("graft, memory buffer", graft_bin, sink.port, "", "")?;
    let (mut disk, disk_port) =
        relay::start_graft_with("graft, disk buffer", graft_bin, sink.port, "", DISK)?;
    let (mut lazy, lazy_port) = relay::start_graft_with(
        "graft, disk buffer, fsync interval",
        graft_bin,
        sink.port,
        "",
        DISK_INTERVAL,
    )?;
    let pids = [mem.pid(), disk.pid(), lazy.pid()];
    let before = [
        io_written(pids[0])?,
        io_written(pids[1])?,
        io_written(pids[2])?,
    ];
    let rows = relay::compare(
        &mut [
            (&mut mem, mem_port, input.n),
            (&mut disk, disk_port, input.n),
            (&mut lazy, lazy_port, input.n),
        ],
        &sink,
        input,
        false,
        opts.rounds,
    )?;
    let mut written = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let after = io_written(pids[i])?;
        written.push(Written {
            bytes: after.0 - before[i].0,
            cancelled: after.1 - before[i].1,
            metrics: row.metrics * row.passes,
        });
    }
    drop((mem, disk, lazy));
    let backlog = relay::input(opts.backlog);
    let drains = vec![
        drain("graft, memory buffer", graft_bin, &backlog, "")?,
        drain("graft, disk buffer", graft_bin, &backlog, DISK)?,
    ];
    Ok(Figures {
        rows,
        written,
        drains,
    })
}

fn drain_config(port: u16, sink: u16, limit: usize, output: &str) -> String {
    format!(
        r#"[agent]
  interval = "1s"
  flush_interval = "100ms"
  metric_batch_size = 10000
  metric_buffer_limit = {limit}
  omit_hostname = true
[[inputs.carbon]]
  service_address = "tcp://127.0.0.1:{port}"
[[inputs.internal]]
  collect_memstats = false
[[outputs.graphite]]
  servers = ["127.0.0.1:{sink}"]
  template = "measurement"
  namepass = ["servers*"]
{output}
[[outputs.file]]
  files = ["{{dir}}/internal.out"]
  namepass = ["internal_write"]
"#
    )
}

/// Hold `input` for a sink that is down, then bring the sink up and time
/// the drain.
fn drain(name: &str, graft_bin: &Path, input: &Input, output: &str) -> Result<Drain> {
    let (port, sink_port) = (peers::free_port()?, peers::free_port()?);
    let config = drain_config(port, sink_port, input.n * 2, output);
    let mut graft = peers::graft(name, graft_bin, &config)?;
    graft.wait_listening(port)?;
    let state = graft.dir.path().join("internal.out");
    let start = Instant::now();
    let mut conn = TcpStream::connect(("127.0.0.1", port))?;
    conn.write_all(&input.text)?;
    drop(conn);
    let held_state = loop {
        graft.check_alive()?;
        match output_state(&state, "graphite") {
            Some(f) if f.get("metrics_dropped").copied().unwrap_or(0) > 0 => {
                bail!("{name}: the buffer dropped metrics: {f:?}")
            }
            Some(f) if f.get("buffer_size").copied().unwrap_or(0) >= input.n as u64 => break f,
            f => {
                if start.elapsed() > Duration::from_secs(300) {
                    bail!("{name}: the buffer never held {} metrics: {f:?}", input.n);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let fill_s = start.elapsed().as_secs_f64();
    let held = Memory::of(graft.pid())?;

    let sink = LineSink::start_on("servers.", sink_port)?;
    let mut meter = CpuMeter::start(graft.pid())?;
    let up = Instant::now();
    let mut first = None;
    loop {
        let (lines, sum) = sink.received();
        if lines > 0 && first.is_none() {
            first = Some(Instant::now());
        }
        if lines as usize >= input.n {
            let cpu_s = meter.seconds();
            let first = first.unwrap_or(up);
            if lines as usize > input.n || sum != input.want {
                bail!(
                    "{name}: {lines} lines arrived for {} held, not the ones sent",
                    input.n
                );
            }
            return Ok(Drain {
                name: name.to_owned(),
                metrics: input.n,
                fill_s,
                held,
                buffer_bytes: held_state.get("buffer_bytes").copied(),
                wait_s: first.duration_since(up).as_secs_f64(),
                drain_s: first.elapsed().as_secs_f64(),
                cpu_s,
            });
        }
        graft.check_alive()?;
        if up.elapsed() > Duration::from_secs(300) {
            bail!("{name}: only {lines} of {} lines drained", input.n);
        }
        meter.sample();
        std::thread::sleep(Duration::from_millis(5));
    }
}

impl Figures {
    /// The disk buffer's CPU per million metrics over the memory buffer's.
    pub fn ratio(&self) -> f64 {
        self.rows[1].cpu_per_million / self.rows[0].cpu_per_million
    }

    /// The section of RESULTS.md.
    pub fn table(&self) -> String {
        let mut s = String::from(
            "## Disk buffer\n\nThe relay above (carbon plaintext in, `outputs.graphite` out to a sink that checks every line) with the output's buffer in memory and on disk (`buffer_strategy = \"disk\"`, every other buffer option at its default; and once more with `buffer_fsync = \"interval\"`, an fsync at most every second), alternating passes in one run. CPU of the graft process per million metrics; bytes written to storage per metric from `/proc/<pid>/io` (`write_bytes`: pages dirtied; cancelled: pages of segments deleted before they reached the disk).\n\n",
        );
        s.push_str("| buffer | metrics per pass | passes | CPU-s per million | ÷ memory | lowest–highest pass | wall s per pass | metrics/s | bytes written per metric | of them cancelled |\n|---|---|---|---|---|---|---|---|---|---|\n");
        let base = self.rows[0].cpu_per_million;
        for (r, w) in self.rows.iter().zip(&self.written) {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.3} | {:.2} | {:.3}–{:.3} | {:.2} | {:.0} | {:.1} | {:.1} |",
                r.name,
                r.metrics,
                r.passes,
                r.cpu_per_million,
                r.cpu_per_million / base,
                r.cpu_range.0,
                r.cpu_range.1,
                r.wall_s,
                r.rate(),
                w.bytes as f64 / w.metrics as f64,
                w.cancelled as f64 / w.metrics as f64
            );
        }
        s.push_str("\nA backlog: the same lines sent while the output's server is down, held until `inputs.internal` reports all of them in the buffer; then the sink comes up. The drain is timed from its first line to its last (the wait before the first is the output's reconnect backoff).\n\n");
        s.push_str("| buffer | backlog | fill s | RSS holding it MB | anon MB | buffer_bytes MB | reconnect wait s | drain s | drained metrics/s | CPU-s per million draining |\n|---|---|---|---|---|---|---|---|---|---|\n");
        for d in &self.drains {
            let _ = writeln!(
                s,
                "| {} | {} | {:.1} | {:.1} | {:.1} | {} | {:.1} | {:.2} | {:.0} | {:.3} |",
                d.name,
                d.metrics,
                d.fill_s,
                d.held.rss as f64 / 1024.0,
                d.held.anon as f64 / 1024.0,
                d.buffer_bytes
                    .map_or("—".to_owned(), |b| format!("{:.1}", b as f64 / 1048576.0)),
                d.wait_s,
                d.drain_s,
                d.rate(),
                d.cpu_s * 1e6 / d.metrics as f64
            );
        }
        s.push('\n');
        s
    }

    /// The target line: (what, figure, met, note for a miss).
    pub fn target(&self) -> (&'static str, String, bool, Option<String>) {
        let ratio = self.ratio();
        let figure = format!(
            "{:.3} s vs {:.3} s per million: {ratio:.2}×; drains at {:.0} metrics/s",
            self.rows[1].cpu_per_million,
            self.rows[0].cpu_per_million,
            self.drains.last().map_or(0.0, Drain::rate)
        );
        let note = (ratio > GOAL).then(|| {
            format!(
                "the relay through the disk buffer used {ratio:.2}× the memory buffer's CPU, {:.0}% over the {GOAL}× goal.",
                (ratio / GOAL - 1.0) * 100.0
            )
        });
        (
            "relay CPU through a disk buffer within 1.3× the memory buffer's",
            figure,
            ratio <= GOAL,
            note,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, cpu: f64) -> Row {
        Row {
            name: name.into(),
            metrics: 1000,
            passes: 2,
            cpu_per_million: cpu,
            cpu_range: (cpu, cpu),
            wall_s: 1.0,
            cpu_ticks_per_million: cpu,
        }
    }

    fn figures(disk_cpu: f64) -> Figures {
        let written = |bytes| Written {
            bytes,
            cancelled: 0,
            metrics: 2000,
        };
        Figures {
            rows: vec![row("memory", 1.0), row("disk", disk_cpu), row("lazy", 1.1)],
            written: vec![written(0), written(60_000), written(60_000)],
            drains: vec![Drain {
                name: "disk".into(),
                metrics: 1000,
                fill_s: 1.0,
                held: Memory::default(),
                buffer_bytes: Some(30_000),
                wait_s: 1.0,
                drain_s: 0.5,
                cpu_s: 0.1,
            }],
        }
    }

    #[test]
    fn the_goal_compares_the_default_disk_buffer_with_memory() {
        let (_, figure, met, note) = figures(1.25).target();
        assert!(met && note.is_none(), "{figure}");
        assert!(figure.contains("1.25×") && figure.contains("2000 metrics/s"));
        let (_, _, met, note) = figures(1.56).target();
        assert!(!met);
        assert!(note.unwrap().contains("20% over"));
        let table = figures(1.25).table();
        assert!(
            table.contains("| disk | 1000 | 2 | 1.250 | 1.25 |"),
            "{table}"
        );
        assert!(table.contains("| 30.0 | 0.0 |"), "{table}");
    }
}
