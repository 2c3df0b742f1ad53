//! The small answers of InfluxDB's HTTP API: errors shaped as each API
//! shapes them, `/ping`, `/health`, `/ready`, `/query`, and the
//! credentials check.

use std::collections::HashMap;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use super::Settings;

pub(super) const VERSION: &str = concat!("graft-", env!("CARGO_PKG_VERSION"));

/// Which API a request came through: errors are shaped as that API's.
#[derive(Clone, Copy)]
pub(super) enum Api {
    V1,
    V2,
}

pub(super) fn error(api: Api, status: StatusCode, message: &str) -> Response {
    let body = match api {
        Api::V1 => serde_json::json!({ "error": message }),
        Api::V2 => serde_json::json!({
            "code": match status.as_u16() {
                401 => "unauthorized",
                413 => "request too large",
                429 => "too many requests",
                _ => "invalid",
            },
            "message": message,
        }),
    };
    let mut r = (status, axum::Json(body)).into_response();
    let mut cut = message.len().min(1024);
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    if let Ok(v) = HeaderValue::from_str(&message[..cut].replace(['\r', '\n'], " ")) {
        r.headers_mut().insert("X-Influxdb-Error", v);
    }
    r.headers_mut()
        .insert("X-Influxdb-Version", HeaderValue::from_static(VERSION));
    r
}

pub(super) fn no_content() -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .insert("X-Influxdb-Version", HeaderValue::from_static(VERSION));
    r
}

pub(super) async fn ping(
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    if q.get("verbose").is_some_and(|v| v == "true" || v == "1") {
        let mut r = axum::Json(serde_json::json!({ "version": VERSION })).into_response();
        r.headers_mut()
            .insert("X-Influxdb-Version", HeaderValue::from_static(VERSION));
        return r;
    }
    no_content()
}

pub(super) async fn health() -> Response {
    axum::Json(serde_json::json!({
        "name": "graft",
        "message": "ready for writes",
        "status": "pass",
        "version": VERSION,
    }))
    .into_response()
}

pub(super) async fn ready() -> Response {
    axum::Json(serde_json::json!({ "status": "ready" })).into_response()
}

pub(super) async fn query() -> Response {
    axum::Json(serde_json::json!({ "results": [] })).into_response()
}

/// Credentials check; `None` when the request may go on.
pub(super) fn authorize(
    s: &Settings,
    api: Api,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
) -> Option<Response> {
    if s.basic.is_none() && s.token.is_none() {
        return None;
    }
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Some(token) = &s.token
        && auth
            .strip_prefix("Token ")
            .is_some_and(|t| t.trim() == token)
    {
        return None;
    }
    if let Some((user, pass)) = &s.basic {
        let given = match auth.strip_prefix("Basic ") {
            Some(b64) => base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
                .and_then(|d| String::from_utf8(d).ok())
                .and_then(|d| d.split_once(':').map(|(u, p)| (u.to_owned(), p.to_owned()))),
            None => match (q.get("u"), q.get("p")) {
                (Some(u), Some(p)) => Some((u.clone(), p.clone())),
                _ => auth
                    .strip_prefix("Token ")
                    .and_then(|t| t.split_once(':'))
                    .map(|(u, p)| (u.to_owned(), p.to_owned())),
            },
        };
        if given.is_some_and(|(u, p)| &u == user && &p == pass) {
            return None;
        }
    }
    let mut r = error(api, StatusCode::UNAUTHORIZED, "authorization failed");
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"graft\""),
    );
    Some(r)
}
