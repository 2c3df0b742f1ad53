//! Live reload under load: metrics keep flowing at more than 50 000 a
//! second while a processor's `.wasm` is replaced 20 times and the
//! configuration is changed 20 times; every metric arrives exactly once, and
//! a broken replacement leaves the old version serving.

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use graft_test_support::servers::free_port;
use graft_test_support::{graft, sigterm, wait_with_timeout, wasm};

fn config(listen: u16, out: &Path, generation: u32) -> String {
    format!(
        r#"
[agent]
  interval = "10s"
  flush_interval = "100ms"
  metric_batch_size = 5000
  metric_buffer_limit = 2000000
  omit_hostname = true
[[inputs.socket_listener]]
  service_address = "tcp://127.0.0.1:{listen}"
  data_format = "influx"
[[processors.wasm]]
  alias = "swapped"
  path = "p1.wasm"
  order = 1
  [processors.wasm.config]
    from = "nothing"
    to = "nothing_else"
    tags = {{ build = "rename" }}
[[processors.wasm]]
  alias = "configured"
  path = "{rename}"
  order = 2
  [processors.wasm.config]
    from = "nothing"
    to = "nothing_else"
    tags = {{ gen = "{generation}" }}
[[outputs.file]]
  files = ["{out}"]
"#,
        rename = wasm("example-rename-processor").display(),
        out = out.display()
    )
}

/// Replace `path` the way deployment tools do: write beside it, rename over.
fn replace(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn count(log: &Path, what: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .matches(what)
        .count()
}

fn wait_until(what: &str, child: &mut Child, log: &Path, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "graft exited while waiting for {what}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}: {}",
            std::fs::read_to_string(log)
                .unwrap_or_default()
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends numbered metrics at `rate` a second until `stop`; returns how many
/// and for how long.
fn sender(listen: u16, rate: u64, stop: Arc<AtomicBool>) -> (u64, Duration) {
    let mut stream = TcpStream::connect(("127.0.0.1", listen)).unwrap();
    let started = Instant::now();
    let mut sent: u64 = 0;
    let mut text = String::new();
    while !stop.load(Ordering::Relaxed) {
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        if due <= sent {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        text.clear();
        for i in sent..due.min(sent + 5000) {
            text.push_str("m,src=t seq=");
            text.push_str(&i.to_string());
            text.push_str("i\n");
        }
        // A write error means graft dropped the connection: the input was
        // restarted, which a reload must not do.
        stream
            .write_all(text.as_bytes())
            .expect("the listener's connection survives every reload");
        sent = due.min(sent + 5000);
    }
    (sent, started.elapsed())
}

/// The last complete line of `path`.
fn last_line(path: &Path) -> String {
    use std::io::{Read as _, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(4096)));
    let mut tail = String::new();
    let _ = f.read_to_string(&mut tail);
    tail.trim_end_matches(|c| c != '\n')
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned()
}

fn tag<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let series = line.split(' ').next()?;
    series
        .split(',')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

#[test]
fn reloads_under_load_lose_and_double_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.lp");
    let log = dir.path().join("graft.log");
    let config_path = dir.path().join("graft.toml");
    let p1 = dir.path().join("p1.wasm");
    let rename = std::fs::read(wasm("example-rename-processor")).unwrap();
    let passthrough = std::fs::read(wasm("test-passthrough")).unwrap();
    let listen = free_port();
    std::fs::write(&p1, &rename).unwrap();
    std::fs::write(&config_path, config(listen, &out, 0)).unwrap();

    let mut child = graft()
        .args(["run", "--watch-config", "--config"])
        .arg(&config_path)
        .env("GRAFT_LOG", "info")
        .stderr(std::fs::File::create(&log).unwrap())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the listener", &mut child, &log, || {
        TcpStream::connect(("127.0.0.1", listen)).is_ok()
    });

    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let feeder = std::thread::spawn(move || sender(listen, 60_000, flag));

    let reloaded = |log: &PathBuf| count(log, "configuration reloaded");
    let mut reloads = 0;
    for step in 1..=20u32 {
        // The processor's code changes: rename (tags build=rename) and
        // passthrough (no tag) in turn.
        let renaming = step % 2 == 0;
        replace(&p1, if renaming { &rename } else { &passthrough });
        reloads += 1;
        wait_until("a wasm reload", &mut child, &log, || {
            reloaded(&log) >= reloads
        });
        // ... and the new version serves (the listener hands over batches of
        // up to 1 MiB, so this can take a moment).
        wait_until("the new code serving", &mut child, &log, || {
            let last = last_line(&out);
            last.starts_with("m,") && tag(&last, "build").is_some() == renaming
        });

        if step == 10 {
            // A broken build: the reload fails and rename keeps serving.
            replace(&p1, b"\0asm but not really");
            wait_until("the failed reload", &mut child, &log, || {
                count(&log, "reload failed") >= 1
            });
            let mut probe = TcpStream::connect(("127.0.0.1", listen)).unwrap();
            probe.write_all(b"probe,src=t after=1i\n").unwrap();
            drop(probe);
            wait_until("the probe", &mut child, &log, || {
                std::fs::read_to_string(&out)
                    .unwrap_or_default()
                    .lines()
                    .any(|l| l.starts_with("probe,"))
            });
            replace(&p1, &rename);
            reloads += 1;
            wait_until("a wasm reload", &mut child, &log, || {
                reloaded(&log) >= reloads
            });
        }

        // The configuration changes: the second processor's tag.
        replace(&config_path, config(listen, &out, step).as_bytes());
        reloads += 1;
        wait_until("a config reload", &mut child, &log, || {
            reloaded(&log) >= reloads
        });
        let generation = step.to_string();
        wait_until("the new config serving", &mut child, &log, || {
            tag(&last_line(&out), "gen") == Some(generation.as_str())
        });
    }
    stop.store(true, Ordering::Relaxed);
    let (sent, took) = feeder.join().unwrap();
    let rate = sent as f64 / took.as_secs_f64();

    // Lines come out in the order they went in: the last one sent is the
    // last one written once everything is through.
    let last = format!("seq={}i", sent - 1);
    let waiting = Instant::now();
    loop {
        let seen = last_line(&out);
        if seen.split(' ').nth(1) == Some(last.as_str()) {
            break;
        }
        assert!(
            waiting.elapsed() < Duration::from_secs(120),
            "the last metric ({last}) never arrived; the output ends with {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    sigterm(&child);
    let status = wait_with_timeout(&mut child, Duration::from_secs(30));
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "graft exited with {status}");

    // One pass over the output: sequence numbers, generations, code versions.
    let text = std::fs::read_to_string(&out).unwrap();
    let mut got = Vec::with_capacity(sent as usize);
    let mut gens = std::collections::BTreeSet::new();
    let (mut renamed, mut passed) = (0u64, 0u64);
    for l in text.lines().filter(|l| l.starts_with("m,")) {
        if let Some(v) = l.split(' ').nth(1).and_then(|f| f.strip_prefix("seq=")) {
            got.push(v.trim_end_matches('i').parse::<u64>().unwrap());
        }
        if let Some(g) = tag(l, "gen") {
            gens.insert(g.parse::<u32>().unwrap());
        }
        if tag(l, "build").is_some() {
            renamed += 1;
        } else {
            passed += 1;
        }
    }
    got.sort_unstable();
    let mut doubled = 0;
    let mut missing = 0;
    let mut expect = 0u64;
    for s in &got {
        if *s < expect {
            doubled += 1;
            continue;
        }
        missing += s - expect;
        expect = s + 1;
    }
    missing += sent - expect.min(sent);
    assert_eq!(
        (missing, doubled),
        (0, 0),
        "of {sent} metrics, {missing} missing and {doubled} doubled"
    );
    assert!(
        rate >= 50_000.0,
        "only {rate:.0} metrics/s went through (sent {sent} in {took:?})"
    );

    // The probe went through the old (rename) version after the failed reload.
    let probe = text.lines().find(|l| l.starts_with("probe,")).unwrap();
    assert_eq!(tag(probe, "build"), Some("rename"), "{probe}");
    assert!(log_text.contains("reload failed; the running configuration stays"));
    // Every configuration generation served, and both code versions did.
    assert_eq!(
        gens.into_iter().collect::<Vec<_>>(),
        (0..=20).collect::<Vec<_>>()
    );
    assert!(
        renamed > 0 && passed > 0,
        "{renamed} renamed, {passed} passed through"
    );
    println!(
        "{sent} metrics at {rate:.0}/s through {} reloads",
        reloaded(&log)
    );
}

