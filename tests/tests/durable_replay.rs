//! Replay of the durable buffer across restarts: what waits on disk when
//! the agent stops is written after it starts again, oldest first, once;
//! what was written before a `kill -9` is not written again (Telegraf's
//! disk buffer replayed its whole log on every start, influxdata/telegraf
//! #16500); and two outputs under one `[agent] buffer_directory` keep a
//! log each. Checked by Graphite sinks that follow the sequence numbers.

use std::path::Path;
use std::time::{Duration, Instant};

use graft_test_support::durable::{SeqSink, internal_write, kill9, start_logged as start};
use graft_test_support::servers::{free_port, http};
use graft_test_support::stop;

const FIRST: u64 = 200_000;
const SECOND: u64 = 100_000;
const LINES_PER_BODY: u64 = 5000;

fn config(listen: u16, sink: u16, buffer_dir: &Path, internal: &Path) -> String {
    format!(
        r#"[agent]
  interval = "500ms"
  round_interval = false
  flush_interval = "100ms"
  metric_batch_size = 5000
  metric_buffer_limit = 1000000
  omit_hostname = true
[[inputs.influxdb_listener]]
  service_address = "127.0.0.1:{listen}"
  acknowledge = "durable"
[[inputs.internal]]
  collect_memstats = false
[[outputs.graphite]]
  servers = ["127.0.0.1:{sink}"]
  template = "measurement.field"
  namepass = ["replay"]
  buffer_strategy = "disk"
  buffer_directory = "{}"
[[outputs.file]]
  files = ["{}"]
  namepass = ["internal_write"]
"#,
        buffer_dir.display(),
        internal.display()
    )
}

/// Post `replay v=N` for N in `from..to`, every body answered 204.
fn feed(listen: u16, from: u64, to: u64) {
    let client = http();
    let mut n = from;
    while n < to {
        let end = (n + LINES_PER_BODY).min(to);
        let body: String = (n..end).map(|i| format!("replay v={i}i\n")).collect();
        let r = client
            .post(format!("http://127.0.0.1:{listen}/write?db=replay"))
            .body(body)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 204, "body at {n}");
        n = end;
    }
}

