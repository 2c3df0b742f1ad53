//! The OTLP/HTTP listener (graft's `http_service_address`): `POST
//! /v1/metrics` with a protobuf (`application/x-protobuf`) or JSON
//! (`application/json`) `ExportMetricsServiceRequest`, plain or gzip, at
//! most `max_msg_size` before and after decompression. Answers as OTLP/HTTP
//! says: 200 with an `ExportMetricsServiceResponse` (partial success
//! included) in the request's encoding, 400/413/415 for a request that
//! will never be accepted, 503 with `Retry-After` for one to retry. Other
//! signals (`/v1/traces`, `/v1/logs`) are not served: 404.

use std::io::Read;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use prost::Message;

use super::receive::{Receiver, Refusal};
use crate::opentelemetry::proto::collector::ExportMetricsServiceRequest;

/// How the request (and so the answer) is encoded.
#[derive(Clone, Copy)]
pub(super) enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// `google.rpc.Status`, the body of an OTLP/HTTP error.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// The router of the OTLP/HTTP listener.
pub fn router(receiver: Arc<Receiver>, timeout: std::time::Duration) -> Router {
    Router::new()
        .route("/v1/metrics", post(metrics))
        .with_state((receiver, timeout))
}

async fn metrics(
    State((r, timeout)): State<(Arc<Receiver>, std::time::Duration)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let encoding = match content_type.split(';').next().unwrap_or("").trim() {
        "application/x-protobuf" => Encoding::Protobuf,
        "application/json" => Encoding::Json,
        other => {
            let message =
                format!("content type {other:?} is not application/x-protobuf or application/json");
            return error(
                Encoding::Protobuf,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                3,
                message,
            );
        }
    };
    let gzip = match headers.get(header::CONTENT_ENCODING).map(|v| v.as_bytes()) {
        None | Some(b"identity") => false,
        Some(b"gzip") => true,
        Some(other) => {
            let message = format!(
                "content encoding {:?} is not gzip",
                String::from_utf8_lossy(other)
            );
            return error(encoding, StatusCode::UNSUPPORTED_MEDIA_TYPE, 3, message);
        }
    };
    // The slot bounds the memory bodies take: at most
    // `max_concurrent_requests` are read, inflated and mapped at once.
    let slot = match r.slot() {
        Ok(slot) => slot,
        Err(refusal) => return refused(&r, encoding, refusal),
    };
    let limit = usize::try_from(r.max_msg_size).unwrap_or(usize::MAX);
    let raw = match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(raw)) => raw,
        Ok(Err(_)) => return refused(&r, encoding, Refusal::TooLarge(r.max_msg_size)),
        Err(_) => {
            let message = "the request body did not arrive within timeout".to_owned();
            return error(encoding, StatusCode::REQUEST_TIMEOUT, 4, message);
        }
    };
    let request = match decode_body(raw, gzip, limit, encoding).await {
        Ok(request) => request,
        Err(refusal) => return refused(&r, encoding, refusal),
    };
    match r.export("http", request, Some(slot)).await {
        Ok(answer) => {
            let body = match encoding {
                Encoding::Protobuf => answer.encode_to_vec(),
                Encoding::Json => serde_json::to_vec(&answer).unwrap_or_default(),
            };
            ([(header::CONTENT_TYPE, encoding.content_type())], body).into_response()
        }
        Err(refusal) => answer_refusal(encoding, &refusal),
    }
}

/// Bodies larger than this (or gzipped) are decoded on a blocking thread.
const DECODE_INLINE_MAX: usize = 64 << 10;

/// [`decode`], off the reactor when the body is gzipped or large (inflating
/// and decoding up to `max_msg_size` takes milliseconds, which would stall
/// every connection served by this worker).
pub(super) async fn decode_body(
    raw: axum::body::Bytes,
    gzip: bool,
    limit: usize,
    encoding: Encoding,
) -> Result<ExportMetricsServiceRequest, Refusal> {
    if !gzip && raw.len() <= DECODE_INLINE_MAX {
        return decode(&raw, gzip, limit, encoding);
    }
    tokio::task::spawn_blocking(move || decode(&raw, gzip, limit, encoding))
        .await
        .unwrap_or_else(|e| Err(Refusal::Malformed(format!("decoding the body failed: {e}"))))
}

/// Inflate (when `gzip`, at most `limit` bytes) and decode a body.
fn decode(
    raw: &[u8],
    gzip: bool,
    limit: usize,
    encoding: Encoding,
) -> Result<ExportMetricsServiceRequest, Refusal> {
    let inflated;
    let bytes = if gzip {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(raw)
            .take(limit as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| Refusal::Malformed(format!("reading the gzip body: {e}")))?;
        if out.len() > limit {
            return Err(Refusal::TooLarge(limit as u64));
        }
        inflated = out;
        &inflated[..]
    } else {
        raw
    };
    match encoding {
        Encoding::Protobuf => ExportMetricsServiceRequest::decode(bytes)
            .map_err(|e| Refusal::Malformed(format!("not an OTLP metrics request: {e}"))),
        Encoding::Json => serde_json::from_slice(bytes)
            .map_err(|e| Refusal::Malformed(format!("not an OTLP metrics request: {e}"))),
    }
}

/// Count and log a refusal found here, then answer it.
fn refused(r: &Receiver, encoding: Encoding, refusal: Refusal) -> Response {
    r.refused("http", &refusal);
    answer_refusal(encoding, &refusal)
}

fn answer_refusal(encoding: Encoding, refusal: &Refusal) -> Response {
    let (status, code) = match refusal {
        Refusal::Busy(_) | Refusal::Undelivered(_) | Refusal::Stopping => {
            (StatusCode::SERVICE_UNAVAILABLE, 14)
        }
        Refusal::TooManyPoints { .. } | Refusal::TooManyTags { .. } | Refusal::Malformed(_) => {
            (StatusCode::BAD_REQUEST, 3)
        }
        Refusal::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, 8),
    };
    let mut response = error(encoding, status, code, refusal.to_string());
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// An error answer: `google.rpc.Status` with gRPC's `code`.
fn error(encoding: Encoding, status: StatusCode, code: i32, message: String) -> Response {
    let s = RpcStatus { code, message };
    let body = match encoding {
        Encoding::Protobuf => s.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(&s).unwrap_or_default(),
    };
    (
        status,
        [(header::CONTENT_TYPE, encoding.content_type())],
        body,
    )
        .into_response()
}
