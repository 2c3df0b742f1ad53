//! Relay throughput and WASM overhead: carbon plaintext in over one TCP
//! connection, graphite plaintext out to a sink the harness runs, which
//! checks that every line arrived unchanged. The figure is the relay
//! process's CPU time from the first byte sent to the last line received,
//! per million metrics.
//!
//! - Relays: graft (`inputs.carbon` → `outputs.graphite`), carbon-c-relay
//!   and carbon's `carbon-relay`.
//! - WASM overhead: the same graft pipeline with a rename processor between,
//!   once the built-in `processors.rename` and once the example WASM
//!   rename processor, both renaming the field `value` to `gauge` (so every
//!   path gains `.gauge`).

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::net::{LineSink, point_hash};
use crate::peers::{self, Running};
use crate::procfs::CpuMeter;

/// How much to send.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Metrics per pass for graft and carbon-c-relay.
    pub metrics: usize,
    /// Metrics per pass for carbon-relay, which is far slower.
    pub carbon_relay_metrics: usize,
    /// Alternating passes per relay (carbon-relay runs one).
    pub rounds: usize,
}

/// One relay's figures: medians over its passes.
#[derive(Debug, Clone)]
pub struct Row {
    pub name: String,
    pub metrics: usize,
    pub passes: usize,
    pub cpu_per_million: f64,
    /// The lowest and highest pass.
    pub cpu_range: (f64, f64),
    pub wall_s: f64,
    /// Cross-check: the same CPU time from clock ticks.
    pub cpu_ticks_per_million: f64,
}

impl Row {
    pub fn rate(&self) -> f64 {
        self.metrics as f64 / self.wall_s
    }
}

/// The input: `n` carbon lines, and the hash sums of what should arrive,
/// unchanged and with `.gauge` appended to each path.
pub struct Input {
    pub text: Vec<u8>,
    pub n: usize,
    pub want: u64,
    pub want_renamed: u64,
}

/// `servers.webNNN.cpu.metricNN value timestamp`: 200 hosts, 50 metrics.
pub fn input(n: usize) -> Input {
    let t0 = 1_700_000_000u64;
    let mut text = Vec::with_capacity(n * 48);
    let (mut want, mut want_renamed) = (0u64, 0u64);
    for i in 0..n {
        let path = format!("servers.web{:03}.cpu.metric{:02}", i % 200, (i / 200) % 50);
        let rest = format!("{}.{} {}", i % 1000, i % 7, t0 + (i / 10_000) as u64);
        let line = format!("{path} {rest}");
        want = want.wrapping_add(point_hash(&line).expect("a valid line"));
        let renamed = format!("{path}.gauge {rest}");
        want_renamed = want_renamed.wrapping_add(point_hash(&renamed).expect("a valid line"));
        text.extend_from_slice(line.as_bytes());
        text.push(b'\n');
    }
    Input {
        text,
        n,
        want,
        want_renamed,
    }
}

/// graft taking carbon plaintext on `port`; `processor` is an extra
/// section after the input, `output` the output section(s).
fn graft_config(port: u16, processor: &str, output: &str) -> String {
    format!(
        r#"[agent]
  interval = "1h"
  flush_interval = "100ms"
  metric_batch_size = 10000
  metric_buffer_limit = 4000000
  omit_hostname = true
[[inputs.carbon]]
  service_address = "tcp://127.0.0.1:{port}"
{processor}
{output}"#
    )
}

/// The relay's output to `sink`, with extra keys.
fn graphite_output(sink: u16, extra: &str) -> String {
    format!(
        r#"[[outputs.graphite]]
  servers = ["127.0.0.1:{sink}"]
  template = "measurement"
{extra}"#
    )
}

/// Start graft relaying to `sink`, with `processor` between.
pub fn start_graft(name: &str, bin: &Path, sink: u16, processor: &str) -> Result<(Running, u16)> {
    start_graft_with(name, bin, sink, processor, "")
}

