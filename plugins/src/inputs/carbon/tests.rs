//! The receiver over real loopback sockets: each pickle limit counted
//! under its own name, the connection kept after a refused frame, an
//! over-long plaintext line dropped without losing its neighbours.

use std::sync::Arc;
use std::time::Duration;

use graft_api::{Input, MetricSink};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::graphite::pickle;

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

fn good(path: &str, v: f64) -> Vec<u8> {
    let mut body = Vec::new();
    pickle::encode(&[(path, 1_700_000_000, v)], &mut body);
    frame(&body)
}

fn count(sink: &MetricSink, name: &'static str) -> u64 {
    sink.counter(name)
        .load(std::sync::atomic::Ordering::Relaxed)
}

/// Names of the metrics received until `n` arrived (at most 10 s).
async fn receive(
    rx: &mut tokio::sync::mpsc::Receiver<graft_api::Received>,
    n: usize,
) -> Vec<String> {
    let mut names = Vec::new();
    while names.len() < n {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(b)) => names.extend(b.batch.iter().map(|m| m.name().to_owned())),
            _ => break,
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_limit_is_counted_and_the_connection_goes_on() {
    let mut input = super::carbon(
        toml::from_str(
            "service_address = \"tcp://127.0.0.1:0\"\npickle_address = \"tcp://127.0.0.1:0\"\n\
             max_line_size = 32\nmax_frame_size = 4096\nmax_pickle_depth = 4\n\
             max_pickle_memo_entries = 2\nmax_pickle_decoded_size = 2048\n\
             max_pickle_metrics = 2",
        )
        .unwrap(),
    )
    .unwrap();
    let (sink, mut rx) = MetricSink::channel(64, Arc::new(|| 0));
    input.start(sink.clone()).await.unwrap();
    let (plain, pickled) = (input.local_addrs()[0], input.local_addrs()[1]);

    let mut p = TcpStream::connect(pickled).await.unwrap();
    let nested = [vec![b'('; 5], vec![b'l'; 5], vec![b'.']].concat();
    let memo = b"\x80\x02K\x01q\x00q\x01q\x02.".to_vec();
    let big = [
        b"\x80\x02X\x00\x08\x00\x00".to_vec(),
        vec![b'x'; 2048],
        b"2.".to_vec(),
    ]
    .concat();
    let mut three = Vec::new();
    pickle::encode(&[("p", 1, 1.0), ("p", 2, 2.0), ("p", 3, 3.0)], &mut three);
    for attack in [
        frame(&three),
        frame(&nested),
        frame(&memo),
        frame(&big),
        frame(&[b'.'; 5000]),
        frame(b"\x80\x04\x8e\x00\x00\x00\x00\x00\x00\x00\x10abc"),
    ] {
        p.write_all(&attack).await.unwrap();
    }
    p.write_all(&good("after.attacks", 1.0)).await.unwrap();
    let mut c = TcpStream::connect(plain).await.unwrap();
    c.write_all(format!("a 1\n{} 2\nb 3\n", "x".repeat(100)).as_bytes())
        .await
        .unwrap();
    drop(c);
    let mut names = receive(&mut rx, 3).await;
    names.sort();
    assert_eq!(names, ["a", "after.attacks", "b"]);
    assert_eq!(count(&sink, "pickle_depth_limit_hits"), 1);
    assert_eq!(count(&sink, "pickle_memo_entries_limit_hits"), 1);
    assert_eq!(count(&sink, "pickle_decoded_size_limit_hits"), 1);
    assert_eq!(count(&sink, "frame_size_limit_hits"), 1);
    assert_eq!(count(&sink, "line_size_limit_hits"), 1);
    assert_eq!(count(&sink, "pickle_metrics_limit_hits"), 1);
    // Six refused frames and one over-long line.
    assert_eq!(sink.malformed_count(), 7);
    input.stop().await;
}

#[test]
fn a_zero_limit_is_an_error_naming_its_key() {
    for key in [
        "max_line_size",
        "max_frame_size",
        "max_pickle_depth",
        "max_pickle_memo_entries",
        "max_pickle_decoded_size",
        "max_pickle_metrics",
    ] {
        let table = toml::from_str(&format!("{key} = 0")).unwrap();
        let e = super::carbon(table).err().expect("refused");
        assert!(format!("{e:#}").contains(key), "{key}: {e:#}");
    }
    let e = super::build_socket_listener(
        toml::from_str("service_address = \"tcp://127.0.0.1:0\"\nmax_line_size = 0").unwrap(),
    )
    .err()
    .expect("refused");
    assert!(format!("{e:#}").contains("max_line_size"), "{e:#}");
}
