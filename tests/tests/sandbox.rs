//! Hostile plugins: the evil guests (`tests/plugins/evil-*`, built from
//! source) misbehave in every export while a healthy pipeline runs in the
//! same agent. The agent must stay up, the healthy pipeline must deliver
//! every metric, nothing outside the grants may leak, and `internal` must
//! say what happened to each plugin.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use graft_test_support::servers::free_port;
use graft_test_support::{graft, poll_until, sigterm, wait_with_timeout, wasm};

const SECRET: &str = "topsecret-7f3a9c";

/// A listener that counts the connections it accepts and answers each with
/// a minimal HTTP 200, so that it serves both raw TCP and HTTP clients.
fn canary() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            seen.fetch_add(1, Ordering::SeqCst);
            let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    (port, count)
}

/// One evil plugin section.
struct Evil {
    kind: &'static str,
    alias: String,
    action: &'static str,
    export: &'static str,
    extra: Vec<(&'static str, String)>,
    limits: &'static str,
    permissions: &'static str,
}

fn evil(kind: &'static str, action: &'static str, export: &'static str) -> Evil {
    Evil {
        kind,
        alias: format!("{kind}-{action}-{export}"),
        action,
        export,
        extra: Vec::new(),
        limits: r#"memory = "64MiB"
    call_timeout = "100ms""#,
        permissions: "",
    }
}

/// Growing to the cap takes a few memory.grow calls: a longer deadline,
/// so that it is the cap that stops it.
fn grow(kind: &'static str, export: &'static str) -> Evil {
    let mut e = evil(kind, "grow", export);
    e.limits = r#"memory = "32MiB"
    call_timeout = "2s""#;
    e
}

impl Evil {
    fn with(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.extra.push((key, value.into()));
        self
    }

    fn section(&self) -> String {
        let guest = match self.kind {
            "inputs" => "evil-input",
            "processors" => "evil-processor",
            "aggregators" => "evil-aggregator",
            _ => "evil-output",
        };
        let mut s = format!(
            "[[{kind}.wasm]]\n  alias = \"{alias}\"\n  path = \"{path}\"\n",
            kind = self.kind,
            alias = self.alias,
            path = wasm(guest).display()
        );
        match self.kind {
            "inputs" => s.push_str("  interval = \"200ms\"\n"),
            "aggregators" => s.push_str("  period = \"1s\"\n  namepass = [\"evil_input\"]\n"),
            _ => s.push_str("  namepass = [\"evil_input\"]\n"),
        }
        s.push_str(&format!(
            "  [{kind}.wasm.config]\n    action = \"{}\"\n    in = \"{}\"\n",
            self.action,
            self.export,
            kind = self.kind
        ));
        for (k, v) in &self.extra {
            s.push_str(&format!("    {k} = \"{v}\"\n"));
        }
        s.push_str(&format!(
            "  [{kind}.wasm.limits]\n    {}\n",
            self.limits,
            kind = self.kind
        ));
        if !self.permissions.is_empty() {
            s.push_str(&format!(
                "  [{kind}.wasm.permissions]\n    {}\n",
                self.permissions,
                kind = self.kind
            ));
        }
        s
    }
}

/// The last `internal_*` line per alias, as field maps.
fn internal_by_alias(text: &str) -> HashMap<String, BTreeMap<String, String>> {
    let mut out = HashMap::new();
    for line in text.lines().filter(|l| l.starts_with("internal_")) {
        let mut parts = line.splitn(3, ' ');
        let (series, fields) = (parts.next().unwrap(), parts.next().unwrap_or(""));
        let Some(alias) = series.split(',').find_map(|kv| kv.strip_prefix("alias=")) else {
            continue;
        };
        let fields = fields
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_end_matches('i').to_owned()))
            .collect();
        out.insert(alias.to_owned(), fields);
    }
    out
}

/// `seq` values of the `healthy` lines in `text`.
fn seqs(text: &str) -> Vec<u64> {
    text.lines()
        .filter(|l| l.starts_with("healthy"))
        .filter_map(|l| {
            let fields = l.split(' ').nth(1)?;
            let v = fields.split(',').find_map(|kv| kv.strip_prefix("seq="))?;
            v.trim_end_matches('i').parse().ok()
        })
        .collect()
}

