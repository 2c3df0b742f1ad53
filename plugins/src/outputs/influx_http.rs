//! The write loop both InfluxDB outputs share: metrics grouped by target
//! (database or bucket, from a tag or the default), serialized as line
//! protocol, sent to one URL after another until one answers, a 413 split in
//! halves, and the answer turned into what graft does with each metric
//! (written, rejected, or kept for the next flush).

use std::collections::BTreeMap;
use std::time::Duration;

use graft_api::CallError;
use graft_core::lineproto::Serializer;
use graft_core::{Batch, PluginError, WriteError};
use rand::Rng;

use crate::backoff::Backoff;
use crate::http::ContentEncoding;

/// How a server answered one request.
#[derive(Debug)]
pub enum Reply {
    /// Every point was written.
    Written,
    /// The body was too large (413): send it in halves.
    TooLarge,
    /// Some points were refused and the rest written: the lines the server
    /// could not parse (echoed back by InfluxDB 1.x) and a count of points
    /// it dropped without saying which.
    Partial {
        bad_lines: Vec<String>,
        dropped: usize,
        message: String,
    },
    /// None of these points will ever be accepted.
    Reject(String),
    /// The database or bucket does not exist (it may be created).
    NotFound(String),
    /// This server cannot take them now; another URL may.
    Unavailable(String),
    /// The server asks to slow down (429/503): keep the points and wait at
    /// least this long before the next attempt (`Err` = an unreadable
    /// `Retry-After`).
    Throttle {
        message: String,
        retry_after: Option<Result<Duration, ()>>,
    },
}

/// One target's metrics, serialized.
struct Body {
    bytes: Vec<u8>,
    /// Where each metric's text starts, with its index in the batch.
    starts: Vec<(usize, u32)>,
}

impl Body {
    fn build(
        serializer: &Serializer,
        batch: &Batch,
        rows: &[u32],
        rejected: &mut Vec<u32>,
    ) -> Self {
        let mut body = Body {
            bytes: Vec::new(),
            starts: Vec::with_capacity(rows.len()),
        };
        for &i in rows {
            let start = body.bytes.len();
            match serializer.write_metric(batch.get(i as usize), &mut body.bytes) {
                Ok(()) => body.starts.push((start, i)),
                Err(e) => {
                    tracing::debug!(error = %e, "metric left out of the request and rejected");
                    rejected.push(i);
                }
            }
        }
        body
    }

    fn rows(&self) -> Vec<u32> {
        self.starts.iter().map(|&(_, i)| i).collect()
    }

    /// The metric whose text contains `line`, if it is one of ours.
    fn find_line(&self, line: &str) -> Option<u32> {
        let text = std::str::from_utf8(&self.bytes).ok()?;
        let pos = text
            .split_inclusive('\n')
            .scan(0usize, |at, l| {
                let start = *at;
                *at += l.len();
                Some((start, l.trim_end_matches('\n')))
            })
            .find(|(_, l)| *l == line)?
            .0;
        let k = self.starts.partition_point(|&(s, _)| s <= pos);
        k.checked_sub(1).map(|k| self.starts[k].1)
    }
}

/// What became of a batch's metrics.
#[derive(Default)]
struct Tally {
    accepted: Vec<u32>,
    rejected: Vec<u32>,
    /// The first reason metrics were kept or rejected, for the log.
    message: Option<String>,
    /// Stop sending: the rest is kept.
    stop: bool,
}

impl Tally {
    fn note(&mut self, m: impl Into<String>) {
        self.message.get_or_insert_with(|| m.into());
    }

    fn into_result(self, total: usize) -> Result<(), CallError<WriteError>> {
        let message = self.message.unwrap_or_default();
        let err = if self.accepted.len() == total {
            return Ok(());
        } else if self.rejected.len() == total {
            WriteError::Reject(message)
        } else if self.accepted.is_empty() && self.rejected.is_empty() {
            WriteError::Retry(message)
        } else {
            WriteError::Partial {
                accepted: self.accepted,
                rejected: self.rejected,
                message,
            }
        };
        Err(CallError::Returned(err))
    }
}

