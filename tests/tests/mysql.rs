//! `inputs.mysql` against a real MariaDB (Debian `mariadb-server`, one
//! server for this test binary, installed into a temporary directory):
//! values compared with `SHOW GLOBAL STATUS` read in the same test,
//! Telegraf's names and types for both metric versions, failing servers
//! costing only themselves, bounded results.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use graft_api::Input;
use graft_api::counters::Counters;
use graft_core::{Batch, FieldRef, MetricRef};
use graft_plugins::inputs::mysql;
use graft_test_support::mariadb::{MariaDb, PASSWORD};
use graft_test_support::servers::free_port;
use graft_test_support::{graft, workspace_root};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn started(config: &str) -> (Box<dyn Input>, Arc<Counters>) {
    let mut input = mysql::build(toml::from_str(config).unwrap()).unwrap();
    let counters = Arc::new(Counters::default());
    input.attach_counters(counters.clone());
    (input, counters)
}

fn find<'a>(b: &'a Batch, name: &str, field: &str) -> MetricRef<'a> {
    b.iter()
        .find(|m| m.name() == name && m.field(field).is_some())
        .unwrap_or_else(|| panic!("no {name} with field {field}"))
}

fn int(m: &MetricRef<'_>, field: &str) -> i64 {
    match m.field(field) {
        Some(FieldRef::Int(v)) => v,
        other => panic!("{field}: {other:?}"),
    }
}

fn num(status: &std::collections::BTreeMap<String, String>, key: &str) -> i64 {
    status[key].parse().unwrap()
}

#[test]
fn mysql_global_status_matches_the_servers_own_numbers() {
    let db = MariaDb::shared();
    db.root("CREATE DATABASE IF NOT EXISTS g1; CREATE TABLE IF NOT EXISTS g1.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)");
    let rt = rt();
    let (mut input, sink) = started(&format!("servers = [\"{}\"]\nmetric_version = 2", db.dsn()));
    let first = rt.block_on(input.gather()).unwrap();
    const N: i64 = 25;
    let inserts: String = (0..N)
        .map(|i| format!("INSERT INTO g1.t (v) VALUES ({i});"))
        .collect();
    db.root(&inserts);
    let before = db.global_status();
    let b = rt.block_on(input.gather()).unwrap();
    let after = db.global_status();

    let m = find(&b, "mysql", "uptime");
    assert_eq!(
        m.tag("server"),
        Some(format!("127.0.0.1:{}", db.port).as_str())
    );
    let uptime = int(&m, "uptime");
    assert!(num(&before, "Uptime") <= uptime && uptime <= num(&after, "Uptime"));
    let queries = int(&m, "queries");
    assert!(num(&before, "Queries") < queries && queries < num(&after, "Queries"));
    assert!(int(&m, "threads_connected") >= 1);
    // The inserts we made moved Com_insert by at least N between gathers.
    let m0 = find(&first, "mysql", "com_insert");
    assert!(int(&m, "com_insert") - int(&m0, "com_insert") >= N);
    // Every status variable, typed as Telegraf's v2 ParseValue types it.
    let mut checked = 0;
    for (key, value) in &before {
        let key = key.to_lowercase();
        // Empty values are left out; these keys have their own converters (uint).
        if value.is_empty()
            || matches!(
                key.as_str(),
                "innodb_available_undo_logs"
                    | "innodb_buffer_pool_pages_misc"
                    | "innodb_data_pending_fsyncs"
                    | "ssl_ctx_verify_depth"
                    | "ssl_verify_depth"
            )
        {
            continue;
        }
        let got = m.field(&key).unwrap_or_else(|| panic!("no field {key}"));
        let ok = match value.as_str() {
            "ON" | "OFF" | "YES" | "NO" => matches!(got, FieldRef::Int(0 | 1)),
            v if v.parse::<i64>().is_ok() => matches!(got, FieldRef::Int(_)),
            v if v.parse::<u64>().is_ok() => matches!(got, FieldRef::Uint(_)),
            v if v.parse::<f64>().is_ok() => matches!(got, FieldRef::Float(_)),
            _ => matches!(got, FieldRef::Str(_)),
        };
        assert!(ok, "{key}={value:?} became {got:?}");
        checked += 1;
    }
    assert!(checked > 300, "{checked}");
    assert_eq!(sink.counter("server_errors").load(Ordering::Relaxed), 0);

    // metric_version 1: Telegraf's prefix table, ints.
    let (mut v1, _) = started(&format!("servers = [\"{}\"]", db.dsn()));
    let b = rt.block_on(v1.gather()).unwrap();
    let m = find(&b, "mysql", "commands_insert");
    assert!(int(&m, "commands_insert") >= int(&m0, "com_insert") + N);
    assert!(int(&m, "uptime") >= uptime);
    assert!(m.field("com_insert").is_none() && m.field("ssl_cipher").is_none());
    assert!(matches!(
        m.field("threads_connected"),
        Some(FieldRef::Int(_))
    ));
}