#[test]
fn sighup_reloads_and_unchanged_inputs_keep_their_state() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.lp");
    let log = dir.path().join("graft.log");
    let config_path = dir.path().join("graft.toml");
    let text = |tag: &str| {
        format!(
            r#"
[agent]
  interval = "100ms"
  flush_interval = "100ms"
  omit_hostname = true
[[inputs.wasm]]
  path = "{input}"
[[processors.wasm]]
  path = "{rename}"
  [processors.wasm.config]
    from = "n"
    to = "count"
    tags = {{ phase = "{tag}" }}
[[outputs.file]]
  files = ["{out}"]
"#,
            input = wasm("evil-input").display(),
            rename = wasm("example-rename-processor").display(),
            out = out.display()
        )
    };
    std::fs::write(&config_path, text("before")).unwrap();
    let mut child = graft()
        .args(["run", "--config"])
        .arg(&config_path)
        .env("GRAFT_LOG", "info")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let lines = || std::fs::read_to_string(&out).unwrap_or_default();
    wait_until("first metrics", &mut child, &log, || {
        lines().contains("phase=before")
    });
    std::fs::write(&config_path, text("after")).unwrap();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    wait_until("the reload", &mut child, &log, || {
        lines().contains("phase=after")
    });
    std::thread::sleep(Duration::from_millis(300));
    sigterm(&child);
    assert!(wait_with_timeout(&mut child, Duration::from_secs(30)).success());
    // The input was kept (its config did not change): its gather counter
    // runs on across the reload, with no restart from 1.
    let counts: Vec<i64> = lines()
        .lines()
        .filter(|l| l.starts_with("evil_input"))
        .filter_map(|l| {
            let v = l
                .split(' ')
                .nth(1)?
                .split(',')
                .find_map(|kv| kv.strip_prefix("count="))?;
            v.trim_end_matches('i').parse().ok()
        })
        .collect();
    assert!(counts.len() > 3, "{counts:?}");
    assert!(
        counts.windows(2).all(|w| w[1] == w[0] + 1),
        "the input restarted or lost a gather: {counts:?}"
    );
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(log_text.contains("SIGHUP"), "{log_text}");
}
