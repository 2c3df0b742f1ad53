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

use graft_test_support::servers::{free_port, listening};
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

/// graft on `config_path` (`watch`: with `--watch-config`), logging at
/// info to `log`.
fn start(config_path: &Path, log: &Path, watch: bool) -> Child {
    let mut c = graft();
    c.arg("run");
    if watch {
        c.arg("--watch-config");
    }
    c.arg("--config")
        .arg(config_path)
        .env("GRAFT_LOG", "info")
        .stderr(std::fs::File::create(log).unwrap())
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
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

    let mut child = start(&config_path, &log, true);
    wait_until("the listener", &mut child, &log, || listening(listen));

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
    let mut child = start(&config_path, &log, false);
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

/// Sequence numbers of the `m` lines in `paths`, sorted.
fn seqs(paths: &[&Path]) -> Vec<u64> {
    let mut got: Vec<u64> = paths
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.starts_with("m,"))
                .filter_map(|l| l.split(' ').nth(1)?.strip_prefix("seq="))
                .map(|v| v.trim_end_matches('i').parse::<u64>().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    got.sort_unstable();
    got
}

/// A listener and one file output per path.
fn outputs_config(listen: u16, outputs: &[&Path]) -> String {
    let mut text = format!(
        r#"
[agent]
  interval = "10s"
  flush_interval = "100ms"
  metric_batch_size = 1000
  metric_buffer_limit = 1000000
  omit_hostname = true
[[inputs.socket_listener]]
  service_address = "tcp://127.0.0.1:{listen}"
"#
    );
    for out in outputs {
        text.push_str(&format!(
            "[[outputs.file]]\n  files = [\"{}\"]\n",
            out.display()
        ));
    }
    text
}

fn hup(child: &Child) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_reload_that_moves_an_output_and_adds_one_delivers_every_metric_once() {
    let dir = tempfile::tempdir().unwrap();
    let (p1, p2, p3, added) = (
        dir.path().join("p1.lp"),
        dir.path().join("p2.lp"),
        dir.path().join("p3.lp"),
        dir.path().join("added.lp"),
    );
    let log = dir.path().join("graft.log");
    let config_path = dir.path().join("graft.toml");
    let listen = free_port();
    std::fs::write(&config_path, outputs_config(listen, &[&p1])).unwrap();
    let mut child = start(&config_path, &log, true);
    wait_until("the listener", &mut child, &log, || listening(listen));
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let feeder = std::thread::spawn(move || sender(listen, 5_000, flag));
    let has_lines = |p: &Path| !seqs(&[p]).is_empty();
    wait_until("p1 written", &mut child, &log, || has_lines(&p1));

    // By SIGHUP: the output's path changes and a second output comes.
    replace(
        &config_path,
        outputs_config(listen, &[&p2, &added]).as_bytes(),
    );
    hup(&child);
    wait_until("p2 and the added output written", &mut child, &log, || {
        has_lines(&p2) && has_lines(&added)
    });
    // By --watch-config: the path changes again; the added output stays.
    replace(
        &config_path,
        outputs_config(listen, &[&p3, &added]).as_bytes(),
    );
    wait_until("p3 written", &mut child, &log, || has_lines(&p3));

    stop.store(true, Ordering::Relaxed);
    let (sent, _) = feeder.join().unwrap();
    let last = sent - 1;
    wait_until("the last metric in both outputs", &mut child, &log, || {
        seqs(&[&p3]).last() == Some(&last) && seqs(&[&added]).last() == Some(&last)
    });
    sigterm(&child);
    assert!(wait_with_timeout(&mut child, Duration::from_secs(30)).success());
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(!log_text.contains("is not open"), "{log_text}");
    assert!(count(&log, "configuration reloaded") >= 2, "{log_text}");

    // The moving output: every metric exactly once across its three files.
    let moved = seqs(&[&p1, &p2, &p3]);
    assert_eq!(moved, (0..sent).collect::<Vec<_>>(), "of {sent} sent");
    // The added output: everything from its start, once.
    let got = seqs(&[&added]);
    let first = got[0];
    assert_eq!(got, (first..sent).collect::<Vec<_>>(), "the added output");
    println!(
        "{sent} metrics: p1 {}, p2 {}, p3 {}, added {} from {first}",
        seqs(&[&p1]).len(),
        seqs(&[&p2]).len(),
        seqs(&[&p3]).len(),
        got.len()
    );
}

/// A listener (alias `listener_alias`), the rename processor tagging
/// `phase`, an output to `out`, and `extra` sections.
fn phase_config(listen: u16, listener_alias: &str, phase: &str, out: &Path, extra: &str) -> String {
    format!(
        r#"
[agent]
  interval = "10s"
  flush_interval = "100ms"
  omit_hostname = true
[[inputs.socket_listener]]
  alias = "{listener_alias}"
  service_address = "tcp://127.0.0.1:{listen}"
[[processors.wasm]]
  path = "{rename}"
  [processors.wasm.config]
    from = "nothing"
    to = "nothing_else"
    tags = {{ phase = "{phase}" }}
[[outputs.file]]
  files = ["{out}"]
{extra}
"#,
        rename = wasm("example-rename-processor").display(),
        out = out.display()
    )
}

/// Send one `probe` line with `id` and wait for it in `out`; return its line.
fn probe(listen: u16, id: u32, child: &mut Child, log: &Path, out: &Path) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", listen)).unwrap();
    s.write_all(format!("probe,src=t id={id}i\n").as_bytes())
        .unwrap();
    drop(s);
    let wanted = format!(" id={id}i ");
    let mut found = String::new();
    wait_until("the probe", child, log, || {
        let text = std::fs::read_to_string(out).unwrap_or_default();
        match text.lines().find(|l| l.contains(&wanted)) {
            Some(l) => {
                found = l.to_owned();
                true
            }
            None => false,
        }
    });
    found
}