#[test]
fn mysql_optional_gathers_have_telegrafs_names_and_types() {
    let db = MariaDb::shared();
    db.root("CREATE DATABASE IF NOT EXISTS g2; CREATE TABLE IF NOT EXISTS g2.auto (id INT AUTO_INCREMENT PRIMARY KEY, v INT); INSERT INTO g2.auto (v) VALUES (1),(2),(3)");
    let rt = rt();
    let (mut input, sink) = started(&format!(
        r#"servers = ["{}"]
metric_version = 2
interval_slow = "1s"
gather_process_list = true
gather_innodb_metrics = true
mariadb_dialect = true
gather_info_schema_auto_inc = true
gather_table_schema = true
table_schema_databases = ["g2"]
gather_slave_status = true
gather_event_waits = true
gather_user_statistics = true
"#,
        db.dsn()
    ));
    let b = rt.block_on(input.gather()).unwrap();
    assert_eq!(
        sink.counter("server_errors").load(Ordering::Relaxed),
        0,
        "{b:?}"
    );
    let vars = find(&b, "mysql_variables", "max_connections");
    assert_eq!(vars.field("max_connections"), Some(FieldRef::Int(300)));
    assert!(vars.tag("version").is_some_and(|v| v.contains("MariaDB")));
    assert!(matches!(vars.field("version"), Some(FieldRef::Str(_))));
    let pl = find(&b, "mysql_process_list", "threads_idle");
    for state in [
        "threads_idle",
        "threads_executing",
        "threads_other",
        "threads_waiting_for_lock",
    ] {
        assert!(
            matches!(pl.field(state), Some(FieldRef::Uint(_))),
            "{state}"
        );
    }
    let users = b
        .iter()
        .find(|m| m.name() == "mysql_users" && m.tag("user") == Some("graft"))
        .expect("mysql_users for graft");
    assert!(int(&users, "connections") >= 1);
    let stats = b
        .iter()
        .find(|m| m.name() == "mysql_user_stats" && m.tag("user") == Some("graft"))
        .expect("mysql_user_stats for graft");
    assert!(int(&stats, "total_connections") >= 1);
    assert!(matches!(stats.field("busy_time"), Some(FieldRef::Float(_))));
    let innodb = find(&b, "mysql_innodb", "buffer_pool_reads");
    assert!(matches!(
        innodb.field("buffer_pool_reads"),
        Some(FieldRef::Uint(_))
    ));
    let auto = b
        .iter()
        .find(|m| {
            m.name() == "mysql_table_schema"
                && m.tag("table") == Some("auto")
                && m.field("auto_increment_column").is_some()
        })
        .expect("auto_increment of g2.auto");
    assert_eq!(auto.field("auto_increment_column"), Some(FieldRef::Uint(4)));
    assert_eq!(
        auto.field("auto_increment_column_max"),
        Some(FieldRef::Uint(2147483647))
    );
    let size = b
        .iter()
        .find(|m| m.name() == "mysql_table_schema" && m.field("data_length").is_some())
        .expect("table sizes");
    assert!(matches!(size.field("rows"), Some(FieldRef::Float(_))));
    let version = find(&b, "mysql_table_schema_version", "table_version");
    assert_eq!(version.tag("engine"), Some("InnoDB"));
    // Every metric is tagged with the server only, never the credentials.
    for m in b.iter() {
        assert_eq!(
            m.tag("server"),
            Some(format!("127.0.0.1:{}", db.port).as_str())
        );
    }
}

