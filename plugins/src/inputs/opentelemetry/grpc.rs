//! The OTLP/gRPC listener: tonic serving the official `MetricsService`
//! (traces, logs and profiles are not served: UNIMPLEMENTED), over
//! connections admitted by the process-wide connection budget, with
//! `max_msg_size` on every message (decompressed too), gzip accepted,
//! optional TLS.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::Stream;
use std::convert::Infallible;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use axum::http;
use tokio::sync::OwnedSemaphorePermit;
use tonic::body::Body;
use tonic::codec::CompressionEncoding;
use tonic::server::NamedService;
use tonic::transport::server::{Connected, ServerTlsConfig, TcpConnectInfo};
use tonic::{Request, Response, Status};

use super::receive::{Receiver, Refusal};
use crate::listener::{ConnectionLimiter, ConnectionPermit, Refused};
use crate::opentelemetry::proto::collector::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use crate::opentelemetry::proto::collector::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};

/// The service tonic calls.
struct Service(Arc<Receiver>);

#[tonic::async_trait]
impl MetricsService for Service {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        // The slot `Limited` took before tonic decoded the message.
        let slot = request
            .extensions()
            .get::<Slot>()
            .and_then(|s| s.0.lock().ok()?.take());
        match self.0.export("grpc", request.into_inner(), slot).await {
            Ok(r) => Ok(Response::new(r)),
            Err(refusal) => Err(status(&refusal)),
        }
    }
}

/// A slot among `max_concurrent_requests`, carried in the request's
/// extensions from [`Limited`] to [`Service::export`].
#[derive(Clone)]
struct Slot(Arc<std::sync::Mutex<Option<OwnedSemaphorePermit>>>);

/// The service, behind a slot among the `max_concurrent_requests` requests
/// received at once over every connection and both listeners, taken before
/// tonic reads and decodes the message (HTTP/2's stream limit is per
/// connection only): one more is answered UNAVAILABLE at once, undecoded.
#[derive(Clone)]
struct Limited<S> {
    inner: S,
    receiver: Arc<Receiver>,
}

impl<S: NamedService> NamedService for Limited<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> tower_service::Service<http::Request<Body>> for Limited<S>
where
    S: tower_service::Service<
            http::Request<Body>,
            Response = http::Response<Body>,
            Error = Infallible,
        >,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        match self.receiver.slot() {
            Ok(slot) => {
                let slot = Slot(Arc::new(std::sync::Mutex::new(Some(slot))));
                request.extensions_mut().insert(slot);
                Box::pin(self.inner.call(request))
            }
            Err(refusal) => {
                self.receiver.refused("grpc", &refusal);
                let answer = status(&refusal).into_http();
                Box::pin(std::future::ready(Ok(answer)))
            }
        }
    }
}

/// The gRPC status of a refusal: UNAVAILABLE is what OTLP exporters
/// retry; a request that can never be accepted is INVALID_ARGUMENT.
fn status(refusal: &Refusal) -> Status {
    let message = refusal.to_string();
    match refusal {
        Refusal::Busy(_) | Refusal::Undelivered(_) | Refusal::Stopping => {
            Status::unavailable(message)
        }
        Refusal::TooManyPoints { .. } | Refusal::TooManyTags { .. } | Refusal::Malformed(_) => {
            Status::invalid_argument(message)
        }
        Refusal::TooLarge(_) => Status::resource_exhausted(message),
    }
}

/// What the gRPC listener needs.
pub struct Grpc {
    pub listener: TcpListener,
    pub limiter: ConnectionLimiter,
    pub timeout: Duration,
    pub tls: Option<ServerTlsConfig>,
    pub connections_limit_hits: Arc<AtomicU64>,
    pub process_connections_limit_hits: Arc<AtomicU64>,
}

/// Serve until `stop` turns true; calls in flight then finish.
pub async fn serve(g: Grpc, receiver: Arc<Receiver>, mut stop: watch::Receiver<bool>) {
    let limit = usize::try_from(receiver.max_msg_size).unwrap_or(usize::MAX);
    let streams = u32::try_from(receiver.max_concurrent_requests).unwrap_or(u32::MAX);
    let timeout = g.timeout + receiver.acknowledge.unwrap_or_default();
    let service = MetricsServiceServer::new(Service(receiver.clone()))
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(limit);
    let service = Limited {
        inner: service,
        receiver,
    };
    let mut builder = tonic::transport::Server::builder()
        .timeout(timeout)
        .max_concurrent_streams(streams)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(g.timeout));
    if let Some(tls) = g.tls {
        builder = match builder.tls_config(tls) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "the gRPC listener's TLS settings were refused; not serving");
                return;
            }
        };
    }
    let incoming = admitted(
        g.listener,
        g.limiter,
        g.connections_limit_hits,
        g.process_connections_limit_hits,
    );
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    if let Err(e) = builder
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, stopped)
        .await
    {
        tracing::error!(error = %e, "the gRPC listener stopped");
    }
}

/// The accepted connections that got a permit; the others are closed at
/// once, counted, and logged at most every 10 s.
fn admitted(
    listener: TcpListener,
    limiter: ConnectionLimiter,
    limit_hits: Arc<AtomicU64>,
    process_limit_hits: Arc<AtomicU64>,
) -> impl Stream<Item = io::Result<Admitted>> {
    let state = (listener, limiter, None::<Instant>);
    futures_util::stream::unfold(state, move |(listener, limiter, mut logged)| {
        let (limit_hits, process_limit_hits) = (limit_hits.clone(), process_limit_hits.clone());
        async move {
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting a connection failed; retrying in 100 ms");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                match limiter.try_acquire() {
                    Ok(permit) => {
                        let _ = stream.set_nodelay(true);
                        let conn = Admitted {
                            stream,
                            _permit: permit,
                        };
                        return Some((Ok(conn), (listener, limiter, logged)));
                    }
                    Err(refused) => {
                        let counter = match refused {
                            Refused::Listener { .. } => &limit_hits,
                            Refused::Process { .. } => &process_limit_hits,
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                        if logged.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                            logged = Some(Instant::now());
                            tracing::warn!(%peer, reason = %refused, "connection refused (logged at most every 10 s)");
                        }
                    }
                }
            }
        }
    })
}

/// A connection with its permit, held until it closes.
pub struct Admitted {
    stream: TcpStream,
    _permit: ConnectionPermit,
}

impl Connected for Admitted {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Admitted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Admitted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
