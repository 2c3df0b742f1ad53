//! Hostile guests that hold on to a call: the evil plugins
//! (`tests/plugins/evil-*`) sleep for an hour in every export of every kind
//! (`std::thread::sleep`, which parks them in a WASI clock poll on the
//! host, where no epoch deadline reaches), call `exit()` inside a call, spin
//! in `init`, and read through `..` and a symlink out of a granted
//! directory. All of them run in one real agent beside a healthy pipeline:
//! every healthy metric must land exactly once while they misbehave, each
//! fault must be counted in `internal_*`, and SIGTERM must end the agent
//! within the documented bound (`graft::shutdown::GRACE`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use graft_test_support::servers::free_port;
use graft_test_support::{graft, poll_until, sigterm, wait_with_timeout, wasm};

/// The documented bound from SIGTERM to exit, and slack for a loaded machine.
const STOP_BOUND: Duration = Duration::from_secs(10);
const STOP_SLACK: Duration = Duration::from_secs(3);

const SECRET: &str = "hostile-guest-secret-41c7";

/// One `[[KIND.wasm]]` section of an evil guest.
struct Evil {
    kind: &'static str,
    alias: String,
    config: Vec<(&'static str, String)>,
    call_timeout: &'static str,
    extra: String,
}

fn evil(kind: &'static str, action: &'static str, export: &'static str) -> Evil {
    Evil {
        kind,
        alias: format!("{kind}-{action}-{export}"),
        config: vec![("action", action.into()), ("in", export.into())],
        call_timeout: "500ms",
        extra: String::new(),
    }
}

impl Evil {
    fn with(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.config.push((key, value.into()));
        self
    }

    fn action(&self) -> &str {
        &self.config[0].1
    }

