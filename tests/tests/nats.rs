//! `outputs.nats` and `inputs.nats_consumer` against a real `nats-server`
//! (Debian's 2.9, started on a free loopback port with its JetStream
//! store in a temporary directory): graft → JetStream → graft → file,
//! counted by distinct sequence numbers; core NATS through a queue group;
//! config errors that name the key; `config check --connect`; agents
//! started before the server, connecting once it is up. The
//! consumer's failure cases are in `nats_consumer.rs`, the output's
//! acknowledgements in `nats_output.rs`.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use graft_test_support::nats::{
    NatsServer, consumer_info, graft_log, post_lines, seq_lines, seqs, start_graft, stream_messages,
};
use graft_test_support::nats_agents::{
    consumer, counter, edge, stop_graft, wait_for_all, wait_listening,
};
use graft_test_support::servers::free_port;
use graft_test_support::{graft, poll_until};

#[test]
fn jetstream_carries_every_number_from_edge_to_consumer_once() {
    let _serial = graft_test_support::nats::one_at_a_time();
    const N: u64 = 20_000;
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (out, internal) = (dir.path().join("out"), dir.path().join("internal"));
    let listen = free_port();
    let url = server.url();
    let mut e = start_graft(
        dir.path(),
        "edge",
        &edge(
            listen,
            &format!(
                "  servers = [\"{url}\"]\n  subject = \"metrics.edge\"\n  [outputs.nats.jetstream]\n    name = \"METRICS\"\n    subjects = [\"metrics.>\"]\n    max_age = \"1h\""
            ),
        ),
    );
    wait_listening(&mut e, listen, dir.path(), "edge");
    let mut c = start_graft(
        dir.path(),
        "consumer",
        &consumer(
            &format!(
                "  servers = [\"{url}\"]\n  subjects = []\n  jetstream_subjects = [\"metrics.>\"]\n  jetstream_durable = \"pool\""
            ),
            &out,
            &internal,
        ),
    );
    let started = Instant::now();
    for k in 0..N / 1000 {
        post_lines(listen, seq_lines("seq", "edge", k * 1000..(k + 1) * 1000));
    }
    wait_for_all(&[&out], N, Duration::from_secs(60), || {
        format!(
            "edge: {}\nconsumer: {}",
            graft_log(dir.path(), "edge"),
            graft_log(dir.path(), "consumer")
        )
    });
    let took = started.elapsed();
    println!(
        "{N} metrics edge → JetStream (one message each) → consumer → file in {took:?}: {:.0} metrics/s",
        N as f64 / took.as_secs_f64()
    );
    // One message per metric, each stored once.
    assert_eq!(stream_messages(&server, "METRICS"), Some(N));
    let got = seqs(&out, "seq");
    assert_eq!(got.len() as u64, N);
    assert!(got.keys().copied().eq(0..N), "exactly the numbers sent");
    poll_until(
        "every message acknowledged",
        Duration::from_secs(20),
        || {
            consumer_info(&server, "METRICS", "pool")
                .is_some_and(|c| c["num_ack_pending"] == 0 && c["num_pending"] == 0)
                && counter(&internal, "messages_acked") >= N as f64
        },
    );
    assert_eq!(counter(&internal, "messages_received"), N as f64);
    assert_eq!(counter(&internal, "messages_nacked"), 0.0);
    let log = stop_graft(&mut c, dir.path(), "consumer");
    assert!(!log.contains("ERROR"), "{log}");
    stop_graft(&mut e, dir.path(), "edge");
}

#[test]
fn core_nats_queue_group_gives_each_message_to_one_consumer() {
    let _serial = graft_test_support::nats::one_at_a_time();
    const N: u64 = 4000;
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let url = server.url();
    let outs: Vec<_> = (0..2).map(|i| dir.path().join(format!("out{i}"))).collect();
    let mut consumers: Vec<Child> = (0..2)
        .map(|i| {
            start_graft(
                dir.path(),
                &format!("c{i}"),
                &consumer(
                    &format!(
                        "  servers = [\"{url}\"]\n  subjects = [\"core.>\"]\n  queue_group = \"q\"\n  subject_tag = \"subject\""
                    ),
                    &outs[i],
                    &dir.path().join(format!("internal{i}")),
                ),
            )
        })
        .collect();
    // Core NATS keeps nothing: publish only once both are subscribed.
    poll_until("both consumers subscribed", Duration::from_secs(30), || {
        let connz = server.monitor("connz?subs=true");
        let subscribed = connz["connections"].as_array().map_or(0, |cs| {
            cs.iter()
                .filter(|c| {
                    c["subscriptions_list"]
                        .as_array()
                        .is_some_and(|s| s.iter().any(|x| x == "core.>"))
                })
                .count()
        });
        subscribed >= 2
    });
    let listen = free_port();
    let mut e = start_graft(
        dir.path(),
        "edge",
        &edge(
            listen,
            &format!("  servers = [\"{url}\"]\n  subject = \"core.metrics\""),
        ),
    );
    wait_listening(&mut e, listen, dir.path(), "edge");
    for k in 0..N / 500 {
        post_lines(listen, seq_lines("seq", "edge", k * 500..(k + 1) * 500));
    }
    let refs: Vec<&Path> = outs.iter().map(|p| p.as_path()).collect();
    wait_for_all(&refs, N, Duration::from_secs(60), || {
        graft_log(dir.path(), "edge")
    });
    let (a, b) = (seqs(&outs[0], "seq"), seqs(&outs[1], "seq"));
    assert!(
        !a.is_empty() && !b.is_empty(),
        "both took a share: {} and {}",
        a.len(),
        b.len()
    );
    assert!(
        a.keys().all(|k| !b.contains_key(k)),
        "a number went to both members of the queue group"
    );
    assert_eq!(a.len() + b.len(), N as usize);
    assert!(a.values().chain(b.values()).all(|n| *n == 1));
    // subject_tag: each metric carries the subject it came on.
    let text = std::fs::read_to_string(&outs[0]).unwrap();
    assert!(
        text.lines()
            .all(|l| l.starts_with("seq,source=edge,subject=core.metrics ")),
        "{}",
        &text[..text.len().min(500)]
    );
    for (i, c) in consumers.iter_mut().enumerate() {
        stop_graft(c, dir.path(), &format!("c{i}"));
    }
    stop_graft(&mut e, dir.path(), "edge");
}

