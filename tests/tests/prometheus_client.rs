//! `outputs.prometheus_client` scraped by a real Prometheus (Debian's
//! `prometheus`, on a free loopback port): graft's `inputs.cpu`,
//! `inputs.mem` and `inputs.statsd` queried back through `/api/v1/query`
//! with Telegraf's names, labels and TYPEs; HTTPS with basic
//! authentication or mutual TLS scraped by Prometheus (and refused without
//! the credentials or certificate), `ip_range` refusing a scraper; a
//! cardinality explosion bounded by `max_series`; graft's own
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

/// A CA, a certificate for 127.0.0.1 and a client certificate it signed,
/// made by the openssl CLI in `dir`: `ca.pem`, `cert.pem`, `key.pem`,
/// `client.pem`, `client.key`.
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
    // An X.509 v3 client certificate (webpki refuses v1 ones).
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
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
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=scraper",
        "-keyout",
        "client.key",
        "-out",
        "client.csr",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "client.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "client.ext",
        "-out",
        "client.pem",
    ]);
}

#[test]
fn prometheus_scrapes_https_with_basic_auth_or_a_client_certificate_and_is_refused_without_ip_range_refuses_others()
 {
    let certs = tempfile::tempdir().unwrap();
    certificates(certs.path());
    let dir = certs.path().display().to_string();
    let (secure, ranged, mutual) = (free_port(), free_port(), free_port());
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
[[outputs.prometheus_client]]
  listen = \"127.0.0.1:{mutual}\"
  tls_cert = \"{dir}/cert.pem\"
  tls_key = \"{dir}/key.pem\"
  tls_allowed_cacerts = [\"{dir}/ca.pem\"]
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
    let mutual_target = format!("127.0.0.1:{mutual}");
    let certified = format!(
        "{}    scheme: https\n    tls_config:\n      ca_file: {dir}/ca.pem\n      cert_file: {dir}/client.pem\n      key_file: {dir}/client.key\n",
        scrape_job("certified", &mutual_target, "1s")
    );
    let uncertified = format!(
        "{}    scheme: https\n    tls_config:\n      ca_file: {dir}/ca.pem\n",
        scrape_job("uncertified", &mutual_target, "1s")
    );
    let p = Prometheus::start_with(&format!(
        "scrape_configs:\n{authed}{anonymous}{plain}{certified}{uncertified}"
    ));

    let total = one(&p, "mem_total{job=\"authed\"}");
    assert_eq!(total.value, mem_total());
    // The other two jobs are down: 401 without credentials, and plain
    // HTTP sent to the TLS port.
    // Mutual TLS: the scraper with a client certificate the CA signed
    // gets the metrics.
    let total = one(&p, "mem_total{job=\"certified\"}");
    assert_eq!(total.value, mem_total());
    // The others are down: 401 without credentials, plain HTTP sent to
    // the TLS port, no client certificate where one is required.
    p.wait_for(
        "count(up{job=~\"anonymous|plain|uncertified\"} == 0) == 3",
        Duration::from_secs(20),
    );
    let up = p.query("up == 0");
    let mut down: Vec<&str> = up.iter().filter_map(|s| s.label("job")).collect();
    down.sort_unstable();
    assert_eq!(down, ["anonymous", "plain", "uncertified"], "{up:?}");
    let targets = p.api("/api/v1/targets");
    let error = targets["activeTargets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["labels"]["job"] == "anonymous")
        .map(|t| t["lastError"].to_string())
        .unwrap();
    assert!(error.contains("401"), "{error}");
    assert!(
        p.query("mem_total{job=~\"anonymous|plain|uncertified\"}")
            .is_empty()
    );

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

#[test]
fn a_cardinality_explosion_keeps_max_series_counts_every_other_series_and_logs_once() {
    let (port, statsd) = (free_port(), free_port());
    let agent = Agent::start(&format!(
        "[agent]
  interval = \"1s\"
  flush_interval = \"1s\"
[[inputs.statsd]]
  protocol = \"tcp\"
  service_address = \"127.0.0.1:{statsd}\"
[[inputs.internal]]
  collect_memstats = false
[[outputs.prometheus_client]]
  listen = \"127.0.0.1:{port}\"
  max_series = 100
  collectors_exclude = [\"gocollector\", \"process\"]
  namedrop = [\"internal*\"]
[[outputs.file]]
  files = [\"{{dir}}/internal.out\"]
  namepass = [\"internal_write\"]
"
    ));
    agent.wait_log("serving metrics for Prometheus", Duration::from_secs(20));
    // 500 distinct gauges, each emitted once (statsd forgets a gauge once
    // emitted): 100 kept, 400 refused.
    let lines: String = (0..500)
        .map(|i| format!("graft_explode_{i}:{i}|g\n"))
        .collect();
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", statsd)).unwrap();
    std::io::Write::write_all(&mut tcp, lines.as_bytes()).unwrap();
    drop(tcp);

    let start = Instant::now();
    let hits = loop {
        let latest = agent.points("internal.out").into_iter().rfind(|p| {
            p.name == "internal_write"
                && p.tags.get("output").map(String::as_str) == Some("prometheus_client")
        });
        let hits = latest.as_ref().and_then(|p| p.int("series_limit_hits"));
        if hits == Some(400) || start.elapsed() > Duration::from_secs(20) {
            break (hits, latest);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(hits.0, Some(400), "{:?}\n{}", hits.1, agent.log());
    assert_eq!(hits.1.unwrap().int("series"), Some(100));
    let body = http()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let served: Vec<&str> = body
        .lines()
        .filter(|l| l.starts_with("graft_explode_"))
        .collect();
    assert_eq!(served.len(), 100, "{body}");
    let log = agent.log();
    assert_eq!(log.matches("max_series reached").count(), 1, "{log}");
}
