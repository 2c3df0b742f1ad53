//! One scrape of one target: the request (auth, headers, the format asked
//! for), the response within its time limits, and its body within the
//! size limit.

use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};

use super::config::{Settings, Target};
use crate::prometheus::text::Format;

/// What graft asks a target for: the text format, as Telegraf's input does
/// (without its protobuf, which graft does not read). A target that answers
/// OpenMetrics anyway is read as OpenMetrics.
const ACCEPT_TEXT: &str = "text/plain;version=0.0.4;q=0.9,*/*;q=0.1";

/// A body received.
pub struct Body {
    pub bytes: Vec<u8>,
    pub format: Format,
    /// From sending the request to the end of the body, in seconds.
    pub response_time: f64,
}

/// Why a scrape gave nothing.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("reading bearer_token {path}: {error}")]
    BearerToken { path: String, error: std::io::Error },
    #[error("no response headers within response_timeout ({0:?})")]
    ResponseTimeout(Duration),
    #[error("no whole response within timeout ({0:?})")]
    Timeout(Duration),
    #[error("request failed: {0}")]
    Request(String),
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("the body is larger than {0} bytes (content_length_limit); nothing of it is kept")]
    BodyTooLarge(u64),
}

/// The chain of an error's sources, as one line.
fn chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn request_error(e: reqwest::Error, settings: &Settings) -> ScrapeError {
    if e.is_timeout() {
        ScrapeError::Timeout(settings.timeout)
    } else {
        ScrapeError::Request(chain(&e))
    }
}

/// Scrape `target` once. A response that is not 200 is an error, as in
/// Telegraf.
pub async fn scrape(
    client: &reqwest::Client,
    settings: &Settings,
    target: &Target,
) -> Result<Body, ScrapeError> {
    let mut request = client
        .get(target.url.clone())
        .header(ACCEPT, ACCEPT_TEXT)
        .header(
            "X-Prometheus-Scrape-Timeout-Seconds",
            settings.timeout.as_secs_f64().to_string(),
        );
    if let Some(path) = &settings.bearer_token_file {
        let token =
            tokio::fs::read_to_string(path)
                .await
                .map_err(|error| ScrapeError::BearerToken {
                    path: path.display().to_string(),
                    error,
                })?;
        let value = HeaderValue::from_str(&format!("Bearer {}", token.trim())).map_err(|_| {
            ScrapeError::BearerToken {
                path: path.display().to_string(),
                error: std::io::Error::other("the token is not valid in a header"),
            }
        })?;
        request = request.header(AUTHORIZATION, value);
    } else if let Some(auth) = &settings.auth {
        request = request.header(AUTHORIZATION, auth.clone());
    }
    let mut request = request
        .build()
        .map_err(|e| ScrapeError::Request(chain(&e)))?;
    // `http_headers` last, replacing what graft sets (as in Telegraf).
    for (k, v) in &settings.headers {
        request.headers_mut().insert(k.clone(), v.clone());
    }
    let started = Instant::now();
    let send = client.execute(request);
    let response = match settings.response_timeout {
        Some(limit) => tokio::time::timeout(limit, send)
            .await
            .map_err(|_| ScrapeError::ResponseTimeout(limit))?,
        None => send.await,
    }
    .map_err(|e| request_error(e, settings))?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(ScrapeError::Status(response.status().as_u16()));
    }
    let format = settings.format_override.unwrap_or_else(|| {
        Format::from_content_type(
            response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
        )
    });
    let limit = settings.body_limit;
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(ScrapeError::BodyTooLarge(limit));
    }
    let mut response = response;
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| request_error(e, settings))?
    {
        if (bytes.len() + chunk.len()) as u64 > limit {
            return Err(ScrapeError::BodyTooLarge(limit));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Body {
        bytes,
        format,
        response_time: started.elapsed().as_secs_f64(),
    })
}

/// The client every scrape shares; reads the TLS files.
pub fn client(settings: &Settings, tls: &crate::tls::TlsConfig) -> anyhow::Result<reqwest::Client> {
    use anyhow::Context;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout)
        .user_agent(settings.user_agent.clone());
    builder = match (&settings.proxy, settings.system_proxy) {
        (Some(p), _) => builder.proxy(reqwest::Proxy::all(p).context("http_proxy_url")?),
        (None, true) => builder,
        (None, false) => builder.no_proxy(),
    };
    builder = match tls.client_config()? {
        Some(config) => builder.tls_backend_preconfigured(std::sync::Arc::unwrap_or_clone(config)),
        None => builder.tls_backend_rustls(),
    };
    builder.build().context("building the HTTP client")
}
