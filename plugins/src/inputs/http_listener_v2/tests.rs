//! Tests of `inputs.http_listener_v2` on loopback: remote write and line
//! protocol bodies, the limits, the checks and durable answers.

use std::sync::atomic::Ordering;

use graft_api::Received;
use prost::Message;
use tokio::sync::mpsc;

use super::*;
use crate::prometheus::remote::{Label, Sample, TimeSeries, WriteRequest, compress};

async fn listener(extra: &str) -> (HttpListenerV2, MetricSink, mpsc::Receiver<Received>, String) {
    let text = format!("service_address = \"127.0.0.1:0\"\n{extra}");
    let config = crate::config::parse(toml::from_str(&text).unwrap()).unwrap();
    let mut l = HttpListenerV2::new(config).unwrap();
    let (sink, rx) = MetricSink::channel(64, Arc::new(|| 0));
    l.start(sink.clone()).await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    (l, sink, rx, base)
}

fn series(name: &str, labels: &[(&str, &str)], value: f64, ms: i64) -> TimeSeries {
    let mut all = vec![Label {
        name: "__name__".into(),
        value: name.into(),
    }];
    all.extend(labels.iter().map(|(k, v)| Label {
        name: (*k).into(),
        value: (*v).into(),
    }));
    TimeSeries {
        labels: all,
        samples: vec![Sample {
            value,
            timestamp: ms,
        }],
    }
}

fn snappy(ts: Vec<TimeSeries>) -> Vec<u8> {
    compress(
        &WriteRequest {
            timeseries: ts,
            metadata: vec![],
        }
        .encode_to_vec(),
    )
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

const REMOTE: &str = "data_format = \"prometheusremotewrite\"\npaths = [\"/api/v1/write\"]";

async fn post(url: &str, body: Vec<u8>, encoding: &str) -> (u16, String) {
    let r = client()
        .post(url)
        .header("Content-Encoding", encoding)
        .header("X-Source", "edge-1")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn remote_write_lands_with_labels_as_tags() {
    let extra = format!(
        "{REMOTE}\npath_tag = true\nhttp_success_code = 200\n\
         [http_header_tags]\nX-Source = \"source\"\n[http_headers]\nX-Served-By = \"graft\""
    );
    let (mut l, _sink, mut rx, base) = listener(&extra).await;
    let body = snappy(vec![
        series(
            "node_load1",
            &[("instance", "n:9100"), ("job", "node")],
            0.25,
            1_700_000_000_123,
        ),
        series("up", &[("job", "node")], 1.0, 1_700_000_000_124),
    ]);
    let r = client()
        .post(format!("{base}/api/v1/write"))
        .header("Content-Encoding", "snappy")
        .header("X-Source", "edge-1")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["x-served-by"], "graft");
    let batch = rx.recv().await.unwrap().batch;
    assert_eq!(batch.len(), 2);
    let m = batch.get(0);
    assert_eq!(m.name(), "prometheus_remote_write");
    assert_eq!(
        m.tags().collect::<Vec<_>>(),
        [
            ("http_listener_v2_path", "/api/v1/write"),
            ("instance", "n:9100"),
            ("job", "node"),
            ("source", "edge-1")
        ]
    );
    assert_eq!(m.field("node_load1").and_then(|v| v.as_f64()), Some(0.25));
    assert_eq!(m.timestamp(), 1_700_000_000_123_000_000);
    l.stop().await;
}

#[tokio::test]
async fn a_body_with_bad_series_is_refused_whole_and_counted() {
    let (mut l, sink, mut rx, base) = listener(&format!("{REMOTE}\nmax_labels = 3")).await;
    let body = snappy(vec![
        series("good", &[("a", "1")], 1.0, 1),
        series("", &[("a", "1")], 1.0, 1),
        series("wide", &[("a", "1"), ("b", "2"), ("c", "3")], 1.0, 1),
        series("good", &[("a", "2")], 2.0, 1),
    ]);
    let (status, text) = post(&format!("{base}/api/v1/write"), body, "snappy").await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("2 parts"), "{text}");
    // All or nothing: the good series are not kept either (a sender
    // retries the 400 and would land them twice).
    assert!(rx.try_recv().is_err());
    assert_eq!(sink.malformed_count(), 2);
    assert_eq!(sink.counter("labels_limit_hits").load(Ordering::Relaxed), 1);
    l.stop().await;
}

