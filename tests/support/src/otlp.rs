//! An OTLP/gRPC metrics receiver built on the official protobuf
//! definitions (`opentelemetry-proto`'s tonic `MetricsService`), on a free
//! loopback port, keeping every export it was sent: what graft's
//! `outputs.opentelemetry` exported, read back independently of graft's own
//! receiver. It can be told to refuse the next exports (UNAVAILABLE), to
//! show that a refused write is retried.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use tonic::codec::CompressionEncoding;

#[derive(Default)]
struct Shared {
    requests: Mutex<Vec<ExportMetricsServiceRequest>>,
    refuse: AtomicU32,
    refused: AtomicU32,
}

struct Service(Arc<Shared>);

#[tonic::async_trait]
impl MetricsService for Service {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let refuse = self.0.refuse.load(Ordering::SeqCst);
        if refuse > 0 {
            self.0.refuse.store(refuse - 1, Ordering::SeqCst);
            self.0.refused.fetch_add(1, Ordering::SeqCst);
            return Err(tonic::Status::unavailable("told to refuse"));
        }
        let mut requests = self.0.requests.lock().unwrap();
        requests.push(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

/// The receiver; stops when dropped.
pub struct OtlpReceiver {
    pub port: u16,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OtlpReceiver {
    /// Start on a free loopback port, gzip accepted.
    pub fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a port");
        let port = listener.local_addr().expect("local address").port();
        listener.set_nonblocking(true).expect("non-blocking");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let service = Service(shared.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let incoming = tokio_stream_of(listener);
                let server =
                    MetricsServiceServer::new(service).accept_compressed(CompressionEncoding::Gzip);
                tonic::transport::Server::builder()
                    .add_service(server)
                    .serve_with_incoming_shutdown(incoming, async {
                        let _ = stopped.await;
                    })
                    .await
                    .expect("serving OTLP");
            });
        });
        Self {
            port,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:<port>`, as `outputs.opentelemetry`'s `service_address`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Answer the next `n` exports UNAVAILABLE (and keep nothing of them).
    pub fn refuse_next(&self, n: u32) {
        self.shared.refuse.store(n, Ordering::SeqCst);
    }

    /// How many exports were refused so far.
    pub fn refused(&self) -> u32 {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// Every export kept so far.
    pub fn requests(&self) -> Vec<ExportMetricsServiceRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Wait until `done` holds for the exports kept; panics after `limit`.
    pub fn wait_for(
        &self,
        limit: Duration,
        done: impl Fn(&[ExportMetricsServiceRequest]) -> bool,
    ) -> Vec<ExportMetricsServiceRequest> {
        let start = Instant::now();
        loop {
            let requests = self.requests();
            if done(&requests) {
                return requests;
            }
            assert!(
                start.elapsed() < limit,
                "the OTLP receiver did not get what was expected within {limit:?}; got {requests:#?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The accepted connections of `listener`, as tonic takes them.
fn tokio_stream_of(
    listener: tokio::net::TcpListener,
) -> impl futures_util::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures_util::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(s, _)| s);
        Some((accepted, listener))
    })
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
