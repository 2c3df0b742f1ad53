//! `inputs.redis` against a real `redis-server` (Debian `redis-server`, a
//! free loopback port, a temporary directory): values compared with the
//! server's own `INFO` read in the same test, Telegraf's names and types,
//! failing servers costing only themselves, bounded replies.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use graft_api::Input;
use graft_api::counters::Counters;
use graft_core::{Batch, FieldRef};
use graft_plugins::inputs::redis::{self, Kind};
use graft_test_support::redis::{RedisServer, Value};
use graft_test_support::servers::free_port;
use graft_test_support::{graft, workspace_root};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The input built from `config`, its counters attached as the agent
/// attaches them.
fn started(config: &str) -> (Box<dyn Input>, Arc<Counters>) {
    let mut input = redis::build(toml::from_str(config).unwrap()).unwrap();
    let counters = Arc::new(Counters::default());
    input.attach_counters(counters.clone());
    (input, counters)
}

fn int(m: &graft_core::MetricRef<'_>, field: &str) -> i64 {
    match m.field(field) {
        Some(FieldRef::Int(v)) => v,
        other => panic!("{field}: {other:?}"),
    }
}

fn find<'a>(b: &'a Batch, name: &str, tag: (&str, &str)) -> graft_core::MetricRef<'a> {
    b.iter()
        .find(|m| m.name() == name && m.tag(tag.0) == Some(tag.1))
        .unwrap_or_else(|| panic!("no {name} with {tag:?}"))
}

fn num(info: &std::collections::BTreeMap<String, String>, key: &str) -> i64 {
    info[key].parse().unwrap()
}

