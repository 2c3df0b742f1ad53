//! The input against small HTTP targets on 127.0.0.1: good, OpenMetrics,
//! garbage, too large, failing, slow and authenticated ones, each losing
//! only its own scrape, with the counters `inputs.internal` shows.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::get;
use graft_api::counters::Counters;
use graft_api::{Input, MetricSink};
use graft_core::{Batch, FieldRef, MetricKind};

use super::Prometheus;

const GOOD: &str = "# TYPE up_total counter\nup_total{job=\"a\"} 7\n# TYPE temp gauge\ntemp 21.5\n";

async fn serve() -> SocketAddr {
    let big = "x 1\n".repeat(300);
    let router = Router::new()
        .route("/metrics", get(|| async { GOOD }))
        .route(
            "/om",
            get(|| async {
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0",
                    )],
                    "# TYPE c counter\nc_total 3 1700000000.5\n# EOF\n",
                )
            }),
        )
        .route(
            "/garbage",
            get(|| async {
                b"\x00\xff{{{ not metrics\n\x89PNG\r\n\nhalf{a=\"1\" 2\ngood_one 1\n".to_vec()
            }),
        )
        .route("/big", get(move || async move { big }))
        .route(
            "/fail",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "no") }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                GOOD
            }),
        )
        .route(
            "/auth",
            get(|headers: HeaderMap| async move {
                match headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                {
                    Some("Bearer s3cret") => (StatusCode::OK, GOOD),
                    _ => (StatusCode::UNAUTHORIZED, ""),
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// The input for `table` (TOML), started with a sink whose counters are
/// returned.
async fn input(table: &str) -> (Prometheus, Arc<Counters>, MetricSink) {
    let config = crate::config::parse(toml::from_str(table).unwrap()).unwrap();
    let mut p = Prometheus::new(&config).unwrap();
    let counters = Arc::new(Counters::default());
    let (sink, _rx) = MetricSink::channel(1, Arc::new(|| 0));
    let sink = sink.with_counters(counters.clone());
    p.start(sink.clone()).await.unwrap();
    (p, counters, sink)
}

fn counter(c: &Counters, name: &str) -> u64 {
    c.snapshot()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map_or_else(|| panic!("no counter {name}"), |(_, v)| v)
}

fn rows(batch: &Batch) -> Vec<String> {
    batch
        .iter()
        .map(|m| {
            let tags: Vec<String> = m.tags().map(|(k, v)| format!("{k}={v}")).collect();
            let fields: Vec<String> = m
                .fields()
                .map(|(k, v)| match v {
                    FieldRef::Float(x) => format!("{k}={x}"),
                    other => format!("{k}={other:?}"),
                })
                .collect();
            format!("{} {} {}", m.name(), tags.join(","), fields.join(","))
        })
        .collect()
}

#[tokio::test]
async fn each_bad_target_loses_only_itself() {
    let a = serve().await;
    let table = format!(
        "urls = [\"http://{a}/metrics\", \"http://{a}/garbage\", \"http://{a}/big\", \
         \"http://{a}/fail\", \"http://127.0.0.1:1/metrics\", \"http://{a}/slow\", \"http://{a}/om\"]\n\
         content_length_limit = \"1KiB\"\ntimeout = \"1s\""
    );
    let (mut p, counters, sink) = input(&table).await;
    let batch = p.gather().await.unwrap();
    let rows = rows(&batch);
    assert_eq!(
        rows,
        [
            format!("up_total job=a,url=http://{a}/metrics counter=7"),
            format!("temp url=http://{a}/metrics gauge=21.5"),
            format!("good_one url=http://{a}/garbage value=1"),
            format!("c url=http://{a}/om counter=3"),
        ]
    );
    assert_eq!(batch.get(0).kind(), MetricKind::Counter);
    assert_eq!(batch.get(1).kind(), MetricKind::Gauge);
    assert_eq!(batch.get(3).timestamp(), 1_700_000_000_500_000_000);
    assert_eq!(counter(&counters, "scrapes"), 7);
    // big, fail, closed port, slow.
    assert_eq!(counter(&counters, "scrape_errors"), 4);
    assert_eq!(counter(&counters, "body_size_limit_hits"), 1);
    assert_eq!(counter(&counters, "timeouts"), 1);
    assert_eq!(counter(&counters, "samples_read"), 4);
    // The garbage body: two lines not UTF-8 and the unclosed label set.
    assert_eq!(sink.malformed_count(), 3);
    // A second round counts again.
    p.gather().await.unwrap();
    assert_eq!(counter(&counters, "scrapes"), 14);
    assert_eq!(counter(&counters, "scrape_errors"), 8);
}

#[tokio::test]
async fn version_2_bearer_token_and_request_metrics() {
    let a = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let table = format!(
        "urls = [\"http://{a}/auth\"]\nmetric_version = 2\nurl_tag = \"target\"\n\
         bearer_token = {:?}\nenable_request_metrics = true",
        token.display().to_string()
    );
    let (mut p, counters, _sink) = input(&table).await;
    let batch = p.gather().await.unwrap();
    let rows = rows(&batch);
    assert_eq!(
        &rows[..2],
        [
            format!("prometheus job=a,target=http://{a}/auth up_total=7"),
            format!("prometheus target=http://{a}/auth temp=21.5"),
        ]
    );
    assert!(rows[2].starts_with(&format!(
        "prometheus_request target=http://{a}/auth response_time="
    )));
    assert!(
        rows[2].ends_with(&format!("content_length=Int({})", GOOD.len())),
        "{}",
        rows[2]
    );
    assert_eq!(counter(&counters, "scrape_errors"), 0);

    // `http_headers` replace what graft sets: the right token wins.
    let table = format!(
        "urls = [\"http://{a}/auth\"]\nbearer_token_string = \"wrong\"\n\
         [http_headers]\nAuthorization = \"Bearer s3cret\""
    );
    let (mut p, _, _sink) = input(&table).await;
    assert_eq!(p.gather().await.unwrap().len(), 2);

    let table = format!("urls = [\"http://{a}/auth\"]\nbearer_token_string = \"wrong\"");
    let (mut p, counters, _sink) = input(&table).await;
    assert!(p.gather().await.unwrap().is_empty());
    assert_eq!(counter(&counters, "scrape_errors"), 1);
}

#[tokio::test]
async fn too_many_samples_refuse_the_body_and_long_lines_cost_themselves() {
    let a = serve().await;
    let table = format!(
        "urls = [\"http://{a}/metrics\", \"http://{a}/big\"]\nmax_samples = 10\nmax_line_size = 18"
    );
    let (mut p, counters, sink) = input(&table).await;
    let batch = p.gather().await.unwrap();
    // `up_total{job="a"} 7` and its TYPE line are longer than 18 bytes.
    assert_eq!(
        rows(&batch),
        [format!("temp url=http://{a}/metrics gauge=21.5")]
    );
    assert_eq!(counter(&counters, "samples_limit_hits"), 1);
    assert_eq!(counter(&counters, "line_size_limit_hits"), 2);
    assert_eq!(counter(&counters, "scrape_errors"), 1);
    assert_eq!(sink.malformed_count(), 2);
    assert_eq!(counters.counter("scrapes").load(Ordering::Relaxed), 2);
}
