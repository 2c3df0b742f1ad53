//! The accept loop and connections over real loopback sockets: refusals
//! counted and closed at once, idle connections timed out and counted,
//! the stop signal honoured.

use std::sync::Arc;
use std::time::Duration;

use graft_core::MetricSink;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::tcp::{self, TcpServe};
use super::*;

/// Serve on a loopback port with `max` connections and `timeout`; each
/// connection echoes what it reads until it ends.
async fn echo_server(
    budget: &Arc<ConnectionBudget>,
    max: usize,
    timeout: Duration,
) -> (
    std::net::SocketAddr,
    MetricSink,
    watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (sink, _rx) = MetricSink::channel(1, Arc::new(|| 0));
    let (stop_tx, stop) = watch::channel(false);
    let serve = TcpServe {
        limiter: budget.limiter(max),
        read_timeout: timeout,
        stats: ListenerStats::for_sink(&sink),
        stop,
    };
    let task = tokio::spawn(tcp::serve(l, serve, |mut conn| async move {
        let mut buf = [0u8; 64];
        while let Some(n) = conn.read(&mut buf).await {
            let _ = conn.peer();
            let _ = n;
        }
    }));
    (addr, sink, stop_tx, task)
}

fn count(sink: &MetricSink, name: &'static str) -> u64 {
    sink.counter(name)
        .load(std::sync::atomic::Ordering::Relaxed)
}

/// Whether the server closes `s` within `wait`.
async fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    let mut b = [0u8; 1];
    matches!(
        tokio::time::timeout(wait, s.read(&mut b)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// Whether the server closes `s` within 2 s (a refused connection).
async fn closed(s: &mut TcpStream) -> bool {
    closed_within(s, Duration::from_secs(2)).await
}

/// Wait (at most 2 s) until the budget holds `n` connections.
async fn in_use_becomes(budget: &ConnectionBudget, n: usize) -> bool {
    for _ in 0..40 {
        if budget.in_use() == n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_maximum_are_closed_and_counted() {
    let budget = ConnectionBudget::new(1000);
    let (addr, sink, stop, task) = echo_server(&budget, 2, Duration::ZERO).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..3 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        assert!(closed(&mut s).await);
    }
    assert_eq!(count(&sink, "connections_limit_hits"), 3);
    assert_eq!(count(&sink, "process_connections_limit_hits"), 0);
    // A held connection is still served.
    held[0].write_all(b"x").await.unwrap();
    drop(held);
    // Slots come back once the peers leave.
    let mut kept = false;
    for _ in 0..20 {
        let mut again = TcpStream::connect(addr).await.unwrap();
        if !closed_within(&mut again, Duration::from_millis(300)).await {
            kept = true;
            break;
        }
    }
    assert!(kept, "no connection kept after the others left");
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("serve ends on stop")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_process_budget_refuses_and_counts() {
    let budget = ConnectionBudget::new(4);
    let (addr, sink, _stop, _task) = echo_server(&budget, 0, Duration::ZERO).await;
    // Another listener registered on the same budget is owed one slot.
    let _other = budget.limiter(0);
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    assert!(closed(&mut s).await);
    assert_eq!(count(&sink, "process_connections_limit_hits"), 1);
    assert!(in_use_becomes(&budget, 3).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_after_the_read_timeout() {
    let budget = ConnectionBudget::new(100);
    let (addr, sink, _stop, _task) = echo_server(&budget, 0, Duration::from_millis(200)).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    assert!(closed(&mut s).await);
    assert_eq!(count(&sink, "idle_timeouts"), 1);
    assert!(in_use_becomes(&budget, 0).await);
}
