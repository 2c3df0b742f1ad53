//! The accept side of the HTTP servers (the InfluxDB listener,
//! `inputs.http_listener_v2`, the Prometheus client output): at most `max_connections` open connections,
//! each optionally behind TLS (the handshake within `read_timeout`), served
//! by hyper's HTTP/1 with `read_timeout` for a request's headers and for an
//! idle keep-alive connection (as Go's `http.Server` under Telegraf uses
//! its `ReadTimeout`), and `write_timeout` for a peer that does not read
//! its answers. A limit hit costs only that connection; it is counted and
//! logged once for the connection. Each request carries the peer's address
//! as axum's `ConnectInfo<SocketAddr>`. [`gunzip`] inflates a request
//! body within a limit.

use std::convert::Infallible;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::Instrument;

use graft_core::PluginError;

use super::{ConnectionBudget, Refused};

/// Counters of the accept side (names in `docs/instrumentation.md`).
#[derive(Clone)]
pub struct AcceptCounters {
    pub connections_limit_hits: Arc<AtomicU64>,
    pub process_connections_limit_hits: Arc<AtomicU64>,
    pub header_timeouts: Arc<AtomicU64>,
    pub idle_timeouts: Arc<AtomicU64>,
    pub write_timeouts: Arc<AtomicU64>,
    /// TLS handshakes that failed or did not end within `read_timeout`.
    pub tls_handshake_errors: Arc<AtomicU64>,
}

impl AcceptCounters {
    /// The counters, kept in the sink's (names in
    /// `docs/instrumentation.md`).
    pub fn new(sink: &graft_api::MetricSink) -> Self {
        Self {
            connections_limit_hits: sink.counter("connections_limit_hits"),
            process_connections_limit_hits: sink.counter("process_connections_limit_hits"),
            header_timeouts: sink.counter("header_timeouts"),
            idle_timeouts: sink.counter("idle_timeouts"),
            write_timeouts: sink.counter("write_timeouts"),
            tls_handshake_errors: sink.counter("tls_handshake_errors"),
        }
    }
}

/// What the accept loop needs.
pub struct Accept {
    pub listener: TcpListener,
    pub app: Router,
    pub max_connections: usize,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
    pub counters: AcceptCounters,
    /// Serve HTTPS: every connection starts with this TLS handshake.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Bind `address` for a server; a failure is an error naming the config
/// key `key` (`service_address`, `listen`) that gave the address.
pub async fn bind(key: &'static str, address: &str) -> Result<TcpListener, PluginError> {
    TcpListener::bind(address)
        .await
        .map_err(|e| PluginError::config(key, format!("cannot listen on {address}: {e}")))
}

/// A server [`spawn`] started: the signal that stops it and its task.
pub struct Server {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// Serve `accept` on a task of its own, in the caller's span.
pub fn spawn(accept: Accept, grace: Duration) -> Server {
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(serve(accept, rx, grace).in_current_span());
    Server { stop, task }
}

impl Server {
    /// Stop accepting and wait up to `grace` for the requests in flight
    /// (their metrics reach the sink; a body being parsed stops at its
    /// next piece).
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(grace, self.task).await;
    }
}

/// Serve until `stop` turns true, then let the open connections finish
/// their requests (hyper's graceful shutdown) for up to `grace`.
pub async fn serve(a: Accept, mut stop: watch::Receiver<bool>, grace: Duration) {
    // This listener's share of the process-wide connection budget, with its
    // own maximum (the same budget carbon, socket_listener and statsd use).
    let limiter = ConnectionBudget::global().limiter(a.max_connections.max(1));
    // Each connection task holds a clone; when all are gone, all are done.
    let (closed_tx, closed_rx) = watch::channel(());
    let mut last_refusal_log: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            accepted = a.listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors, most likely: wait a little
                // instead of spinning.
                tracing::warn!(
                    error = %e,
                    "accepting a connection failed; retrying in 100 ms"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // The connection permit: taken here and only here, held until the
        // connection closes.
        let permit = match limiter.try_acquire() {
            Ok(permit) => permit,
            Err(refused) => {
                let counter = match refused {
                    Refused::Listener { .. } => &a.counters.connections_limit_hits,
                    Refused::Process { .. } => &a.counters.process_connections_limit_hits,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                if last_refusal_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                    last_refusal_log = Some(Instant::now());
                    tracing::warn!(
                        %peer,
                        reason = %refused,
                        "connection refused (logged at most every 10 s)"
                    );
                }
                drop(stream);
                continue;
            }
        };
        let conn = Connection {
            app: a.app.clone(),
            read_timeout: a.read_timeout,
            write_timeout: a.write_timeout,
            counters: a.counters.clone(),
            peer,
        };
        let tls = a.tls.clone();
        let stop = stop.clone();
        let closed = closed_rx.clone();
        tokio::spawn(
            async move {
                match tls {
                    None => conn.run(stream, stop).await,
                    Some(tls) => {
                        if let Some(stream) = conn.handshake(&tls, stream).await {
                            conn.run(stream, stop).await;
                        }
                    }
                }
                drop(permit);
                drop(closed);
            }
            .in_current_span(),
        );
    }
    drop(closed_rx);
    let _ = tokio::time::timeout(grace, closed_tx.closed()).await;
}

/// One accepted connection.
struct Connection {
    app: Router,
    read_timeout: Duration,
    write_timeout: Duration,
    counters: AcceptCounters,
    peer: SocketAddr,
}

/// Bytes read from a connection, and how many had been read when its last
/// request was answered: more since then means a request head was coming.
#[derive(Default)]
struct Progress {
    read: AtomicU64,
    answered_at: AtomicU64,
    /// A write waited past `write_timeout`.
    write_timed_out: AtomicBool,
}

impl Connection {
    /// The TLS handshake, within `read_timeout`; a failure is counted and
    /// logged, and closes the connection.
    async fn handshake(
        &self,
        tls: &tokio_rustls::TlsAcceptor,
        stream: TcpStream,
    ) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
        let error = match tokio::time::timeout(self.read_timeout, tls.accept(stream)).await {
            Ok(Ok(stream)) => return Some(stream),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "not complete within read_timeout".to_owned(),
        };
        self.counters
            .tls_handshake_errors
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(peer = %self.peer, %error, "connection closed: TLS handshake failed");
        None
    }

