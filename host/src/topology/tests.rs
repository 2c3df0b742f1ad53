//! Start-up and reloads of a topology in-process: what runs, what is counted and what
//! compiled code is held, after reloads that apply and reloads that fail.

use std::path::Path;

use super::*;
use crate::config::Config;
use graft_test_support::wasm;

fn config(text: &str) -> Config {
    let mut c = Config::default();
    c.merge_text(text, "test.toml").unwrap();
    c
}

/// A listener, a WASM processor at `processor`, more `extra` sections, and
/// an output.
fn text(listen: u16, processor: &Path, out: &Path, extra: &str) -> String {
    format!(
        r#"
[agent]
  omit_hostname = true
  flush_interval = "100ms"
[[inputs.socket_listener]]
  service_address = "tcp://127.0.0.1:{listen}"
[[processors.wasm]]
  path = "{}"
  [processors.wasm.config]
    from = "a"
    to = "b"
{extra}
[[outputs.file]]
  files = ["{}"]
"#,
        processor.display(),
        out.display()
    )
}

async fn start(config: Config) -> Topology {
    Topology::start(config, Mode::Run).await.unwrap()
}

/// What runs: every plugin's location and fingerprint, and the plugins the
/// self-metrics report.
fn running(live: &Topology) -> (Vec<PluginKey>, Vec<String>) {
    let keys = live.running_keys();
    let all = keys
        .inputs
        .into_iter()
        .chain(keys.processors)
        .chain(keys.aggregators)
        .chain(keys.outputs)
        .collect();
    let stats = live
        .stats
        .snapshot()
        .into_iter()
        .map(|(id, _)| id.to_string())
        .collect();
    (all, stats)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compile_cache_forgets_code_no_plugin_uses() {
    let dir = tempfile::tempdir().unwrap();
    let (p, q, out) = (
        dir.path().join("p.wasm"),
        dir.path().join("q.wasm"),
        dir.path().join("out.lp"),
    );
    let passthrough = std::fs::read(wasm("test-passthrough")).unwrap();
    let rename = std::fs::read(wasm("example-rename-processor")).unwrap();
    std::fs::write(&p, &passthrough).unwrap();
    std::fs::write(&q, &rename).unwrap();
    let listen = free_port();
    let mut live = start(config(&text(listen, &p, &out, ""))).await;
    let cached = |live: &Topology| live.runtime.as_ref().unwrap().cached_components();
    assert_eq!(cached(&live), 1);

    // The processor's code changes: the old code goes with the old instance.
    std::fs::write(&p, &rename).unwrap();
    live.reload(config(&text(listen, &p, &out, "")))
        .await
        .unwrap();
    assert_eq!(cached(&live), 1);

    // A second plugin with other code, then without it again.
    std::fs::write(&p, &passthrough).unwrap();
    let second = format!("[[processors.wasm]]\n  path = \"{}\"", q.display());
    let second = format!("{second}\n  [processors.wasm.config]\n    from = \"c\"\n    to = \"d\"");
    live.reload(config(&text(listen, &p, &out, &second)))
        .await
        .unwrap();
    assert_eq!(cached(&live), 2);
    live.reload(config(&text(listen, &p, &out, "")))
        .await
        .unwrap();
    assert_eq!(cached(&live), 1);

    // Code that does not compile is not kept either.
    std::fs::write(&q, b"\0asm but not really").unwrap();
    assert!(
        live.reload(config(&text(listen, &p, &out, &second)))
            .await
            .is_err()
    );
    assert_eq!(cached(&live), 1);
    live.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_fails_at_any_step_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (p, out) = (dir.path().join("p.wasm"), dir.path().join("out.lp"));
    std::fs::copy(wasm("example-rename-processor"), &p).unwrap();
    let listen = free_port();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().map(|a| (a.port(), taken)).unwrap();
    let mut live = start(config(&text(listen, &p, &out, ""))).await;
    let before = running(&live);

    let changed = dir.path().join("changed.wasm");
    std::fs::copy(wasm("test-passthrough"), &changed).unwrap();
    let failing = [
        // Built plugins first, then one that cannot be.
        "[[inputs.mem]]\n[[processors.wasm]]\n  path = \"missing.wasm\"".to_owned(),
        // An added output that cannot connect.
        format!(
            "[[inputs.mem]]\n[[outputs.file]]\n  files = [\"{}\"]",
            dir.path().join("no/such/dir.lp").display()
        ),
        // An added listener whose port is taken.
        format!(
            "[[inputs.mem]]\n[[inputs.socket_listener]]\n  service_address = \"tcp://127.0.0.1:{}\"",
            taken.0
        ),
    ];
    for extra in &failing {
        // The processor changes too: it must stay as it was.
        let err = live
            .reload(config(&text(listen, &changed, &out, extra)))
            .await
            .unwrap_err();
        assert_eq!(running(&live), before, "after {err:#}");
        // The listener still serves.
        assert!(std::net::TcpStream::connect(("127.0.0.1", listen)).is_ok());
    }
    // The same with the listener itself changed: it gives up its port for
    // its successor, and gets it back.
    let moved = text(listen, &changed, &out, &failing[2]).replacen(
        "[[inputs.socket_listener]]\n",
        "[[inputs.socket_listener]]\n  alias = \"changed\"\n",
        1,
    );
    assert!(live.reload(config(&moved)).await.is_err());
    assert_eq!(running(&live), before);
    assert!(std::net::TcpStream::connect(("127.0.0.1", listen)).is_ok());

    // And a good reload applies.
    let report = live
        .reload(config(&text(listen, &changed, &out, "[[inputs.mem]]")))
        .await
        .unwrap();
    assert_eq!((report.started, report.kept), (2, 2), "{report:?}");
    live.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_is_the_plan_from_nothing_and_a_failed_start_stops_what_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let (p, out) = (dir.path().join("p.wasm"), dir.path().join("out.lp"));
    std::fs::copy(wasm("example-rename-processor"), &p).unwrap();
    let listen = free_port();
    let text = text(listen, &p, &out, "[[inputs.mem]]");
    let live = start(config(&text)).await;
    let (keys, stats) = running(&live);
    // Every section became a plugin with the key a reload plans with...
    let locations: Vec<&str> = keys.iter().map(|k| k.location.as_str()).collect();
    assert_eq!(
        locations,
        [
            "inputs.mem[0]",
            "inputs.socket_listener[0]",
            "processors.wasm[0]",
            "outputs.file[0]"
        ]
    );
    assert_eq!(stats.len(), 4, "{stats:?}");
    let mut live = live;
    // ... so that applying the same configuration again keeps every one.
    let report = live.reload(config(&text)).await.unwrap();
    assert_eq!((report.kept, report.started, report.stopped), (4, 0, 0));
    live.shutdown().await.unwrap();

    // A start that fails part way (the second listener's port is taken)
    // stops what it had started: the first listener's port is free again.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let first = free_port();
    let failing = format!(
        "[[inputs.socket_listener]]\n  service_address = \"tcp://127.0.0.1:{first}\"\n\
         [[inputs.socket_listener]]\n  service_address = \"tcp://127.0.0.1:{port}\"\n\
         [[outputs.file]]\n  files = [\"{}\"]",
        out.display()
    );
    let err = Topology::start(config(&failing), Mode::Run)
        .await
        .err()
        .expect("the start fails");
    assert!(
        format!("{err:#}").contains("inputs.socket_listener[1]"),
        "{err:#}"
    );
    std::net::TcpListener::bind(("127.0.0.1", first))
        .expect("the first listener let go of its port");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_output_moved_down_is_kept_and_its_place_gets_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.lp"), dir.path().join("b.lp"));
    let listen = free_port();
    let file = |path: &Path| format!("[[outputs.file]]\n  files = [\"{}\"]\n", path.display());
    let text = |outputs: &str| {
        format!(
            "[agent]\n  omit_hostname = true\n  flush_interval = \"100ms\"\n\
             [[inputs.socket_listener]]\n  service_address = \"tcp://127.0.0.1:{listen}\"\n{outputs}"
        )
    };
    let mut live = start(config(&text(&file(&a)))).await;
    // outputs.file[0] writing to a.lp moves to [1]; a new one takes [0].
    let report = live
        .reload(config(&text(&format!("{}{}", file(&b), file(&a)))))
        .await
        .unwrap();
    assert_eq!(
        (report.kept, report.started, report.stopped),
        (2, 1, 0),
        "{report:?}"
    );
    let stats = live.stats.snapshot();
    assert_eq!(stats.len(), 3, "every plugin its own counters: {stats:?}");
    for (i, (_, s)) in stats.iter().enumerate() {
        for (_, t) in &stats[i + 1..] {
            assert!(!Arc::ptr_eq(s, t), "two plugins share counters");
        }
    }
    let mut c = std::net::TcpStream::connect(("127.0.0.1", listen)).unwrap();
    std::io::Write::write_all(&mut c, b"moved seq=1i 1700000000000000000\n").unwrap();
    drop(c);
    // The line reaches both files at a flush; shutting down before the input
    // has read it off the socket would test the stop, not the reload.
    let landed = |path: &Path| {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .contains("moved seq=1i")
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !(landed(&a) && landed(&b)) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    live.shutdown().await.unwrap();
    for path in [&a, &b] {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            text.contains("moved seq=1i"),
            "{}: {text:?}",
            path.display()
        );
    }
}
