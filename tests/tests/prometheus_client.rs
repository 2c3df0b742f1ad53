//! `outputs.prometheus_client` scraped by a real Prometheus (Debian's
//! `prometheus`, on a free loopback port): graft's `inputs.cpu`,
//! `inputs.mem` and `inputs.statsd` queried back through `/api/v1/query`
//! with Telegraf's names, labels and TYPEs; HTTPS with basic
//! authentication scraped by Prometheus (and refused without the
//! credentials), `ip_range` refusing a scraper; graft's own
//! `inputs.internal` exposed the same way (the self-metrics recipe).

use std::net::UdpSocket;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use graft_test_support::graft_agent::Agent;
use graft_test_support::prometheus::{Prometheus, Sample, scrape_job};
use graft_test_support::servers::{free_port, http};

/// Wait until graft serves `needle` on `url`; panics with the agent's log.
fn wait_served(agent: &Agent, url: &str, needle: &str) -> String {
    let start = Instant::now();
    loop {
        if let Ok(r) = http().get(url).send()
            && let Ok(body) = r.text()
            && body.contains(needle)
        {
            return body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "graft never served {needle:?} on {url}:\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The one series `expr` gives, once there.
fn one(p: &Prometheus, expr: &str) -> Sample {
    let found = p.wait_for(expr, Duration::from_secs(20));
    assert_eq!(found.len(), 1, "{expr}: {found:?}");
    found.into_iter().next().unwrap()
}

/// The type Prometheus recorded for `metric` from its scrapes.
fn metadata_type(p: &Prometheus, metric: &str) -> String {
    let data = p.api(&format!("/api/v1/metadata?metric={metric}"));
    data[metric][0]["type"]
        .as_str()
        .unwrap_or_else(|| panic!("no metadata for {metric}: {data}"))
        .to_owned()
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn mem_total() -> f64 {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kb: f64 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024.0
}

#[test]
fn prometheus_scrapes_cpu_mem_and_a_statsd_counter_with_telegraf_names_labels_and_types() {
    let (port, statsd) = (free_port(), free_port());
    let agent = Agent::start(&format!(
        "[agent]
  interval = \"1s\"
  flush_interval = \"1s\"
  hostname = \"graft-e2e\"
[[inputs.cpu]]
  percpu = false
  totalcpu = true
[[inputs.mem]]
[[inputs.statsd]]
  protocol = \"udp\"
  service_address = \"127.0.0.1:{statsd}\"
[[outputs.prometheus_client]]
  listen = \"127.0.0.1:{port}\"
"
    ));
    let url = format!("http://127.0.0.1:{port}/metrics");
    wait_served(&agent, &url, "cpu_usage_idle");
    // One datagram: both lines land in the same statsd interval.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(
        b"graft_e2e_requests:2|c\ngraft_e2e_requests:3|c\n",
        ("127.0.0.1", statsd),
    )
    .unwrap();
    let body = wait_served(&agent, &url, "graft_e2e_requests_value");
    assert!(
        body.contains("# TYPE graft_e2e_requests_value counter\n"),
        "{body}"
    );

    let target = format!("127.0.0.1:{port}");
    let p = Prometheus::start(&[("graft", &target)], "1s");

    let requests = one(&p, "graft_e2e_requests_value");
    assert_eq!(requests.value, 5.0, "{requests:?}");
    assert_eq!(requests.label("metric_type"), Some("counter"));
    assert_eq!(requests.label("host"), Some("graft-e2e"));
    assert_eq!(requests.label("job"), Some("graft"));
    assert_eq!(requests.label("instance"), Some(target.as_str()));

    let idle = one(&p, "cpu_usage_idle");
    assert_eq!(idle.label("cpu"), Some("cpu-total"));
    assert_eq!(idle.label("host"), Some("graft-e2e"));
    assert!((0.0..=100.0).contains(&idle.value), "{idle:?}");
    // The usage fields of one gather add up to 100, in one scrape.
    let fields = [
        "user", "system", "idle", "nice", "iowait", "irq", "softirq", "steal",
    ];
    let sum = fields
        .iter()
        .map(|f| format!("cpu_usage_{f}"))
        .collect::<Vec<_>>()
        .join(" + ");
    let total = one(&p, &sum);
    assert!((total.value - 100.0).abs() < 0.01, "{sum} = {total:?}");

    let total_bytes = one(&p, "mem_total");
    assert_eq!(total_bytes.value, mem_total(), "{total_bytes:?}");
    assert_eq!(total_bytes.label("host"), Some("graft-e2e"));
    let used = one(&p, "mem_used_percent");
    assert!((0.0..100.0).contains(&used.value), "{used:?}");
    let check = one(&p, "mem_used_percent - 100 * mem_used / mem_total");
    assert!(check.value.abs() < 1e-6, "{check:?}");

    assert_eq!(metadata_type(&p, "graft_e2e_requests_value"), "counter");
    assert_eq!(metadata_type(&p, "mem_used_percent"), "gauge");
    assert_eq!(metadata_type(&p, "cpu_usage_idle"), "gauge");
    assert_eq!(metadata_type(&p, "process_cpu_seconds_total"), "counter");
}

/// A CA and a certificate for 127.0.0.1 it signed, made by the openssl
/// CLI in `dir`: `ca.pem`, `cert.pem`, `key.pem`.
fn certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("running openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=graft test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "key.pem",
        "-out",
        "cert.csr",
    ]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "cert.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "cert.pem",
    ]);
}