#[tokio::test]
async fn bodies_are_bounded_before_and_after_decompression() {
    let (mut l, sink, _rx, base) = listener(&format!("{REMOTE}\nmax_body_size = \"1KiB\"")).await;
    let url = format!("{base}/api/v1/write");
    // A snappy header that claims 4 GiB in a few bytes.
    let mut lie = vec![0xff, 0xff, 0xff, 0xff, 0x0f];
    lie.extend_from_slice(&[0; 8]);
    assert_eq!(post(&url, lie, "snappy").await.0, 413);
    // 100 KiB of zeros: a tiny gzip body, too large once inflated.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, &[0u8; 100 << 10]).unwrap();
    assert_eq!(post(&url, gz.finish().unwrap(), "gzip").await.0, 413);
    assert_eq!(post(&url, vec![0; 2048], "identity").await.0, 413);
    assert_eq!(post(&url, b"x".to_vec(), "br").await.0, 415);
    assert_eq!(post(&url, b"\x05garbage".to_vec(), "snappy").await.0, 400);
    assert_eq!(
        sink.counter("body_size_limit_hits").load(Ordering::Relaxed),
        3
    );
    l.stop().await;
}

#[tokio::test]
async fn paths_methods_and_credentials_are_checked() {
    let (mut l, sink, mut rx, base) =
        listener("basic_username = \"u\"\nbasic_password = \"p\"").await;
    let c = client();
    let line = "cpu,host=a usage_idle=97.5 1700000000000000000\n";
    let status = |r: reqwest::Response| r.status().as_u16();
    let r = c
        .post(format!("{base}/other"))
        .basic_auth("u", Some("p"))
        .body(line)
        .send();
    assert_eq!(status(r.await.unwrap()), 404);
    let r = c.post(format!("{base}/telegraf")).body(line).send();
    assert_eq!(status(r.await.unwrap()), 401);
    let r = c
        .post(format!("{base}/telegraf"))
        .basic_auth("u", Some("x"))
        .body(line)
        .send();
    assert_eq!(status(r.await.unwrap()), 401);
    let r = c
        .get(format!("{base}/telegraf"))
        .basic_auth("u", Some("p"))
        .send();
    assert_eq!(status(r.await.unwrap()), 405);
    let r = c
        .put(format!("{base}/telegraf"))
        .basic_auth("u", Some("p"))
        .body(line)
        .send();
    assert_eq!(status(r.await.unwrap()), 204);
    let m = rx.recv().await.unwrap().batch;
    assert_eq!(m.get(0).name(), "cpu");
    // The scheme in any case, as Go compares it.
    let r = c
        .post(format!("{base}/telegraf"))
        .header("Authorization", "bASIC dTpw")
        .body(line)
        .send();
    assert_eq!(status(r.await.unwrap()), 204);
    assert_eq!(rx.recv().await.unwrap().batch.get(0).name(), "cpu");
    assert_eq!(
        sink.counter("unauthorized_requests")
            .load(Ordering::Relaxed),
        2
    );
    l.stop().await;
}

