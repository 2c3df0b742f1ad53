//! The receiver over real loopback sockets: OTLP/gRPC and OTLP/HTTP
//! (protobuf, JSON, gzip) land in the sink; what cannot be mapped is
//! reported as partial success; every limit is answered and counted.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use graft_api::counters::Counters;
use graft_api::{Input, MetricSink, Received};
use prost::Message;
use tokio::sync::mpsc;

use super::{Config, OpenTelemetry};
use crate::opentelemetry::proto::collector::ExportMetricsServiceRequest;
use crate::opentelemetry::proto::collector::metrics_service_client::MetricsServiceClient;
use crate::opentelemetry::proto::metrics::{
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, metric::Data, number_data_point::Value,
};

const T: u64 = 1_700_000_000_000_000_000;

fn gauge(name: &str, values: &[f64]) -> Metric {
    Metric {
        name: name.into(),
        data: Some(Data::Gauge(Gauge {
            data_points: values
                .iter()
                .map(|v| NumberDataPoint {
                    time_unix_nano: T,
                    value: Some(Value::AsDouble(*v)),
                    ..Default::default()
                })
                .collect(),
        })),
        ..Default::default()
    }
}

fn request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

struct Running {
    input: OpenTelemetry,
    rx: mpsc::Receiver<Received>,
    counters: Arc<Counters>,
}

impl Running {
    async fn start(extra: &str) -> Self {
        let text = format!(
            "service_address = \"127.0.0.1:0\"\nhttp_service_address = \"127.0.0.1:0\"\n{extra}"
        );
        let config: Config = crate::config::parse(toml::from_str(&text).unwrap()).unwrap();
        let mut input = OpenTelemetry::new(config).unwrap();
        let (sink, rx) = MetricSink::channel(16, Arc::new(|| 0));
        let counters = Arc::new(Counters::default());
        input
            .start(sink.with_counters(counters.clone()))
            .await
            .unwrap();
        Self {
            input,
            rx,
            counters,
        }
    }

    fn counter(&self, name: &str) -> u64 {
        self.counters
            .snapshot()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, v)| v)
    }

    async fn grpc(&self) -> MetricsServiceClient<tonic::transport::Channel> {
        let url = format!("http://{}", self.input.grpc_addr().unwrap());
        MetricsServiceClient::connect(url).await.unwrap()
    }

    async fn post(
        &self,
        path: &str,
        content_type: &str,
        gzip: bool,
        body: Vec<u8>,
    ) -> (u16, Vec<u8>) {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .tls_backend_rustls()
            .no_proxy()
            .build()
            .unwrap();
        let url = format!("http://{}{path}", self.input.http_addr().unwrap());
        let mut req = client.post(url).header("content-type", content_type);
        let body = if gzip {
            req = req.header("content-encoding", "gzip");
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(&body).unwrap();
            e.finish().unwrap()
        } else {
            body
        };
        let r = req.body(body).send().await.unwrap();
        (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
    }

    async fn next_names(&mut self) -> Vec<String> {
        let r = tokio::time::timeout(Duration::from_secs(5), self.rx.recv())
            .await
            .expect("a batch arrives")
            .unwrap();
        r.batch.iter().map(|m| m.name().to_owned()).collect()
    }
}

#[tokio::test]
async fn grpc_exports_land_and_unmappable_points_are_partial_success() {
    let mut r = Running::start("").await;
    let mut client = r.grpc().await;
    let exponential = Metric {
        name: "exp".into(),
        data: Some(Data::ExponentialHistogram(ExponentialHistogram {
            data_points: vec![ExponentialHistogramDataPoint::default(); 3],
            aggregation_temporality: 1,
        })),
        ..Default::default()
    };
    let answer = client
        .export(request(vec![gauge("temp", &[1.0, 2.0]), exponential]))
        .await
        .unwrap()
        .into_inner();
    let partial = answer.partial_success.expect("partial success");
    assert_eq!(partial.rejected_data_points, 3);
    assert!(
        partial.error_message.contains("exponential"),
        "{}",
        partial.error_message
    );
    assert_eq!(r.next_names().await, ["temp", "temp"]);
    assert_eq!(r.counter("data_points_received"), 2);
    assert_eq!(r.counter("data_points_rejected"), 3);
    r.input.stop().await;
}