#[test]
fn a_reload_that_fails_midway_leaves_the_running_configuration_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.lp");
    let log = dir.path().join("graft.log");
    let config_path = dir.path().join("graft.toml");
    let listen = free_port();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    std::fs::write(&config_path, phase_config(listen, "in", "before", &out, "")).unwrap();
    let mut child = start(&config_path, &log, false);
    wait_until("the listener", &mut child, &log, || listening(listen));
    assert_eq!(
        tag(&probe(listen, 0, &mut child, &log, &out), "phase"),
        Some("before")
    );

    // Each new configuration changes the processor's tag and then fails
    // at a later step: a second new plugin that cannot be built, an added
    // output that cannot connect, an added listener whose port is taken
    // (after the changed first listener had to give up its port).
    let unreachable = dir.path().join("no-such-dir/out.lp");
    let failing = [
        (
            "in",
            "[[processors.wasm]]\n  path = \"missing.wasm\"".to_owned(),
        ),
        (
            "in",
            format!(
                "[[outputs.file]]\n  files = [\"{}\"]",
                unreachable.display()
            ),
        ),
        (
            "changed",
            format!(
                "[[inputs.socket_listener]]\n  service_address = \"tcp://127.0.0.1:{taken_port}\""
            ),
        ),
    ];
    for (i, (alias, extra)) in failing.iter().enumerate() {
        let config = phase_config(listen, alias, "after", &out, extra);
        std::fs::write(&config_path, config).unwrap();
        hup(&child);
        wait_until("the failed reload", &mut child, &log, || {
            count(&log, "reload failed; the running configuration stays") > i
        });
        let id = i as u32 + 1;
        let line = probe(listen, id, &mut child, &log, &out);
        assert_eq!(
            tag(&line, "phase"),
            Some("before"),
            "after failure {i}: {line}"
        );
    }
    assert_eq!(count(&log, "configuration reloaded"), 0);
    assert!(!unreachable.exists());

    // A good configuration then applies whole.
    std::fs::write(&config_path, phase_config(listen, "in", "after", &out, "")).unwrap();
    hup(&child);
    wait_until("the reload", &mut child, &log, || {
        count(&log, "configuration reloaded") == 1
    });
    assert_eq!(
        tag(&probe(listen, 9, &mut child, &log, &out), "phase"),
        Some("after")
    );
    sigterm(&child);
    assert!(wait_with_timeout(&mut child, Duration::from_secs(30)).success());
    let log_text = std::fs::read_to_string(&log).unwrap();
    for what in ["missing.wasm", "no-such-dir", &taken_port.to_string()] {
        assert!(
            log_text
                .lines()
                .any(|l| l.contains("reload failed; the running") && l.contains(what)),
            "no failed reload names {what}: {log_text}"
        );
    }
    drop(taken);
}
