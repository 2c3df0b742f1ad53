//! `inputs.prometheus` against a real `prometheus-node-exporter`: the
//! values of series that do not move (memory size, filesystem sizes, the
//! build info) match what node-exporter's own `/metrics` says, series for
//! series, with its labels as tags, in `metric_version` 1 and 2; a target
//! that answers garbage, too large a body or a body that would grow ten
//! times its size once read loses only itself, and the input's counters
//! say so through `inputs.internal`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use graft_test_support::graft_agent::{Agent, Point, internal_gather};
use graft_test_support::prometheus::NodeExporter;

type Labels = BTreeMap<String, String>;

/// The samples of `name` in a text-format body: labels and value. Label
/// values are read with the format's three escapes.
fn samples(body: &str, name: &str) -> Vec<(Labels, f64)> {
    let mut out = Vec::new();
    for line in body.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let (labels, value) = match rest.strip_prefix('{') {
            Some(r) => {
                let (inner, value) = r.rsplit_once('}').expect("a closed label set");
                (parse_labels(inner), value)
            }
            None if rest.starts_with(' ') => (Labels::new(), rest),
            None => continue,
        };
        let value = value.split_whitespace().next().expect("a value");
        out.push((labels, value.parse().expect("a number")));
    }
    out
}

fn parse_labels(mut s: &str) -> Labels {
    let mut labels = Labels::new();
    while let Some((name, rest)) = s.split_once("=\"") {
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next().expect("a closed label value") {
                (i, '"') => break i,
                (_, '\\') => match chars.next().expect("an escape").1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        if !value.is_empty() {
            labels.insert(name.trim_start_matches(',').to_owned(), value);
        }
        s = &rest[end + 1..];
    }
    labels
}

/// Wait until `done` holds, or fail with the agent's log.
fn wait_until(agent: &Agent, what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < limit,
            "timed out waiting for {what}:\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The points of the latest gather that wrote a point matching `first`:
/// every point with that point's timestamp.
fn latest_round(points: &[Point], first: impl Fn(&Point) -> bool) -> Vec<Point> {
    let Some(t) = points.iter().filter(|p| first(p)).map(|p| p.time).max() else {
        return Vec::new();
    };
    points.iter().filter(|p| p.time == t).cloned().collect()
}

fn float(p: &Point, key: &str) -> f64 {
    p.fields[key].parse().expect("a float field")
}

#[test]
fn node_exporter_values_match_its_own_metrics_in_both_versions() {
    let ne = NodeExporter::start();
    let url = ne.metrics_url();
    let agent = Agent::start(&format!(
        r#"[agent]
  interval = "1s"
  flush_interval = "200ms"
  omit_hostname = true
[[inputs.prometheus]]
  urls = ["{url}"]
[[inputs.prometheus]]
  urls = ["{url}"]
  metric_version = 2
[[outputs.file]]
  files = ["{{dir}}/out.lp"]
"#
    ));
    let is_v1 = |p: &Point| p.name == "node_memory_MemTotal_bytes";
    let is_v2 =
        |p: &Point| p.name == "prometheus" && p.fields.contains_key("node_memory_MemTotal_bytes");
    wait_until(&agent, "both versions", Duration::from_secs(20), || {
        let points = agent.points("out.lp");
        points.iter().any(is_v1) && points.iter().any(is_v2)
    });
    let body = ne.scrape();
    let points = agent.points("out.lp");
    let v1 = latest_round(&points, is_v1);
    let v2 = latest_round(&points, is_v2);

    // Memory size: one series, the same value.
    let mem = samples(&body, "node_memory_MemTotal_bytes");
    assert_eq!(mem.len(), 1, "{body}");
    let v1_mem: Vec<&Point> = v1.iter().filter(|p| is_v1(p)).collect();
    assert_eq!(v1_mem.len(), 1);
    assert_eq!(float(v1_mem[0], "gauge"), mem[0].1);
    assert_eq!(v1_mem[0].tags, Labels::from([("url".into(), url.clone())]));
    let v2_mem: Vec<&Point> = v2.iter().filter(|p| is_v2(p)).collect();
    assert_eq!(v2_mem.len(), 1);
    assert_eq!(float(v2_mem[0], "node_memory_MemTotal_bytes"), mem[0].1);

    // Every filesystem and the build info: the same series, labels as tags
    // (and the url), the same values.
    for name in ["node_filesystem_size_bytes", "node_exporter_build_info"] {
        let expected: BTreeMap<Labels, f64> = samples(&body, name)
            .into_iter()
            .map(|(mut labels, v)| {
                labels.insert("url".into(), url.clone());
                (labels, v)
            })
            .collect();
        assert!(!expected.is_empty(), "no {name} in\n{body}");
        let got_v1: BTreeMap<Labels, f64> = v1
            .iter()
            .filter(|p| p.name == name)
            .map(|p| (p.tags.clone(), float(p, "gauge")))
            .collect();
        let got_v2: BTreeMap<Labels, f64> = v2
            .iter()
            .filter(|p| p.fields.contains_key(name))
            .map(|p| (p.tags.clone(), float(p, name)))
            .collect();
        assert_eq!(got_v1, expected, "{name}, metric_version 1");
        assert_eq!(got_v2, expected, "{name}, metric_version 2");
        assert_eq!(
            v1.iter().filter(|p| p.name == name).count(),
            expected.len(),
            "{name}: one metric per series"
        );
    }

    // A summary: version 1 has count, sum and one field per quantile;
    // version 2 one metric per quantile tagged `quantile`.
    let quantiles: BTreeSet<String> = samples(&body, "go_gc_duration_seconds")
        .into_iter()
        .filter_map(|(l, _)| l.get("quantile").cloned())
        .collect();
    assert!(!quantiles.is_empty(), "{body}");
    let summary = v1
        .iter()
        .find(|p| p.name == "go_gc_duration_seconds")
        .expect("the summary in version 1");
    let mut fields: BTreeSet<String> = quantiles.clone();
    fields.extend(["count".into(), "sum".into()]);
    assert_eq!(
        summary.fields.keys().cloned().collect::<BTreeSet<_>>(),
        fields
    );
    let tagged: BTreeSet<String> = v2
        .iter()
        .filter(|p| p.fields.contains_key("go_gc_duration_seconds"))
        .filter_map(|p| p.tags.get("quantile").cloned())
        .collect();
    assert_eq!(tagged, quantiles);
    assert!(
        v2.iter()
            .any(|p| p.fields.contains_key("go_gc_duration_seconds_count"))
    );
}

/// A target on 127.0.0.1 answering every request with `body`, until the
/// test ends; returns its `/metrics` URL.
fn fixed_target(body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a target");
    let port = listener.local_addr().expect("its address").port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
            let mut request = Vec::new();
            let mut buf = [0_u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(&body);
        }
    });
    format!("http://127.0.0.1:{port}/metrics")
}