/// Sends one body to one URL and reads the answer.
pub trait Endpoint: Send + Sync {
    /// POST `body` for `target` to `url`.
    fn request(
        &self,
        client: &reqwest::Client,
        url: &str,
        target: &str,
        body: Vec<u8>,
        encoding: Option<&'static str>,
    ) -> reqwest::RequestBuilder;

    /// What a response means.
    fn classify(&self, status: u16, headers: &reqwest::header::HeaderMap, body: &str) -> Reply;

    /// Called when a target was not found; return true when it now exists
    /// (the write is then tried once more).
    fn create_target(
        &self,
        _client: &reqwest::Client,
        _url: &str,
        _target: &str,
    ) -> impl Future<Output = bool> + Send {
        async { false }
    }
}

/// The shared writer.
/// Ask every URL's `/ping` with `client`; an error names those that did
/// not answer (any HTTP status is an answer).
pub async fn ping_all(client: &reqwest::Client, urls: &[String]) -> Result<(), PluginError> {
    let mut failed = Vec::new();
    for url in urls {
        let ping = format!("{}/ping", url.trim_end_matches('/'));
        if let Err(e) = client.get(&ping).send().await {
            failed.push(format!("{url}: {e}"));
        }
    }
    match failed.is_empty() {
        true => Ok(()),
        false => Err(PluginError::new(failed.join("; "))),
    }
}

pub struct Writer<E> {
    pub client: reqwest::Client,
    pub urls: Vec<String>,
    pub encoding: ContentEncoding,
    pub serializer: Serializer,
    pub endpoint: E,
    /// Throttles in a row (429/503) and when the next write may go:
    /// n²/40 s after the n-th, at most 60 s, or longer if the server asks.
    throttle: Backoff,
}

impl<E: Endpoint> Writer<E> {
    pub fn new(
        client: reqwest::Client,
        urls: Vec<String>,
        encoding: ContentEncoding,
        serializer: Serializer,
        endpoint: E,
    ) -> Self {
        Self {
            client,
            urls,
            encoding,
            serializer,
            endpoint,
            throttle: Backoff::quadratic(Duration::from_millis(25), Duration::from_secs(60)),
        }
    }

