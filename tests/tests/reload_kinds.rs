//! One path for start-up and reload, through the real binary: an agent
//! started with a plugin of every kind kept, changed and removed runs each
//! of them; a SIGHUP reload to a configuration that keeps, changes, removes
//! and adds a plugin of every kind runs each new and changed one (outputs
//! write, the aggregator pushes, the processor renames), the kept ones go
//! on, and the removed ones stop — all read at the destinations and in
//! `inputs.internal`'s rows.

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use graft_test_support::servers::{free_port, listening};
use graft_test_support::{graft, poll_until, stop, wasm};

struct Ports {
    kept: u16,
    changed: u16,
    new: u16,
}

struct Files {
    kept: PathBuf,
    changed_before: PathBuf,
    changed_after: PathBuf,
    gone: PathBuf,
    new: PathBuf,
}

fn listener(alias: &str, port: u16) -> String {
    format!(
        "[[inputs.socket_listener]]\n  alias = \"{alias}\"\n  service_address = \"tcp://127.0.0.1:{port}\"\n"
    )
}

fn rename(alias: &str, measurement: &str, dest: &str) -> String {
    format!(
        "[[processors.rename]]\n  alias = \"{alias}\"\n  [[processors.rename.replace]]\n    measurement = \"{measurement}\"\n    dest = \"{dest}\"\n"
    )
}

/// The stats aggregator over `m_agg`, its aggregates named `m_agg{suffix}`.
fn aggregator(alias: &str, suffix: &str) -> String {
    format!(
        "[[aggregators.wasm]]\n  alias = \"{alias}\"\n  path = \"{}\"\n  period = \"1s\"\n  namepass = [\"m_agg\"]\n  name_suffix = \"{suffix}\"\n",
        wasm("example-stats-aggregator").display()
    )
}

fn file_out(alias: &str, path: &Path) -> String {
    format!(
        "[[outputs.file]]\n  alias = \"{alias}\"\n  files = [\"{}\"]\n",
        path.display()
    )
}

/// The configuration before (`after` false) or after the reload.
fn config(p: &Ports, f: &Files, after: bool) -> String {
    let mut c = String::from(
        "[agent]\n  interval = \"1s\"\n  round_interval = false\n  flush_interval = \"100ms\"\n  omit_hostname = true\n\
         [[inputs.internal]]\n  alias = \"self\"\n  collect_memstats = false\n",
    );
    c += &listener("kept_in", p.kept);
    c += &file_out("kept_out", &f.kept);
    // Changed: the listener's tags, the rename's destination, the
    // aggregator's suffix, the output's file.
    let (generation, dest, suffix, changed_out) = if after {
        ("b", "renamed_b", "_b", &f.changed_after)
    } else {
        ("a", "renamed_a", "_a", &f.changed_before)
    };
    c += &listener("changed_in", p.changed);
    c += &format!("  [inputs.socket_listener.tags]\n    gen = \"{generation}\"\n");
    c += &rename("changed_proc", "m_changed", dest);
    c += &aggregator("changed_agg", suffix);
    c += &file_out("changed_out", changed_out);
    if after {
        c += &listener("new_in", p.new);
        c += &format!(
            "[[processors.wasm]]\n  alias = \"new_proc\"\n  path = \"{}\"\n  namepass = [\"m_new\"]\n\
             [processors.wasm.config]\n  from = \"v\"\n  to = \"v_new\"\n  tags = {{ proc = \"new\" }}\n",
            wasm("example-rename-processor").display()
        );
        c += &aggregator("new_agg", "_new");
        c += &file_out("new_out", &f.new);
    } else {
        c += "[[inputs.mem]]\n  alias = \"gone_in\"\n";
        c += &rename("gone_proc", "m_gone", "renamed_gone");
        c += &aggregator("gone_agg", "_gone");
        c += &file_out("gone_out", &f.gone);
    }
    c
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Whether a line of `path` starts with `prefix` (measurement and tags).
fn has(path: &Path, prefix: &str) -> bool {
    lines(path).iter().any(|l| l.starts_with(prefix))
}

/// Send one line-protocol line, `seq` as its field, to `port`.
fn send(port: u16, series: &str, seq: u64) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    writeln!(c, "{series} seq={seq}i,v={seq}").unwrap();
}

/// The aliases in the newest `inputs.internal` sample of `measurement`
/// (each sample's rows share one timestamp).
fn latest_aliases(path: &Path, measurement: &str) -> Vec<String> {
    let rows: Vec<(String, String)> = lines(path)
        .iter()
        .filter(|l| l.starts_with(&format!("{measurement},")))
        .filter_map(|l| {
            let ts = l.rsplit(' ').next()?.to_owned();
            let alias = l.split(',').find_map(|kv| kv.strip_prefix("alias="))?;
            let alias = alias.split(' ').next()?.to_owned();
            Some((ts, alias))
        })
        .collect();
    let Some(newest) = rows
        .iter()
        .map(|(ts, _)| ts.clone())
        .max_by_key(|t| t.len())
    else {
        return Vec::new();
    };
    let newest = rows
        .iter()
        .filter(|(t, _)| t.len() == newest.len())
        .map(|(t, _)| t.clone())
        .max()
        .unwrap_or(newest);
    let mut aliases: Vec<String> = rows
        .into_iter()
        .filter(|(t, _)| *t == newest)
        .map(|(_, a)| a)
        .collect();
    aliases.sort();
    aliases
}

