//! `inputs.http` against a real nginx (started by the test on a free
//! loopback port and a unix socket) serving files the test wrote: line
//! protocol and JSON land as parsed, every sequence number once, tagged
//! with `url` (unless the metric has its own); basic authentication
//! reaches nginx; a URL answering a bad status, bad lines or too large a
//! body loses only what it must, counted and logged once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use graft_api::Input;
use graft_core::{Batch, FieldRef};
use graft_test_support::graft_agent::{Agent, internal_gather};
use graft_test_support::nginx::{Nginx, USER};

fn gather(config: &str) -> Batch {
    let mut input: Box<dyn Input> =
        graft_plugins::inputs::http::build(toml::from_str(config).expect("TOML"))
            .expect("http input");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(input.gather())
        .expect("gather")
}

/// `n` lines of line protocol, `seq` 0..n, with every field type.
fn lines(src: &str, n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "web,src={src} seq={i}i,v={}.5,u={i}u,s=\"str {i}\",ok=true {}\n",
                i,
                1_700_000_000_000_000_000_i64 + i as i64
            )
        })
        .collect()
}

#[test]
fn line_protocol_and_json_land_as_parsed_over_tcp_and_unix() {
    let nginx = Nginx::shared();
    let mut body = lines("lp", 100);
    body.push_str("web,src=lp,url=own seq=1000i 1700000000000000000\n");
    let url = nginx.write_file("metrics.lp", body.as_bytes());
    let unix = format!(
        "http+unix://{}:/static/metrics.lp",
        nginx.socket().display()
    );
    let batch = gather(&format!("urls = [\"{url}\", \"{unix}\"]"));
    assert_eq!(batch.len(), 2 * 101);
    for source in [&url, &unix] {
        let mine: Vec<_> = batch
            .iter()
            .filter(|m| m.tag("url") == Some(source.as_str()))
            .collect();
        assert_eq!(mine.len(), 100, "{source}");
        let seqs: BTreeSet<i64> = mine
            .iter()
            .map(|m| match m.field("seq") {
                Some(FieldRef::Int(s)) => s,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(seqs, (0..100).collect());
        for m in &mine {
            let Some(FieldRef::Int(i)) = m.field("seq") else {
                unreachable!()
            };
            assert_eq!(m.name(), "web");
            assert_eq!(m.tag("src"), Some("lp"));
            assert_eq!(m.timestamp(), 1_700_000_000_000_000_000 + i);
            assert_eq!(m.field("v"), Some(FieldRef::Float(i as f64 + 0.5)));
            assert_eq!(m.field("u"), Some(FieldRef::Uint(i as u64)));
            assert_eq!(m.field("s"), Some(FieldRef::Str(&format!("str {i}"))));
            assert_eq!(m.field("ok"), Some(FieldRef::Bool(true)));
        }
    }
    // A metric with its own `url` tag keeps it.
    assert_eq!(
        batch.iter().filter(|m| m.tag("url") == Some("own")).count(),
        2
    );

    let json = nginx.write_file(
        "metrics.json",
        br#"[{"id": "a", "n": 1, "f": 2.5, "deep": {"x": 7}}, {"id": "b", "n": 2, "f": 3.5, "deep": {"x": 8}}]"#,
    );
    let batch = gather(&format!(
        "urls = [\"{json}\"]\ndata_format = \"json\"\ntag_keys = [\"id\"]"
    ));
    let got: BTreeMap<String, (f64, f64, f64)> = batch
        .iter()
        .map(|m| {
            assert_eq!(m.name(), "http", "JSON metrics are named after the input");
            assert_eq!(m.tag("url"), Some(json.as_str()));
            let f = |k: &str| match m.field(k) {
                Some(FieldRef::Float(v)) => v,
                other => panic!("{k}: {other:?}"),
            };
            (
                m.tag("id").unwrap().to_owned(),
                (f("n"), f("f"), f("deep_x")),
            )
        })
        .collect();
    assert_eq!(
        got,
        BTreeMap::from([("a".into(), (1.0, 2.5, 7.0)), ("b".into(), (2.0, 3.5, 8.0))])
    );
}

#[test]
fn basic_authentication_reaches_nginx() {
    let nginx = Nginx::shared();
    let url = nginx.write_private("auth.lp", lines("auth", 3).as_bytes());
    assert!(
        gather(&format!("urls = [\"{url}\"]")).is_empty(),
        "401 without it"
    );
    let batch = gather(&format!(
        "urls = [\"{url}\"]\nusername = \"{}\"\npassword = \"{}\"",
        USER.0, USER.1
    ));
    assert_eq!(batch.len(), 3);
}

#[test]
fn a_failing_url_loses_only_itself_counted_and_logged_once() {
    let nginx = Nginx::shared();
    let good = nginx.write_file("good.lp", lines("good", 50).as_bytes());
    let mut mixed = String::new();
    for (i, line) in lines("mixed", 20).lines().enumerate() {
        mixed.push_str(line);
        mixed.push('\n');
        if i % 5 == 0 {
            mixed.push_str("this is not line protocol\n");
        }
    }
    let mixed = nginx.write_file("mixed.lp", mixed.as_bytes());
    let missing = nginx.url("/status/404");
    let huge = nginx.write_file("huge.lp", lines("huge", 40_000).as_bytes());
    let agent = Agent::start(&format!(
        r#"[agent]
  interval = "1s"
  flush_interval = "200ms"
  omit_hostname = true
[[inputs.http]]
  urls = ["{good}", "{mixed}", "{missing}", "{huge}"]
  max_body_size = "1MiB"
[[inputs.internal]]
[[outputs.file]]
  files = ["{{dir}}/out.lp"]
"#
    ));
    let counters = || internal_gather(&agent.path("out.lp"), "http");
    let start = Instant::now();
    while counters().is_none_or(|g| g.int("requests").unwrap_or(0) < 12) {
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "no three rounds: {}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let g = counters().unwrap();
    let requests = g.int("requests").unwrap();
    assert_eq!(requests % 4, 0, "{g:?}");
    let rounds = requests / 4;
    assert_eq!(g.int("request_errors").unwrap(), 2 * rounds, "{g:?}");
    assert_eq!(g.int("body_size_limit_hits").unwrap(), rounds, "{g:?}");
    assert_eq!(g.int("parse_errors").unwrap(), 4 * rounds, "{g:?}");
    let points = agent.points("out.lp");
    let seqs = |src: &str| -> BTreeMap<i64, usize> {
        let mut n = BTreeMap::new();
        for p in points
            .iter()
            .filter(|p| p.name == "web" && p.tags["src"] == src)
        {
            *n.entry(p.int("seq").unwrap()).or_default() += 1;
        }
        n
    };
    // Each gather of a file brings every line once (same timestamps: the
    // lines carry their own).
    let good_seqs = seqs("good");
    assert_eq!(
        good_seqs.keys().copied().collect::<Vec<_>>(),
        (0..50).collect::<Vec<_>>()
    );
    let mixed_seqs = seqs("mixed");
    assert_eq!(
        mixed_seqs.keys().copied().collect::<Vec<_>>(),
        (0..20).collect::<Vec<_>>()
    );
    for counts in [&good_seqs, &mixed_seqs] {
        let (lo, hi) = (counts.values().min(), counts.values().max());
        assert!(
            hi.unwrap() - lo.unwrap() <= 1,
            "whole bodies only: {counts:?}"
        );
    }
    assert!(seqs("huge").is_empty());
    let log = agent.log();
    for url in [&missing, &huge] {
        let n = log
            .lines()
            .filter(|l| l.contains("endpoint failed;") && l.contains(url.as_str()))
            .count();
        assert_eq!(n, 1, "{url}:\n{log}");
    }
    let n = log
        .lines()
        .filter(|l| l.contains("parts of the body skipped"))
        .count();
    assert_eq!(n, 1, "{log}");
}
