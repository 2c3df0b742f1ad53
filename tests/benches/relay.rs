//! Relaying carbon plaintext: graft (`inputs.carbon` → `outputs.graphite`)
//! against carbon-c-relay (Debian `carbon-c-relay`) on the same input, in
//! the same run.
//!
//! Each relay listens on a free loopback port and forwards to a sink this
//! program runs, which counts lines. One connection sends the whole input
//! (paths like `servers.web042.cpu.metric17`, values, timestamps). The
//! figure is the relay process's CPU time (user + system, from
//! `/proc/<pid>/stat`) from the first byte sent to the last line received,
//! per million metrics. Rounds alternate between the two; medians.
//!
//! `cargo bench -p graft-tests --bench relay` prints the table. Under
//! `cargo test` it relays 20 000 lines once through each and checks that
//! every line arrived unchanged.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use graft_test_support::graft;
use graft_test_support::servers::{free_port, listening, program};

fn input(n: usize) -> (Vec<u8>, Vec<String>) {
    let t0 = 1_700_000_000u64;
    let mut text = Vec::with_capacity(n * 48);
    let mut lines = Vec::with_capacity(n);
    for i in 0..n {
        let line = format!(
            "servers.web{:03}.cpu.metric{:02} {}.{} {}",
            i % 200,
            (i / 200) % 50,
            i % 1000,
            i % 7,
            t0 + (i / 10_000) as u64
        );
        text.extend_from_slice(line.as_bytes());
        text.push(b'\n');
        lines.push(line);
    }
    (text, lines)
}

/// Accept connections and send every line received to `tx`.
fn sink() -> (u16, mpsc::Receiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(conn) = conn else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::with_capacity(1 << 20, conn).lines() {
                    let Ok(line) = line else { return };
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, rx)
}

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("relay is running");
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    // Fields 14 and 15 (utime, stime), counted from after the name.
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn wait_listening(port: u16, child: &mut Child) {
    let start = Instant::now();
    while !listening(port) {
        if let Ok(Some(s)) = child.try_wait() {
            panic!("relay exited: {s}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "relay never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Relay {
    name: &'static str,
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A line as (path, value, timestamp): relays may print `5.0` as `5`.
fn point(line: &str) -> (String, u64, String) {
    let mut w = line.split(' ');
    let (path, value, ts) = (
        w.next().unwrap_or(""),
        w.next().unwrap_or(""),
        w.next().unwrap_or(""),
    );
    (
        path.to_owned(),
        value.parse::<f64>().map_or(u64::MAX, f64::to_bits),
        ts.to_owned(),
    )
}

fn start_graft(sink_port: u16) -> Relay {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("relay.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[agent]
  interval = "1h"
  flush_interval = "100ms"
  metric_batch_size = 10000
  metric_buffer_limit = 4000000
  omit_hostname = true
[[inputs.carbon]]
  service_address = "tcp://127.0.0.1:{port}"
[[outputs.graphite]]
  servers = ["127.0.0.1:{sink_port}"]
  template = "measurement"
"#
        ),
    )
    .unwrap();
    let mut child = graft()
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_listening(port, &mut child);
    Relay {
        name: "graft",
        child,
        port,
        _dir: dir,
    }
}

fn start_c_relay(sink_port: u16) -> Relay {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("relay.conf");
    std::fs::write(
        &config,
        format!("cluster sink forward 127.0.0.1:{sink_port};\nmatch * send to sink stop;\n"),
    )
    .unwrap();
    let mut child = Command::new(program("carbon-c-relay", "carbon-c-relay"))
        .arg("-f")
        .arg(&config)
        .args(["-p", &port.to_string(), "-s", "-q", "2000000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_listening(port, &mut child);
    Relay {
        name: "carbon-c-relay",
        child,
        port,
        _dir: dir,
    }
}

/// Send `text` through `relay`; returns (CPU seconds, wall seconds, lines).
fn run(
    relay: &mut Relay,
    rx: &mpsc::Receiver<String>,
    text: &[u8],
    n: usize,
) -> (f64, f64, Vec<String>) {
    let pid = relay.child.id();
    let cpu0 = cpu_seconds(pid);
    let start = Instant::now();
    // A loaded machine has been seen refusing the first connection to a
    // relay that had answered the readiness probe: try again for a while,
    // unless the relay is gone.
    let mut c = loop {
        match TcpStream::connect(("127.0.0.1", relay.port)) {
            Ok(c) => break c,
            Err(e) => {
                let exited = relay.child.try_wait();
                assert!(
                    matches!(exited, Ok(None)) && start.elapsed() < Duration::from_secs(10),
                    "{}: connecting to 127.0.0.1:{}: {e}; the relay process: {exited:?}",
                    relay.name,
                    relay.port,
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    c.write_all(text).unwrap();
    drop(c);
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(l) => got.push(l),
            Err(_) => panic!("{}: only {} of {n} lines arrived", relay.name, got.len()),
        }
    }
    (cpu_seconds(pid) - cpu0, start.elapsed().as_secs_f64(), got)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (n, rounds) = if bench { (1_000_000, 5) } else { (20_000, 1) };
    let (text, lines) = input(n);
    let want: BTreeSet<_> = lines.iter().map(|l| point(l)).collect();
    let (sink_port, rx) = sink();
    let mut relays = [start_graft(sink_port), start_c_relay(sink_port)];
    let mut cpu = [Vec::new(), Vec::new()];
    let mut wall = [Vec::new(), Vec::new()];
    for _ in 0..rounds {
        for (k, relay) in relays.iter_mut().enumerate() {
            let (c, w, got) = run(relay, &rx, &text, n);
            let got: BTreeSet<_> = got.iter().map(|l| point(l)).collect();
            assert!(got == want, "{}: lines changed on the way", relay.name);
            cpu[k].push(c);
            wall[k].push(w);
        }
    }
    drop(relays);
    let per_m = |c: f64| c / (n as f64 / 1e6);
    let (g, cr) = (median(&mut cpu[0]), median(&mut cpu[1]));
    println!(
        "carbon plaintext relay, {n} metrics over one TCP connection, {rounds} alternating rounds, median\n"
    );
    println!("| relay | CPU-s per million metrics | wall s | metrics/s |");
    println!("|---|---|---|---|");
    for (k, name) in ["graft", "carbon-c-relay"].iter().enumerate() {
        let w = median(&mut wall[k]);
        println!(
            "| {name} | {:.3} | {:.2} | {:.0} |",
            per_m(median(&mut cpu[k].clone())),
            w,
            n as f64 / w
        );
    }
    println!("\ngraft / carbon-c-relay CPU: {:.2}", g / cr);
}