fn start(config: &Path, log: &Path) -> Child {
    graft()
        .args(["run", "--config"])
        .arg(config)
        .env("GRAFT_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

fn wait(what: &str, log: &Path, done: impl FnMut() -> bool) {
    let mut done = done;
    let started = std::time::Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}; agent log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn start_and_reload_run_keep_change_add_and_remove_a_plugin_of_every_kind() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ports = Ports {
        kept: free_port(),
        changed: free_port(),
        new: free_port(),
    };
    let files = Files {
        kept: d.join("kept.out"),
        changed_before: d.join("changed_a.out"),
        changed_after: d.join("changed_b.out"),
        gone: d.join("gone.out"),
        new: d.join("new.out"),
    };
    let (path, log) = (d.join("graft.toml"), d.join("graft.log"));
    std::fs::write(&path, config(&ports, &files, false)).unwrap();
    let mut agent = start(&path, &log);
    poll_until("the listeners", Duration::from_secs(30), || {
        listening(ports.kept) && listening(ports.changed)
    });

    // Start-up ran every plugin of the first configuration.
    let k = &files.kept;
    send(ports.changed, "m_plain,src=changed", 1);
    send(ports.kept, "m_changed,src=kept", 2);
    send(ports.kept, "m_gone,src=kept", 3);
    for seq in 4..8 {
        send(ports.kept, "m_agg,src=kept", seq);
    }
    wait("every plugin of the first configuration", &log, || {
        has(k, "m_plain,gen=a,src=changed ")
            && has(k, "renamed_a,src=kept ")
            && has(k, "renamed_gone,src=kept ")
            && has(k, "m_agg_a,src=kept ")
            && has(k, "m_agg_gone,src=kept ")
            && has(k, "mem ")
            && has(&files.changed_before, "renamed_a,src=kept ")
            && has(&files.gone, "renamed_a,src=kept ")
    });
    wait("the first configuration's self-metrics", &log, || {
        latest_aliases(k, "internal_aggregate") == ["changed_agg", "gone_agg"]
            && latest_aliases(k, "internal_write") == ["changed_out", "gone_out", "kept_out"]
    });

    // Reload: keep, change, add and remove one of every kind.
    std::fs::write(&path, config(&ports, &files, true)).unwrap();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &agent.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait("the reload", &log, || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("configuration reloaded")
    });
    assert!(listening(ports.new), "the new listener is bound");

    send(ports.new, "m_plain,src=new", 11);
    send(ports.changed, "m_plain,src=changed", 12);
    send(ports.kept, "m_changed,src=kept", 13);
    send(ports.kept, "m_new,src=kept", 14);
    send(ports.kept, "m_gone,src=kept", 15);
    for seq in 16..20 {
        send(ports.kept, "m_agg,src=kept", seq);
    }
    let n = &files.new;
    wait("every new and changed plugin", &log, || {
        has(k, "m_plain,src=new ")
            && has(k, "m_plain,gen=b,src=changed ")
            && has(k, "renamed_b,src=kept ")
            && has(k, "m_new,proc=new,src=kept ")
            && has(k, "m_gone,src=kept ")
            && has(k, "m_agg_b,src=kept ")
            && has(k, "m_agg_new,src=kept ")
            && has(n, "m_plain,src=new ")
            && has(n, "m_new,proc=new,src=kept ")
            && has(&files.changed_after, "renamed_b,src=kept ")
    });
    let want = [
        vec!["changed_in", "kept_in", "new_in", "self"],
        vec!["changed_proc", "new_proc"],
        vec!["changed_agg", "new_agg"],
        vec!["changed_out", "kept_out", "new_out"],
    ];
    let started = std::time::Instant::now();
    loop {
        let seen = [
            "internal_gather",
            "internal_process",
            "internal_aggregate",
            "internal_write",
        ]
        .map(|m| latest_aliases(k, m));
        if seen == want {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the new configuration's self-metrics: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let (status, _) = stop(&mut agent, Duration::from_secs(15));
    assert!(status.success(), "agent exit: {status}");
    // What was removed or replaced got nothing sent after the reload
    // (sequence numbers from 11 on).
    for path in [&files.changed_before, &files.gone] {
        let late: Vec<String> = lines(path)
            .into_iter()
            .filter(|l| seq(l).is_some_and(|s| s >= 11))
            .collect();
        assert!(late.is_empty(), "{}: {late:?}", path.display());
    }
    for l in lines(k) {
        let late = seq(&l).is_some_and(|s| s >= 11);
        assert!(
            !(late && (l.starts_with("renamed_gone") || l.starts_with("renamed_a"))),
            "a removed or replaced processor still ran: {l}"
        );
    }
}

/// The `seq` field of a line written by [`send`].
fn seq(line: &str) -> Option<u64> {
    let rest = &line[line.find(" seq=").or_else(|| line.find(",seq="))? + 5..];
    rest[..rest.find('i')?].parse().ok()
}