#[test]
fn a_failing_server_costs_only_itself_and_rows_are_bounded() {
    let db = MariaDb::shared();
    for i in 0..5 {
        db.root(&format!(
            "CREATE USER IF NOT EXISTS 'u{i}'@'127.0.0.1' IDENTIFIED BY 'p'; GRANT USAGE ON *.* TO 'u{i}'@'127.0.0.1'"
        ));
    }
    // Five more users connected, each holding a connection open.
    let holders: Vec<_> = (0..5)
        .map(|i| {
            std::process::Command::new("mariadb")
                .args([
                    "--no-defaults",
                    "-h127.0.0.1",
                    &format!("-P{}", db.port),
                    &format!("-uu{i}"),
                    "-pp",
                    "-e",
                    "SELECT SLEEP(20)",
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    let dead = free_port();
    let rt = rt();
    let (mut input, sink) = started(&format!(
        r#"servers = ["{}", "graft:wrong@tcp(127.0.0.1:{})/", "graft:{PASSWORD}@tcp(127.0.0.1:{dead})/?timeout=2s", "graft:{PASSWORD}@unix({})/"]
metric_version = 2
gather_process_list = true
max_rows = 3
"#,
        db.dsn(),
        db.port,
        db.socket().display(),
    ));
    let start = Instant::now();
    let b = rt
        .block_on(input.gather())
        .expect("the gather itself succeeds");
    assert!(start.elapsed() < Duration::from_secs(15));
    let servers: Vec<&str> = b
        .iter()
        .filter(|m| m.name() == "mysql")
        .filter_map(|m| m.tag("server"))
        .collect();
    let socket = db.socket().display().to_string();
    let tcp = format!("127.0.0.1:{}", db.port);
    assert_eq!(servers.len(), 2, "{servers:?}");
    assert!(servers.contains(&tcp.as_str()) && servers.contains(&socket.as_str()));
    let load = |n| sink.counter(n).load(Ordering::Relaxed);
    assert_eq!(load("server_gathers"), 4);
    assert_eq!(load("server_errors"), 2);
    // Over 3 users connected on each good server: per-user rows cut at 3.
    let users = b.iter().filter(|m| m.name() == "mysql_users").count();
    assert_eq!(users, 6);
    assert!(
        load("rows_limit_hits") >= 2 * 3,
        "{}",
        load("rows_limit_hits")
    );
    for mut h in holders {
        let _ = h.kill();
        let _ = h.wait();
    }
}

#[test]
fn telegrafs_sample_config_is_accepted() {
    let config = workspace_root().join("tests/configs/telegraf/mysql.conf");
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

/// The README's fields of the binary log and performance schema gathers,
/// with their types, against a server with both switched on.
#[test]
fn mysql_perf_schema_and_binary_logs_match_telegrafs_readme() {
    let db = MariaDb::shared();
    db.root(
        "CREATE DATABASE IF NOT EXISTS g3; USE g3; CREATE TABLE IF NOT EXISTS g3.p (id INT PRIMARY KEY, v INT, KEY kv (v)); \
         REPLACE INTO g3.p VALUES (1, 1), (2, 2); SELECT * FROM g3.p WHERE v = 2; UPDATE g3.p SET v = 3 WHERE id = 1",
    );
    let logs = db.root("SHOW BINARY LOGS");
    let (files, bytes) = logs.lines().fold((0u64, 0u64), |(n, b), l| {
        (
            n + 1,
            b + l.split('\t').nth(1).unwrap().parse::<u64>().unwrap(),
        )
    });
    assert!(files >= 1);
    let rt = rt();
    let (mut input, sink) = started(&format!(
        r#"servers = ["{}"]
metric_version = 2
gather_binary_logs = true
gather_table_io_waits = true
gather_index_io_waits = true
gather_table_lock_waits = true
gather_event_waits = true
gather_file_events_stats = true
gather_perf_events_statements = true
gather_perf_sum_per_acc_per_event = true
"#,
        db.dsn()
    ));
    let b = rt.block_on(input.gather()).unwrap();
    assert_eq!(sink.counter("server_errors").load(Ordering::Relaxed), 0);
    let m = find(&b, "mysql", "binary_files_count");
    assert_eq!(m.field("binary_files_count"), Some(FieldRef::Uint(files)));
    // Other tests of this binary may write meanwhile: never less.
    assert!(matches!(m.field("binary_size_bytes"), Some(FieldRef::Uint(n)) if n >= bytes));

    let floats = |name: &str, tag: (&str, &str), fields: &[&str]| {
        let m = b
            .iter()
            .find(|m| {
                m.name() == name && m.tag(tag.0) == Some(tag.1) && m.field(fields[0]).is_some()
            })
            .unwrap_or_else(|| panic!("no {name} with {tag:?} and {}", fields[0]));
        for f in fields {
            assert!(
                matches!(m.field(f), Some(FieldRef::Float(_))),
                "{name}.{f}: {:?}",
                m.field(f)
            );
        }
    };
    floats(
        "mysql_perf_schema",
        ("name", "p"),
        &[
            "table_io_waits_total_fetch",
            "table_io_waits_total_insert",
            "table_io_waits_total_update",
            "table_io_waits_total_delete",
            "table_io_waits_seconds_total_fetch",
            "table_io_waits_seconds_total_insert",
            "table_io_waits_seconds_total_update",
            "table_io_waits_seconds_total_delete",
        ],
    );
    floats(
        "mysql_perf_schema",
        ("index", "NONE"),
        &[
            "index_io_waits_total_fetch",
            "index_io_waits_seconds_total_fetch",
            "index_io_waits_total_insert",
            "index_io_waits_total_update",
            "index_io_waits_total_delete",
            "index_io_waits_seconds_total_insert",
            "index_io_waits_seconds_total_update",
            "index_io_waits_seconds_total_delete",
        ],
    );
    floats(
        "mysql_perf_schema",
        ("perf_query", "sql_lock_waits_total"),
        &[
            "read_normal",
            "read_with_shared_locks",
            "read_high_priority",
            "read_no_insert",
            "write_normal",
            "write_allow_write",
            "write_concurrent_insert",
            "write_low_priority",
        ],
    );
    floats(
        "mysql_perf_schema",
        ("perf_query", "external_lock_waits_seconds_total"),
        &["read", "write"],
    );
    let waits = b
        .iter()
        .find(|m| m.name() == "mysql_perf_schema" && m.field("events_waits_total").is_some())
        .expect("event waits");
    assert!(waits.tag("event_name").is_some());
    assert!(matches!(
        waits.field("events_waits_seconds_total"),
        Some(FieldRef::Float(_))
    ));
    floats(
        "mysql_perf_schema",
        ("mode", "read"),
        &[
            "file_events_total",
            "file_events_seconds_total",
            "file_events_bytes_totals",
        ],
    );
    floats(
        "mysql_perf_schema",
        ("schema", "g3"),
        &[
            "events_statements_total",
            "events_statements_seconds_total",
            "events_statements_errors_total",
            "events_statements_warnings_total",
            "events_statements_rows_affected_total",
            "events_statements_rows_sent_total",
            "events_statements_rows_examined_total",
            "events_statements_tmp_tables_total",
            "events_statements_tmp_disk_tables_total",
            "events_statements_sort_merge_passes_total",
            "events_statements_sort_rows_total",
            "events_statements_no_index_used_total",
        ],
    );
    floats(
        "mysql_perf_acc_event",
        ("src_user", "root"),
        &[
            "count_star",
            "sum_timer_wait",
            "sum_rows_sent",
            "sum_no_good_index_used",
        ],
    );
}

#[test]
fn a_connection_the_server_closed_is_replaced_without_an_error() {
    let db = MariaDb::shared();
    db.root(
        "CREATE USER IF NOT EXISTS 'graft_kill'@'127.0.0.1' IDENTIFIED BY 'k'; \
         GRANT PROCESS ON *.* TO 'graft_kill'@'127.0.0.1'",
    );
    let rt = rt();
    let (mut input, sink) = started(&format!(
        "servers = [\"graft_kill:k@tcp(127.0.0.1:{})/\"]\nmetric_version = 2",
        db.port
    ));
    assert!(rt.block_on(input.gather()).unwrap().len() == 1);
    let ids = db.root("SELECT id FROM information_schema.processlist WHERE user = 'graft_kill'");
    assert!(!ids.trim().is_empty());
    for id in ids.lines() {
        db.root(&format!("KILL {id}"));
    }
    let b = rt.block_on(input.gather()).unwrap();
    assert!(b.iter().any(|m| m.name() == "mysql"));
    let load = |n| sink.counter(n).load(Ordering::Relaxed);
    assert_eq!((load("server_gathers"), load("server_errors")), (2, 0));
}

/// `graft test` (Telegraf's `--test`) gathers mysql once and prints it.
#[test]
fn graft_test_prints_the_mysql_metrics() {
    let db = MariaDb::shared();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("graft.toml");
    std::fs::write(
        &config,
        format!(
            "[[inputs.mysql]]\n  servers = [\"{}\"]\n[[outputs.file]]\n",
            db.dsn()
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
            .any(|l| l.starts_with("mysql,") && l.contains("uptime=")),
        "{stdout}"
    );
}

/// A failing optional query (`SHOW BINARY LOGS` without the privilege)
/// ends the server's gather as in Telegraf, but the global status read
/// before it is kept; the failure is counted.
#[test]
fn a_failing_optional_query_keeps_the_global_status() {
    let db = MariaDb::shared();
    db.root(
        "CREATE USER IF NOT EXISTS 'bare'@'127.0.0.1' IDENTIFIED BY 'bare-pw'; \
         GRANT USAGE ON *.* TO 'bare'@'127.0.0.1'",
    );
    let rt = rt();
    let (mut input, counters) = started(&format!(
        "servers = [\"bare:bare-pw@tcp(127.0.0.1:{})/?tls=false\"]\n\
         gather_binary_logs = true\n\
         gather_global_variables = false",
        db.port
    ));
    let batch = rt.block_on(input.gather()).unwrap();
    find(&batch, "mysql", "uptime");
    assert!(batch.iter().all(|m| m.field("binary_size_bytes").is_none()));
    assert_eq!(counters.counter("server_errors").load(Ordering::Relaxed), 1);
}

/// `binary_size_bytes` sums every binary log, as Telegraf does, even when
/// `max_rows` is smaller than their number.
#[test]
fn binary_log_sizes_are_summed_past_max_rows() {
    let db = MariaDb::shared();
    db.root("FLUSH BINARY LOGS; FLUSH BINARY LOGS; FLUSH BINARY LOGS");
    let sizes: Vec<u64> = db
        .root("SHOW BINARY LOGS")
        .lines()
        .map(|l| l.split('\t').nth(1).unwrap().parse().unwrap())
        .collect();
    assert!(sizes.len() >= 4, "{sizes:?}");
    let rt = rt();
    let (mut input, _) = started(&format!(
        "servers = [\"{}\"]\nmetric_version = 2\ngather_binary_logs = true\nmax_rows = 1",
        db.dsn()
    ));
    let batch = rt.block_on(input.gather()).unwrap();
    let m = find(&batch, "mysql", "binary_size_bytes");
    let Some(FieldRef::Uint(size)) = m.field("binary_size_bytes") else {
        panic!("{m:?}");
    };
    // Logs only grow: at least what they held a moment ago, all of them.
    assert!(size >= sizes.iter().sum::<u64>(), "{size} < {sizes:?}");
    assert_eq!(
        m.field("binary_files_count"),
        Some(FieldRef::Uint(sizes.len() as u64))
    );
}