#[tokio::test]
async fn http_takes_protobuf_json_and_gzip_and_refuses_the_rest() {
    let mut r = Running::start("max_msg_size = \"64KiB\"\nmax_data_points = 10").await;
    let body = request(vec![gauge("pb", &[1.0])]).encode_to_vec();
    let (status, answer) = r
        .post("/v1/metrics", "application/x-protobuf", true, body)
        .await;
    assert_eq!(status, 200);
    assert!(
        answer.is_empty()
            || crate::opentelemetry::proto::collector::ExportMetricsServiceResponse::decode(
                &answer[..]
            )
            .is_ok()
    );
    assert_eq!(r.next_names().await, ["pb"]);

    let json = serde_json::to_vec(&request(vec![gauge("js", &[1.0])])).unwrap();
    let (status, _) = r.post("/v1/metrics", "application/json", false, json).await;
    assert_eq!(status, 200);
    assert_eq!(r.next_names().await, ["js"]);

    // Every refusal costs only its request, and is counted.
    let (status, _) = r
        .post("/v1/metrics", "text/plain", false, b"x".to_vec())
        .await;
    assert_eq!(status, 415);
    let (status, _) = r
        .post("/v1/traces", "application/x-protobuf", false, Vec::new())
        .await;
    assert_eq!(status, 404);
    let (status, _) = r
        .post(
            "/v1/metrics",
            "application/x-protobuf",
            false,
            b"\xff\xff".to_vec(),
        )
        .await;
    assert_eq!(status, 400);
    // 1 MiB of zeros: 1 KiB gzipped, over max_msg_size once inflated.
    let (status, _) = r
        .post(
            "/v1/metrics",
            "application/x-protobuf",
            true,
            vec![0; 1 << 20],
        )
        .await;
    assert_eq!(status, 413);
    let many = request(vec![gauge("many", &[1.0; 11])]).encode_to_vec();
    let (status, body) = r
        .post("/v1/metrics", "application/x-protobuf", false, many)
        .await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert_eq!(r.counter("msg_size_limit_hits"), 1);
    assert_eq!(r.counter("data_points_limit_hits"), 1);
    assert!(r.rx.try_recv().is_err(), "nothing refused was handed on");

    let body = request(vec![gauge("after", &[1.0])]).encode_to_vec();
    let (status, _) = r
        .post("/v1/metrics", "application/x-protobuf", false, body)
        .await;
    assert_eq!(status, 200);
    assert_eq!(r.next_names().await, ["after"]);
    r.input.stop().await;
}

#[tokio::test]
async fn durable_exports_wait_for_delivery_and_fail_when_it_does_not_come() {
    let mut r = Running::start("acknowledge = \"durable\"\nacknowledge_timeout = \"1s\"").await;
    let mut client = r.grpc().await;
    // Delivered: the pipeline drops its hold, the export answers OK.
    let export = tokio::spawn(async move {
        let r = client.export(request(vec![gauge("d", &[1.0])])).await;
        (r.map(|_| ()), client)
    });
    let received = r.rx.recv().await.unwrap();
    drop(received);
    let (answer, mut client) = export.await.unwrap();
    answer.unwrap();
    // Never settled: UNAVAILABLE after acknowledge_timeout, counted.
    let export = client.export(request(vec![gauge("late", &[1.0])]));
    let (answer, held) = tokio::join!(export, r.rx.recv());
    assert_eq!(answer.unwrap_err().code(), tonic::Code::Unavailable);
    drop(held);
    assert_eq!(r.counter("acknowledge_timeouts"), 1);
    assert_eq!(r.counter("undelivered_requests"), 1);
    r.input.stop().await;
}

#[test]
fn config_errors_name_the_key() {
    let err = |text: &str| {
        let config: Config = crate::config::parse(toml::from_str(text).unwrap()).unwrap();
        format!("{:#}", OpenTelemetry::new(config).err().unwrap())
    };
    assert!(err("max_data_points = 0").contains("max_data_points"));
    assert!(err("tls_cert = \"/nonexistent\"").contains("tls_key"));
    assert!(err("service_address = \"\"").contains("service_address"));
    let typo = crate::config::parse::<Config>(toml::from_str("metrics_schema = \"v3\"").unwrap());
    assert!(format!("{:#}", typo.unwrap_err()).contains("metrics_schema"));
    // Telegraf's trace and log keys are accepted.
    let ok: Config = crate::config::parse(
        toml::from_str("span_dimensions = [\"service.name\"]\nlog_record_dimensions = []").unwrap(),
    )
    .unwrap();
    assert!(OpenTelemetry::new(ok).is_ok());
}