#[test]
fn evil_guests_cannot_hurt_the_agent_or_the_other_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let healthy = dir.path().join("healthy.lp");
    let internal = dir.path().join("internal.lp");
    let leaks = dir.path().join("evil.lp");
    let log = dir.path().join("graft.log");
    let (canary_port, canary_hits) = canary();
    let canary_addr = format!("127.0.0.1:{canary_port}");
    let canary_url = format!("http://127.0.0.1:{canary_port}/steal");
    let listen = free_port();

    let mut plugins = vec![evil("inputs", "none", "gather")];
    plugins[0].alias = "feeder".into();
    let bad = |kind: &'static str, export: &'static str| {
        let mut v = vec![
            evil(kind, "loop", export),
            evil(kind, "loop", "init"),
            grow(kind, export),
            evil(kind, "panic", export),
            evil(kind, "stack_overflow", export),
            evil(kind, "read_file", export).with("path", "/etc/passwd"),
            evil(kind, "env", export).with("var", "GRAFT_EVIL_SECRET"),
            evil(kind, "connect", export).with("addr", canary_addr.clone()),
            evil(kind, "http", export).with("url", canary_url.clone()),
            evil(kind, "log_flood", export),
        ];
        if matches!(export, "gather" | "process" | "push") {
            v.push(evil(kind, "malformed_symbol", export));
            v.push(evil(kind, "malformed_offsets", export));
            v.push(evil(kind, "malformed_nan", export));
            let mut huge = evil(kind, "huge", export);
            huge.limits = r#"memory = "256MiB"
    max_return = "1MiB""#;
            v.push(huge);
        }
        v
    };
    plugins.extend(bad("inputs", "gather"));
    plugins.extend(bad("processors", "process"));
    plugins.extend(bad("outputs", "write"));
    plugins.extend([
        evil("aggregators", "loop", "add"),
        evil("aggregators", "loop", "push"),
        evil("aggregators", "panic", "reset"),
        grow("aggregators", "add"),
        evil("aggregators", "malformed_symbol", "push"),
        evil("aggregators", "read_file", "add").with("path", "/etc/passwd"),
    ]);

    let mut config = format!(
        r#"
[agent]
  interval = "500ms"
  flush_interval = "200ms"
  omit_hostname = true
[[inputs.socket_listener]]
  service_address = "tcp://127.0.0.1:{listen}"
  data_format = "influx"
[[inputs.internal]]
  interval = "500ms"
  collect_memstats = false
[[outputs.file]]
  files = ["{healthy}"]
  namepass = ["healthy"]
[[outputs.file]]
  files = ["{internal}"]
  namepass = ["internal_*"]
[[outputs.file]]
  files = ["{leaks}"]
  namedrop = ["healthy", "internal_*"]
"#,
        healthy = healthy.display(),
        internal = internal.display(),
        leaks = leaks.display(),
    );
    for p in &plugins {
        config.push_str(&p.section());
    }
    let config_path = dir.path().join("graft.toml");
    std::fs::write(&config_path, &config).unwrap();

    let mut child = graft()
        .args(["run", "--config"])
        .arg(&config_path)
        .env("GRAFT_LOG", "info")
        .env("GRAFT_EVIL_SECRET", SECRET)
        .stderr(std::fs::File::create(&log).unwrap())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();

    // The healthy pipeline: 3 000 numbered metrics over about 6 s.
    let mut stream = None;
    poll_until("the listener", Duration::from_secs(120), || {
        assert!(
            child.try_wait().unwrap().is_none(),
            "graft exited at start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        stream = TcpStream::connect(("127.0.0.1", listen)).ok();
        stream.is_some()
    });
    let mut stream = stream.unwrap();
    const N: u64 = 3000;
    for chunk in 0..N / 100 {
        let mut text = String::new();
        for i in chunk * 100..(chunk + 1) * 100 {
            text.push_str(&format!("healthy,src=test seq={i}i\n"));
        }
        stream.write_all(text.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(stream);
    poll_until("every healthy metric", Duration::from_secs(60), || {
        seqs(&std::fs::read_to_string(&healthy).unwrap_or_default()).len() as u64 >= N
    });
    // Let internal report once more after the last faults.
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        child.try_wait().unwrap().is_none(),
        "graft died: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    sigterm(&child);
    let status = wait_with_timeout(&mut child, Duration::from_secs(30));
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "graft exited with {status}: {log_text}");

    // Every healthy metric, exactly once.
    let mut got = seqs(&std::fs::read_to_string(&healthy).unwrap());
    got.sort_unstable();
    assert_eq!(
        got,
        (0..N).collect::<Vec<_>>(),
        "healthy pipeline lost or doubled metrics"
    );

    // Nothing leaked: no secret, no password file, no connection.
    let outputs = std::fs::read_to_string(&leaks).unwrap_or_default()
        + &std::fs::read_to_string(&internal).unwrap();
    for text in [&outputs, &log_text] {
        assert!(!text.contains(SECRET), "the secret leaked");
        assert!(!text.contains("root:x:0"), "/etc/passwd leaked");
        assert!(!text.contains("LEAKED"), "a plugin reported a leak");
    }
    assert!(
        !outputs.lines().any(|l| l.starts_with("leaked")),
        "a plugin emitted a leak"
    );
    assert_eq!(
        canary_hits.load(Ordering::SeqCst),
        0,
        "a plugin reached the canary"
    );
    // The log flood was held back.
    assert!(
        log_text.len() < 8 << 20,
        "log is {} bytes: the flood got through",
        log_text.len()
    );
    // Denials name the plugin and what it tried.
    for tried in [
        "read /etc/passwd".to_owned(),
        format!("connect to tcp://{canary_addr}"),
        format!("send GET {canary_url}"),
    ] {
        assert!(
            log_text
                .lines()
                .any(|l| l.contains("denied: plugin tried to") && l.contains(&tried)),
            "no denial logged for {tried:?}"
        );
    }

    // The counters say what happened to each plugin.
    let counters = internal_by_alias(&std::fs::read_to_string(&internal).unwrap());
    let mut problems = Vec::new();
    for p in plugins.iter().filter(|p| p.alias != "feeder") {
        let Some(c) = counters.get(&p.alias) else {
            problems.push(format!("{}: no internal metric", p.alias));
            continue;
        };
        let get = |k: &str| c.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let expect: &[&str] = match (p.action, p.export) {
            ("loop", _) => &["faults_deadline"],
            ("grow", _) => &["faults_memory"],
            ("panic" | "stack_overflow", _) => &["faults_trap"],
            (a, _) if a.starts_with("malformed") || a == "huge" => &["faults_contract"],
            ("read_file" | "connect" | "http", _) => &["denied", "errors"],
            ("env", _) => &["errors"],
            ("log_flood", _) => &["log_suppressed"],
            _ => &[],
        };
        for key in expect {
            if get(key) == 0 {
                problems.push(format!("{}: {key} is 0 in {c:?}", p.alias));
            }
        }
        if p.action == "loop" && p.export == "init" && get("restarts") + get("faults") < 2 {
            problems.push(format!("{}: init fault not retried: {c:?}", p.alias));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn grants_open_exactly_what_they_name() {
    let dir = tempfile::tempdir().unwrap();
    let granted = dir.path().join("granted");
    std::fs::create_dir(&granted).unwrap();
    std::fs::write(granted.join("note.txt"), "granted-content").unwrap();
    let out = dir.path().join("out.lp");
    let log = dir.path().join("graft.log");
    let (port, hits) = canary();
    let (other_port, other_hits) = canary();
    let section = |alias: &str, action: &str, key: &str, value: String, permissions: String| {
        format!(
            r#"
[[processors.wasm]]
  alias = "{alias}"
  path = "{path}"
  namepass = ["evil_input"]
  [processors.wasm.config]
    action = "{action}"
    {key} = "{value}"
  [processors.wasm.permissions]
    {permissions}
"#,
            path = wasm("evil-processor").display()
        )
    };
    let mut config = format!(
        r#"
[agent]
  interval = "300ms"
  flush_interval = "200ms"
  omit_hostname = true
[[inputs.wasm]]
  path = "{input}"
[[outputs.file]]
  files = ["{out}"]
"#,
        input = wasm("evil-input").display(),
        out = out.display()
    );
    let g = granted.display();
    config += &section(
        "file",
        "read_file",
        "path",
        format!("{g}/note.txt"),
        format!(r#"read_dirs = ["{g}"]"#),
    );
    config += &section(
        "tcp",
        "connect",
        "addr",
        format!("127.0.0.1:{port}"),
        format!(r#"tcp = ["127.0.0.1:{port}"]"#),
    );
    config += &section(
        "http",
        "http",
        "url",
        format!("http://127.0.0.1:{port}/ok"),
        format!(r#"http = [{{ host = "127.0.0.1:{port}", methods = ["GET"] }}]"#),
    );
    // Granted a different port than it uses: refused.
    config += &section(
        "wrong-port",
        "connect",
        "addr",
        format!("127.0.0.1:{other_port}"),
        format!(r#"tcp = ["127.0.0.1:{port}"]"#),
    );
    let config_path = dir.path().join("graft.toml");
    std::fs::write(&config_path, config).unwrap();
    let mut child = graft()
        .args(["run", "--config"])
        .arg(&config_path)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let leaked = |text: &str, what: &str| {
        text.lines()
            .any(|l| l.starts_with("leaked") && l.contains(what))
    };
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if leaked(&text, "granted-content")
            && leaked(&text, "connected to 127.0.0.1")
            && leaked(&text, "status 200")
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "granted accesses did not all succeed; output:\n{text}\nlog:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    sigterm(&child);
    assert!(wait_with_timeout(&mut child, Duration::from_secs(30)).success());
    assert!(
        hits.load(Ordering::SeqCst) >= 2,
        "the granted port saw tcp and http"
    );
    assert_eq!(
        other_hits.load(Ordering::SeqCst),
        0,
        "the ungranted port was reached"
    );
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains("wrong-port") && log_text.contains("denied"),
        "{log_text}"
    );
}