/// Wait until the sink has `lines` lines and the output reports an empty
/// buffer; fail with graft's log after 60 s.
fn wait_drained(sink: &SeqSink, lines: u64, internal: &Path, log: &Path) {
    let start = Instant::now();
    loop {
        let empty = internal_write(internal, "graphite").is_some_and(|s| s.int("buffer_size") == 0);
        if sink.lines() >= lines && empty {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{} of {lines} lines after 60 s; {:?}\n{}",
            sink.lines(),
            internal_write(internal, "graphite"),
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_restart_replays_what_waits_once_and_nothing_already_written() {
    let dir = tempfile::tempdir().unwrap();
    let buffer_dir = dir.path().join("buffers");
    let internal = dir.path().join("internal.out");
    let config_path = dir.path().join("graft.toml");
    let (listen, sink_port) = (free_port(), free_port());
    std::fs::write(
        &config_path,
        config(listen, sink_port, &buffer_dir, &internal),
    )
    .unwrap();
    let log = |i: u32| dir.path().join(format!("graft-{i}.log"));

    // 1: the sink is down; everything waits on disk; a clean stop.
    let mut child = start(&config_path, &log(1), listen);
    feed(listen, 0, FIRST);
    let (status, _) = stop(&mut child, Duration::from_secs(30));
    assert!(status.success(), "{status}");

    // 2: the sink is up: the backlog is written, once, in order.
    let sink = SeqSink::start_on(sink_port);
    let _ = std::fs::remove_file(&internal);
    let mut child = start(&config_path, &log(2), listen);
    wait_drained(&sink, FIRST, &internal, &log(2));
    let second_start = internal_write(&internal, "graphite").unwrap();
    // Written and committed: now a kill -9.
    std::thread::sleep(Duration::from_millis(1500));
    kill9(&mut child);

    // 3: nothing of the above comes again; new metrics do.
    let _ = std::fs::remove_file(&internal);
    let mut child = start(&config_path, &log(3), listen);
    feed(listen, FIRST, FIRST + SECOND);
    wait_drained(&sink, FIRST + SECOND, &internal, &log(3));
    std::thread::sleep(Duration::from_millis(500));
    let third_start = internal_write(&internal, "graphite").unwrap();
    let (status, _) = stop(&mut child, Duration::from_secs(30));
    assert!(status.success(), "{status}");

    let paths = sink.paths();
    println!(
        "sink: {paths:?}; second start: replayed {}, written {}; third start: replayed {}, written {}",
        second_start.int("buffer_replayed"),
        second_start.int("metrics_written"),
        third_start.int("buffer_replayed"),
        third_start.int("metrics_written"),
    );
    let seq = &paths["replay.v"];
    assert_eq!(
        (seq.next, seq.lines, seq.skipped, seq.backwards),
        (FIRST + SECOND, FIRST + SECOND, 0, 0),
        "every number once, in order, across both restarts"
    );
    assert_eq!(paths.len(), 1, "{paths:?}");
    assert_eq!(sink.malformed(), 0);
    assert_eq!(second_start.int("buffer_replayed"), FIRST as i64);
    assert_eq!(third_start.int("buffer_replayed"), 0);
    assert_eq!(third_start.int("metrics_written"), SECOND as i64);
}

/// Two disk-buffered outputs under one `[agent] buffer_directory`: each
/// keeps its own log, so the one whose server was up replays nothing and
/// the one whose server was down replays all of its own.
#[test]
fn two_outputs_in_one_directory_keep_their_own_logs() {
    const N: u64 = 50_000;
    let dir = tempfile::tempdir().unwrap();
    let buffer_dir = dir.path().join("buffers");
    let internal = dir.path().join("internal.out");
    let config_path = dir.path().join("graft.toml");
    let (listen, up_port, down_port) = (free_port(), free_port(), free_port());
    let output = |alias: &str, port: u16| {
        format!(
            "[[outputs.graphite]]\n  alias = \"{alias}\"\n  servers = [\"127.0.0.1:{port}\"]\n  template = \"measurement.field\"\n  namepass = [\"replay\"]\n"
        )
    };
    std::fs::write(
        &config_path,
        format!(
            r#"[agent]
  interval = "500ms"
  round_interval = false
  flush_interval = "100ms"
  metric_batch_size = 5000
  metric_buffer_limit = 1000000
  omit_hostname = true
  buffer_strategy = "disk"
  buffer_directory = "{}"
[[inputs.influxdb_listener]]
  service_address = "127.0.0.1:{listen}"
  acknowledge = "durable"
[[inputs.internal]]
  collect_memstats = false
{}{}[[outputs.file]]
  files = ["{}"]
  namepass = ["internal_write"]
  buffer_strategy = "memory"
"#,
            buffer_dir.display(),
            output("up", up_port),
            output("down", down_port),
            internal.display()
        ),
    )
    .unwrap();
    let log = |i: u32| dir.path().join(format!("graft-{i}.log"));
    let sample = |alias: &str| {
        graft_test_support::durable::internal_write_aliased(&internal, alias)
            .unwrap_or_else(|| panic!("no internal_write of {alias}"))
    };

    let up = SeqSink::start_on(up_port);
    let mut child = start(&config_path, &log(1), listen);
    feed(listen, 0, N);
    wait_drained_aliased(&up, N, &internal, "up", &log(1));
    let (status, _) = stop(&mut child, Duration::from_secs(30));
    assert!(status.success(), "{status}");
    let dirs: Vec<_> = std::fs::read_dir(&buffer_dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        dirs.len(),
        2,
        "one directory per disk-buffered output: {dirs:?}"
    );

    let down = SeqSink::start_on(down_port);
    let _ = std::fs::remove_file(&internal);
    let mut child = start(&config_path, &log(2), listen);
    wait_drained_aliased(&down, N, &internal, "down", &log(2));
    std::thread::sleep(Duration::from_millis(700));
    let (up_after, down_after) = (sample("up"), sample("down"));
    let (status, _) = stop(&mut child, Duration::from_secs(30));
    assert!(status.success(), "{status}");
    println!(
        "directories {dirs:?}; second start: up replayed {}, down replayed {}; sinks: up {:?}, down {:?}",
        up_after.int("buffer_replayed"),
        down_after.int("buffer_replayed"),
        up.paths(),
        down.paths()
    );
    for (name, sink) in [("up", &up), ("down", &down)] {
        let seq = &sink.paths()["replay.v"];
        assert_eq!(
            (seq.next, seq.lines, seq.skipped, seq.backwards),
            (N, N, 0, 0),
            "{name}: every number once, in order"
        );
    }
    assert_eq!(up_after.int("buffer_replayed"), 0);
    assert_eq!(down_after.int("buffer_replayed"), N as i64);
}

fn wait_drained_aliased(sink: &SeqSink, lines: u64, internal: &Path, alias: &str, log: &Path) {
    let start = Instant::now();
    let sample = || graft_test_support::durable::internal_write_aliased(internal, alias);
    while sink.lines() < lines || sample().is_none_or(|s| s.int("buffer_size") != 0) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{} of {lines} lines after 60 s; {:?}\n{}",
            sink.lines(),
            sample(),
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
