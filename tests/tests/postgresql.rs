//! `inputs.postgresql` against a real PostgreSQL 15 (Debian `postgresql`,
//! initdb into a temporary directory, run as the `postgres` user).

use std::process::Stdio;
use std::time::{Duration, Instant};

use graft_core::{Batch, FieldRef};
use graft_plugins::inputs::postgresql;
use graft_test_support::servers::Postgres;
use graft_test_support::{graft, stop};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn gather(input: &mut Box<dyn graft_api::Input>) -> Batch {
    rt().block_on(input.gather()).expect("gathered")
}

fn int(b: &Batch, db: &str, field: &str) -> i64 {
    let m = b
        .iter()
        .find(|m| m.tag("db") == Some(db))
        .unwrap_or_else(|| panic!("no metric for db={db}"));
    match m.field(field) {
        Some(FieldRef::Int(v)) => v,
        other => panic!("{field}: {other:?}"),
    }
}

#[test]
fn postgresql_input_counts_real_work_with_telegrafs_fields_and_types() {
    let pg = Postgres::start();
    pg.psql("postgres", "CREATE DATABASE graftdb");
    pg.psql("graftdb", "CREATE TABLE t (id serial, v text)");
    let mut input = postgresql::build(
        toml::from_str(&format!(
            "address = \"{} password=secret\"",
            pg.address("graftdb")
        ))
        .unwrap(),
    )
    .unwrap();
    let before = gather(&mut input);

    const COMMITS: i64 = 40;
    let mut sql = String::new();
    for i in 0..COMMITS {
        sql.push_str(&format!(
            "BEGIN; INSERT INTO t (v) VALUES ('a{i}'), ('b{i}'), ('c{i}'); COMMIT;\n"
        ));
    }
    pg.psql("graftdb", &sql);
    // Backends report their counters when they end, and at most once a second.
    std::thread::sleep(Duration::from_millis(1500));
    let after = gather(&mut input);

    assert!(
        int(&after, "graftdb", "xact_commit") - int(&before, "graftdb", "xact_commit") >= COMMITS
    );
    assert!(
        int(&after, "graftdb", "tup_inserted") - int(&before, "graftdb", "tup_inserted")
            >= 3 * COMMITS
    );

    let db = after
        .iter()
        .find(|m| m.tag("db") == Some("graftdb"))
        .unwrap();
    assert_eq!(
        db.tag("server"),
        Some(
            format!(
                "dbname=graftdb host=127.0.0.1 port={} user=postgres",
                pg.port
            )
            .as_str()
        ),
        "no password in the server tag"
    );
    let ints = [
        "datid",
        "numbackends",
        "xact_commit",
        "xact_rollback",
        "blks_read",
        "blks_hit",
        "tup_returned",
        "tup_fetched",
        "tup_inserted",
        "tup_updated",
        "tup_deleted",
        "conflicts",
        "temp_files",
        "temp_bytes",
        "deadlocks",
        "sessions",
        "sessions_abandoned",
        "sessions_fatal",
        "sessions_killed",
    ];
    let floats = [
        "blk_read_time",
        "blk_write_time",
        "session_time",
        "active_time",
        "idle_in_transaction_time",
    ];
    for f in ints {
        assert!(
            matches!(db.field(f), Some(FieldRef::Int(_))),
            "{f}: {:?}",
            db.field(f)
        );
    }
    for f in floats {
        assert!(
            matches!(db.field(f), Some(FieldRef::Float(_))),
            "{f}: {:?}",
            db.field(f)
        );
    }
    assert_eq!(db.field("datname"), Some(FieldRef::Str("graftdb")));
    assert_eq!(db.field("stats_reset"), None);
    // The shared-objects row and the bgwriter row.
    let global: Vec<_> = after
        .iter()
        .filter(|m| m.tag("db") == Some("postgres_global"))
        .collect();
    assert_eq!(
        global.len(),
        2,
        "pg_stat_database's shared row and pg_stat_bgwriter"
    );
    let bg = global
        .iter()
        .find(|m| m.field("buffers_alloc").is_some())
        .unwrap();
    for f in [
        "checkpoints_timed",
        "checkpoints_req",
        "buffers_checkpoint",
        "buffers_clean",
        "maxwritten_clean",
        "buffers_backend",
        "buffers_backend_fsync",
        "buffers_alloc",
    ] {
        assert!(
            matches!(bg.field(f), Some(FieldRef::Int(_))),
            "{f}: {:?}",
            bg.field(f)
        );
    }
    for f in ["checkpoint_write_time", "checkpoint_sync_time"] {
        assert!(
            matches!(bg.field(f), Some(FieldRef::Float(_))),
            "{f}: {:?}",
            bg.field(f)
        );
    }
}