#[tokio::test]
async fn the_query_string_can_be_the_data() {
    let (mut l, _sink, mut rx, base) =
        listener("data_source = \"query\"\nmethods = [\"GET\"]").await;
    let r = client()
        .get(format!(
            "{base}/telegraf?cpu,host=a%20usage=0.5+1700000000000000000"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let b = rx.recv().await.unwrap().batch;
    assert_eq!(b.get(0).tag("host"), Some("a"));
    assert_eq!(b.get(0).timestamp(), 1_700_000_000_000_000_000);
    l.stop().await;
}

#[tokio::test]
async fn durable_answers_wait_for_the_outputs() {
    let extra = "acknowledge = \"durable\"\nacknowledge_timeout = \"300ms\"";
    let (mut l, sink, mut rx, base) = listener(extra).await;
    let url = format!("{base}/telegraf");
    let line = b"m v=1 1\n".to_vec();
    // The pipeline holds the batch past the timeout: 503, retry later.
    let held = tokio::spawn(async move {
        let r = rx.recv().await.unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        drop(r);
        rx
    });
    assert_eq!(post(&url, line.clone(), "").await.0, 503);
    let mut rx = held.await.unwrap();
    // Taken and settled: the success code.
    let settled = tokio::spawn(async move { drop(rx.recv().await) });
    assert_eq!(post(&url, line, "").await.0, 204);
    settled.await.unwrap();
    assert_eq!(
        sink.counter("acknowledge_timeouts").load(Ordering::Relaxed),
        1
    );
    l.stop().await;
}

#[test]
fn config_errors_name_the_key() {
    let err = |text: &str| {
        let r = crate::builtin::validate::<HttpListenerV2>(toml::from_str(text).unwrap());
        format!("{:#}", r.expect_err(text))
    };
    assert!(err("pathz = []").contains("pathz"));
    assert!(err("tls_cert = \"c.pem\"").contains("tls_key"));
    assert!(err("service_address = \"unix:///tmp/x.sock\"").contains("service_address"));
    assert!(err("data_source = \"header\"").contains("data_source"));
    assert!(err("basic_username = \"u\"").contains("basic_password"));
    assert!(err("http_success_code = 500").contains("http_success_code"));
    assert!(
        err("data_format = \"prometheusremotewrite\"\nprometheus_metric_version = 7")
            .contains("prometheus_metric_version")
    );
    assert!(err("paths = [\"nope\"]").contains("paths"));
}

#[tokio::test]
async fn collectd_skips_insecure_and_unknown_value_lists_as_telegraf_does() {
    use crate::collectd::MAX_STRING_SIZE;
    use crate::collectd::encode::Packet;
    use crate::collectd::wire::{Value, part};
    let dir = tempfile::tempdir().unwrap();
    let typesdb = dir.path().join("types.db");
    std::fs::write(&typesdb, "load shortterm:GAUGE:0:U\n").unwrap();
    let extra = format!(
        "data_format = \"collectd\"\ncollectd_security_level = \"sign\"\n\
         collectd_typesdb = [{:?}]\ncollectd_auth_file = {:?}",
        typesdb.to_str().unwrap(),
        dir.path().join("auth").to_str().unwrap()
    );
    let (mut l, sink, _rx, base) = listener(&extra).await;
    let url = format!("{base}/telegraf");
    let plain = Packet::new()
        .ident("h", "load", "", "load", "")
        .time(1)
        .values(&[Value::Gauge(1.0)]);
    // Unsigned at level "sign": skipped, not an error (go-collectd drops
    // it silently and Telegraf answers 2xx).
    let (status, text) = post(&url, plain.bytes().to_vec(), "identity").await;
    assert!((200..300).contains(&status), "{status} {text}");
    let counter = |name: &'static str| sink.counter(name).load(Ordering::Relaxed);
    assert_eq!(counter("collectd_insecure_packets"), 1);
    assert_eq!(sink.malformed_count(), 0);
    l.stop().await;

    let extra = format!(
        "data_format = \"collectd\"\ncollectd_typesdb = [{:?}]",
        typesdb.to_str().unwrap()
    );
    let (mut l, sink, mut rx, base) = listener(&extra).await;
    let url = format!("{base}/telegraf");
    let unknown = Packet::new()
        .ident("h", "cpu", "", "cpu", "")
        .time(1)
        .values(&[Value::Derive(1)]);
    let both = Packet::from_bytes(unknown.bytes())
        .ident("h", "load", "", "load", "")
        .values(&[Value::Gauge(0.5)]);
    let (status, text) = post(&url, both.bytes().to_vec(), "identity").await;
    assert!((200..300).contains(&status), "{status} {text}");
    assert_eq!(rx.recv().await.unwrap().batch.len(), 1);
    let counter = |name: &'static str| sink.counter(name).load(Ordering::Relaxed);
    assert_eq!(counter("collectd_unknown_types"), 1);
    assert_eq!(sink.malformed_count(), 0);
    // A limit hit is refused and counted as collectd's, not remote write's.
    let long = Packet::new().string(part::HOST, &"x".repeat(MAX_STRING_SIZE));
    let (status, text) = post(&url, long.bytes().to_vec(), "identity").await;
    assert_eq!(status, 400, "{text}");
    assert_eq!(counter("collectd_string_size_limit_hits"), 1);
    assert_eq!(counter("labels_limit_hits"), 0);
    l.stop().await;
}
