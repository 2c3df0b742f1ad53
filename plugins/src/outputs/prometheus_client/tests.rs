//! Unit tests of the output: a real server on 127.0.0.1 port 0, fed by
//! `write` and scraped over plain HTTP/1.1.

use std::sync::atomic::Ordering;

use base64::Engine as _;
use graft_core::{BatchBuilder, MetricKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

fn client(extra: &str) -> PrometheusClient {
    let text = if extra.contains("listen") {
        extra.to_owned()
    } else {
        format!("listen = \"127.0.0.1:0\"\n{extra}")
    };
    let config: Config = crate::config::parse(toml::from_str(&text).unwrap()).unwrap();
    PrometheusClient::new(config).unwrap()
}

fn error(text: &str) -> String {
    format!("{:#}", build(toml::from_str(text).unwrap()).err().unwrap())
}

/// One request; the status line's code, the headers (lower-case names)
/// and the body.
async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let code = head[9..12].parse().unwrap();
    (code, head, raw[split + 4..].to_vec())
}

fn batch() -> Batch {
    let mut b = BatchBuilder::new();
    b.metric("cpu", 0)
        .tag("cpu", "cpu-total")
        .tag("host", "h")
        .field("usage_idle", 97.5);
    b.metric("requests", 0)
        .kind(MetricKind::Counter)
        .tag("metric_type", "counter")
        .field("value", 7i64);
    b.finish()
}

async fn serving(extra: &str) -> (PrometheusClient, SocketAddr, Arc<Counters>) {
    let mut c = client(extra);
    let counters = Arc::new(Counters::default());
    c.attach_counters(counters.clone());
    c.connect().await.unwrap();
    c.write(&batch()).await.unwrap();
    let addr = c.local_addr().unwrap();
    (c, addr, counters)
}

fn count(counters: &Counters, name: &str) -> u64 {
    counters
        .counter(Box::leak(name.to_owned().into_boxed_str()))
        .load(Ordering::Relaxed)
}

#[tokio::test]
async fn scrapes_get_the_text_format_with_types_and_process_metrics() {
    let (mut c, addr, counters) = serving("").await;
    let (code, head, body) = get(addr, "/metrics", &[]).await;
    let body = String::from_utf8(body).unwrap();
    assert_eq!(code, 200);
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(
        body.contains(
            "# TYPE cpu_usage_idle untyped\ncpu_usage_idle{cpu=\"cpu-total\",host=\"h\"} 97.5\n"
        ),
        "{body}"
    );
    assert!(
        body.contains("# TYPE requests_value counter\nrequests_value{metric_type=\"counter\"} 7\n"),
        "{body}"
    );
    assert!(
        body.contains("# TYPE process_resident_memory_bytes gauge\n"),
        "{body}"
    );
    assert!(
        body.contains("# TYPE process_cpu_seconds_total counter\n"),
        "{body}"
    );
    assert!(!body.contains("# EOF"));
    assert_eq!(count(&counters, "scrapes"), 1);
    assert_eq!(count(&counters, "series"), 2);
    // Other paths: a short text, no metrics.
    let (code, _, body) = get(addr, "/", &[]).await;
    assert_eq!(code, 200);
    assert!(!String::from_utf8(body).unwrap().contains("cpu_usage_idle"));
    c.close().await.unwrap();
}

#[tokio::test]
async fn openmetrics_gzip_headers_and_excluded_process() {
    let (mut c, addr, _) = serving(
        "collectors_exclude = [\"gocollector\", \"process\"]\npath = \"/m\"\n[http_headers]\nX-Graft = \"yes\"\n",
    )
    .await;
    let (code, head, body) = get(
        addr,
        "/m",
        &[("Accept", "application/openmetrics-text; version=1.0.0")],
    )
    .await;
    let body = String::from_utf8(body).unwrap();
    assert_eq!(code, 200);
    assert!(
        head.contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    assert!(head.contains("x-graft: yes"), "{head}");
    assert!(
        body.contains(
            "# TYPE requests_value counter\nrequests_value_total{metric_type=\"counter\"} 7.0\n"
        ),
        "{body}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    assert!(!body.contains("process_"), "{body}");

    let (_, head, body) = get(addr, "/m", &[("Accept-Encoding", "gzip")]).await;
    assert!(head.contains("content-encoding: gzip"), "{head}");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut text).unwrap();
    assert!(
        text.contains("cpu_usage_idle{cpu=\"cpu-total\",host=\"h\"} 97.5\n"),
        "{text}"
    );
    c.close().await.unwrap();
}

#[tokio::test]
async fn basic_auth_then_ip_range_refuse_and_count() {
    let (mut c, addr, counters) = serving("basic_username = \"u\"\nbasic_password = \"p\"\n").await;
    let (code, head, body) = get(addr, "/metrics", &[]).await;
    assert_eq!(code, 401);
    assert!(head.contains("www-authenticate: basic"), "{head}");
    assert!(!String::from_utf8(body).unwrap().contains("cpu_usage_idle"));
    let wrong = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("u:x")
    );
    assert_eq!(
        get(addr, "/metrics", &[("Authorization", &wrong)]).await.0,
        401
    );
    let right = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("u:p")
    );
    let (code, _, body) = get(addr, "/metrics", &[("Authorization", &right)]).await;
    assert_eq!(code, 200);
    assert!(String::from_utf8(body).unwrap().contains("cpu_usage_idle"));
    assert_eq!(count(&counters, "requests_unauthorized"), 2);
    // The scheme in any case, as Go takes it.
    let lower = right.replacen("Basic", "basic", 1);
    assert_eq!(
        get(addr, "/metrics", &[("Authorization", &lower)]).await.0,
        200
    );
    c.close().await.unwrap();

    let (mut c, addr, counters) =
        serving("ip_range = [\"10.0.0.0/8\", \"192.168.0.0/16\"]\n").await;
    let (code, _, body) = get(addr, "/metrics", &[]).await;
    assert_eq!(code, 403);
    assert!(!String::from_utf8(body).unwrap().contains("cpu_usage_idle"));
    assert_eq!(count(&counters, "requests_forbidden"), 1);
    c.close().await.unwrap();
    let (mut c, addr, _) = serving("ip_range = [\"127.0.0.0/8\"]\n").await;
    assert_eq!(get(addr, "/metrics", &[]).await.0, 200);
    c.close().await.unwrap();
}