#[test]
fn redis_input_reports_what_info_says_with_telegrafs_names() {
    let server = RedisServer::start();
    for (k, v) in [("k1", "42"), ("k2", "hello"), ("k3", "2.5")] {
        assert_eq!(server.command(&["SET", k, v]), Value::Status("OK".into()));
    }
    server.command(&["EXPIRE", "k2", "1000"]);
    server.command(&["EXPIRE", "k3", "2000"]);
    let rt = rt();
    let (mut input, sink) = started(&format!(
        r#"servers = ["{}"]
[[commands]]
  command = ["get", "k1"]
  field = "k1"
  type = "integer"
[[commands]]
  command = ["get", "k2"]
  field = "k2"
  type = "string"
[[commands]]
  command = ["get", "k3"]
  field = "k3"
  type = "float"
[[commands]]
  command = ["dbsize"]
  field = "size"
  type = "integer"
"#,
        server.url()
    ));
    // One key in db 2, on a connection of its own.
    let mut c = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    graft_test_support::redis::send(&mut c, &["SELECT", "2"]).unwrap();
    graft_test_support::redis::send(&mut c, &["SET", "other", "x"]).unwrap();
    let mut r = std::io::BufReader::new(c.try_clone().unwrap());
    graft_test_support::redis::read(&mut r).unwrap();
    graft_test_support::redis::read(&mut r).unwrap();

    let before = server.info("all");
    let b = rt.block_on(input.gather()).unwrap();
    let after = server.info("all");

    let m = find(&b, "redis", ("server", "127.0.0.1"));
    assert_eq!(m.tag("port"), Some(server.port.to_string().as_str()));
    assert_eq!(m.tag("replication_role"), Some("master"));
    let conns = int(&m, "total_connections_received");
    assert!(
        num(&before, "total_connections_received") < conns
            && conns <= num(&after, "total_connections_received"),
        "{conns} not between INFO before and after"
    );
    let used = int(&m, "used_memory");
    let (lo, hi) = (num(&before, "used_memory"), num(&after, "used_memory"));
    assert!(
        used >= lo.min(hi) - 256 * 1024 && used <= lo.max(hi) + 256 * 1024,
        "used_memory {used} far from INFO's {lo}..{hi}"
    );
    let cmds = int(&m, "total_commands_processed");
    assert!(
        num(&before, "total_commands_processed") <= cmds
            && cmds <= num(&after, "total_commands_processed")
    );
    assert_eq!(
        m.field("redis_version"),
        Some(FieldRef::Str(&before["redis_version"]))
    );
    assert!(matches!(m.field("used_cpu_sys"), Some(FieldRef::Float(_))));
    assert!(matches!(
        m.field("mem_fragmentation_ratio"),
        Some(FieldRef::Float(_))
    ));

    let db0 = find(&b, "redis_keyspace", ("database", "db0"));
    assert_eq!((int(&db0, "keys"), int(&db0, "expires")), (3, 2));
    // avg_ttl is Redis's own sampled estimate: present, an int.
    let _ = int(&db0, "avg_ttl");
    let db2 = find(&b, "redis_keyspace", ("database", "db2"));
    assert_eq!((int(&db2, "keys"), int(&db2, "expires")), (1, 0));
    let set = find(&b, "redis_cmdstat", ("command", "set"));
    assert!(int(&set, "calls") >= 4);
    assert!(matches!(
        set.field("usec_per_call"),
        Some(FieldRef::Float(_))
    ));

    let c = find(&b, "redis_commands", ("server", "127.0.0.1"));
    assert_eq!(c.field("k1"), Some(FieldRef::Int(42)));
    assert_eq!(c.field("k2"), Some(FieldRef::Str("hello")));
    assert_eq!(c.field("k3"), Some(FieldRef::Float(2.5)));
    assert_eq!(c.field("size"), Some(FieldRef::Int(3)));
    assert_eq!(c.tag("replication_role"), None);

    // The kept connection is reused: a second gather opens none (the
    // last one counted is the test's own for `after`).
    let b2 = rt.block_on(input.gather()).unwrap();
    let m2 = find(&b2, "redis", ("server", "127.0.0.1"));
    assert_eq!(
        int(&m2, "total_connections_received"),
        num(&after, "total_connections_received")
    );
    assert_eq!(
        sink.counter("server_gathers")
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    // The server drops graft's connection: the next gather reconnects
    // and still lands, without an error.
    server.command(&["CLIENT", "KILL", "TYPE", "normal"]);
    let b3 = rt.block_on(input.gather()).unwrap();
    assert!(b3.iter().any(|m| m.name() == "redis"));
    assert_eq!(
        sink.counter("server_gathers")
            .load(std::sync::atomic::Ordering::Relaxed),
        3
    );
    assert_eq!(
        sink.counter("server_errors")
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

/// Telegraf's README types of the `redis` fields (the ones every Redis 7
/// reports), checked against a real server's gather and graft's table.
#[test]
fn redis_schema_matches_telegrafs_readme() {
    use Kind::{Float, Int, Str};
    const README: &[(&str, Kind)] = &[
        ("keyspace_hitrate", Float),
        ("rdb_last_save_time_elapsed", Int),
        ("uptime", Int),
        ("lru_clock", Int),
        ("redis_version", Str),
        ("clients", Int),
        ("blocked_clients", Int),
        ("used_memory", Int),
        ("used_memory_rss", Int),
        ("used_memory_peak", Int),
        ("total_system_memory", Int),
        ("used_memory_lua", Int),
        ("maxmemory", Int),
        ("maxmemory_policy", Str),
        ("mem_fragmentation_ratio", Float),
        ("loading", Int),
        ("rdb_changes_since_last_save", Int),
        ("rdb_bgsave_in_progress", Int),
        ("rdb_last_save_time", Int),
        ("rdb_last_bgsave_status", Str),
        ("rdb_last_bgsave_time_sec", Int),
        ("rdb_current_bgsave_time_sec", Int),
        ("aof_enabled", Int),
        ("aof_rewrite_in_progress", Int),
        ("aof_rewrite_scheduled", Int),
        ("aof_last_rewrite_time_sec", Int),
        ("aof_current_rewrite_time_sec", Int),
        ("aof_last_bgrewrite_status", Str),
        ("aof_last_write_status", Str),
        ("total_connections_received", Int),
        ("total_commands_processed", Int),
        ("instantaneous_ops_per_sec", Int),
        ("total_net_input_bytes", Int),
        ("total_net_output_bytes", Int),
        ("instantaneous_input_kbps", Float),
        ("instantaneous_output_kbps", Float),
        ("rejected_connections", Int),
        ("sync_full", Int),
        ("sync_partial_ok", Int),
        ("sync_partial_err", Int),
        ("expired_keys", Int),
        ("evicted_keys", Int),
        ("keyspace_hits", Int),
        ("keyspace_misses", Int),
        ("pubsub_channels", Int),
        ("pubsub_patterns", Int),
        ("latest_fork_usec", Int),
        ("migrate_cached_sockets", Int),
        ("connected_slaves", Int),
        ("master_repl_offset", Int),
        ("second_repl_offset", Int),
        ("repl_backlog_active", Int),
        ("repl_backlog_size", Int),
        ("repl_backlog_first_byte_offset", Int),
        ("repl_backlog_histlen", Int),
        ("used_cpu_sys", Float),
        ("used_cpu_user", Float),
        ("used_cpu_sys_children", Float),
        ("used_cpu_user_children", Float),
        ("cluster_enabled", Int),
    ];
    let server = RedisServer::start();
    server.command(&["SET", "a", "1"]);
    server.command(&["GET", "a"]);
    server.command(&["NOSUCHCOMMAND"]);
    let rt = rt();
    let (mut input, _sink) = started(&format!("servers = [\"{}\"]", server.url()));
    let b = rt.block_on(input.gather()).unwrap();
    let m = find(&b, "redis", ("server", "127.0.0.1"));
    for (name, kind) in README {
        let got = m.field(name).unwrap_or_else(|| panic!("no field {name}"));
        let ok = matches!(
            (kind, got),
            (Int, FieldRef::Int(_)) | (Float, FieldRef::Float(_)) | (Str, FieldRef::Str(_))
        );
        assert!(ok, "{name}: README says {kind:?}, got {got:?}");
        if let Some(k) = redis::known(name) {
            assert_eq!(k, *kind, "{name} in graft's table");
        }
    }
    for (name, fields) in [
        (
            "redis_keyspace",
            &[("keys", Int), ("expires", Int), ("avg_ttl", Int)][..],
        ),
        (
            "redis_cmdstat",
            &[
                ("calls", Int),
                ("usec", Int),
                ("usec_per_call", Float),
                ("rejected_calls", Int),
                ("failed_calls", Int),
            ][..],
        ),
        ("redis_errorstat", &[("total", Int)][..]),
        (
            "redis_latency_percentiles_usec",
            &[("p50", Float), ("p99", Float), ("p99.9", Float)][..],
        ),
    ] {
        let m = b
            .iter()
            .find(|m| m.name() == name)
            .unwrap_or_else(|| panic!("no {name}"));
        for &(field, kind) in fields {
            let got = m
                .field(field)
                .unwrap_or_else(|| panic!("{name}: no {field}"));
            let ok = matches!(
                (kind, got),
                (Int, FieldRef::Int(_)) | (Float, FieldRef::Float(_))
            );
            assert!(ok, "{name}.{field}: {got:?}");
        }
        for tag in ["server", "port", "replication_role"] {
            assert!(m.tag(tag).is_some(), "{name} lacks tag {tag}");
        }
    }
    assert_eq!(
        find(&b, "redis_errorstat", ("err", "ERR")).field("total"),
        Some(FieldRef::Int(1))
    );
}

/// A server that accepts and answers `reply` to every command, or never
/// answers when `reply` is empty; for at most `conns` connections.
fn fake_server(reply: &'static [u8], conns: usize) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().take(conns) {
            let mut s = s.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            if let Ok(n) = s.read(&mut buf)
                && n > 0
                && !reply.is_empty()
            {
                let _ = s.write_all(reply);
            }
            held.push(s);
        }
        std::thread::sleep(Duration::from_secs(5));
    });
    port
}

