//! The exporter against graft's own receiver on loopback, over gRPC and
//! HTTP (protobuf, JSON, gzip or not): what lands is what was written,
//! kinds included; a receiver that is down or refuses makes the write
//! fail with the right class.

use std::sync::Arc;
use std::time::Duration;

use graft_api::{CallError, Input, MetricSink, Output};
use graft_core::{BatchBuilder, MetricKind, WriteError};

use super::{Config, OpenTelemetry};
use crate::inputs::opentelemetry as receiver;

fn output(text: &str) -> OpenTelemetry {
    let config: Config = crate::config::parse(toml::from_str(text).unwrap()).unwrap();
    OpenTelemetry::new(config).unwrap()
}

fn batch() -> graft_core::Batch {
    let mut b = BatchBuilder::new();
    b.metric("cpu", 1_000)
        .kind(MetricKind::Gauge)
        .tag("host.name", "h1")
        .tag("cpu", "cpu0")
        .field("usage_idle", 97.5)
        .field("usage_user", 2i64);
    b.metric("hits", 2_000)
        .kind(MetricKind::Counter)
        .tag("path", "/")
        .field("counter", 7i64);
    b.metric("weird", 3_000)
        .kind(MetricKind::Histogram)
        .field("sum", 1.0);
    b.finish()
}

#[tokio::test]
async fn exports_land_in_a_receiver_over_grpc_and_http() {
    let text = "service_address = \"127.0.0.1:0\"\nhttp_service_address = \"127.0.0.1:0\"";
    let config: receiver::Config = crate::config::parse(toml::from_str(text).unwrap()).unwrap();
    let mut input = receiver::OpenTelemetry::new(config).unwrap();
    let (sink, mut rx) = MetricSink::channel(16, Arc::new(|| 0));
    input.start(sink).await.unwrap();
    let grpc = input.grpc_addr().unwrap();
    let http = input.http_addr().unwrap();
    for options in [
        format!("service_address = \"{grpc}\""),
        format!("service_address = \"{grpc}\"\ncompression = \"none\""),
        format!("service_address = \"http://{http}/v1/metrics\""),
        format!(
            "service_address = \"http://{http}/v1/metrics\"\nencoding_type = \"json\"\ncompression = \"none\""
        ),
    ] {
        let mut out = output(&options);
        out.probe().await.unwrap();
        // The histogram without a count is rejected alone.
        match out.write(&batch()).await {
            Err(CallError::Returned(WriteError::Partial {
                accepted, rejected, ..
            })) => assert_eq!((accepted, rejected), (vec![0, 1], vec![2]), "{options}"),
            other => panic!("{options}: {other:?}"),
        }
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap()
            .batch;
        let mut lines: Vec<String> = got
            .iter()
            .map(|m| {
                let tags: Vec<String> = m.tags().map(|(k, v)| format!("{k}={v}")).collect();
                let fields: Vec<String> = m.fields().map(|(k, v)| format!("{k}={v:?}")).collect();
                format!(
                    "{} {:?} {} {} {}",
                    m.name(),
                    m.kind(),
                    tags.join(","),
                    fields.join(","),
                    m.timestamp()
                )
            })
            .collect();
        lines.sort();
        assert_eq!(
            lines,
            [
                "cpu_usage_idle Gauge cpu=cpu0,host.name=h1 gauge=Float(97.5) 1000",
                "cpu_usage_user Gauge cpu=cpu0,host.name=h1 gauge=Int(2) 1000",
                "hits Counter path=/ counter=Int(7) 2000",
            ],
            "{options}"
        );
    }
    input.stop().await;
}

