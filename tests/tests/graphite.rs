//! Graphite end to end: `outputs.graphite` into a real carbon-cache (Debian
//! `graphite-carbon`), read back from the whisper files with
//! `whisper-fetch`; consistent hashing checked against carbon's own ring;
//! `inputs.carbon` fed with plaintext and with pickle frames made by
//! Python's `pickle` module, including a malicious one.

use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use graft_api::MetricSink;
use graft_core::{Batch, BatchBuilder, FieldRef};
use graft_plugins::inputs::carbon;
use graft_plugins::outputs::graphite;
use graft_test_support::servers::{CarbonCache, program};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn table(s: &str) -> toml::Table {
    toml::from_str(s).expect("test config")
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Metrics at three recent seconds, with tags, several fields and a
/// `value` field (left out of the path).
fn batch(t0: i64) -> Batch {
    let mut b = BatchBuilder::new();
    for k in 0..3 {
        let ts = (t0 + k) * 1_000_000_000;
        b.metric("cpu", ts)
            .tag("host", "web.01")
            .tag("cpu", "cpu0")
            .field("usage_idle", 90.125 + k as f64)
            .field("usage_user", 1.0 / 3.0)
            .field("n", 7i64 + k)
            .field("ok", true)
            .field("note", FieldRef::Str("not a number"));
        b.metric("load", ts)
            .tag("host", "web.01")
            .field("value", -2.5 * k as f64);
    }
    b.finish()
}

/// A path and its value at second `t0 + k`.
type Expected = (&'static str, fn(i64) -> f64);

fn check_carbon_has(carbon: &CarbonCache, t0: i64) {
    let expect: [Expected; 5] = [
        ("web_01.cpu0.cpu.usage_idle", |k| 90.125 + k as f64),
        ("web_01.cpu0.cpu.usage_user", |_| 1.0 / 3.0),
        ("web_01.cpu0.cpu.n", |k| 7.0 + k as f64),
        ("web_01.cpu0.cpu.ok", |_| 1.0),
        ("web_01.load", |k| -2.5 * k as f64),
    ];
    for (path, value) in expect {
        let got = carbon.fetch(path, t0 - 2, t0 + 3, 3);
        let want: Vec<(i64, f64)> = (0..3).map(|k| (t0 + k, value(k))).collect();
        assert_eq!(got, want, "{path}\n{}", carbon.log());
    }
    assert!(
        !carbon.whisper_file("web_01.cpu0.cpu.note").exists(),
        "strings are skipped"
    );
}

#[test]
fn graphite_output_writes_what_whisper_fetch_reads_back() {
    for protocol in ["plaintext", "pickle"] {
        let carbon = CarbonCache::start();
        let port = if protocol == "pickle" {
            carbon.pickle_port
        } else {
            carbon.line_port
        };
        let mut out = graphite::build(table(&format!(
            "servers = [\"127.0.0.1:{port}\"]\nprotocol = \"{protocol}\""
        )))
        .unwrap();
        let t0 = now_s() - 10;
        rt().block_on(async {
            out.connect().await.unwrap();
            out.write(&batch(t0)).await.expect("written");
            out.close().await.unwrap();
        });
        check_carbon_has(&carbon, t0);
    }
}

#[test]
fn graphite_output_fails_over_and_keeps_metrics_while_no_server_listens() {
    let carbon = CarbonCache::start();
    let dead = graft_test_support::servers::free_port();
    let mut out = graphite::build(table(&format!(
        "servers = [\"127.0.0.1:{dead}\", \"127.0.0.1:{}\"]",
        carbon.line_port
    )))
    .unwrap();
    let t0 = now_s() - 10;
    rt().block_on(async {
        out.write(&batch(t0))
            .await
            .expect("the second server takes it");
    });
    check_carbon_has(&carbon, t0);

    let mut lonely = graphite::build(table(&format!("servers = [\"127.0.0.1:{dead}\"]"))).unwrap();
    rt().block_on(async {
        match lonely.write(&batch(t0)).await {
            Err(graft_api::CallError::Returned(graft_core::WriteError::Retry(_))) => {}
            other => panic!("expected the batch to be kept, got {other:?}"),
        }
    });
}

/// graft's `consistent-hashing` routing sends every path where carbon's
/// own `ConsistentHashRing` (carbon-relay) would.
#[test]
fn consistent_hashing_matches_carbon_relay() {
    let caches = [
        CarbonCache::start(),
        CarbonCache::start(),
        CarbonCache::start(),
    ];
    let servers: Vec<String> = caches
        .iter()
        .enumerate()
        .map(|(i, c)| format!("\"127.0.0.1:{}:{}\"", c.line_port, (b'a' + i as u8) as char))
        .collect();
    let mut out = graphite::build(table(&format!(
        "servers = [{}]\nrouting = \"consistent-hashing\"\ntemplate = \"measurement.field\"",
        servers.join(", ")
    )))
    .unwrap();
    let t0 = now_s() - 5;
    let mut b = BatchBuilder::new();
    let names: Vec<String> = (0..30).map(|i| format!("m{i}")).collect();
    for n in &names {
        b.metric(n, t0 * 1_000_000_000).field("v", 1.0);
    }
    rt().block_on(async { out.write(&b.finish()).await.expect("written") });

    // Ask carbon's own ring where each path belongs.
    let script = "from carbon.hashing import ConsistentHashRing\n\
         r = ConsistentHashRing([('127.0.0.1', 'a'), ('127.0.0.1', 'b'), ('127.0.0.1', 'c')])\n\
         for i in range(30): print(r.get_node('m%d.v' % i)[1])\n";
    let py = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let owners: Vec<usize> = String::from_utf8(py.stdout)
        .unwrap()
        .lines()
        .map(|l| (l.as_bytes()[0] - b'a') as usize)
        .collect();
    assert_eq!(owners.len(), 30);
    assert!(
        (0..3).all(|c| owners.contains(&c)),
        "every cache gets some: {owners:?}"
    );
    for (i, owner) in owners.iter().enumerate() {
        let path = format!("m{i}.v");
        assert_eq!(
            caches[*owner].fetch(&path, t0 - 1, t0 + 1, 1),
            vec![(t0, 1.0)],
            "{path}"
        );
        for (c, cache) in caches.iter().enumerate() {
            if c != *owner {
                assert!(
                    !cache.whisper_file(&path).exists(),
                    "{path} also on cache {c}"
                );
            }
        }
    }
}

fn python_pickle_frames(protocol: u8, t0: i64, evil: bool) -> Vec<u8> {
    let marker = std::env::temp_dir().join(format!("graft-pickle-pwned-{}", std::process::id()));
    let script = format!(
        "import pickle, struct, sys, os\n\
         class Evil:\n    def __reduce__(self):\n        return (os.system, ('touch {m}',))\n\
         points = [('servers.web01.cpu.idle', ({t0}, 97.5)), ('a.b;dc=x', ({t0}, 2))]\n\
         data = pickle.dumps([Evil()] if {evil} else points, protocol={protocol})\n\
         sys.stdout.buffer.write(struct.pack('!L', len(data)) + data)\n",
        m = marker.display(),
        evil = if evil { "True" } else { "False" },
    );
    let out = Command::new(program("python3", "python3"))
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn drain(rx: &mut tokio::sync::mpsc::Receiver<graft_api::Received>) -> Vec<String> {
    let mut rows = Vec::new();
    while let Ok(b) = rx.try_recv() {
        rows.extend(b.batch.iter().map(|m| format!("{m:?}")));
    }
    rows
}

#[test]
fn carbon_input_reads_plaintext_and_python_pickles_and_refuses_code() {
    let marker = std::env::temp_dir().join(format!("graft-pickle-pwned-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    rt().block_on(async {
        let plain = graft_test_support::servers::free_port();
        let pickle = graft_test_support::servers::free_port();
        let mut input = carbon::build(table(&format!(
            "service_address = [\"tcp://127.0.0.1:{plain}\", \"udp://127.0.0.1:{plain}\"]\n\
             pickle_address = \"tcp://127.0.0.1:{pickle}\"\n\
             templates = [\"servers.* .host.measurement.field\"]\nmax_line_size = 100"
        )))
        .unwrap();
        let (sink, mut rx) = MetricSink::channel(1024, Arc::new(|| 0));
        input.start(sink.clone()).await.unwrap();
        let t0 = now_s();

        // Plaintext over TCP: bad and over-long lines are skipped, the
        // connection and the lines after them survive.
        let mut c = TcpStream::connect(("127.0.0.1", plain)).unwrap();
        let long = format!("x.{} 1 {t0}\n", "y".repeat(200));
        c.write_all(
            format!("servers.web01.cpu.idle 97.5 {t0}\nnot a metric\n{long}a.b;dc=x 2 {t0}\n").as_bytes(),
        )
        .unwrap();
        drop(c);
        // Plaintext over UDP.
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        u.send_to(format!("udp.metric 3 {t0}\n").as_bytes(), ("127.0.0.1", plain))
            .unwrap();

        // Pickle frames from Python, protocols 2 and 4, then a malicious
        // one and a good one on the same connection.
        let mut p = TcpStream::connect(("127.0.0.1", pickle)).unwrap();
        for frame in [
            python_pickle_frames(2, t0, false),
            python_pickle_frames(4, t0, false),
            python_pickle_frames(2, t0, true),
            python_pickle_frames(4, t0, true),
            python_pickle_frames(2, t0, false),
        ] {
            p.write_all(&frame).unwrap();
        }
        drop(p);
        tokio::time::sleep(Duration::from_millis(500)).await;
        input.stop().await;

        let mut rows = drain(&mut rx);
        rows.sort();
        let ns = t0 * 1_000_000_000;
        let cpu = format!("Metric {{ name: \"cpu\", tags: [(\"host\", \"web01\")], fields: [(\"idle\", Float(97.5))], timestamp: {ns} }}");
        let ab = format!("Metric {{ name: \"a.b\", tags: [(\"dc\", \"x\")], fields: [(\"value\", Float(2.0))], timestamp: {ns} }}");
        let udp = format!("Metric {{ name: \"udp.metric\", tags: [], fields: [(\"value\", Float(3.0))], timestamp: {ns} }}");
        let mut want = vec![cpu.clone(), ab.clone(), udp];
        for _ in 0..3 {
            want.push(cpu.clone());
            want.push(ab.clone());
        }
        want.sort();
        assert_eq!(rows, want);
        // One bad line, one over-long line, two malicious frames.
        assert_eq!(sink.malformed_count(), 4);
        assert!(!marker.exists(), "the malicious pickle ran a command");
    });
}

/// Telegraf's spelling: `[[inputs.socket_listener]]` with `data_format`.
#[test]
fn socket_listener_reads_influx_and_graphite_lines() {
    rt().block_on(async {
        for (format, text, want) in [
            (
                "influx",
                "cpu,host=a usage=1.5 1700000000000000000\nbroken line\n",
                "Metric { name: \"cpu\", tags: [(\"host\", \"a\")], fields: [(\"usage\", Float(1.5))], timestamp: 1700000000000000000 }",
            ),
            (
                "graphite",
                "x.y 2 1700000000\nbroken\n",
                "Metric { name: \"x.y\", tags: [], fields: [(\"value\", Float(2.0))], timestamp: 1700000000000000000 }",
            ),
        ] {
            let port = graft_test_support::servers::free_port();
            let mut input = carbon::build_socket_listener(table(&format!(
                "service_address = \"tcp://127.0.0.1:{port}\"\ndata_format = \"{format}\""
            )))
            .unwrap();
            let (sink, mut rx) = MetricSink::channel(16, Arc::new(|| 0));
            input.start(sink.clone()).await.unwrap();
            let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.write_all(text.as_bytes()).unwrap();
            drop(c);
            tokio::time::sleep(Duration::from_millis(300)).await;
            input.stop().await;
            assert_eq!(drain(&mut rx), vec![want.to_owned()], "{format}");
            assert_eq!(sink.malformed_count(), 1, "{format}");
        }
    });
}
