//! Tests of `outputs.http` against a receiver on loopback that records
//! what it got and answers as a test tells it to.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use graft_core::BatchBuilder;
use prost::Message;

use super::*;
use crate::prometheus::remote::{WriteRequest, decompress};

/// The requests a receiver got: headers and body.
type Got = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

/// A receiver's requests and its URL.
#[derive(Clone)]
struct Receiver {
    got: Got,
    url: String,
}

async fn receiver(status: fn(&[u8]) -> u16) -> Receiver {
    let got: Got = Arc::default();
    let keep = got.clone();
    let app = axum::Router::new().route(
        "/write",
        axum::routing::any(move |headers: HeaderMap, body: Bytes| {
            let keep = keep.clone();
            async move {
                let code = status(&body);
                keep.lock().unwrap().push((headers, body.to_vec()));
                StatusCode::from_u16(code).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/write", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver { got, url }
}

fn output(text: &str) -> Result<Http> {
    Http::new(crate::config::parse(toml::from_str(text)?)?)
}

fn batch(n: usize) -> Batch {
    let mut b = BatchBuilder::new();
    for i in 0..n {
        b.metric("cpu", 1_700_000_000_000_000_000 + i as i64 * 1_000_000)
            .tag("host", "a")
            .field("usage_idle", i as f64);
    }
    b.finish()
}

#[tokio::test]
async fn remote_write_sends_one_snappy_request_per_batch_with_its_headers() {
    let r = receiver(|_| 204).await;
    let mut out = output(&format!(
        "url = \"{}\"\ndata_format = \"prometheusremotewrite\"\nusername = \"u\"\npassword = \"p\"\n[headers]\nX-Scope-OrgID = \"team\"",
        r.url
    ))
    .unwrap();
    out.write(&batch(3)).await.unwrap();
    let got = r.got.lock().unwrap();
    assert_eq!(got.len(), 1);
    let (h, body) = &got[0];
    assert_eq!(h["content-type"], "application/x-protobuf");
    assert_eq!(h["content-encoding"], "snappy");
    assert_eq!(h["x-prometheus-remote-write-version"], "0.1.0");
    assert_eq!(h["x-scope-orgid"], "team");
    assert_eq!(h["authorization"], "Basic dTpw");
    let req = WriteRequest::decode(decompress(body, 1 << 20).unwrap().as_slice()).unwrap();
    assert_eq!(req.timeseries.len(), 1);
    assert_eq!(req.timeseries[0].samples.len(), 3);
    assert_eq!(req.timeseries[0].labels[0].value, "cpu_usage_idle");
    assert_eq!(req.timeseries[0].samples[2].timestamp, 1_700_000_000_002);
}

#[tokio::test]
async fn a_bad_request_rejects_a_server_error_keeps() {
    let r = receiver(|_| 400).await;
    let mut out = output(&format!("url = \"{}\"", r.url)).unwrap();
    let e = out.write(&batch(2)).await.unwrap_err();
    assert!(
        matches!(e, CallError::Returned(WriteError::Reject(_))),
        "{e:?}"
    );
    let r = receiver(|_| 503).await;
    let mut out = output(&format!("url = \"{}\"", r.url)).unwrap();
    let e = out.write(&batch(2)).await.unwrap_err();
    assert!(
        matches!(e, CallError::Returned(WriteError::Retry(_))),
        "{e:?}"
    );
    let mut out = output(&format!(
        "url = \"{}\"\nnon_retryable_statuscodes = [503]",
        r.url
    ))
    .unwrap();
    let e = out.write(&batch(2)).await.unwrap_err();
    assert!(
        matches!(e, CallError::Returned(WriteError::Reject(_))),
        "{e:?}"
    );
    // 404: a receiver not enabled yet; the metrics wait.
    let r = receiver(|_| 404).await;
    let mut out = output(&format!("url = \"{}\"", r.url)).unwrap();
    let e = out.write(&batch(1)).await.unwrap_err();
    assert!(
        matches!(e, CallError::Returned(WriteError::Retry(_))),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_413_splits_the_batch_until_it_fits() {
    // More than two lines is too large; a line with "usage_idle=4" is bad.
    let r = receiver(|body| {
        let text = String::from_utf8_lossy(body);
        match (text.lines().count(), text.contains("usage_idle=4 ")) {
            (n, _) if n > 2 => 413,
            (_, true) => 400,
            _ => 204,
        }
    })
    .await;
    let mut out = output(&format!("url = \"{}\"", r.url)).unwrap();
    let e = out.write(&batch(7)).await.unwrap_err();
    let CallError::Returned(WriteError::Partial {
        mut accepted,
        rejected,
        ..
    }) = e
    else {
        panic!("{e:?}")
    };
    // 0..7 → 0..3 (→ 0..1, 1..3) and 3..7 (→ 3..5, refused for metric 4,
    // and 5..7).
    accepted.sort_unstable();
    assert_eq!(accepted, [0, 1, 2, 5, 6]);
    assert_eq!(rejected, [3, 4]);
}

#[tokio::test]
async fn one_request_per_metric_without_the_batch_format() {
    let r = receiver(|_| 200).await;
    let mut out = output(&format!(
        "url = \"{}\"\nuse_batch_format = false\nmethod = \"put\"\ndata_format = \"json\"\ncontent_encoding = \"gzip\"",
        r.url
    ))
    .unwrap();
    out.write(&batch(3)).await.unwrap();
    let got = r.got.lock().unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].0["content-encoding"], "gzip");
    assert_eq!(got[0].0["content-type"], "application/json");
}

#[tokio::test]
async fn an_unreachable_server_keeps_the_metrics() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut out = output(&format!("url = \"http://127.0.0.1:{port}/x\"")).unwrap();
    let e = out.write(&batch(1)).await.unwrap_err();
    assert!(
        matches!(e, CallError::Returned(WriteError::Retry(_))),
        "{e:?}"
    );
    assert!(out.probe().await.is_err());
}

#[test]
fn config_errors_name_the_key() {
    let err = |text: &str| format!("{:#}", output(text).err().expect(text));
    assert!(err("urll = \"x\"").contains("urll"));
    assert!(err("url = \"ftp://x\"").contains("url"));
    assert!(err("method = \"GET\"").contains("method"));
    assert!(err("token = \"x\"").contains("token"));
    assert!(
        err("data_format = \"prometheusremotewrite\"\ncontent_encoding = \"gzip\"")
            .contains("content_encoding")
    );
    assert!(err("[headers]\n\"a b\" = \"x\"").contains("headers"));
    let ok = output("idle_conn_timeout = \"30s\"\nmax_idle_conn = 5\nresponse_timeout = \"5s\"");
    assert!(ok.is_ok(), "{:?}", ok.err());
}