    /// Write `batch`, metrics grouped by `target_of` (a database, a bucket).
    pub async fn write(
        &mut self,
        batch: &Batch,
        target_of: impl Fn(graft_core::MetricRef<'_>) -> String,
    ) -> Result<(), CallError<WriteError>> {
        if let Some(left) = self.throttle.remaining() {
            return Err(CallError::Returned(WriteError::Retry(format!(
                "throttled by the server; next attempt in {:.1}s",
                left.as_secs_f64()
            ))));
        }
        let mut groups: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for m in batch.iter() {
            groups
                .entry(target_of(m))
                .or_default()
                .push(m.index() as u32);
        }
        let mut tally = Tally::default();
        for (target, rows) in groups {
            if tally.stop {
                break;
            }
            let body = Body::build(&self.serializer, batch, &rows, &mut tally.rejected);
            self.send(&target, body, batch, &mut tally).await;
        }
        tally.into_result(batch.len())
    }

    /// Send one body, splitting it on 413.
    async fn send(&mut self, target: &str, body: Body, batch: &Batch, tally: &mut Tally) {
        let mut pending = vec![body];
        while let Some(body) = pending.pop() {
            if tally.stop {
                return;
            }
            if body.starts.is_empty() {
                continue;
            }
            match self.post(target, &body).await {
                Reply::Written => {
                    self.throttle.succeed();
                    tally.accepted.extend(body.rows());
                }
                Reply::TooLarge if body.starts.len() == 1 => {
                    tally.note(format!(
                        "a single metric of {} bytes is too large for the server",
                        body.bytes.len()
                    ));
                    tally.rejected.extend(body.rows());
                }
                Reply::TooLarge => {
                    let rows = body.rows();
                    let (a, b) = rows.split_at(rows.len() / 2);
                    tracing::debug!(
                        metrics = rows.len(),
                        "request too large for the server; sending it again in two halves"
                    );
                    let mut none = Vec::new();
                    // Second half pushed first: halves go out in order.
                    pending.push(Body::build(&self.serializer, batch, b, &mut none));
                    pending.push(Body::build(&self.serializer, batch, a, &mut none));
                }
                Reply::Partial {
                    bad_lines,
                    dropped,
                    message,
                } => {
                    self.throttle.succeed();
                    tracing::warn!(
                        destination = ?target,
                        %message,
                        "partial write: the lines the server refused are rejected, the rest are written"
                    );
                    tally.note(format!("partial write: {message}"));
                    let mut bad: Vec<u32> =
                        bad_lines.iter().filter_map(|l| body.find_line(l)).collect();
                    let mut good: Vec<u32> = body
                        .rows()
                        .into_iter()
                        .filter(|i| !bad.contains(i))
                        .collect();
                    // The server counts points it dropped without naming
                    // them; count that many as rejected.
                    for _ in 0..dropped.min(good.len()) {
                        bad.extend(good.pop());
                    }
                    tally.accepted.extend(good);
                    tally.rejected.extend(bad);
                }
                Reply::Reject(message) => {
                    tracing::error!(
                        metrics = body.starts.len(),
                        destination = ?target,
                        %message,
                        "metrics rejected by the server and dropped"
                    );
                    tally.note(message);
                    tally.rejected.extend(body.rows());
                }
                Reply::Unavailable(message) | Reply::NotFound(message) => {
                    tally.note(message);
                    tally.stop = true;
                }
                Reply::Throttle {
                    message,
                    retry_after,
                } => {
                    let asked = match retry_after {
                        Some(Ok(d)) => d.min(Duration::from_secs(600)),
                        Some(Err(())) => Duration::from_secs(10),
                        None => Duration::ZERO,
                    };
                    let wait = self.throttle.fail_at_least(asked);
                    tracing::warn!(
                        %message,
                        wait_seconds = wait.as_secs_f64(),
                        "server is throttling; the metrics are kept and the next write waits"
                    );
                    tally.note(format!("throttled: {message}"));
                    tally.stop = true;
                }
            }
        }
    }

    /// POST to one URL after another (starting at a random one) until one
    /// gives an answer other than "unavailable".
    async fn post(&self, target: &str, body: &Body) -> Reply {
        let n = self.urls.len();
        let first = if n > 1 {
            rand::rng().random_range(0..n)
        } else {
            0
        };
        let mut last = Reply::Unavailable("no URL configured".into());
        for k in 0..n {
            let url = &self.urls[(first + k) % n];
            let mut reply = self.post_once(url, target, body).await;
            if matches!(reply, Reply::NotFound(_))
                && self.endpoint.create_target(&self.client, url, target).await
            {
                reply = self.post_once(url, target, body).await;
            }
            if let Reply::NotFound(m) = reply {
                // Kept: the metrics go out once someone creates it.
                reply = Reply::Unavailable(format!("{m}; metrics are kept until it exists"));
            }
            match reply {
                Reply::Unavailable(m) => {
                    tracing::warn!(
                        %url,
                        error = %m,
                        "write failed at this URL; the next URL is tried, else the metrics are kept"
                    );
                    last = Reply::Unavailable(format!("{url}: {m}"));
                }
                other => return other,
            }
        }
        last
    }

    async fn post_once(&self, url: &str, target: &str, body: &Body) -> Reply {
        let (bytes, encoding) = self.encoding.encode(body.bytes.clone());
        let response = self
            .endpoint
            .request(&self.client, url, target, bytes, encoding)
            .send()
            .await;
        let response = match response {
            Ok(r) => r,
            Err(e) => return Reply::Unavailable(error_chain(&e)),
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        self.endpoint.classify(status, &headers, &text)
    }
}

/// An error with its causes, `a: b: c`.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
        source = cause.source();
    }
    s
}
