//! `inputs.socket_listener` with `data_format = "collectd"` over a real
//! loopback UDP socket: good packets delivered, signed ones with a wrong
//! password and malformed ones counted under their own names, TCP refused.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use graft_api::{Input, MetricSink};

use super::{Carbon, SocketListenerConfig};
use crate::collectd::encode::Packet;
use crate::collectd::wire::{Value, part};

fn listener(extra: &str) -> anyhow::Result<Carbon> {
    let config: SocketListenerConfig = toml::from_str(&format!(
        "service_address = \"udp://127.0.0.1:0\"\ndata_format = \"collectd\"\n{extra}"
    ))?;
    Ok(Carbon::new(config.resolve()?))
}

fn packet(seq: u64) -> Packet {
    Packet::new()
        .ident("sender", "seq", "", "gauge", "")
        .time(1_700_000_000)
        .values(&[Value::Gauge(seq as f64)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_packets_kept_wrong_password_and_garbage_counted() {
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("auth_file");
    std::fs::write(&auth, "graft: secret\n").unwrap();
    let mut input = listener(&format!(
        "collectd_security_level = \"sign\"\ncollectd_auth_file = {:?}",
        auth.to_str().unwrap()
    ))
    .unwrap();
    let (sink, mut rx) = MetricSink::channel(64, Arc::new(|| 0));
    input.start(sink.clone()).await.unwrap();
    let to = input.local_addrs()[0];
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(&packet(1).signed("graft", "secret"), to).unwrap();
    s.send_to(&packet(2).signed("graft", "wrong"), to).unwrap();
    s.send_to(packet(3).bytes(), to).unwrap();
    s.send_to(&packet(4).encrypted("graft", "wrong", [3; 16]), to)
        .unwrap();
    s.send_to(&[0, 6, 0, 99, 1], to).unwrap();
    let bad_host = Packet::new()
        .part(part::HOST, b"x")
        .values(&[Value::Gauge(1.0)]);
    s.send_to(bad_host.bytes(), to).unwrap();
    s.send_to(&packet(5).encrypted("graft", "secret", [4; 16]), to)
        .unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        let b = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("metrics within 10 s")
            .expect("sink open");
        for m in b.batch.iter() {
            assert_eq!(m.name(), "seq_value");
            assert_eq!(m.tag("host"), Some("sender"));
            got.push(m.field("value").and_then(|v| v.as_f64()).unwrap());
        }
    }
    assert_eq!(got, [1.0, 5.0]);
    let count = |name| sink.counter(name).load(Ordering::Relaxed);
    assert_eq!(count("collectd_signature_failures"), 1);
    assert_eq!(count("collectd_decrypt_failures"), 1);
    // The unsigned packet, and the unsigned one with a bad host part.
    assert_eq!(count("collectd_insecure_packets"), 2);
    // The bad length and the bad host part.
    assert_eq!(sink.malformed_count(), 2);
    input.stop().await;
}

#[test]
fn collectd_over_tcp_or_with_bad_keys_is_refused_naming_the_key() {
    let cases = [
        (
            "service_address = \"tcp://127.0.0.1:0\"\ndata_format = \"collectd\"",
            "service_address",
        ),
        (
            "service_address = \"udp://127.0.0.1:0\"\ndata_format = \"collectd\"\ncollectd_security_level = \"high\"",
            "collectd_security_level",
        ),
        (
            "service_address = \"udp://127.0.0.1:0\"\ndata_format = \"collectd\"\ncollectd_typesdb = [\"/nonexistent\"]",
            "collectd_typesdb",
        ),
        (
            "service_address = \"udp://127.0.0.1:0\"\ncollectd_parse_multivalue = \"join\"",
            "collectd_parse_multivalue",
        ),
    ];
    for (table, key) in cases {
        let e = super::build_socket_listener(toml::from_str(table).unwrap())
            .err()
            .expect("refused");
        assert!(format!("{e:#}").contains(key), "{key}: {e:#}");
    }
    let _ = listener("").expect("the defaults are accepted");
}
