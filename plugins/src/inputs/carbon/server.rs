//! The receiver both plugins run: binds each endpoint, hands connections
//! and datagrams to [`super::receive`], and stops them on request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use graft_api::{CallError, Input, MetricSink};
use graft_core::{Batch, PluginError};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::config::{Endpoint, Format, Framing, Limits, Plan, Transport};
use super::datagram;
use super::receive::{self, Ctx};
use crate::listener::tcp::{self, TcpServe};
use crate::listener::udp::{Datagrams, MAX_UDP_PAYLOAD};
use crate::listener::{ConnectionBudget, ListenerStats, PickleStats};

/// The receiver.
pub struct Carbon {
    endpoints: Vec<Endpoint>,
    format: Format,
    limits: Limits,
    local: Vec<SocketAddr>,
    stop: Option<watch::Sender<bool>>,
    tasks: JoinSet<()>,
}

impl Carbon {
    pub(crate) fn new(plan: Plan) -> Self {
        Self {
            endpoints: plan.endpoints,
            format: plan.format,
            limits: plan.limits,
            local: Vec::new(),
            stop: None,
            tasks: JoinSet::new(),
        }
    }

    /// The addresses bound by `start`, in configuration order (plaintext,
    /// then pickle).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local
    }
}

#[async_trait]
impl Input for Carbon {
    async fn gather(&mut self) -> Result<Batch, CallError> {
        Ok(Batch::new())
    }

    fn is_service(&self) -> bool {
        true
    }

    async fn start(&mut self, sink: MetricSink) -> Result<(), PluginError> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let has_pickle = self.endpoints.iter().any(|e| e.1 == Framing::Pickle);
        let ctx = Arc::new(Ctx {
            stats: ListenerStats::for_sink(&sink),
            pickle: if has_pickle {
                PickleStats::for_sink(&sink)
            } else {
                PickleStats::default()
            },
            sink,
            format: self.format.clone(),
            limits: self.limits,
        });
        for (transport, framing, addr) in &self.endpoints {
            let key = if *framing == Framing::Pickle {
                "pickle_address"
            } else {
                "service_address"
            };
            let bind_err = |e: std::io::Error| {
                PluginError::config(key, format!("cannot listen on {addr}: {e}"))
            };
            match transport {
                Transport::Tcp => {
                    let l = TcpListener::bind(addr).await.map_err(bind_err)?;
                    self.local.extend(l.local_addr().ok());
                    let serve = TcpServe {
                        limiter: ConnectionBudget::global().limiter(self.limits.connections),
                        read_timeout: self.limits.read_timeout,
                        stats: ctx.stats.clone(),
                        stop: stop_rx.clone(),
                    };
                    let ctx = ctx.clone();
                    let framing = *framing;
                    let serve = tcp::serve(l, serve, move |conn| {
                        let ctx = ctx.clone();
                        async move {
                            match framing {
                                Framing::Lines => receive::lines(conn, ctx).await,
                                Framing::Pickle => receive::pickles(conn, ctx).await,
                            }
                        }
                    });
                    self.tasks.spawn(serve.in_current_span());
                }
                Transport::Udp => {
                    let s = UdpSocket::bind(addr).await.map_err(bind_err)?;
                    self.local.extend(s.local_addr().ok());
                    let socket =
                        Datagrams::new(s, MAX_UDP_PAYLOAD, ctx.stats.clone(), stop_rx.clone());
                    if let Format::Collectd(decoder) = &self.format {
                        let task = datagram::collectd(socket, ctx.clone(), decoder.clone());
                        self.tasks.spawn(task.in_current_span());
                    } else {
                        self.tasks
                            .spawn(receive::datagrams(socket, ctx.clone()).in_current_span());
                    }
                }
            }
            tracing::info!(
                address = %addr,
                ?transport,
                ?framing,
                "listening"
            );
        }
        self.stop = Some(stop_tx);
        Ok(())
    }

    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        let wait = async { while self.tasks.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(Duration::from_secs(10), wait).await;
    }
}
