//! One request to one endpoint: sent within its time limits, its body read
//! up to a bound (a larger body is refused without being read on), and
//! its failure told apart (timeout, DNS, connection, status, size), plus
//! the per-endpoint state that logs a failure once until it recovers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

/// A response whose body was read whole.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// From sending the request to the end of the body.
    pub elapsed: Duration,
}

/// Why an endpoint gave nothing this time.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("no response headers within response_timeout ({0:?})")]
    ResponseTimeout(Duration),
    #[error("no whole response within timeout ({0:?})")]
    Timeout(Duration),
    #[error("could not resolve the host: {0}")]
    Dns(String),
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("request failed: {0}")]
    Request(String),
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("the body is larger than {limit} bytes; nothing of it is kept")]
    BodyTooLarge { limit: u64 },
    #[error("the bodies of this gather's URLs together exceed {total} bytes; this one is dropped")]
    BudgetExhausted { total: u64 },
}

/// Bytes of body that the fetches of one gather may hold at once, shared
/// between them: a body that would overdraw it is dropped.
#[derive(Debug)]
pub struct Budget {
    total: u64,
    left: AtomicU64,
}

impl Budget {
    pub fn new(total: u64) -> Self {
        Self {
            total,
            left: AtomicU64::new(total),
        }
    }

    /// Take `n` bytes; nothing is taken when fewer are left.
    fn take(&self, n: u64) -> Result<(), FetchError> {
        self.left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(n)
            })
            .map(drop)
            .map_err(|_| FetchError::BudgetExhausted { total: self.total })
    }
}

impl FetchError {
    /// Whether a time limit ended it.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout(_) | Self::ResponseTimeout(_))
    }
}

/// The chain of an error's sources, as one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.ends_with(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// Sort a transport error: a timeout, a name that did not resolve, a
/// connection that failed, or anything else.
pub fn classify(e: &reqwest::Error, timeout: Duration) -> FetchError {
    let text = chain(e);
    if e.is_timeout() {
        FetchError::Timeout(timeout)
    } else if e.is_connect() {
        // hyper-util names a resolver failure "dns error".
        let lower = text.to_ascii_lowercase();
        if lower.contains("dns error") || lower.contains("failed to lookup address") {
            FetchError::Dns(text)
        } else {
            FetchError::Connect(text)
        }
    } else {
        FetchError::Request(text)
    }
}

/// Send `request` and wait for the response headers, within
/// `response_timeout` when set (the client's `timeout` bounds the whole).
pub async fn send(
    client: &reqwest::Client,
    request: reqwest::Request,
    timeout: Duration,
    response_timeout: Option<Duration>,
) -> Result<reqwest::Response, FetchError> {
    let send = client.execute(request);
    match response_timeout {
        Some(limit) => tokio::time::timeout(limit, send)
            .await
            .map_err(|_| FetchError::ResponseTimeout(limit))?,
        None => send.await,
    }
    .map_err(|e| classify(&e, timeout))
}

/// Read the body of `response`, at most `limit` bytes and no more than
/// `budget` has left: a body announced or found larger is refused at once. `Err` also carries how much was
/// read, counted as Telegraf counts it: a body over the limit is `limit`
/// + 1 bytes (Telegraf reads `limit + 1` and stops), however it was found.
pub async fn read_body(
    mut response: reqwest::Response,
    limit: u64,
    timeout: Duration,
    budget: Option<&Budget>,
) -> Result<Vec<u8>, (FetchError, usize)> {
    let too_large = || {
        let read = usize::try_from(limit.saturating_add(1)).unwrap_or(usize::MAX);
        (FetchError::BodyTooLarge { limit }, read)
    };
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if (bytes.len() + chunk.len()) as u64 > limit {
                    return Err(too_large());
                }
                if let Some(budget) = budget {
                    budget
                        .take(chunk.len() as u64)
                        .map_err(|e| (e, bytes.len()))?;
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(bytes),
            Err(e) => return Err((classify(&e, timeout), bytes.len())),
        }
    }
}

/// Send, then read the body (whatever the status), at most `limit` bytes.
pub async fn fetch(
    client: &reqwest::Client,
    request: reqwest::Request,
    timeout: Duration,
    response_timeout: Option<Duration>,
    limit: u64,
) -> Result<Response, FetchError> {
    let started = Instant::now();
    let response = send(client, request, timeout, response_timeout).await?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = read_body(response, limit, timeout, None)
        .await
        .map_err(|(e, _)| e)?;
    Ok(Response {
        status,
        headers,
        body,
        elapsed: started.elapsed(),
    })
}

