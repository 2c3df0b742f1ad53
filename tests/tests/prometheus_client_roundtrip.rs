//! Prometheus metrics through graft and back: graft's `inputs.prometheus`
//! scrapes a real node-exporter and a real Prometheus's own `/metrics`,
//! `outputs.prometheus_client` serves them in OpenMetrics
//! (`prefer_openmetrics`), and that Prometheus scrapes graft. Counters,
//! gauges, summaries and histograms keep their names, types and values;
//! Prometheus's strict OpenMetrics parser takes every scrape.

use std::time::{Duration, Instant};

use graft_test_support::graft_agent::Agent;
use graft_test_support::prometheus::{NodeExporter, Prometheus};
use graft_test_support::servers::{free_port, http};

/// The value of the sample line `series` (name and labels as written) in
/// a text exposition.
fn exposed(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split(' ').next()?.parse().ok())
}

#[test]
fn node_exporter_and_prometheus_metrics_round_trip_through_graft_in_openmetrics() {
    let node = NodeExporter::start();
    let port = free_port();
    let target = format!("127.0.0.1:{port}");
    let p = Prometheus::start(&[("graft", &target)], "1s");
    let agent = Agent::start(&format!(
        "[agent]
  interval = \"1s\"
  flush_interval = \"1s\"
  omit_hostname = true
[[inputs.prometheus]]
  urls = [\"{}\", \"{}/metrics\"]
  metric_version = 2
[[outputs.prometheus_client]]
  listen = \"{target}\"
  prefer_openmetrics = true
  collectors_exclude = [\"gocollector\", \"process\"]
",
        node.metrics_url(),
        p.url()
    ));

    // What graft serves is OpenMetrics when asked, as Prometheus asks.
    let start = Instant::now();
    let body = loop {
        let body = http()
            .get(format!("http://{target}/metrics"))
            .header(
                "Accept",
                "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
            )
            .send()
            .and_then(|r| r.text())
            .unwrap_or_default();
        if body.contains("node_memory_MemTotal_bytes")
            && body.contains("prometheus_http_request_duration_seconds_bucket")
        {
            break body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "graft never served both targets:\n{body}\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(body.ends_with("# EOF\n"), "{body}");

    // A gauge that does not move: node-exporter's own value.
    let total = p.wait_for(
        "node_memory_MemTotal_bytes{job=\"graft\"}",
        Duration::from_secs(20),
    );
    assert_eq!(total.len(), 1, "{total:?}");
    let own = exposed(&node.scrape(), "node_memory_MemTotal_bytes").unwrap();
    assert_eq!(total[0].value, own);
    assert_eq!(total[0].label("url"), Some(node.metrics_url().as_str()));

    // Types as the sources declared them, seen by Prometheus in graft's
    // exposition (job "graft").
    let types = p.api("/api/v1/targets/metadata?match_target={job=\"graft\"}");
    let type_of = |metric: &str| {
        types
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["metric"] == metric)
            .map(|m| m["type"].as_str().unwrap_or_default().to_owned())
            .unwrap_or_else(|| panic!("no metadata for {metric}"))
    };
    assert_eq!(type_of("node_memory_MemTotal_bytes"), "gauge");
    assert_eq!(type_of("node_cpu_seconds"), "counter");
    assert_eq!(type_of("go_gc_duration_seconds"), "summary");
    assert_eq!(
        type_of("prometheus_http_request_duration_seconds"),
        "histogram"
    );

    // Counters keep their names (OpenMetrics' `_total` is theirs already).
    let cpu = p.wait_for(
        "node_cpu_seconds_total{job=\"graft\",mode=\"idle\"}",
        Duration::from_secs(20),
    );
    assert!(cpu.iter().all(|s| s.value > 0.0), "{cpu:?}");
    // A summary's quantiles, sum and count.
    p.wait_for(
        "go_gc_duration_seconds{job=\"graft\",quantile=\"0.5\"}",
        Duration::from_secs(20),
    );
    p.wait_for(
        "go_gc_duration_seconds_count{job=\"graft\"}",
        Duration::from_secs(20),
    );
    // A histogram reassembled from its pieces: in every series the `+Inf`
    // bucket is the count.
    let both = "prometheus_http_request_duration_seconds_count{job=\"graft\"} - on(handler, url) prometheus_http_request_duration_seconds_bucket{job=\"graft\",le=\"+Inf\"}";
    let diffs = p.wait_for(both, Duration::from_secs(20));
    assert!(!diffs.is_empty());
    assert!(diffs.iter().all(|s| s.value == 0.0), "{diffs:?}");

    // Every scrape of graft succeeded.
    let up = p.query("up{job=\"graft\"}");
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].value, 1.0, "{}", p.log());
    let failed = p.query("prometheus_target_scrapes_sample_out_of_order_total + prometheus_target_scrapes_sample_duplicate_timestamp_total");
    assert!(failed.iter().all(|s| s.value == 0.0), "{failed:?}");
}