#[tokio::test]
async fn a_port_in_use_is_an_error_naming_listen_and_close_frees_it() {
    let (mut first, addr, _) = serving("").await;
    let mut second = client(&format!("listen = \"{addr}\""));
    let e = second.connect().await.unwrap_err().to_string();
    assert!(e.contains("listen") && e.contains(&addr.to_string()), "{e}");
    first.close().await.unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[test]
fn config_errors_name_the_key() {
    assert!(error("metric_version = 3").contains("metric_version"));
    assert!(error("listen = \"vsock://:9273\"").contains("listen"));
    assert!(error("ip_range = [\"10.0.0.1\"]").contains("ip_range[0]"));
    assert!(error("collectors_exclude = [\"jvm\"]").contains("collectors_exclude[0]"));
    assert!(error("name_sanitization = \"utf8\"").contains("name_sanitization"));
    assert!(error("tls_cert = \"/x.pem\"").contains("tls_key"));
    assert!(error("tls_cert = \"/nonexistent.pem\"\ntls_key = \"/k.pem\"").contains("tls_cert"));
    assert!(error("expiration_interval = \"soon\"").contains("expiration_interval"));
    assert!(error("max_series = 0").contains("max_series"));
    assert!(error("[metric_types]\ncounter = [\"[\"]").contains("metric_types.counter"));
    assert!(error("[http_headers]\n\"bad header\" = \"x\"").contains("http_headers"));
    assert!(error("lisen = \":1\"").contains("lisen"));
    // Telegraf's own keys all parse.
    let telegraf = "listen = \":9273\"\nread_timeout = \"10s\"\nwrite_timeout = \"10s\"\nmetric_version = 1\nbasic_username = \"Foo\"\nbasic_password = \"Bar\"\nip_range = []\npath = \"/metrics\"\nexpiration_interval = \"60s\"\ncollectors_exclude = [\"gocollector\", \"process\"]\nstring_as_label = true\nname_sanitization = \"legacy\"\nexport_timestamp = false\nhttp_headers = {\"X-Special-Header\" = \"Special-Value\"}\n[metric_types]\ncounter = []\ngauge = []\n";
    build(toml::from_str(telegraf).unwrap()).unwrap();
}

#[tokio::test]
async fn a_write_shows_at_the_next_scrape_whatever_was_served_before() {
    let (mut c, addr, counters) = serving("collectors_exclude = [\"process\"]").await;
    let first = get(addr, "/metrics", &[]).await.2;
    assert_eq!(get(addr, "/metrics", &[]).await.2, first);
    let mut b = BatchBuilder::new();
    b.metric("cpu", 1)
        .tag("cpu", "cpu-total")
        .tag("host", "h")
        .field("usage_idle", 12.5);
    c.write(&b.finish()).await.unwrap();
    let body = String::from_utf8(get(addr, "/metrics", &[]).await.2).unwrap();
    assert!(
        body.contains("cpu_usage_idle{cpu=\"cpu-total\",host=\"h\"} 12.5\n"),
        "{body}"
    );
    // Each format is its own body.
    let om = get(
        addr,
        "/metrics",
        &[("Accept", "application/openmetrics-text")],
    )
    .await
    .2;
    assert!(String::from_utf8(om).unwrap().ends_with("# EOF\n"));
    assert_eq!(count(&counters, "scrapes"), 4);
    c.close().await.unwrap();
}

#[tokio::test]
async fn a_scraped_process_family_is_not_written_twice() {
    // What inputs.prometheus (v2) keeps of a Go exporter's process metrics.
    let (mut c, addr, _) = serving("").await;
    let mut b = BatchBuilder::new();
    b.metric("process", 1)
        .kind(MetricKind::Counter)
        .tag("url", "http://exporter/metrics")
        .field("cpu_seconds_total", 3.5);
    c.write(&b.finish()).await.unwrap();
    let body = String::from_utf8(get(addr, "/metrics", &[]).await.2).unwrap();
    assert_eq!(
        body.matches("# TYPE process_cpu_seconds_total ").count(),
        1,
        "{body}"
    );
    assert!(
        body.contains("process_cpu_seconds_total{url=\"http://exporter/metrics\"} 3.5\n"),
        "{body}"
    );
    // graft's own families the collection lacks are still served.
    assert!(
        body.contains("# TYPE process_resident_memory_bytes gauge\n"),
        "{body}"
    );
    c.close().await.unwrap();
}