    async fn run<S>(self, stream: S, mut stop: watch::Receiver<bool>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let progress = Arc::new(Progress::default());
        let io = TokioIo::new(Counted {
            inner: stream,
            progress: progress.clone(),
            write_timeout: self.write_timeout,
            stalled: None,
        });
        let app = self.app.clone();
        let answered = progress.clone();
        let peer = ConnectInfo(self.peer);
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let mut app = app.clone();
            let answered = answered.clone();
            let mut req = req.map(Body::new);
            req.extensions_mut().insert(peer);
            async move {
                let response = tower_service::Service::call(&mut app, req).await;
                answered
                    .answered_at
                    .store(answered.read.load(Ordering::Relaxed), Ordering::Relaxed);
                response.map_err(|e: Infallible| match e {})
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.read_timeout);
        let conn = builder.serve_connection(io, service);
        tokio::pin!(conn);
        let result = tokio::select! {
            r = conn.as_mut() => r,
            _ = async { drop(stop.wait_for(|s| *s).await) } => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        let Err(e) = result else { return };
        if progress.write_timed_out.load(Ordering::Relaxed) {
            self.counters.write_timeouts.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                peer = %self.peer,
                write_timeout = ?self.write_timeout,
                "connection closed: the peer did not read its answers within write_timeout"
            );
            return;
        }
        if !e.is_timeout() {
            tracing::debug!(peer = %self.peer, error = %e, "connection ended with an error");
            return;
        }
        let read = progress.read.load(Ordering::Relaxed);
        let pending = read - progress.answered_at.load(Ordering::Relaxed).min(read);
        if pending > 0 {
            self.counters
                .header_timeouts
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                peer = %self.peer,
                header_bytes = pending,
                read_timeout = ?self.read_timeout,
                "connection closed: request headers not complete within read_timeout"
            );
        } else {
            self.counters.idle_timeouts.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(peer = %self.peer, "idle connection closed after read_timeout");
        }
    }
}

/// A stream that counts the bytes read from it, and fails a write that
/// cannot go on for `write_timeout` (a peer that does not read its
/// answers).
struct Counted<S> {
    inner: S,
    progress: Arc<Progress>,
    write_timeout: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> Counted<S> {
    /// Pass on a write's result; a write pending past `write_timeout`
    /// becomes a `TimedOut` error, which ends the connection.
    fn guard(
        &mut self,
        cx: &mut Context<'_>,
        r: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        if r.is_ready() {
            self.stalled = None;
            return r;
        }
        let timeout = self.write_timeout;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if sleep.as_mut().poll(cx).is_ready() {
            self.progress.write_timed_out.store(true, Ordering::Relaxed);
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the peer read nothing for write_timeout",
            )));
        }
        Poll::Pending
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        self.progress.read.fetch_add(n, Ordering::Relaxed);
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.guard(cx, r)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.guard(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Why a compressed body could not be inflated.
#[derive(Debug, PartialEq, Eq)]
pub enum Inflate {
    /// Larger than the limit once inflated.
    TooLarge,
    /// Not readable (broken gzip).
    Bad(String),
    /// The listener is stopping.
    Stopping,
}

/// Inflate a gzip body: at most `limit` bytes, a piece at a time; every gzip member of
/// the body, as Go's reader (InfluxDB's, Telegraf's) reads them.
pub fn gunzip(raw: &[u8], limit: usize, stopping: &AtomicBool) -> Result<Vec<u8>, Inflate> {
    let mut out = Vec::with_capacity(raw.len().saturating_mul(4).min(limit));
    let mut dec = flate2::read::MultiGzDecoder::new(raw).take(limit as u64 + 1);
    let mut piece = vec![0u8; 64 << 10];
    loop {
        let n = dec
            .read(&mut piece)
            .map_err(|e| Inflate::Bad(format!("reading the gzip body: {e}")))?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&piece[..n]);
        if out.len() > limit {
            return Err(Inflate::TooLarge);
        }
        if stopping.load(Ordering::Relaxed) {
            return Err(Inflate::Stopping);
        }
    }
    Ok(out)
}
