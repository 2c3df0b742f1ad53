//! `outputs.nats` and `inputs.nats_consumer` against a real `nats-server`
//! (Debian's 2.9, started on a free loopback port with its JetStream
//! store in a temporary directory): graft → JetStream → graft → file,
//! counted by distinct sequence numbers; core NATS through a queue group;
//! a poison message; a consumer killed with messages unacknowledged, taken
//! over by another; config errors that name the key.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use graft_test_support::durable::kill9;
use graft_test_support::nats::{
    NatsServer, consumer_info, gather_fields, graft_log, post_lines, seq_lines, seqs, start_graft,
    stream_messages,
};
use graft_test_support::servers::{free_port, listening};
use graft_test_support::{graft, poll_until, stop};

const AGENT: &str = r#"[agent]
  interval = "1s"
  round_interval = false
  flush_interval = "100ms"
  metric_batch_size = 2000
  metric_buffer_limit = 1000000
  omit_hostname = true
"#;

/// An edge agent: numbered lines posted to its listener on `listen` go to
/// `outputs.nats` with `output` (its table's body).
fn edge(listen: u16, output: &str) -> String {
    format!(
        "{AGENT}[[inputs.influxdb_listener]]\n  service_address = \"127.0.0.1:{listen}\"\n\
         [[outputs.nats]]\n{output}\n"
    )
}

/// A consumer agent: `inputs.nats_consumer` with `input` (its table's
/// body), the `seq` metrics to `out`, its own counters to `internal`.
fn consumer(input: &str, out: &Path, internal: &Path) -> String {
    format!(
        "{AGENT}[[inputs.nats_consumer]]\n{input}\n\
         [[inputs.internal]]\n  collect_memstats = false\n\
         [[outputs.file]]\n  files = [\"{}\"]\n  namepass = [\"seq\"]\n\
         [[outputs.file]]\n  files = [\"{}\"]\n  namepass = [\"internal_gather\"]\n",
        out.display(),
        internal.display()
    )
}