#[test]
fn custom_queries_take_tags_and_respect_version_gates() {
    let pg = Postgres::start();
    pg.psql("postgres", "CREATE TABLE jobs (queue text, done bool, ms numeric); INSERT INTO jobs VALUES ('mail', true, 1.5), ('mail', false, 2.25), ('sms', true, 10)");
    let config = format!(
        r#"
address = "{}"
databases = ["postgres"]
[[query]]
  sqlquery = "SELECT queue, count(*) AS n, sum(ms) AS total_ms, bool_and(done) AS all_done FROM jobs GROUP BY queue"
  measurement = "jobs"
  tagvalue = "queue"
  withdbname = true
  min_version = 1000
[[query]]
  sqlquery = "SELECT 1 AS future"
  measurement = "future"
  min_version = 9900
[[query]]
  sqlquery = "SELECT 1 AS legacy"
  measurement = "legacy"
  max_version = 1000
"#,
        pg.address("postgres")
    );
    let mut input = postgresql::build(toml::from_str(&config).unwrap()).unwrap();
    let b = gather(&mut input);
    let mut jobs: Vec<String> = b
        .iter()
        .filter(|m| m.name() == "jobs")
        .map(|m| {
            format!(
                "{} {} {:?} {:?} {:?} {:?}",
                m.tag("queue").unwrap(),
                m.tag("db").unwrap(),
                m.field("n"),
                m.field("total_ms"),
                m.field("all_done"),
                m.field("queue")
            )
        })
        .collect();
    jobs.sort();
    assert_eq!(
        jobs,
        [
            "mail postgres Some(Int(2)) Some(Float(3.75)) Some(Bool(false)) None",
            "sms postgres Some(Int(1)) Some(Float(10.0)) Some(Bool(true)) None",
        ]
    );
    assert!(
        b.iter()
            .all(|m| m.name() != "future" && m.name() != "legacy"),
        "version gates"
    );
}

/// The server goes away and comes back while the agent runs: one error for
/// the outage, gathers resume, the other input never stops.
#[test]
fn agent_rides_out_a_postgresql_restart() {
    let mut pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.lp");
    let config = dir.path().join("graft.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[agent]
  interval = "200ms"
  round_interval = false
  flush_interval = "100ms"
  omit_hostname = true
[[inputs.postgresql]]
  address = "{}"
  databases = ["postgres"]
[[inputs.mem]]
[[outputs.file]]
  files = ["{}"]
"#,
            pg.address("postgres"),
            out.display()
        ),
    )
    .unwrap();
    let mut child = graft()
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let count = |name: &str| {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with(name))
            .count()
    };
    let start = Instant::now();
    while count("postgresql,") < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no postgresql metrics"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    pg.stop();
    std::thread::sleep(Duration::from_millis(300));
    let (pg_down, mem_down) = (count("postgresql,"), count("mem "));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(count("postgresql,"), pg_down, "nothing gathered while down");
    assert!(count("mem ") >= mem_down + 4, "mem kept going");
    pg.resume();
    let start = Instant::now();
    while count("postgresql,") < pg_down + 3 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "gathers did not resume"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, stderr) = stop(&mut child, Duration::from_secs(30));
    assert!(status.success(), "{stderr}");
    let errors = stderr
        .lines()
        .filter(|l| l.contains("inputs.postgresql") && l.contains("ERROR"))
        .count();
    assert_eq!(errors, 1, "one error for the outage: {stderr}");
}
