//! The InfluxDB listener's connection limits, driven directly on
//! 127.0.0.1: `max_connections`, idle keep-alive connections closed after
//! `read_timeout`, and a peer that reads no answers closed after
//! `write_timeout`; each counted in the listener's own counters.

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use graft_api::counters::Counters;
use graft_api::{Input, MetricSink};
use graft_plugins::inputs::influxdb_listener::Listener;
use graft_test_support::poll_until;
use graft_test_support::probe::closed;
use graft_test_support::servers::http;

/// A listener started alone on 127.0.0.1 with `config` (besides its
/// address), its counters and the receiving end of its sink.
struct Started {
    rt: tokio::runtime::Runtime,
    listener: Listener,
    counters: Arc<Counters>,
    rx: tokio::sync::mpsc::Receiver<graft_api::Received>,
    address: std::net::SocketAddr,
}

fn start(config: &str) -> Started {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let counters = Arc::new(Counters::default());
    let (sink, rx) = MetricSink::channel(16, Arc::new(|| 0));
    let table = format!("service_address = \"127.0.0.1:0\"\n{config}");
    let mut listener = Listener::new(
        graft_plugins::config::parse(toml::from_str(&table).unwrap()).unwrap(),
        ":8186",
    )
    .unwrap();
    rt.block_on(listener.start(sink.with_counters(counters.clone())))
        .unwrap();
    let address = listener.local_addr().unwrap();
    Started {
        rt,
        listener,
        counters,
        rx,
        address,
    }
}

/// `max_connections` open at once: one more is closed at once and counted;
/// idle connections are closed after `read_timeout` (counted apart from
/// slow headers), which frees their places for new clients.
#[test]
fn connections_past_max_connections_are_closed_and_idle_ones_time_out() {
    let Started {
        rt,
        mut listener,
        counters,
        mut rx,
        address,
    } = start("max_connections = 2\nread_timeout = \"1s\"");
    let value = |name: &str| {
        counters
            .snapshot()
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, v)| *v)
    };

    let held: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(address).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut third = TcpStream::connect(address).unwrap();
    assert!(closed(&mut third), "the third connection is closed at once");
    poll_until("a connection limit hit", Duration::from_secs(5), || {
        value("connections_limit_hits") == 1
    });

    // The two idle ones are closed after read_timeout; then a client
    // gets through again.
    for mut s in held {
        assert!(closed(&mut s), "closed when idle");
    }
    poll_until("two idle timeouts", Duration::from_secs(5), || {
        value("idle_timeouts") == 2
    });
    assert_eq!(value("header_timeouts"), 0, "idle is not a slow header");
    let r = http()
        .post(format!("http://{address}/write"))
        .body("good,src=after seq=1i\n")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(rx.try_recv().unwrap().batch.len(), 1);
    rt.block_on(listener.stop());
}

/// A peer that sends request after request and reads no answer: once the
/// answers wait longer than `write_timeout`, the connection is closed and
/// counted.
#[test]
fn a_peer_that_reads_no_answers_is_closed_after_write_timeout() {
    let Started {
        rt,
        mut listener,
        counters,
        rx: _rx,
        address,
    } = start("write_timeout = \"1s\"");
    let mut s = TcpStream::connect(address).unwrap();
    // 200 000 pipelined pings (7 MB) ask for about 25 MB of answers, more
    // than loopback buffers hold; the write fails once the server gives up.
    let pings = "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n".repeat(200_000);
    let _ = s.write_all(pings.as_bytes());
    poll_until("a write timeout", Duration::from_secs(15), || {
        counters
            .snapshot()
            .iter()
            .any(|(n, v)| *n == "write_timeouts" && *v == 1)
    });
    drop(s);
    rt.block_on(listener.stop());
}

/// `acknowledge = "durable"`: a write is answered only once the pipeline
/// settles its metrics — 204 when every holder let go, 503 with
/// `Retry-After` when one lost some, 503 at `acknowledge_timeout` when
/// nothing settles — and a write still waiting holds no write permit.
#[test]
fn durable_acknowledgements_answer_when_the_metrics_are_settled() {
    let Started {
        rt,
        mut listener,
        counters,
        mut rx,
        address,
    } = start("acknowledge = \"durable\"\nacknowledge_timeout = \"2s\"\nmax_concurrent_writes = 1");
    let value = |name: &str| {
        counters
            .snapshot()
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, v)| *v)
    };
    let post = move |body: &'static str| {
        std::thread::spawn(move || {
            let r = http()
                .post(format!("http://{address}/write"))
                .body(body)
                .send()
                .unwrap();
            let status = r.status().as_u16();
            let retry = r.headers().get("retry-after").is_some();
            (status, retry, r.text().unwrap())
        })
    };
    let received = |rx: &mut tokio::sync::mpsc::Receiver<graft_api::Received>| {
        let mut got = None;
        poll_until(
            "the write reaches the pipeline",
            Duration::from_secs(5),
            || {
                got = rx.try_recv().ok();
                got.is_some()
            },
        );
        got.unwrap()
    };

    // Held by two stages: answered once both let go.
    let first = post("m seq=1i\nm seq=2i\n");
    let r = received(&mut rx);
    assert_eq!(r.batch.len(), 2);
    let (a, b) = (
        r.ack.clone().expect("an acknowledged write"),
        r.ack.unwrap(),
    );
    // The permit is free while the first write waits.
    let second = post("m seq=3i\n");
    let r2 = received(&mut rx);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !first.is_finished(),
        "answered before its metrics were settled"
    );
    drop(a);
    std::thread::sleep(Duration::from_millis(100));
    assert!(!first.is_finished(), "one stage still holds the metrics");
    drop(b);
    assert_eq!(first.join().unwrap().0, 204);

    // A stage that lost some: 503 with Retry-After.
    let ack = r2.ack.unwrap();
    ack.fail();
    drop(ack);
    let (status, retry, text) = second.join().unwrap();
    assert_eq!((status, retry), (503, true), "{text}");
    assert!(text.contains("not delivered"), "{text}");
    assert_eq!(value("undelivered_writes"), 1);

    // Nothing settles: 503 at acknowledge_timeout.
    let third = post("m seq=4i\n");
    let held = received(&mut rx);
    let (status, retry, text) = third.join().unwrap();
    assert_eq!((status, retry), (503, true), "{text}");
    assert!(text.contains("acknowledge_timeout"), "{text}");
    assert_eq!(value("acknowledge_timeouts"), 1);
    drop(held);
    rt.block_on(listener.stop());
}