#[tokio::test]
async fn a_receiver_that_is_down_or_refuses_fails_the_write() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    for options in [
        format!("service_address = \"127.0.0.1:{port}\"\ntimeout = \"1s\""),
        format!("service_address = \"http://127.0.0.1:{port}/v1/metrics\"\ntimeout = \"1s\""),
    ] {
        let mut out = output(&options);
        assert!(out.probe().await.is_err(), "{options}");
        match out.write(&batch()).await {
            Err(CallError::Returned(WriteError::Retry(_))) => {}
            other => panic!("{options}: {other:?}"),
        }
    }
    // A receiver that refuses the request for good: rejected, not retried.
    let text =
        "service_address = \"\"\nhttp_service_address = \"127.0.0.1:0\"\nmax_data_points = 1";
    let config: receiver::Config = crate::config::parse(toml::from_str(text).unwrap()).unwrap();
    let mut input = receiver::OpenTelemetry::new(config).unwrap();
    let (sink, _rx) = MetricSink::channel(16, Arc::new(|| 0));
    input.start(sink).await.unwrap();
    let http = input.http_addr().unwrap();
    let mut out = output(&format!("service_address = \"http://{http}/v1/metrics\""));
    match out.write(&batch()).await {
        Err(CallError::Returned(WriteError::Reject(m))) => assert!(m.contains("400"), "{m}"),
        other => panic!("{other:?}"),
    }
    input.stop().await;
}

#[test]
fn config_errors_name_the_key() {
    let err = |text: &str| {
        let config: Config = crate::config::parse(toml::from_str(text).unwrap()).unwrap();
        format!("{:#}", OpenTelemetry::new(config).err().unwrap())
    };
    assert!(err("[coralogix]\nprivate_key = \"k\"").contains("coralogix"));
    assert!(err("insecure_skip_verify = true").contains("insecure_skip_verify"));
    assert!(err("[headers]\n\"bad key\" = \"v\"").contains("headers"));
    assert!(err("encoding_type = \"json\"").contains("encoding_type"));
    assert!(err("tls_cert = \"/x\"").contains("tls_key"));
    let typo = crate::config::parse::<Config>(toml::from_str("compression = \"zstd\"").unwrap());
    assert!(format!("{:#}", typo.unwrap_err()).contains("compression"));
}

/// A request too large for the receiver (HTTP 413) is sent again in halves
/// until it fits; a single metric still too large is rejected alone.
#[tokio::test]
async fn a_request_too_large_is_sent_in_halves_and_a_huge_metric_rejected_alone() {
    let text = "service_address = \"\"\nhttp_service_address = \"127.0.0.1:0\"\nmax_msg_size = 400";
    let config: receiver::Config = crate::config::parse(toml::from_str(text).unwrap()).unwrap();
    let mut input = receiver::OpenTelemetry::new(config).unwrap();
    let (sink, mut rx) = MetricSink::channel(64, Arc::new(|| 0));
    input.start(sink).await.unwrap();
    let http = input.http_addr().unwrap();
    let mut b = BatchBuilder::new();
    for i in 0..8 {
        b.metric(&format!("m{i}"), 1_000 + i)
            .kind(MetricKind::Gauge)
            .tag("t", &format!("{i:0>30}"))
            .field("gauge", i as f64);
    }
    b.metric("huge", 2_000)
        .kind(MetricKind::Gauge)
        .tag("t", &"x".repeat(1000))
        .field("gauge", 1.0);
    let mut out = output(&format!(
        "service_address = \"http://{http}/v1/metrics\"\ncompression = \"none\""
    ));
    match out.write(&b.finish()).await {
        Err(CallError::Returned(WriteError::Partial {
            accepted,
            rejected,
            message,
        })) => {
            assert_eq!(accepted, (0..8).collect::<Vec<u32>>());
            assert_eq!(rejected, [8]);
            assert!(message.contains("413"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let mut names = Vec::new();
    while let Ok(Some(r)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
        names.extend(r.batch.iter().map(|m| m.name().to_owned()));
    }
    names.sort();
    assert_eq!(names, (0..8).map(|i| format!("m{i}")).collect::<Vec<_>>());
    input.stop().await;
}

#[test]
fn grpc_size_errors_are_too_large_other_resource_exhausted_retried() {
    use super::send::{SendError, grpc_error};
    let big = tonic::Status::resource_exhausted(
        "grpc: received message larger than max (5000000 vs. 4194304)",
    );
    assert!(matches!(grpc_error(&big), SendError::TooLarge(_)));
    let tonic_own = tonic::Status::out_of_range(
        "Error, decoded message length too large: found 5000000 bytes, the limit is: 4194304 bytes",
    );
    assert!(matches!(grpc_error(&tonic_own), SendError::TooLarge(_)));
    let quota = tonic::Status::resource_exhausted("quota exceeded");
    assert!(matches!(
        grpc_error(&quota),
        SendError::Write(WriteError::Retry(_))
    ));
}
