//! Prometheus remote write end to end, against the real servers: graft's
//! `outputs.http` with `data_format = "prometheusremotewrite"` into a
//! Prometheus (`--web.enable-remote-write-receiver`) and a
//! VictoriaMetrics, read back through their query APIs; and a Prometheus
//! whose `remote_write` points at graft's `inputs.http_listener_v2`,
//! scraping a node-exporter, read back from graft's file output.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use graft_test_support::graft_agent::Agent;
use graft_test_support::prometheus::{NodeExporter, Prometheus, VictoriaMetrics, scrape_job};
use graft_test_support::servers::{free_port, http, listening};

/// Wall-clock now in milliseconds.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn wait(what: &str, within: Duration, mut done: impl FnMut() -> bool, log: impl Fn() -> String) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < within,
            "{what} not within {within:?}:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn remote_write_lands_in_prometheus_and_victoriametrics_complete_and_exact() {
    let prometheus = Prometheus::start_with("scrape_configs: []\n");
    let vm = VictoriaMetrics::start();
    let listen = free_port();
    let agent = Agent::start(&format!(
        r#"[agent]
  interval = "1s"
  flush_interval = "200ms"
  metric_batch_size = 100
  omit_hostname = true
[[inputs.influxdb_listener]]
  service_address = "127.0.0.1:{listen}"
[[outputs.http]]
  url = "{prom}"
  data_format = "prometheusremotewrite"
[[outputs.http]]
  url = "{vm}"
  data_format = "prometheusremotewrite"
  prometheus_sort_metrics = true
"#,
        prom = prometheus.remote_write_url(),
        vm = vm.remote_write_url(),
    ));
    wait(
        "graft listening",
        Duration::from_secs(15),
        || listening(listen),
        || agent.log(),
    );

    // 300 samples of one series, one a second up to a few seconds ago
    // (Prometheus refuses samples out of its head block's range), each
    // with a value and a sequence number of its own, sent in 3 bodies.
    const N: i64 = 300;
    let first_ms = now_ms() - (N + 5) * 1000;
    let line = |i: i64| {
        format!(
            "cpu,cpu=cpu-total,host=edge-1 usage_idle={}.25,seq={i}i {}\n",
            90 + i % 10,
            (first_ms + i * 1000) * 1_000_000
        )
    };
    for chunk in (0..N).collect::<Vec<_>>().chunks(100) {
        let body: String = chunk.iter().map(|&i| line(i)).collect();
        let r = http()
            .post(format!("http://127.0.0.1:{listen}/write"))
            .body(body)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 204);
    }
    let last_ms = first_ms + (N - 1) * 1000;

    // Prometheus: the names, labels, last value and its timestamp exactly;
    // every sample is there.
    let within = Duration::from_secs(20);
    let counted =
        |q: &[graft_test_support::prometheus::Sample]| q.first().map(|s| s.value) == Some(N as f64);
    wait(
        "all samples in Prometheus",
        within,
        || counted(&prometheus.query("count_over_time(cpu_seq[15m])")),
        || format!("{}\n{}", prometheus.log(), agent.log()),
    );
    let idle = prometheus.query(&format!("cpu_usage_idle @ {}", last_ms as f64 / 1000.0));
    assert_eq!(idle.len(), 1, "{idle:?}");
    let labels: BTreeMap<String, String> = [
        ("__name__", "cpu_usage_idle"),
        ("cpu", "cpu-total"),
        ("host", "edge-1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(idle[0].labels, labels);
    assert_eq!(idle[0].value, (90 + (N - 1) % 10) as f64 + 0.25);
    let stamp = prometheus.query("timestamp(cpu_seq)");
    assert_eq!(stamp.len(), 1, "{stamp:?}");
    assert_eq!((stamp[0].value * 1000.0).round() as i64, last_ms);
    let sum = prometheus.query("sum_over_time(cpu_seq[15m])");
    assert_eq!(sum[0].value, (N * (N - 1) / 2) as f64);

    // VictoriaMetrics: every raw sample, each sequence number once, at its
    // own millisecond.
    let mut exported = Vec::new();
    wait(
        "all samples in VictoriaMetrics",
        within,
        || {
            exported = vm.export("cpu_seq");
            exported
                .first()
                .is_some_and(|(_, v, _)| v.len() == N as usize)
        },
        || format!("{}\n{}", vm.log(), agent.log()),
    );
    assert_eq!(exported.len(), 1, "one series");
    let (labels, values, times) = &exported[0];
    assert_eq!(labels.get("host").map(String::as_str), Some("edge-1"));
    let seqs: BTreeSet<i64> = values.iter().map(|v| *v as i64).collect();
    assert_eq!(seqs, (0..N).collect());
    for (v, t) in values.iter().zip(times) {
        assert_eq!(*t, first_ms + (*v as i64) * 1000);
    }
    let idle = vm.query(&format!(
        "cpu_usage_idle{{host=\"edge-1\"}} @ {}",
        last_ms / 1000
    ));
    assert_eq!(idle.len(), 1, "{idle:?}");
}

#[test]
fn a_prometheus_remote_write_lands_in_graft_with_labels_as_tags() {
    let node = NodeExporter::start();
    let listen = free_port();
    let agent = Agent::start(&format!(
        r#"[agent]
  interval = "1s"
  flush_interval = "200ms"
  omit_hostname = true
[[inputs.http_listener_v2]]
  service_address = "127.0.0.1:{listen}"
  paths = ["/receive"]
  data_format = "prometheusremotewrite"
  acknowledge = "durable"
[[outputs.file]]
  files = ["{{dir}}/out.lp"]
"#
    ));
    wait(
        "graft listening",
        Duration::from_secs(15),
        || listening(listen),
        || agent.log(),
    );
    let prometheus = Prometheus::start_with(&format!(
        "scrape_configs:\n{}remote_write:\n  - url: http://127.0.0.1:{listen}/receive\n    \
         queue_config:\n      batch_send_deadline: 1s\n",
        scrape_job("node", &node.target(), "1s")
    ));
    let target = node.target();
    let mut landed = Vec::new();
    wait(
        "node-exporter's series through Prometheus into graft",
        Duration::from_secs(30),
        || {
            landed = agent.points("out.lp");
            landed
                .iter()
                .any(|p| p.fields.contains_key("node_memory_MemTotal_bytes"))
                && landed.iter().any(|p| p.fields.contains_key("up"))
        },
        || format!("{}\n{}", prometheus.log(), agent.log()),
    );
    let up = landed.iter().find(|p| p.fields.contains_key("up")).unwrap();
    assert_eq!(up.name, "prometheus_remote_write");
    assert_eq!(up.fields["up"], "1");
    assert_eq!(up.tags.get("job").map(String::as_str), Some("node"));
    assert_eq!(up.tags.get("instance"), Some(&target));
    assert!(!up.tags.contains_key("__name__"));
    // Millisecond timestamps from the scrape, within the last minute.
    assert_eq!(up.time % 1_000_000, 0);
    assert!((now_ms() - up.time / 1_000_000).abs() < 60_000, "{up:?}");
    // A value that does not move matches node-exporter's own.
    let total = landed
        .iter()
        .find_map(|p| p.fields.get("node_memory_MemTotal_bytes"))
        .unwrap();
    let scraped = node
        .scrape()
        .lines()
        .find_map(|l| l.strip_prefix("node_memory_MemTotal_bytes "))
        .map(|v| v.trim().parse::<f64>().unwrap())
        .unwrap();
    assert_eq!(total.parse::<f64>().unwrap(), scraped);
    assert!(
        !agent.log().contains("could not be parsed"),
        "{}",
        agent.log()
    );
}

#[test]
fn a_sample_prometheus_refuses_is_rejected_and_counted_not_retried_forever() {
    let prometheus = Prometheus::start_with("scrape_configs: []\n");
    let listen = free_port();
    let agent = Agent::start(&format!(
        r#"[agent]
  interval = "500ms"
  flush_interval = "200ms"
  omit_hostname = true
[[inputs.influxdb_listener]]
  service_address = "127.0.0.1:{listen}"
[[inputs.internal]]
[[outputs.http]]
  alias = "prom"
  url = "{prom}"
  data_format = "prometheusremotewrite"
  namedrop = ["internal*"]
[[outputs.file]]
  files = ["{{dir}}/internal.lp"]
  namepass = ["internal_write"]
"#,
        prom = prometheus.remote_write_url(),
    ));
    wait(
        "graft listening",
        Duration::from_secs(15),
        || listening(listen),
        || agent.log(),
    );
    let send = |body: String| {
        let r = http()
            .post(format!("http://127.0.0.1:{listen}/write"))
            .body(body)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 204);
    };
    // A first sample sets the range of Prometheus's head block; one three
    // hours older than it is then out of bounds, answered 400.
    send(format!("warm,host=a v=1 {}\n", now_ms() * 1_000_000));
    wait(
        "a first sample in Prometheus",
        Duration::from_secs(20),
        || !prometheus.query("warm_v").is_empty(),
        || format!("{}\n{}", prometheus.log(), agent.log()),
    );
    send(format!(
        "old,host=a v=1 {}\n",
        (now_ms() - 3 * 3600 * 1000) * 1_000_000
    ));
    let rejected = || {
        agent
            .points("internal.lp")
            .into_iter()
            .rfind(|p| p.tags.get("alias").map(String::as_str) == Some("prom"))
            .and_then(|p| p.int("metrics_rejected"))
    };
    wait(
        "the refused sample counted as rejected",
        Duration::from_secs(20),
        || rejected() == Some(1),
        || format!("{}\n{}", prometheus.log(), agent.log()),
    );
    // The output goes on: what comes next lands, the refused one is not
    // sent again.
    for i in 0..5 {
        send(format!(
            "new,host=a v={i} {}\n",
            (now_ms() - 5000 + i * 1000) * 1_000_000
        ));
    }
    wait(
        "later samples in Prometheus",
        Duration::from_secs(20),
        || {
            prometheus
                .query("count_over_time(new_v[5m])")
                .first()
                .is_some_and(|s| s.value == 5.0)
        },
        || format!("{}\n{}", prometheus.log(), agent.log()),
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(rejected(), Some(1), "{}", agent.log());
    assert!(prometheus.query("old_v").is_empty());
}