#[test]
fn config_errors_name_the_section_and_key() {
    let _serial = graft_test_support::nats::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("graft.toml");
    for (table, names, key) in [
        (
            "[[outputs.nats]]\n  [outputs.nats.jetstream]\n    subjects = [\"x\"]",
            "outputs.nats[0]",
            "jetstream.name",
        ),
        (
            "[[outputs.nats]]\n  subject = \"a.>\"",
            "outputs.nats[0]",
            "subject",
        ),
        (
            "[[outputs.nats]]\n  data_format = \"avro\"",
            "outputs.nats[0]",
            "data_format",
        ),
        (
            "[[inputs.nats_consumer]]\n  max_undelivered_messages = 0",
            "inputs.nats_consumer[0]",
            "max_undelivered_messages",
        ),
        (
            "[[inputs.nats_consumer]]\n  pending_message_limt = 5",
            "inputs.nats_consumer[0]",
            "pending_message_limt",
        ),
        (
            "[[inputs.nats_consumer]]\n  servers = [\"nats://[::1\"]",
            "inputs.nats_consumer[0]",
            "servers[0]",
        ),
    ] {
        std::fs::write(&file, format!("{table}\n")).unwrap();
        let out = graft()
            .args(["config", "check", "--config"])
            .arg(&file)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{table}: accepted");
        assert!(
            err.contains(names) && err.contains(key) && err.contains("graft.toml"),
            "{table}: the error does not name the file, {names} and {key}: {err}"
        );
    }
}

#[test]
fn a_probe_reaches_the_server_and_creates_nothing() {
    let _serial = graft_test_support::nats::one_at_a_time();
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("graft.toml");
    let down = free_port();
    std::fs::write(
        &config,
        format!(
            "[[inputs.mem]]\n[[outputs.nats]]\n  servers = [\"{}\"]\n  [outputs.nats.jetstream]\n    name = \"PROBE\"\n\
             [[outputs.nats]]\n  servers = [\"nats://127.0.0.1:{down}\"]\n",
            server.url()
        ),
    )
    .unwrap();
    let out = graft()
        .args(["config", "check", "--connect", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let unreachable: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("could not reach"))
        .collect();
    assert_eq!(unreachable.len(), 1, "{stdout}");
    assert!(
        unreachable[0].starts_with("could not reach outputs.nats[1]:")
            && unreachable[0].contains(&down.to_string()),
        "{stdout}"
    );
    assert_eq!(
        stream_messages(&server, "PROBE"),
        None,
        "the probe created the stream"
    );
}

#[test]
fn agents_started_before_the_server_connect_once_it_is_up() {
    let _serial = graft_test_support::nats::one_at_a_time();
    const N: u64 = 1000;
    let mut server = NatsServer::start();
    server.kill9();
    let dir = tempfile::tempdir().unwrap();
    let (out, internal) = (dir.path().join("out"), dir.path().join("internal"));
    let listen = free_port();
    let url = server.url();
    let mut e = start_graft(
        dir.path(),
        "edge",
        &edge(
            listen,
            &format!(
                "  servers = [\"{url}\"]\n  subject = \"late\"\n  [outputs.nats.jetstream]\n    name = \"LATE\""
            ),
        ),
    );
    wait_listening(&mut e, listen, dir.path(), "edge");
    let mut c = start_graft(
        dir.path(),
        "consumer",
        &consumer(
            &format!("  servers = [\"{url}\"]\n  jetstream_subjects = [\"late\"]"),
            &out,
            &internal,
        ),
    );
    post_lines(listen, seq_lines("seq", "edge", 0..N));
    poll_until(
        "the consumer to count its failed attempts",
        Duration::from_secs(20),
        || counter(&internal, "errors") >= 1.0,
    );
    server.resume();
    server.wait_ready();
    wait_for_all(&[&out], N, Duration::from_secs(40), || {
        format!(
            "edge: {}\nconsumer: {}",
            graft_log(dir.path(), "edge"),
            graft_log(dir.path(), "consumer")
        )
    });
    assert_eq!(stream_messages(&server, "LATE"), Some(N));
    stop_graft(&mut c, dir.path(), "consumer");
    stop_graft(&mut e, dir.path(), "edge");
}