#[test]
fn a_target_answering_garbage_or_too_much_loses_only_itself() {
    let ne = NodeExporter::start();
    let mut garbage = b"\x00\x01\xfe\xff binary junk {{{\n".to_vec();
    garbage.extend_from_slice(b"graft_survivor{a=\"1\"} 42\nhalf{a=\"1\" 3\n\x89PNG\r\n");
    let garbage = fixed_target(garbage);
    let big = fixed_target(b"graft_big 1\n".repeat(700_000));
    // 4 MiB of samples with 100 one-letter labels each: within
    // content_length_limit, but about 50 MB once read.
    let labels: Vec<String> = (0..100).map(|i| format!("l{i}=\"v\"")).collect();
    let line = format!("graft_bomb{{{}}} 1\n", labels.join(","));
    let bomb = fixed_target(line.repeat(4 * 1024 * 1024 / line.len()).into_bytes());
    let agent = Agent::start(&format!(
        r#"[agent]
  interval = "1s"
  flush_interval = "200ms"
  omit_hostname = true
[[inputs.prometheus]]
  urls = ["{ne}", "{garbage}", "{big}", "{bomb}"]
  content_length_limit = "6MiB"
  max_decoded_size = "16MiB"
[[inputs.internal]]
[[outputs.file]]
  files = ["{{dir}}/out.lp"]
"#,
        ne = ne.metrics_url()
    ));
    let counters = || internal_gather(&agent.path("out.lp"), "prometheus");
    wait_until(
        &agent,
        "two rounds counted",
        Duration::from_secs(25),
        || counters().is_some_and(|g| g.int("scrapes").unwrap_or(0) >= 8),
    );
    let points = agent.points("out.lp");
    assert!(
        points.iter().any(|p| p.name == "node_memory_MemTotal_bytes"
            && p.tags.get("url") == Some(&ne.metrics_url()))
    );
    let survivors: Vec<&Point> = points
        .iter()
        .filter(|p| p.name == "graft_survivor")
        .collect();
    assert!(!survivors.is_empty());
    assert!(
        survivors
            .iter()
            .all(|p| p.tags.get("url") == Some(&garbage) && p.int("value") == Some(42))
    );
    assert!(
        !points
            .iter()
            .any(|p| ["graft_big", "graft_bomb", "half"].contains(&p.name.as_str()))
    );
    let g = counters().expect("the input's counters");
    let scrapes = g.int("scrapes").unwrap();
    let rounds = scrapes / 4;
    // Only the large body and the label bomb fail; each failure is a limit
    // hit (the counters may be read between the increments of a failure).
    let errors = g.int("scrape_errors").unwrap();
    let body = g.int("body_size_limit_hits").unwrap();
    let decoded = g.int("decoded_size_limit_hits").unwrap();
    assert!(errors.abs_diff(body + decoded) <= 2, "{g:?}");
    assert!(body >= rounds && decoded >= rounds, "{g:?}");
    // Three bad lines in each garbage body.
    assert!(g.int("parse_errors").unwrap() >= 3 * rounds, "{g:?}");
    assert_eq!(g.int("parse_errors").unwrap() % 3, 0, "{g:?}");
    let log = agent.log();
    assert!(
        log.contains("content_length_limit") && log.contains("max_decoded_size"),
        "{log}"
    );
    // The bomb never grew the agent: its memory stays far below what the
    // body would take once read.
    let rss = agent
        .points("out.lp")
        .iter()
        .filter(|p| p.name == "internal_memstats")
        .filter_map(|p| p.int("rss_bytes"))
        .max()
        .expect("internal_memstats");
    assert!(rss < 200 * 1024 * 1024, "rss {rss}");
}