/// [`start_graft`] with extra keys for the output (`{dir}` is graft's
/// directory).
pub fn start_graft_with(
    name: &str,
    bin: &Path,
    sink: u16,
    processor: &str,
    output: &str,
) -> Result<(Running, u16)> {
    start_relay(name, bin, processor, &graphite_output(sink, output))
}

/// graft taking carbon plaintext, writing to `output` (whole sections).
pub fn start_graft_with_output(name: &str, bin: &Path, output: &str) -> Result<(Running, u16)> {
    start_relay(name, bin, "", output)
}

fn start_relay(name: &str, bin: &Path, processor: &str, output: &str) -> Result<(Running, u16)> {
    let port = peers::free_port()?;
    let mut r = peers::graft(name, bin, &graft_config(port, processor, output))?;
    r.wait_listening(port)?;
    Ok((r, port))
}

/// Send the first `n` lines of `input` through a relay and wait until the
/// sink has them all: (CPU seconds, CPU seconds from ticks, wall seconds).
fn pass(
    relay: &mut Running,
    port: u16,
    sink: &LineSink,
    text: &[u8],
    n: usize,
    want: u64,
) -> Result<(f64, f64, f64)> {
    sink.reset();
    // The relay's CPU, and its companions' (a bus and a consumer).
    let mut meters = relay
        .pids()
        .into_iter()
        .map(CpuMeter::start)
        .collect::<Result<Vec<_>>>()?;
    let start = Instant::now();
    let mut conn = TcpStream::connect(("127.0.0.1", port))?;
    conn.write_all(text)?;
    drop(conn);
    // Generous: carbon-relay moves a few ten thousand metrics a second.
    let limit = Duration::from_secs(60) + Duration::from_micros(200 * n as u64);
    let mut last = (0, Instant::now());
    loop {
        let (lines, sum) = sink.received();
        if lines as usize >= n {
            let cpu = meters.iter_mut().map(CpuMeter::seconds).sum();
            let ticks = meters.iter().map(CpuMeter::tick_seconds).sum();
            let wall = start.elapsed().as_secs_f64();
            if lines as usize > n || sum != want {
                bail!(
                    "{}: {lines} lines arrived for {n} sent, {}",
                    relay.name,
                    if sum == want {
                        "all of them intact"
                    } else {
                        "not the ones sent"
                    }
                );
            }
            return Ok((cpu, ticks, wall));
        }
        if sink.other() > 0 {
            bail!(
                "{}: {} lines arrived that were not sent (malformed or its own)",
                relay.name,
                sink.other()
            );
        }
        if lines != last.0 {
            last = (lines, Instant::now());
        }
        relay.check_alive()?;
        if start.elapsed() > limit || last.1.elapsed() > Duration::from_secs(30) {
            bail!(
                "{}: only {lines} of {n} lines arrived (nothing new for {:.0} s); its log:\n{}",
                relay.name,
                last.1.elapsed().as_secs_f64(),
                relay.log_tails()
            );
        }
        meters.iter_mut().for_each(CpuMeter::sample);
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Run alternating passes through each relay; one row per relay.
pub fn compare(
    relays: &mut [(&mut Running, u16, usize)],
    sink: &LineSink,
    input: &Input,
    renamed: bool,
    rounds: usize,
) -> Result<Vec<Row>> {
    let mut figures: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new(); relays.len()];
    for round in 0..rounds {
        for (k, (relay, port, n)) in relays.iter_mut().enumerate() {
            // A relay given fewer metrics runs once.
            if *n < input.n && round > 0 {
                continue;
            }
            let want = match (*n == input.n, renamed) {
                (true, false) => input.want,
                (true, true) => input.want_renamed,
                (false, _) => input_prefix_sum(input, *n, renamed),
            };
            let text = &input.text[..byte_len(&input.text, *n)];
            figures[k].push(pass(relay, *port, sink, text, *n, want)?);
        }
    }
    Ok(relays
        .iter()
        .zip(figures)
        .map(|((relay, _, n), f)| {
            let per_m = 1e6 / *n as f64;
            let cpu: Vec<f64> = f.iter().map(|x| x.0 * per_m).collect();
            let lo = cpu.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = cpu.iter().copied().fold(0.0, f64::max);
            Row {
                name: relay.name.clone(),
                metrics: *n,
                passes: f.len(),
                cpu_per_million: median(cpu),
                cpu_range: (lo, hi),
                cpu_ticks_per_million: median(f.iter().map(|x| x.1 * per_m).collect()),
                wall_s: median(f.iter().map(|x| x.2).collect()),
            }
        })
        .collect())
}

/// Bytes of the first `n` lines.
fn byte_len(text: &[u8], n: usize) -> usize {
    text.iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(n - 1)
        .map_or(text.len(), |(i, _)| i + 1)
}

/// The hash sum of the first `n` lines (renamed or not).
fn input_prefix_sum(input: &Input, n: usize, renamed: bool) -> u64 {
    let text = std::str::from_utf8(&input.text[..byte_len(&input.text, n)]).expect("ASCII input");
    text.lines()
        .map(|l| {
            if renamed {
                let (path, rest) = l.split_once(' ').expect("a carbon line");
                point_hash(&format!("{path}.gauge {rest}"))
            } else {
                point_hash(l)
            }
            .expect("a valid line")
        })
        .fold(0u64, u64::wrapping_add)
}

/// graft, carbon-c-relay and carbon-relay on the same input.
pub fn relays(graft_bin: &Path, input: &Input, opts: Options) -> Result<Vec<Row>> {
    let sink = LineSink::start("servers.")?;
    let (mut graft, graft_port) = start_graft("graft", graft_bin, sink.port, "")?;
    let (mut c_relay, c_port) = peers::carbon_c_relay(sink.port)?;
    let (mut py_relay, py_port) = peers::carbon_relay(sink.port)?;
    let n_py = opts.carbon_relay_metrics.min(input.n);
    let mut relays = [
        (&mut graft, graft_port, input.n),
        (&mut c_relay, c_port, input.n),
        (&mut py_relay, py_port, n_py),
    ];
    compare(&mut relays, &sink, input, false, opts.rounds)
}

/// The rename pipeline with the built-in and with the WASM processor.
pub fn wasm_overhead(
    graft_bin: &Path,
    wasm: &Path,
    input: &Input,
    opts: Options,
) -> Result<Vec<Row>> {
    let sink = LineSink::start("servers.")?;
    let native = "[[processors.rename]]\n  [[processors.rename.replace]]\n    field = \"value\"\n    dest = \"gauge\"\n";
    let guest = format!(
        "[[processors.wasm]]\n  path = \"{}\"\n  [processors.wasm.config]\n    from = \"value\"\n    to = \"gauge\"\n",
        wasm.display()
    );
    let (mut n, n_port) = start_graft("graft, processors.rename", graft_bin, sink.port, native)?;
    let (mut w, w_port) = start_graft("graft, processors.wasm", graft_bin, sink.port, &guest)?;
    let mut relays = [(&mut n, n_port, input.n), (&mut w, w_port, input.n)];
    compare(&mut relays, &sink, input, true, opts.rounds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_sums_match_their_lines() {
        let input = input(500);
        assert_eq!(input.text.iter().filter(|&&b| b == b'\n').count(), 500);
        assert_eq!(input_prefix_sum(&input, 500, false), input.want);
        assert_eq!(input_prefix_sum(&input, 500, true), input.want_renamed);
        assert_eq!(
            byte_len(&input.text, 1),
            input.text.iter().position(|&b| b == b'\n').unwrap() + 1
        );
        assert!(
            input
                .text
                .starts_with(b"servers.web000.cpu.metric00 0.0 1700000000\n")
        );
    }

    #[test]
    fn median_is_the_middle() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![5.0]), 5.0);
    }
}
