//! `inputs.nginx` against a real nginx (Debian's `nginx`, started by the
//! test on a free loopback port and a unix socket): the counters it reads
//! lie between the test's own readings of `stub_status` before and after,
//! over TCP and `http+unix`; a URL answering garbage, a huge body or
//! nothing loses only itself and is counted; through the real agent, the
//! metrics carry Telegraf's tags and unsigned fields.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use graft_api::Input;
use graft_core::{Batch, FieldRef};
use graft_test_support::graft_agent::{Agent, internal_gather};
use graft_test_support::nginx::Nginx;

fn input(config: &str) -> Box<dyn Input> {
    graft_plugins::inputs::nginx::build(toml::from_str(config).expect("TOML")).expect("nginx input")
}

fn gather(input: &mut Box<dyn Input>) -> Batch {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(input.gather())
        .expect("gather")
}

fn uint(b: &Batch, i: usize, key: &str) -> u64 {
    match b.iter().nth(i).unwrap().field(key) {
        Some(FieldRef::Uint(v)) => v,
        other => panic!("{key}: {other:?} is not an unsigned integer"),
    }
}

/// A server on 127.0.0.1 answering every request with `head` + `body`.
fn fixed(head: &'static str, body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0_u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(&body);
        }
    });
    format!("http://127.0.0.1:{port}/nginx_status")
}

#[test]
fn counters_lie_between_the_tests_own_readings_over_tcp_and_unix() {
    let nginx = Nginx::shared();
    let tcp = nginx.url("/nginx_status");
    let unix = format!("http+unix://{}:/nginx_status", nginx.socket().display());
    let mut input = input(&format!("urls = [\"{tcp}\", \"{unix}\"]"));
    for _ in 0..3 {
        let before = nginx.stub_status();
        let batch = gather(&mut input);
        let after = nginx.stub_status();
        assert_eq!(batch.len(), 2, "one metric per URL");
        for i in 0..2 {
            for (key, lo, hi) in [
                ("accepts", before.accepts, after.accepts),
                ("handled", before.handled, after.handled),
                ("requests", before.requests, after.requests),
            ] {
                let v = uint(&batch, i, key);
                assert!(lo < v && v < hi, "{key}: {lo} < {v} < {hi}");
            }
            // The gather's own connection is active and writing.
            assert!(uint(&batch, i, "active") >= 1);
            assert!(uint(&batch, i, "writing") >= 1);
        }
        // Each request is counted once: the two readings of the test and
        // the two of the input.
        assert_eq!(after.requests - before.requests, 3);
    }
    let mut m = |i: usize| {
        let b = gather(&mut input);
        let tags: Vec<(String, String)> = b
            .iter()
            .nth(i)
            .unwrap()
            .tags()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        tags
    };
    assert_eq!(
        m(0),
        [
            ("port".to_owned(), nginx.port.to_string()),
            ("server".to_owned(), "127.0.0.1".to_owned())
        ]
    );
    assert!(m(1).is_empty(), "an http+unix URL has no host or port");
}

#[test]
fn a_bad_url_loses_only_itself_and_is_counted() {
    let nginx = Nginx::shared();
    let good = nginx.url("/nginx_status");
    let garbage = fixed(
        "HTTP/1.1 200 OK\r\nContent-Length: 18\r\nConnection: close\r\n\r\n",
        b"<html>nope</html>\n".to_vec(),
    );
    // 50 MB announced and streamed without a length: either way refused.
    let huge = fixed(
        "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
        b"Active connections: 1\n".repeat(2_400_000),
    );
    let missing = nginx.url("/static/no-such-page");
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}/", silent.local_addr().unwrap());
    let agent = Agent::start(&format!(
        r#"[agent]
  interval = "1s"
  flush_interval = "200ms"
  omit_hostname = true
[[inputs.nginx]]
  urls = ["{good}", "{garbage}", "{huge}", "{missing}", "{silent_url}"]
  response_timeout = "1s"
  timeout = "2s"
[[inputs.internal]]
[[outputs.file]]
  files = ["{{dir}}/out.lp"]
"#
    ));
    let counters = || internal_gather(&agent.path("out.lp"), "nginx");
    let start = Instant::now();
    while counters().is_none_or(|g| g.int("requests").unwrap_or(0) < 10) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no two rounds: {}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let g = counters().unwrap();
    let requests = g.int("requests").unwrap();
    let rounds = requests / 5;
    assert_eq!(requests % 5, 0, "{g:?}");
    assert_eq!(g.int("request_errors").unwrap(), 4 * rounds, "{g:?}");
    assert_eq!(g.int("timeouts").unwrap(), rounds, "{g:?}");
    assert_eq!(g.int("body_size_limit_hits").unwrap(), rounds, "{g:?}");
    assert_eq!(g.int("parse_errors").unwrap(), rounds, "{g:?}");
    // The good URL gave one metric per round, with Telegraf's types.
    let text = std::fs::read_to_string(agent.path("out.lp")).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("nginx,")).collect();
    assert!(lines.len() as i64 >= rounds, "{text}");
    let tags = format!("nginx,port={},server=127.0.0.1 ", nginx.port);
    for line in &lines {
        assert!(line.starts_with(&tags), "{line}");
        let fields = line.split(' ').nth(1).unwrap();
        let mut names: Vec<&str> = fields
            .split(',')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                assert!(
                    v.ends_with('u') || v.ends_with('i'),
                    "{kv} is not an integer"
                );
                k
            })
            .collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "accepts", "active", "handled", "reading", "requests", "waiting", "writing"
            ]
        );
    }
    // Each failing URL is logged once, not at every round.
    let log = agent.log();
    for url in [&garbage, &huge, &missing, &silent_url] {
        let n = log
            .lines()
            .filter(|l| l.contains("endpoint failed;") && l.contains(url.as_str()))
            .count();
        assert_eq!(n, 1, "{url}:\n{log}");
    }
    drop(silent);
}