#[test]
fn prometheus_scrapes_https_with_basic_auth_and_is_refused_without_it_ip_range_refuses_others() {
    let certs = tempfile::tempdir().unwrap();
    certificates(certs.path());
    let dir = certs.path().display().to_string();
    let (secure, ranged) = (free_port(), free_port());
    let agent = Agent::start(&format!(
        "[agent]
  interval = \"1s\"
  flush_interval = \"1s\"
[[inputs.mem]]
[[outputs.prometheus_client]]
  listen = \"127.0.0.1:{secure}\"
  basic_username = \"scraper\"
  basic_password = \"s3cret\"
  tls_cert = \"{dir}/cert.pem\"
  tls_key = \"{dir}/key.pem\"
[[outputs.prometheus_client]]
  listen = \"127.0.0.1:{ranged}\"
  ip_range = [\"10.0.0.0/8\", \"::1/128\"]
"
    ));
    agent.wait_log("serving metrics for Prometheus", Duration::from_secs(20));
    let target = format!("127.0.0.1:{secure}");
    let authed = format!(
        "{}    scheme: https\n    tls_config:\n      ca_file: {dir}/ca.pem\n    basic_auth:\n      username: scraper\n      password: s3cret\n",
        scrape_job("authed", &target, "1s")
    );
    let anonymous = format!(
        "{}    scheme: https\n    tls_config:\n      ca_file: {dir}/ca.pem\n",
        scrape_job("anonymous", &target, "1s")
    );
    let plain = scrape_job("plain", &target, "1s");
    let p = Prometheus::start_with(&format!("scrape_configs:\n{authed}{anonymous}{plain}"));

    let total = one(&p, "mem_total{job=\"authed\"}");
    assert_eq!(total.value, mem_total());
    // The other two jobs are down: 401 without credentials, and plain
    // HTTP sent to the TLS port.
    p.wait_for(
        "count(up{job!=\"authed\"} == 0) == 2",
        Duration::from_secs(20),
    );
    let up = p.query("up == 0");
    let mut down: Vec<&str> = up.iter().filter_map(|s| s.label("job")).collect();
    down.sort_unstable();
    assert_eq!(down, ["anonymous", "plain"], "{up:?}");
    let targets = p.api("/api/v1/targets");
    let error = targets["activeTargets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["labels"]["job"] == "anonymous")
        .map(|t| t["lastError"].to_string())
        .unwrap();
    assert!(error.contains("401"), "{error}");
    assert!(p.query("mem_total{job=~\"anonymous|plain\"}").is_empty());

    // 127.0.0.1 is outside `ip_range`: 403, no metrics.
    let r = http()
        .get(format!("http://127.0.0.1:{ranged}/metrics"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert!(!r.text().unwrap().contains("mem_total"));
}

#[test]
fn graft_self_metrics_are_scraped_through_inputs_internal() {
    let port = free_port();
    let agent = Agent::start(&format!(
        "[agent]
  interval = \"1s\"
  flush_interval = \"1s\"
[[inputs.internal]]
[[outputs.prometheus_client]]
  listen = \"127.0.0.1:{port}\"
  collectors_exclude = [\"gocollector\"]
"
    ));
    wait_served(
        &agent,
        &format!("http://127.0.0.1:{port}/metrics"),
        "internal_write_metrics_written",
    );
    let p = Prometheus::start(&[("graft", &format!("127.0.0.1:{port}"))], "1s");
    let written = one(
        &p,
        "internal_write_metrics_written{output=\"prometheus_client\"}",
    );
    assert!(written.value > 0.0, "{written:?}");
    // The output's own counters: Prometheus's scrapes are counted, and the
    // series kept are reported.
    let scrapes = p.wait_for(
        "internal_write_scrapes{output=\"prometheus_client\"} > 0",
        Duration::from_secs(20),
    );
    assert_eq!(scrapes.len(), 1, "{scrapes:?}");
    let series = one(&p, "internal_write_series{output=\"prometheus_client\"}");
    assert!(series.value > 0.0, "{series:?}");
    let gathered = one(&p, "internal_gather_metrics_gathered{input=\"internal\"}");
    assert!(gathered.value > 0.0, "{gathered:?}");
    assert!(one(&p, "process_resident_memory_bytes").value > 1e6);
}
