//! Disk buffers through the topology: the log survives reloads that change
//! the output (the successor shares it) or its buffer kind (memory moves
//! into disk), and a stop and start with the destination down in between;
//! then every metric reaches a real TCP receiver exactly once.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::time::{Duration, Instant};

use super::*;
use crate::config::Config;
use crate::kind::Kind;

fn config(text: &str) -> Config {
    let mut c = Config::default();
    c.merge_text(text, "test.toml").unwrap();
    c
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A listener into a graphite output at `graphite` with `buffer` keys.
fn text(listen: u16, graphite: u16, buffer: &str) -> String {
    format!(
        r#"
[agent]
  omit_hostname = true
  flush_interval = "100ms"
  metric_batch_size = 10
[[inputs.socket_listener]]
  service_address = "tcp://127.0.0.1:{listen}"
[[outputs.graphite]]
  alias = "g"
  servers = ["127.0.0.1:{graphite}"]
  timeout = "1s"
{buffer}
"#
    )
}

fn send(listen: u16, seqs: std::ops::Range<u64>) {
    let mut c = std::net::TcpStream::connect(("127.0.0.1", listen)).unwrap();
    let mut body = String::new();
    for n in seqs {
        body.push_str(&format!("m seq={n}i {}\n", 1_700_000_000_000_000_000 + n));
    }
    c.write_all(body.as_bytes()).unwrap();
}

/// The output's counter `field`.
fn output_field(live: &Topology, field: &str) -> u64 {
    live.stats
        .snapshot()
        .into_iter()
        .find(|(id, _)| id.kind == Kind::Output)
        .and_then(|(id, s)| {
            s.fields(id.kind, false)
                .into_iter()
                .find(|(n, _)| *n == field)
        })
        .map_or(0, |(_, v)| v)
}

async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_buffer_outlives_reloads_and_a_restart_and_delivers_everything_once() {
    let dir = tempfile::tempdir().unwrap();
    let (listen, graphite) = (free_port(), free_port());
    let disk = |extra: &str| {
        format!(
            "  buffer_strategy = \"disk\"\n  buffer_directory = \"{}\"\n{extra}",
            dir.path().display()
        )
    };

    // Memory first, the destination down.
    let mut live = Topology::start(config(&text(listen, graphite, "")), Mode::Run)
        .await
        .unwrap();
    send(listen, 0..50);
    wait_for("50 in the memory buffer", || {
        output_field(&live, "buffer_size") == 50
    })
    .await;

    // Reloaded onto a disk buffer: the 50 move into the log.
    let report = live
        .reload(config(&text(listen, graphite, &disk(""))))
        .await
        .unwrap();
    assert_eq!((report.started, report.stopped), (1, 1), "{report:?}");
    let log = dir.path().join("outputs.graphite@g");
    assert!(log.is_dir(), "the output's own directory");
    send(listen, 50..100);
    wait_for("100 in the disk buffer", || {
        output_field(&live, "buffer_size") == 100
    })
    .await;

    // Changed again on the same directory: the successor shares the log.
    live.reload(config(&text(
        listen,
        graphite,
        &disk("  flush_interval = \"150ms\"\n"),
    )))
    .await
    .unwrap();
    send(listen, 100..120);
    wait_for("120 in the disk buffer", || {
        output_field(&live, "buffer_size") == 120
    })
    .await;
    assert!(output_field(&live, "buffer_bytes") > 0);
    live.shutdown().await.unwrap();

    // The destination comes up; a new start replays the log.
    let receiver = std::net::TcpListener::bind(("127.0.0.1", graphite)).unwrap();
    let lines = std::thread::spawn(move || {
        let mut seen = Vec::new();
        receiver.set_nonblocking(false).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while seen.len() < 120 && Instant::now() < deadline {
            let (conn, _) = receiver.accept().unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            for line in BufReader::new(conn).lines() {
                let Ok(line) = line else { break };
                let value: u64 = line.split(' ').nth(1).unwrap().parse().unwrap();
                seen.push(value);
                if seen.len() >= 120 {
                    break;
                }
            }
        }
        seen
    });
    let live = Topology::start(config(&text(listen, graphite, &disk(""))), Mode::Run)
        .await
        .unwrap();
    assert_eq!(output_field(&live, "buffer_replayed"), 120);
    let seen = lines.join().unwrap();
    let distinct: BTreeSet<u64> = seen.iter().copied().collect();
    assert_eq!(seen.len(), 120, "each metric once: {seen:?}");
    assert_eq!(distinct, (0..120).collect(), "every metric");
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "oldest first: {seen:?}"
    );
    wait_for("the buffer drained", || {
        output_field(&live, "buffer_size") == 0
    })
    .await;
    live.shutdown().await.unwrap();
}

/// A disk buffer is bounded by `metric_buffer_limit` only where the
/// configuration sets it (Telegraf's disk buffer ignores the default);
/// otherwise by its bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_buffer_takes_metric_buffer_limit_only_where_it_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let (listen, graphite) = (free_port(), free_port());
    let disk = format!(
        "  buffer_strategy = \"disk\"\n  buffer_directory = \"{}\"\n",
        dir.path().display()
    );
    let mut live = Topology::start(config(&text(listen, graphite, &disk)), Mode::Run)
        .await
        .unwrap();
    assert_eq!(
        output_field(&live, "buffer_limit"),
        crate::topology::build::DISK_METRIC_LIMIT as u64
    );
    let limited = text(listen, graphite, &disk)
        .replace("[agent]\n", "[agent]\n  metric_buffer_limit = 20000\n");
    live.reload(config(&limited)).await.unwrap();
    assert_eq!(output_field(&live, "buffer_limit"), 20000);
    live.shutdown().await.unwrap();
}