    fn section(&self) -> String {
        let (guest, schedule) = match self.kind {
            "inputs" => ("evil-input", "  interval = \"200ms\"\n"),
            "processors" => ("evil-processor", ""),
            "aggregators" => ("evil-aggregator", "  period = \"1s\"\n"),
            _ => ("evil-output", ""),
        };
        let kind = self.kind;
        let mut s = format!(
            "[[{kind}.wasm]]\n  alias = \"{}\"\n  path = \"{}\"\n{schedule}{}",
            self.alias,
            wasm(guest).display(),
            self.extra
        );
        s += &format!("  [{kind}.wasm.config]\n");
        for (k, v) in &self.config {
            s += &format!("    {k} = \"{v}\"\n");
        }
        s += &format!(
            "  [{kind}.wasm.limits]\n    memory = \"64MiB\"\n    call_timeout = \"{}\"\n",
            self.call_timeout
        );
        s
    }
}

/// The last `internal_*` fields per alias.
fn internal_by_alias(text: &str) -> HashMap<String, BTreeMap<String, u64>> {
    let mut out = HashMap::new();
    for line in text.lines().filter(|l| l.starts_with("internal_")) {
        let mut parts = line.splitn(3, ' ');
        let (series, fields) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let Some(alias) = series.split(',').find_map(|kv| kv.strip_prefix("alias=")) else {
            continue;
        };
        let fields = fields
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .filter_map(|(k, v)| Some((k.to_owned(), v.trim_end_matches('i').parse().ok()?)))
            .collect();
        out.insert(alias.to_owned(), fields);
    }
    out
}

/// Values of integer field `field` on the lines of `measurement` whose
/// series contains `series_has`, in order of appearance.
fn values(text: &str, measurement: &str, series_has: &str, field: &str) -> Vec<u64> {
    text.lines()
        .filter(|l| {
            l.starts_with(&format!("{measurement},")) || l.starts_with(&format!("{measurement} "))
        })
        .filter(|l| l.split(' ').next().is_some_and(|s| s.contains(series_has)))
        .filter_map(|l| {
            let fields = l.split(' ').nth(1)?;
            let v = fields
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{field}=")))?;
            v.trim_end_matches('i').parse().ok()
        })
        .collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn start(config_path: &Path, log: &Path) -> Child {
    graft()
        .args(["run", "--config"])
        .arg(config_path)
        .env("GRAFT_LOG", "info")
        .stderr(std::fs::File::create(log).unwrap())
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// Write `config`, start graft on it, and wait until the healthy output
/// holds `at_least` of the feeder's metrics (failing if graft exits).
fn start_feeding(dir: &Path, config: &str, log: &Path, healthy: &Path, at_least: usize) -> Child {
    let config_path = dir.join("graft.toml");
    std::fs::write(&config_path, config).unwrap();
    let mut child = start(&config_path, log);
    poll_until(
        "metrics at the healthy output",
        Duration::from_secs(120),
        || {
            assert!(
                child.try_wait().unwrap().is_none(),
                "graft exited: {}",
                read(log)
            );
            values(&read(healthy), "evil_input", "feeder", "n").len() >= at_least
        },
    );
    child
}

/// SIGTERM, and the time until the process is gone.
fn stop_timed(child: &mut Child) -> (std::process::ExitStatus, Duration) {
    let asked = Instant::now();
    sigterm(child);
    let status = wait_with_timeout(child, STOP_BOUND + Duration::from_secs(30));
    (status, asked.elapsed())
}

#[test]
fn guests_that_sleep_exit_or_escape_cost_only_their_own_calls() {
    let dir = tempfile::tempdir().unwrap();
    let healthy = dir.path().join("healthy.lp");
    let internal = dir.path().join("internal.lp");
    let rest = dir.path().join("rest.lp");
    let log = dir.path().join("graft.log");
    let granted = dir.path().join("granted");
    std::fs::create_dir(&granted).unwrap();
    std::fs::write(granted.join("note.txt"), "granted").unwrap();
    std::fs::write(dir.path().join("secret.txt"), SECRET).unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret.txt"), granted.join("link")).unwrap();
    let listen = free_port();

    let mut plugins = vec![
        evil("inputs", "sleep", "gather"),
        evil("inputs", "sleep", "init"),
        evil("inputs", "exit", "gather"),
        evil("inputs", "loop", "init"),
        evil("processors", "sleep", "process"),
        evil("processors", "sleep", "init"),
        evil("processors", "exit", "process"),
        evil("processors", "loop", "init"),
        evil("aggregators", "sleep", "add"),
        evil("aggregators", "sleep", "push"),
        evil("aggregators", "sleep", "reset"),
        evil("aggregators", "sleep", "init"),
        evil("aggregators", "exit", "add"),
        evil("outputs", "sleep", "write"),
        evil("outputs", "sleep", "init"),
        evil("outputs", "exit", "write"),
        evil("outputs", "loop", "init"),
    ];
    let grant = format!(
        "  [processors.wasm.permissions]\n    read_dirs = [\"{}\"]\n",
        granted.display()
    );
    for (name, path) in [
        ("dotdot", format!("{}/../secret.txt", granted.display())),
        ("symlink", format!("{}/link", granted.display())),
    ] {
        let mut e = evil("processors", "read_file", "process").with("path", path);
        e.alias = format!("processors-escape-{name}");
        plugins.push(e);
    }

    let mut config = format!(
        r#"
[agent]
  interval = "200ms"
  flush_interval = "200ms"
  omit_hostname = true
[[inputs.socket_listener]]
  service_address = "tcp://127.0.0.1:{listen}"
  data_format = "influx"
[[inputs.wasm]]
  alias = "feeder"
  path = "{feeder}"
  interval = "100ms"
[[inputs.internal]]
  interval = "500ms"
  collect_memstats = false
[[outputs.file]]
  files = ["{healthy}"]
  namepass = ["healthy", "evil_input"]
  tagpass = {{ plugin = ["inputs.wasm::feeder"], src = ["test"] }}
[[outputs.file]]
  files = ["{internal}"]
  namepass = ["internal_*"]
[[outputs.file]]
  files = ["{rest}"]
  namedrop = ["healthy", "internal_*"]
"#,
        feeder = wasm("evil-input").display(),
        healthy = healthy.display(),
        internal = internal.display(),
        rest = rest.display(),
    );
    for p in &plugins {
        config += &p.section();
        // After the limits table, so that the grant is this section's.
        if p.alias.starts_with("processors-escape") {
            config += &grant;
        }
    }
    let config_path = dir.path().join("graft.toml");
    std::fs::write(&config_path, &config).unwrap();
    let mut child = start(&config_path, &log);

    let mut stream = None;
    poll_until("the listener", Duration::from_secs(120), || {
        assert!(
            child.try_wait().unwrap().is_none(),
            "graft exited at start: {}",
            read(&log)
        );
        stream = TcpStream::connect(("127.0.0.1", listen)).ok();
        stream.is_some()
    });
    let mut stream = stream.unwrap();
    // 2 000 numbered metrics over about 8 s, through a chain where four
    // processors hold on to every call they get.
    const N: u64 = 2000;
    let sending = Instant::now();
    for chunk in 0..N / 100 {
        let mut text = String::new();
        for i in chunk * 100..(chunk + 1) * 100 {
            text.push_str(&format!("healthy,src=test seq={i}i\n"));
        }
        stream.write_all(text.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(400));
    }
    drop(stream);
    poll_until("every healthy metric", Duration::from_secs(60), || {
        values(&read(&healthy), "healthy", "src=test", "seq").len() as u64 >= N
    });
    let flowing_for = sending.elapsed();
    // Let internal report once more after the last faults.
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        child.try_wait().unwrap().is_none(),
        "graft died: {}",
        read(&log)
    );
    let (status, took) = stop_timed(&mut child);
    let log_text = read(&log);
    assert!(status.success(), "graft exited with {status}: {log_text}");
    assert!(
        took < STOP_BOUND + STOP_SLACK,
        "SIGTERM took {took:?} to end graft"
    );

    // Every numbered metric, exactly once.
    let text = read(&healthy);
    let mut seqs = values(&text, "healthy", "src=test", "seq");
    seqs.sort_unstable();
    assert_eq!(seqs, (0..N).collect::<Vec<_>>(), "lost or doubled metrics");
    // The healthy input kept gathering beside the sleeping ones: every
    // gather once, and many of them.
    let gathers = values(&text, "evil_input", "feeder", "n");
    let distinct: BTreeSet<u64> = gathers.iter().copied().collect();
    assert_eq!(distinct.len(), gathers.len(), "a gather landed twice");
    let last = distinct.last().copied().unwrap_or(0);
    assert_eq!(
        distinct,
        (1..=last).collect::<BTreeSet<_>>(),
        "gathers were lost"
    );
    // Generous: the chain is stalled often while the backoffs are short,
    // and the inputs wait for it.
    let expected = flowing_for.as_millis() as u64 / 100 / 8;
    assert!(
        last >= expected,
        "the healthy input gathered {last} times in {flowing_for:?}"
    );

    // Nothing escaped the granted directory.
    let outputs = read(&rest) + &read(&internal) + &text;
    for t in [&outputs, &log_text] {
        assert!(!t.contains(SECRET), "the secret leaked");
    }
    assert!(
        !outputs.lines().any(|l| l.starts_with("leaked")),
        "a plugin emitted a leak"
    );
    assert!(
        log_text.contains("plugin called exit("),
        "no fault names the exit"
    );

    // Each fault is counted on its plugin.
    let counters = internal_by_alias(&read(&internal));
    let mut problems = Vec::new();
    for p in &plugins {
        let Some(c) = counters.get(&p.alias) else {
            problems.push(format!("{}: no internal metric", p.alias));
            continue;
        };
        let get = |k: &str| c.get(k).copied().unwrap_or(0);
        let expect: &[&str] = match p.action() {
            "sleep" | "loop" => &["faults_deadline"],
            "exit" => &["faults_trap"],
            _ => &["denied", "errors"],
        };
        for key in expect {
            if get(key) == 0 {
                problems.push(format!("{}: {key} is 0 in {c:?}", p.alias));
            }
        }
        if p.alias.ends_with("-init") && get("faults") < 2 {
            problems.push(format!("{}: init not retried: {c:?}", p.alias));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn sigterm_ends_the_agent_in_bounded_time_when_calls_may_take_an_hour() {
    let dir = tempfile::tempdir().unwrap();
    let healthy = dir.path().join("healthy.lp");
    let log = dir.path().join("graft.log");
    let mut plugins = vec![
        evil("outputs", "sleep", "write"),
        evil("aggregators", "sleep", "push"),
    ];
    for p in &mut plugins {
        p.call_timeout = "1h";
    }
    let mut config = format!(
        r#"
[agent]
  interval = "100ms"
  flush_interval = "200ms"
  omit_hostname = true
[[inputs.wasm]]
  alias = "feeder"
  path = "{feeder}"
[[outputs.file]]
  files = ["{healthy}"]
  namepass = ["evil_input"]
"#,
        feeder = wasm("evil-input").display(),
        healthy = healthy.display(),
    );
    for p in &plugins {
        config += &p.section();
    }
    // Both stuck calls begin early: the output's first write and the
    // aggregator's first push (its period is 1 s).
    let mut child = start_feeding(dir.path(), &config, &log, &healthy, 20);
    let count = || values(&read(&healthy), "evil_input", "feeder", "n").len();
    // More batches than an aggregator's queue holds (64) go by while it
    // is stuck: the chain must not wait for it.
    let before = count();
    std::thread::sleep(Duration::from_secs(9));
    let after = count();
    assert!(
        after >= before + 40,
        "the healthy output stalled beside the stuck plugins: {before} then {after} metrics in 9 s"
    );

    let (status, took) = stop_timed(&mut child);
    let log_text = read(&log);
    assert!(status.success(), "graft exited with {status}: {log_text}");
    assert!(
        took < STOP_BOUND + STOP_SLACK,
        "SIGTERM took {took:?} to end graft: {log_text}"
    );
    // The healthy output flushed everything; the stuck one reports its loss.
    let n = values(&read(&healthy), "evil_input", "feeder", "n");
    let last = n.iter().copied().max().unwrap_or(0);
    assert_eq!(
        n.iter().copied().collect::<BTreeSet<_>>(),
        (1..=last).collect::<BTreeSet<_>>(),
        "the healthy output lost metrics"
    );
    let lost: Vec<u64> = log_text
        .lines()
        .filter(|l| l.contains("outputs-sleep-write") && l.contains("lost"))
        .filter_map(|l| {
            let v = l.split("lost=").nth(1)?;
            v.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
        })
        .collect();
    assert_eq!(
        lost,
        vec![n.len() as u64],
        "one loss report for the stuck output, of every metric it was given: {log_text}"
    );
}

#[test]
fn graft_exits_at_the_grace_when_a_builtin_output_hangs_on_its_server() {
    // An InfluxDB that accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(64) {
            held.extend(stream.ok());
        }
        std::thread::sleep(Duration::from_secs(120));
    });
    let dir = tempfile::tempdir().unwrap();
    let healthy = dir.path().join("healthy.lp");
    let log = dir.path().join("graft.log");
    let config = format!(
        r#"
[agent]
  interval = "100ms"
  flush_interval = "200ms"
  omit_hostname = true
[[inputs.wasm]]
  alias = "feeder"
  path = "{feeder}"
[[outputs.file]]
  files = ["{healthy}"]
[[outputs.influxdb]]
  alias = "silent"
  urls = ["http://127.0.0.1:{port}"]
  skip_database_creation = true
  timeout = "1h"
"#,
        feeder = wasm("evil-input").display(),
        healthy = healthy.display(),
    );
    let mut child = start_feeding(dir.path(), &config, &log, &healthy, 20);

    let (status, took) = stop_timed(&mut child);
    let log_text = read(&log);
    assert!(
        took < STOP_BOUND + STOP_SLACK,
        "SIGTERM took {took:?} to end graft: {log_text}"
    );
    assert!(
        took >= STOP_BOUND - Duration::from_secs(1),
        "graft gave up after {took:?}, before its grace"
    );
    assert_eq!(status.code(), Some(1), "a forced exit says so: {log_text}");
    // The hanging output's loss is counted: every metric it was given.
    let given = values(&read(&healthy), "evil_input", "feeder", "n").len() as u64;
    let lost: Vec<u64> = log_text
        .lines()
        .filter(|l| l.contains("silent") && l.contains("lost="))
        .filter_map(|l| {
            let v = l.split("lost=").nth(1)?;
            v.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
        })
        .collect();
    assert_eq!(lost, vec![given], "{log_text}");
}

#[test]
fn a_second_signal_ends_the_stop_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let healthy = dir.path().join("healthy.lp");
    let log = dir.path().join("graft.log");
    let mut stuck = evil("outputs", "sleep", "write");
    stuck.call_timeout = "1h";
    let config = format!(
        r#"
[agent]
  interval = "100ms"
  flush_interval = "200ms"
  omit_hostname = true
[[inputs.wasm]]
  alias = "feeder"
  path = "{feeder}"
[[outputs.file]]
  files = ["{healthy}"]
{stuck}"#,
        feeder = wasm("evil-input").display(),
        healthy = healthy.display(),
        stuck = stuck.section(),
    );
    let mut child = start_feeding(dir.path(), &config, &log, &healthy, 10);
    sigterm(&child);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "graft did not wait for its stuck output"
    );
    let (status, took) = stop_timed(&mut child);
    let log_text = read(&log);
    assert!(
        took < STOP_SLACK,
        "the second SIGTERM took {took:?}: {log_text}"
    );
    assert_eq!(status.code(), Some(1), "{log_text}");
    assert!(
        log_text
            .lines()
            .any(|l| l.contains("outputs-sleep-write") && l.contains("lost=")),
        "no loss reported for the stuck output: {log_text}"
    );
}