#[test]
fn a_failing_server_costs_only_itself_and_is_counted() {
    let good = RedisServer::start();
    let locked = RedisServer::start_with(Some("s3cret"));
    let dead = free_port();
    // Claims a gigabyte, sends a few bytes: refused at the length line.
    let huge = fake_server(b"$1000000000\r\nxxxx", 4);
    let silent = fake_server(b"", 4);
    let rt = rt();
    let (mut input, sink) = started(&format!(
        r#"servers = ["{}", "tcp://:wrong@127.0.0.1:{}", "tcp://127.0.0.1:{dead}", "tcp://127.0.0.1:{huge}", "tcp://127.0.0.1:{silent}", "{}"]
timeout = "2s"
"#,
        good.url(),
        locked.port,
        locked.url(),
    ));
    let start = Instant::now();
    let b = rt
        .block_on(input.gather())
        .expect("the gather itself succeeds");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    let ports: Vec<&str> = b
        .iter()
        .filter(|m| m.name() == "redis")
        .filter_map(|m| m.tag("port"))
        .collect();
    let (g, l) = (good.port.to_string(), locked.port.to_string());
    assert_eq!(ports.len(), 2, "{ports:?}");
    assert!(ports.contains(&g.as_str()) && ports.iter().filter(|p| **p == l).count() == 1);
    let load = |n| sink.counter(n).load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(load("server_gathers"), 6);
    assert_eq!(load("server_errors"), 4);
    assert_eq!(load("reply_size_limit_hits"), 1);
    assert_eq!(load("timeouts"), 1);
}

#[test]
fn telegrafs_sample_config_is_accepted() {
    let config = workspace_root().join("tests/configs/telegraf/redis.conf");
    let out = graft()
        .args(["config", "check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `graft test` (Telegraf's `--test`) gathers redis once and prints it.
#[test]
fn graft_test_prints_the_redis_metrics() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("graft.toml");
    std::fs::write(
        &config,
        format!(
            "[[inputs.redis]]\n  servers = [\"{}\"]\n[[outputs.file]]\n",
            server.url()
        ),
    )
    .unwrap();
    let out = graft()
        .args(["test", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("redis,") && l.contains("uptime=")),
        "{stdout}"
    );
}

/// A failing `[[commands]]` entry (a nil reply, an unknown command) costs
/// only `redis_commands`, as in Telegraf; the INFO metrics land and the
/// failure is counted.
#[test]
fn a_failing_command_keeps_the_info_metrics() {
    let server = RedisServer::start();
    let rt = rt();
    for command in [r#"["get", "missing"]"#, r#"["nosuchcommand"]"#] {
        let (mut input, counters) = started(&format!(
            "servers = [\"{}\"]\n[[commands]]\n  command = {command}\n  field = \"x\"\n  type = \"string\"",
            server.url()
        ));
        let batch = rt.block_on(input.gather()).unwrap();
        assert!(
            batch
                .iter()
                .any(|m| m.name() == "redis" && m.field("uptime").is_some()),
            "{command}"
        );
        assert!(batch.iter().all(|m| m.name() != "redis_commands"));
        let load = |n| {
            counters
                .counter(n)
                .load(std::sync::atomic::Ordering::Relaxed)
        };
        assert_eq!(load("server_errors"), 1, "{command}");
        // The connection is still good: the next gather lands the same.
        let batch = rt.block_on(input.gather()).unwrap();
        assert!(batch.iter().any(|m| m.name() == "redis"));
    }
}