/// A body still arriving holds its slot: with `max_concurrent_requests =
/// 1`, another export meanwhile is answered 503 (retried by exporters) and
/// counted; once the first is done, exports go through again.
#[tokio::test]
async fn a_body_being_read_holds_its_slot() {
    use tokio::io::AsyncWriteExt;
    let mut r = Running::start("max_concurrent_requests = 1\ntimeout = \"2s\"").await;
    let body = request(vec![gauge("slow", &[1.0])]).encode_to_vec();
    let mut slow = tokio::net::TcpStream::connect(r.input.http_addr().unwrap())
        .await
        .unwrap();
    let head = format!(
        "POST /v1/metrics HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    slow.write_all(&body[..4]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let quick = request(vec![gauge("quick", &[1.0])]).encode_to_vec();
    let (status, _) = r
        .post(
            "/v1/metrics",
            "application/x-protobuf",
            false,
            quick.clone(),
        )
        .await;
    assert_eq!(status, 503);
    assert_eq!(r.counter("concurrent_requests_limit_hits"), 1);
    slow.write_all(&body[4..]).await.unwrap();
    assert_eq!(r.next_names().await, ["slow"]);
    let (status, _) = r
        .post("/v1/metrics", "application/x-protobuf", false, quick)
        .await;
    assert_eq!(status, 200);
    assert_eq!(r.next_names().await, ["quick"]);
    r.input.stop().await;
}

/// A gzipped (or large) body is inflated and decoded on a blocking thread:
/// the reactor keeps serving other tasks meanwhile.
#[tokio::test(flavor = "current_thread")]
async fn a_gzipped_body_is_decoded_off_the_reactor() {
    let body = request(vec![gauge("gz", &[1.0, 2.0])]).encode_to_vec();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&body).unwrap();
    let raw = axum::body::Bytes::from(gz.finish().unwrap());
    let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = ran.clone();
    tokio::spawn(async move { flag.store(true, std::sync::atomic::Ordering::SeqCst) });
    let decoded = super::http::decode_body(raw, true, 1 << 20, super::http::Encoding::Protobuf)
        .await
        .unwrap();
    assert_eq!(decoded.resource_metrics.len(), 1);
    assert!(
        ran.load(std::sync::atomic::Ordering::SeqCst),
        "decoding yielded to the reactor"
    );
}

/// gRPC takes its slot before tonic decodes the message: with the only slot
/// held by a slow HTTP body, an oversized gRPC export is answered
/// UNAVAILABLE at once (not decoded, so not RESOURCE_EXHAUSTED).
#[tokio::test]
async fn grpc_takes_its_slot_before_decoding() {
    use tokio::io::AsyncWriteExt;
    let mut r =
        Running::start("max_concurrent_requests = 1\ntimeout = \"2s\"\nmax_msg_size = \"64KiB\"")
            .await;
    let body = request(vec![gauge("slow", &[1.0])]).encode_to_vec();
    let mut slow = tokio::net::TcpStream::connect(r.input.http_addr().unwrap())
        .await
        .unwrap();
    let head = format!(
        "POST /v1/metrics HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    slow.write_all(&body[..4]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let big = request(vec![gauge("big", &vec![1.0; 20_000])]);
    let err = r.grpc().await.export(big).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert_eq!(r.counter("concurrent_requests_limit_hits"), 1);
    slow.write_all(&body[4..]).await.unwrap();
    assert_eq!(r.next_names().await, ["slow"]);
    let small = request(vec![gauge("small", &[1.0])]);
    r.grpc().await.export(small).await.unwrap();
    assert_eq!(r.next_names().await, ["small"]);
    r.input.stop().await;
}

/// A request whose resource attributes, copied to each of its points,
/// would write more tags than a request may cost is refused whole (400)
/// and counted, before it is mapped.
#[tokio::test]
async fn a_request_over_the_tag_budget_is_refused_whole() {
    use crate::opentelemetry::attributes::string_attribute;
    let mut r = Running::start("").await;
    let mut req = request(vec![gauge("wide", &vec![1.0; 16_500])]);
    let attributes = (0..256)
        .map(|i| string_attribute(&format!("k{i}"), "v"))
        .collect();
    req.resource_metrics[0].resource = Some(crate::opentelemetry::proto::resource::Resource {
        attributes,
        ..Default::default()
    });
    let (status, _) = r
        .post(
            "/v1/metrics",
            "application/x-protobuf",
            false,
            req.encode_to_vec(),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(r.counter("data_points_limit_hits"), 1);
    r.input.stop().await;
}