/// Whether each endpoint failed last time, so that a failure is logged
/// when it starts and a recovery when it ends, not at every gather.
#[derive(Debug, Default)]
pub struct Health {
    failing: Vec<bool>,
}

impl Health {
    /// For `n` endpoints, all healthy.
    pub fn new(n: usize) -> Self {
        Self {
            failing: vec![false; n],
        }
    }

    /// Record endpoint `i`'s outcome and log a change of state.
    pub fn record(&mut self, i: usize, url: &str, error: Option<&dyn std::fmt::Display>) {
        let failing = &mut self.failing[i];
        match error {
            None if *failing => {
                *failing = false;
                tracing::info!(url, "endpoint answers again");
            }
            None => {}
            Some(error) if *failing => tracing::debug!(url, %error, "endpoint failed again"),
            Some(error) => {
                *failing = true;
                tracing::warn!(
                    url,
                    %error,
                    "endpoint failed; nothing from it this time, the other endpoints go on \
                     (further failures are quiet until it recovers)"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use reqwest::dns::{Name, Resolve, Resolving};

    use super::*;

    /// A resolver that knows no name: no query leaves the machine.
    struct NoNames;

    impl Resolve for NoNames {
        fn resolve(&self, name: Name) -> Resolving {
            let error = format!("{} does not resolve", name.as_str());
            Box::pin(async move { Err(error.into()) })
        }
    }

    #[tokio::test]
    async fn failures_are_told_apart() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(NoNames))
            .no_proxy()
            .tls_backend_rustls()
            .build()
            .unwrap();
        let timeout = Duration::from_secs(2);
        let go = |url: &str| {
            let request = client.get(url).build().unwrap();
            send(&client, request, timeout, Some(timeout))
        };
        let e = go("http://graft-test.invalid/").await.unwrap_err();
        assert!(matches!(e, FetchError::Dns(_)), "{e:?}");
        // Refused: a port bound and closed again.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = go(&format!("http://127.0.0.1:{port}/")).await.unwrap_err();
        assert!(matches!(e, FetchError::Connect(_)), "{e:?}");
        // Accepted and never answered: the headers' time limit.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let request = client
            .get(format!("http://{}/", silent.local_addr().unwrap()))
            .build()
            .unwrap();
        let e = send(&client, request, timeout, Some(Duration::from_millis(200)))
            .await
            .unwrap_err();
        assert!(
            matches!(e, FetchError::ResponseTimeout(_)) && e.is_timeout(),
            "{e:?}"
        );
    }

    /// A server on loopback that answers one request with `response`.
    async fn answer_once(response: &'static [u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await;
            let _ = socket.write_all(response).await;
        });
        url
    }

    #[tokio::test]
    async fn a_body_over_the_limit_counts_limit_plus_one_bytes_as_telegraf() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let timeout = Duration::from_secs(2);
        let client = reqwest::Client::builder()
            .no_proxy()
            .tls_backend_rustls()
            .build()
            .unwrap();
        // Announced too long, and found too long in a chunked body.
        for response in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
              3\r\nabc\r\n9\r\ndefghijkl\r\n0\r\n\r\n",
        ] {
            let url = answer_once(response).await;
            let response = client.get(url).send().await.unwrap();
            let (e, read) = read_body(response, 5, timeout, None).await.unwrap_err();
            assert!(matches!(e, FetchError::BodyTooLarge { limit: 5 }), "{e:?}");
            assert_eq!(read, 6);
        }
    }

    #[tokio::test]
    async fn bodies_share_one_budget() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let timeout = Duration::from_secs(2);
        let client = reqwest::Client::builder()
            .no_proxy()
            .tls_backend_rustls()
            .build()
            .unwrap();
        let budget = Budget::new(10);
        let six = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabcdef";
        let url = answer_once(six).await;
        let response = client.get(url).send().await.unwrap();
        let body = read_body(response, 8, timeout, Some(&budget))
            .await
            .unwrap();
        assert_eq!(body, b"abcdef");
        let url = answer_once(six).await;
        let response = client.get(url).send().await.unwrap();
        let (e, _) = read_body(response, 8, timeout, Some(&budget))
            .await
            .unwrap_err();
        assert!(
            matches!(e, FetchError::BudgetExhausted { total: 10 }),
            "{e:?}"
        );
    }
}