/// Wait until graft listens on `port`, failing with its log.
fn wait_listening(child: &mut Child, port: u16, dir: &Path, name: &str) {
    let start = Instant::now();
    while !listening(port) {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{name} exited with {status}: {}", graft_log(dir, name));
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{name} did not listen: {}",
            graft_log(dir, name)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Poll until `out` holds every number below `n` (at least once); fail
/// naming what is missing.
fn wait_for_all(out: &[&Path], n: u64, limit: Duration, context: impl Fn() -> String) {
    let start = Instant::now();
    loop {
        let mut seen = std::collections::BTreeSet::new();
        for o in out {
            seen.extend(seqs(o, "seq").into_keys());
        }
        if (0..n).all(|i| seen.contains(&i)) {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "after {limit:?} {} of {n} numbers arrived (first missing {:?}): {}",
            seen.len(),
            (0..n).find(|i| !seen.contains(i)),
            context()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// SIGTERM graft `name`, check that it exits cleanly in time, and return
/// its log.
fn stop_graft(child: &mut Child, dir: &Path, name: &str) -> String {
    let (status, _) = stop(child, Duration::from_secs(15));
    let log = graft_log(dir, name);
    assert!(status.success(), "{name} exited with {status}: {log}");
    log
}

/// The latest value of counter `field` of the consumer's `internal_gather`.
fn counter(internal: &Path, field: &str) -> f64 {
    gather_fields(internal, "nats_consumer")
        .and_then(|f| f.get(field).copied())
        .unwrap_or(0.0)
}

#[test]
fn jetstream_carries_every_number_from_edge_to_consumer_once() {
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

/// Publish `bodies` to JetStream `subject` (its stream created first),
/// each acknowledged, with the real client.
fn publish(url: &str, stream: &str, subject: &str, bodies: Vec<String>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = async_nats::connect(url).await.expect("connecting");
        let js = async_nats::jetstream::new(client);
        js.get_or_create_stream(async_nats::jetstream::stream::Config {
            name: stream.to_owned(),
            subjects: vec![format!("{subject}.>"), subject.to_owned()],
            ..Default::default()
        })
        .await
        .expect("creating the stream");
        let mut acks = Vec::new();
        for b in bodies {
            acks.push(
                js.publish(subject.to_owned(), b.into())
                    .await
                    .expect("publishing"),
            );
        }
        for a in acks {
            a.await.expect("the stream acknowledged");
        }
    });
}

#[test]
fn a_poison_message_is_counted_terminated_and_never_redelivered() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (out, internal) = (dir.path().join("out"), dir.path().join("internal"));
    let mut bodies: Vec<String> = (0..50).map(|n| seq_lines("seq", "t", n..n + 1)).collect();
    bodies.insert(10, "this is not line protocol\n".into());
    // One bad line beside a good one: only the line is lost.
    bodies.insert(20, format!("{}bad line\n", seq_lines("seq", "t", 50..51)));
    // Past max_message_size (200 bytes): skipped and terminated, however
    // good its lines.
    bodies.insert(30, format!("seq,pad={} seq=999i 999\n", "x".repeat(300)));
    publish(&server.url(), "POISON", "poison", bodies);
    let mut c = start_graft(
        dir.path(),
        "consumer",
        &consumer(
            &format!(
                "  servers = [\"{}\"]\n  subjects = []\n  jetstream_subjects = [\"poison\"]\n  jetstream_durable = \"p\"\n  jetstream_ack_wait = \"1s\"\n  max_message_size = \"200B\"",
                server.url()
            ),
            &out,
            &internal,
        ),
    );
    wait_for_all(&[&out], 51, Duration::from_secs(30), || {
        graft_log(dir.path(), "consumer")
    });
    // Past several ack waits: nothing is delivered again.
    std::thread::sleep(Duration::from_secs(3));
    poll_until(
        "the counters of the last messages",
        Duration::from_secs(10),
        || counter(&internal, "messages_acked") == 51.0,
    );
    let info = consumer_info(&server, "POISON", "p").expect("the consumer");
    assert_eq!(info["num_ack_pending"], 0, "{info}");
    assert_eq!(info["num_redelivered"], 0, "{info}");
    assert_eq!(info["num_pending"], 0, "{info}");
    assert_eq!(counter(&internal, "messages_received"), 53.0);
    assert_eq!(counter(&internal, "messages_malformed"), 1.0);
    assert_eq!(counter(&internal, "message_size_limit_hits"), 1.0);
    assert_eq!(counter(&internal, "messages_terminated"), 2.0);
    assert_eq!(counter(&internal, "messages_redelivered"), 0.0);
    assert_eq!(
        counter(&internal, "parse_errors"),
        3.0,
        "the poison, the bad line and the large message"
    );
    let got = seqs(&out, "seq");
    assert!(got.keys().copied().eq(0..51) && got.values().all(|n| *n == 1));
    let log = stop_graft(&mut c, dir.path(), "consumer");
    assert_eq!(
        log.matches("could not be read in full").count(),
        1,
        "logged once for the two messages within 10 s: {log}"
    );
    assert_eq!(
        log.matches("larger than max_message_size").count(),
        1,
        "{log}"
    );
}

#[test]
fn a_killed_consumers_messages_are_delivered_again_to_another() {
    const N: u64 = 3000;
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (out, internal) = (dir.path().join("out"), dir.path().join("internal"));
    publish(
        &server.url(),
        "TAKEOVER",
        "takeover",
        (0..N).map(|n| seq_lines("seq", "t", n..n + 1)).collect(),
    );
    let input = format!(
        "  servers = [\"{}\"]\n  subjects = []\n  jetstream_subjects = [\"takeover\"]\n  jetstream_durable = \"pool\"\n  jetstream_ack_wait = \"2s\"\n  max_undelivered_messages = 500",
        server.url()
    );
    // The first consumer's output never succeeds: it takes 500 messages
    // and holds them, signalling progress, until it is killed.
    let dead = free_port();
    let mut stuck = start_graft(
        dir.path(),
        "stuck",
        &format!(
            "{AGENT}[[inputs.nats_consumer]]\n{input}\n[[outputs.graphite]]\n  servers = [\"127.0.0.1:{dead}\"]\n"
        ),
    );
    poll_until(
        "the first consumer to hold 500 messages",
        Duration::from_secs(30),
        || consumer_info(&server, "TAKEOVER", "pool").is_some_and(|c| c["num_ack_pending"] == 500),
    );
    // Past its ack wait it still holds them (progress is signalled).
    std::thread::sleep(Duration::from_secs(3));
    let info = consumer_info(&server, "TAKEOVER", "pool").unwrap();
    assert_eq!(info["num_redelivered"], 0, "{info}");
    assert_eq!(info["num_ack_pending"], 500, "{info}");
    kill9(&mut stuck);
    let mut c = start_graft(dir.path(), "consumer", &consumer(&input, &out, &internal));
    wait_for_all(&[&out], N, Duration::from_secs(60), || {
        graft_log(dir.path(), "consumer")
    });
    poll_until("the redeliveries counted", Duration::from_secs(10), || {
        counter(&internal, "messages_redelivered") >= 500.0
    });
    let got = seqs(&out, "seq");
    assert!(got.keys().copied().eq(0..N));
    assert!(got.values().all(|n| *n == 1), "nothing was written twice");
    stop_graft(&mut c, dir.path(), "consumer");
}

#[test]
fn config_errors_name_the_section_and_key() {
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

/// `outputs.nats` in this process, connected to `server`.
fn output(table: &str, rt: &tokio::runtime::Runtime) -> Box<dyn graft_api::Output> {
    let mut out = graft_plugins::outputs::nats::build(toml::from_str(table).unwrap()).unwrap();
    rt.block_on(out.connect()).expect("connecting");
    out
}

fn numbered(range: std::ops::Range<i64>) -> graft_core::Batch {
    let mut b = graft_core::BatchBuilder::new();
    for n in range {
        b.metric("seq", n).field("seq", n);
    }
    b.finish()
}

#[test]
fn a_batch_written_again_is_stored_once() {
    let server = NatsServer::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut out = output(
        &format!(
            "servers = [\"{}\"]\nsubject = \"again\"\n[jetstream]\nname = \"AGAIN\"",
            server.url()
        ),
        &rt,
    );
    let batch = numbered(0..500);
    rt.block_on(out.write(&batch)).expect("the first write");
    // As the host does after a write whose acknowledgements were lost.
    rt.block_on(out.write(&batch))
        .expect("the same batch again");
    rt.block_on(out.write(&numbered(500..600)))
        .expect("new metrics");
    assert_eq!(stream_messages(&server, "AGAIN"), Some(600));
}

#[test]
fn publishes_the_stream_refuses_are_kept_for_a_retry_never_dropped() {
    let server = NatsServer::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // A stream that takes 10 messages and refuses more.
    let mut out = output(
        &format!(
            "servers = [\"{}\"]\nsubject = \"full\"\n[jetstream]\nname = \"FULL\"\nmax_msgs = 10\ndiscard = \"new\"",
            server.url()
        ),
        &rt,
    );
    match rt.block_on(out.write(&numbered(0..15))) {
        Err(graft_api::CallError::Returned(graft_core::WriteError::Partial {
            accepted,
            rejected,
            message,
        })) => {
            assert_eq!(accepted.len(), 10, "{message}");
            assert!(rejected.is_empty(), "nothing dropped for good: {message}");
            assert!(message.contains("not acknowledged"), "{message}");
        }
        other => panic!("a partial write was expected: {other:?}"),
    }
    // The next write of only what is kept fails whole: retried, then
    // buffered by the host.
    match rt.block_on(out.write(&numbered(10..15))) {
        Err(graft_api::CallError::Returned(graft_core::WriteError::Retry(m))) => {
            assert!(m.contains("5 of 5"), "{m}");
        }
        other => panic!("a retry was expected: {other:?}"),
    }
    assert_eq!(stream_messages(&server, "FULL"), Some(10));
}

#[test]
fn a_probe_reaches_the_server_and_creates_nothing() {
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
fn a_stopped_consumer_hands_what_it_could_not_deliver_to_the_next() {
    const N: u64 = 2000;
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (out, internal) = (dir.path().join("out"), dir.path().join("internal"));
    publish(
        &server.url(),
        "HANDOVER",
        "handover",
        (0..N).map(|n| seq_lines("seq", "t", n..n + 1)).collect(),
    );
    // The default ack wait (30 s): a takeover sooner than that is the
    // stopping agent's nak, not the server's timer.
    let input = format!(
        "  servers = [\"{}\"]\n  jetstream_subjects = [\"handover\"]\n  jetstream_durable = \"pool\"\n  max_undelivered_messages = 400",
        server.url()
    );
    let dead = free_port();
    let mut stuck = start_graft(
        dir.path(),
        "stuck",
        &format!(
            "{AGENT}[[inputs.nats_consumer]]\n{input}\n[[outputs.graphite]]\n  servers = [\"127.0.0.1:{dead}\"]\n"
        ),
    );
    poll_until(
        "the first consumer to hold 400 messages",
        Duration::from_secs(30),
        || consumer_info(&server, "HANDOVER", "pool").is_some_and(|c| c["num_ack_pending"] == 400),
    );
    let stopping = Instant::now();
    let log = stop_graft(&mut stuck, dir.path(), "stuck");
    assert!(
        stopping.elapsed() < Duration::from_secs(15),
        "stopped in {:?}",
        stopping.elapsed()
    );
    assert!(log.contains("nak'd for another agent"), "{log}");
    let taking_over = Instant::now();
    let mut c = start_graft(dir.path(), "consumer", &consumer(&input, &out, &internal));
    wait_for_all(&[&out], N, Duration::from_secs(25), || {
        format!(
            "{}\n{}",
            graft_log(dir.path(), "stuck"),
            graft_log(dir.path(), "consumer")
        )
    });
    assert!(
        taking_over.elapsed() < Duration::from_secs(25),
        "not the ack wait"
    );
    poll_until("the redeliveries counted", Duration::from_secs(10), || {
        counter(&internal, "messages_redelivered") >= 400.0
    });
    let got = seqs(&out, "seq");
    assert!(got.keys().copied().eq(0..N) && got.values().all(|n| *n == 1));
    stop_graft(&mut c, dir.path(), "consumer");
}
