//! Throughput of edge → JetStream → consumer on this machine, against a
//! real `nats-server`: numbered metrics posted to an edge agent's
//! listener, published by `outputs.nats`, read by `inputs.nats_consumer`
//! and written by `outputs.file`. Two shapes: Telegraf's default (line
//! protocol, one message per metric) and graft-to-graft (graft's batch
//! format, one message per batch). Prints metrics/s and the CPU seconds
//! each agent spent per million metrics; asserts only that every number
//! arrived, once.
//!
//! `cargo test -p graft-tests --test nats_throughput -- --nocapture`

use std::process::Child;
use std::time::{Duration, Instant};

use graft_test_support::nats::{
    NatsServer, graft_log, post_lines, seq_lines, seqs, start_graft, stream_messages,
};
use graft_test_support::servers::{free_port, listening};
use graft_test_support::stop;

/// CPU seconds (user + system) process `pid` has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces), from 3 on.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / clock_ticks()
}

/// `getconf CLK_TCK`: the unit of `/proc/PID/stat` times.
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn run(shape: &str, n: u64, body: u64, format: &str) {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let listen = free_port();
    let url = server.url();
    let agent = "[agent]\n  interval = \"10s\"\n  flush_interval = \"100ms\"\n  metric_batch_size = 5000\n  metric_buffer_limit = 2000000\n  omit_hostname = true\n";
    let mut edge = start_graft(
        dir.path(),
        "edge",
        &format!(
            "{agent}[[inputs.influxdb_listener]]\n  service_address = \"127.0.0.1:{listen}\"\n\
             [[outputs.nats]]\n  servers = [\"{url}\"]\n  subject = \"bench\"\n{format}\n\
             [outputs.nats.jetstream]\n    name = \"BENCH\"\n"
        ),
    );
    let start = Instant::now();
    while !listening(listen) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{}",
            graft_log(dir.path(), "edge")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let consumer_format = if format.contains("graft") {
        "  data_format = \"graft\""
    } else {
        ""
    };
    let mut consumer: Child = start_graft(
        dir.path(),
        "consumer",
        &format!(
            "{agent}[[inputs.nats_consumer]]\n  servers = [\"{url}\"]\n  subjects = []\n  jetstream_subjects = [\"bench\"]\n  max_undelivered_messages = 10000\n{consumer_format}\n\
             [[outputs.file]]\n  files = [\"{}\"]\n",
            out.display()
        ),
    );
    let server_pid = server.pid().expect("nats-server runs");
    let (cpu_edge0, cpu_consumer0, cpu_server0) = (
        cpu_seconds(edge.id()),
        cpu_seconds(consumer.id()),
        cpu_seconds(server_pid),
    );
    let started = Instant::now();
    for k in 0..n / body {
        post_lines(listen, seq_lines("seq", "b", k * body..(k + 1) * body));
    }
    let posted = started.elapsed();
    let limit = Duration::from_secs(120);
    loop {
        let got = seqs(&out, "seq");
        if got.len() as u64 >= n {
            assert!(got.keys().copied().eq(0..n), "exactly the numbers sent");
            assert!(got.values().all(|c| *c == 1), "each once");
            break;
        }
        assert!(
            started.elapsed() < limit,
            "{shape}: {} of {n} after {limit:?}: {}",
            got.len(),
            graft_log(dir.path(), "consumer")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = started.elapsed();
    let million = n as f64 / 1e6;
    println!(
        "{shape}: {n} metrics in {took:.2?} (posted in {posted:.2?}): {:.0} metrics/s; \
         CPU s per million: edge {:.2}, consumer {:.2}, nats-server {:.2}; {} messages in the stream",
        n as f64 / took.as_secs_f64(),
        (cpu_seconds(edge.id()) - cpu_edge0) / million,
        (cpu_seconds(consumer.id()) - cpu_consumer0) / million,
        (cpu_seconds(server_pid) - cpu_server0) / million,
        stream_messages(&server, "BENCH").unwrap_or(0)
    );
    stop(&mut consumer, Duration::from_secs(15));
    stop(&mut edge, Duration::from_secs(15));
}

#[test]
fn telegrafs_shape_line_protocol_one_message_per_metric() {
    run("influx, one message per metric", 100_000, 5000, "");
}

#[test]
fn graft_to_graft_batches_in_graft_format() {
    run(
        "graft format, one message per batch",
        1_000_000,
        5000,
        "  data_format = \"graft\"\n  use_batch_format = true",
    );
}

#[test]
fn line_protocol_batches() {
    run(
        "influx, one message per batch",
        1_000_000,
        5000,
        "  use_batch_format = true",
    );
}
