//! `inputs.nats_consumer` when things go wrong, against a real
//! `nats-server`: a poison message, a message past `max_message_size`, a
//! consumer killed with messages unacknowledged (taken over by another
//! after the ack wait), a consumer stopped with metrics it could not
//! write (nak'd and taken over at once).

use std::time::{Duration, Instant};

use graft_test_support::durable::kill9;
use graft_test_support::nats::{
    NatsServer, consumer_info, graft_log, seq_lines, seqs, start_graft,
};
use graft_test_support::nats_agents::{AGENT, consumer, counter, stop_graft, wait_for_all};
use graft_test_support::poll_until;
use graft_test_support::servers::free_port;

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

/// `n` messages of one numbered metric each (`seq` 0..n) on `subject`.
fn publish_numbered(server: &NatsServer, stream: &str, subject: &str, n: u64) {
    publish(
        &server.url(),
        stream,
        subject,
        (0..n).map(|k| seq_lines("seq", "t", k..k + 1)).collect(),
    );
}

/// Start the agent "stuck": it reads with `input`, its graphite output
/// never succeeds (nobody listens), and `extra` sections go with it. Waits
/// until the durable consumer "pool" of `stream` holds `holds` messages for
/// it.
fn start_stuck(
    dir: &std::path::Path,
    server: &NatsServer,
    stream: &str,
    input: &str,
    extra: &str,
    holds: u64,
) -> std::process::Child {
    let dead = free_port();
    let stuck = start_graft(
        dir,
        "stuck",
        &format!(
            "{AGENT}[[inputs.nats_consumer]]\n{input}\n{extra}[[outputs.graphite]]\n  servers = [\"127.0.0.1:{dead}\"]\n  namepass = [\"seq\"]\n"
        ),
    );
    poll_until(
        &format!("the stuck agent to hold {holds} messages"),
        Duration::from_secs(30),
        || consumer_info(server, stream, "pool").is_some_and(|c| c["num_ack_pending"] == holds),
    );
    stuck
}

#[test]
fn a_poison_message_is_counted_terminated_and_never_redelivered() {
    let _serial = graft_test_support::nats::one_at_a_time();
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
    let _serial = graft_test_support::nats::one_at_a_time();
    const N: u64 = 3000;
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (out, internal) = (dir.path().join("out"), dir.path().join("internal"));
    publish_numbered(&server, "TAKEOVER", "takeover", N);
    let input = format!(
        "  servers = [\"{}\"]\n  subjects = []\n  jetstream_subjects = [\"takeover\"]\n  jetstream_durable = \"pool\"\n  jetstream_ack_wait = \"2s\"\n  max_undelivered_messages = 500",
        server.url()
    );
    // The first consumer's output never succeeds: it takes 500 messages
    // and holds them, signalling progress, until it is killed.
    let mut stuck = start_stuck(dir.path(), &server, "TAKEOVER", &input, "", 500);
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
fn a_stopped_consumer_hands_what_it_could_not_deliver_to_the_next() {
    let _serial = graft_test_support::nats::one_at_a_time();
    const N: u64 = 2000;
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (out, internal) = (dir.path().join("out"), dir.path().join("internal"));
    publish_numbered(&server, "HANDOVER", "handover", N);
    // The default ack wait (30 s): a takeover sooner than that is the
    // stopping agent's nak, not the server's timer.
    let input = format!(
        "  servers = [\"{}\"]\n  jetstream_subjects = [\"handover\"]\n  jetstream_durable = \"pool\"\n  max_undelivered_messages = 400",
        server.url()
    );
    let mut stuck = start_stuck(dir.path(), &server, "HANDOVER", &input, "", 400);
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

#[test]
fn an_agent_whose_output_is_down_hands_its_messages_to_the_pool() {
    let _serial = graft_test_support::nats::one_at_a_time();
    const N: u64 = 2000;
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (out, internal) = (dir.path().join("out"), dir.path().join("internal"));
    let stuck_internal = dir.path().join("stuck_internal");
    publish_numbered(&server, "STARVE", "starve", N);
    let input = format!(
        "  servers = [\"{}\"]\n  subjects = []\n  jetstream_subjects = [\"starve\"]\n  jetstream_durable = \"pool\"\n  jetstream_ack_wait = \"2s\"\n  jetstream_max_hold = \"4s\"\n  max_undelivered_messages = 200",
        server.url()
    );
    // Its graphite output never succeeds; it keeps running all along.
    // It takes no more than its own bound, though the pool's is 10 × that.
    let extra = format!(
        "[[inputs.internal]]\n  collect_memstats = false\n\
         [[outputs.file]]\n  files = [\"{}\"]\n  namepass = [\"internal_gather\"]\n",
        stuck_internal.display()
    );
    let mut stuck = start_stuck(dir.path(), &server, "STARVE", &input, &extra, 200);
    // The next agent is not starved, and gets the stuck agent's messages
    // once that one stops holding them (after jetstream_max_hold).
    let mut c = start_graft(dir.path(), "consumer", &consumer(&input, &out, &internal));
    wait_for_all(&[&out], N, Duration::from_secs(60), || {
        format!(
            "{}\n{}",
            graft_log(dir.path(), "stuck"),
            graft_log(dir.path(), "consumer")
        )
    });
    let got = seqs(&out, "seq");
    assert!(got.keys().copied().eq(0..N));
    assert!(got.values().all(|n| *n == 1), "nothing was written twice");
    poll_until(
        "the stuck agent's hold limit counted",
        Duration::from_secs(10),
        || counter(&stuck_internal, "hold_limit_hits") >= 200.0,
    );
    let log = graft_log(dir.path(), "stuck");
    assert!(log.contains("jetstream_max_hold"), "{log}");
    assert!(
        stuck.try_wait().unwrap().is_none(),
        "the stuck agent still runs"
    );
    stop_graft(&mut stuck, dir.path(), "stuck");
    stop_graft(&mut c, dir.path(), "consumer");
}

#[test]
fn a_slow_core_consumer_drops_past_pending_bytes_limit_and_counts() {
    let _serial = graft_test_support::nats::one_at_a_time();
    const N: u64 = 300;
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let internal = dir.path().join("internal");
    // Its output never succeeds: it reads 10 messages and no more, and
    // the rest wait in its queue of at most 100 KiB.
    let dead = free_port();
    let mut slow = start_graft(
        dir.path(),
        "slow",
        &format!(
            "{AGENT}[[inputs.nats_consumer]]\n  servers = [\"{}\"]\n  subjects = [\"slow\"]\n  \
             max_undelivered_messages = 10\n  pending_bytes_limit = 102400\n\
             [[inputs.internal]]\n  collect_memstats = false\n\
             [[outputs.graphite]]\n  servers = [\"127.0.0.1:{dead}\"]\n  namepass = [\"seq\"]\n\
             [[outputs.file]]\n  files = [\"{}\"]\n  namepass = [\"internal_gather\"]\n",
            server.url(),
            internal.display()
        ),
    );
    poll_until("the consumer subscribed", Duration::from_secs(30), || {
        server.monitor("connz?subs=true")["connections"]
            .as_array()
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    c["subscriptions_list"]
                        .as_array()
                        .is_some_and(|s| s.iter().any(|x| x == "slow"))
                })
            })
    });
    // N messages of 10 000 bytes each.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = async_nats::connect(server.url()).await.expect("connecting");
        for n in 0..N {
            let line = format!("seq,source=s seq={n}i,pad=\"{}\" {n}\n", "x".repeat(9950));
            client
                .publish("slow", line.into())
                .await
                .expect("publishing");
        }
        client.flush().await.expect("flushing");
    });
    poll_until("the drops counted", Duration::from_secs(30), || {
        counter(&internal, "pending_limit_hits") >= 250.0
    });
    std::thread::sleep(Duration::from_secs(2));
    let (hits, received) = (
        counter(&internal, "pending_limit_hits"),
        counter(&internal, "messages_received"),
    );
    // What was read and what waits is kept: at least 10 each.
    assert!(hits <= (N - 20) as f64, "dropped {hits}");
    assert!(
        received >= 10.0 && hits + received <= N as f64,
        "{hits} {received}"
    );
    let log = graft_log(dir.path(), "slow");
    assert!(log.contains("slow consumer"), "{log}");
    stop_graft(&mut slow, dir.path(), "slow");
}

#[test]
fn a_durable_consumer_of_another_subject_is_not_read_and_says_why() {
    let _serial = graft_test_support::nats::one_at_a_time();
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (out, internal) = (dir.path().join("out"), dir.path().join("internal"));
    publish(
        &server.url(),
        "SHARED",
        "wanted",
        (0..5).map(|n| seq_lines("seq", "t", n..n + 1)).collect(),
    );
    // Someone else's durable consumer "pool", on another subject.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = async_nats::connect(server.url()).await.expect("connecting");
        let js = async_nats::jetstream::new(client);
        let stream = js.get_stream("SHARED").await.expect("the stream");
        stream
            .create_consumer(async_nats::jetstream::consumer::pull::Config {
                durable_name: Some("pool".into()),
                filter_subject: "wanted.other".into(),
                ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
                ..Default::default()
            })
            .await
            .expect("creating the other consumer");
    });
    let input = format!(
        "  servers = [\"{}\"]\n  subjects = []\n  jetstream_subjects = [\"wanted\"]\n  jetstream_durable = \"pool\"",
        server.url()
    );
    let mut c = start_graft(dir.path(), "consumer", &consumer(&input, &out, &internal));
    poll_until("the mismatch reported", Duration::from_secs(30), || {
        graft_log(dir.path(), "consumer").contains("not reading from JetStream")
    });
    poll_until("gathers failing", Duration::from_secs(15), || {
        counter(&internal, "errors") >= 1.0
    });
    let log = graft_log(dir.path(), "consumer");
    assert!(
        log.contains("jetstream_durable") && log.contains("wanted.other"),
        "{log}"
    );
    assert_eq!(counter(&internal, "messages_received"), 0.0);
    let info = consumer_info(&server, "SHARED", "pool").unwrap();
    assert_eq!(info["delivered"]["consumer_seq"], 0, "nothing read: {info}");
    stop_graft(&mut c, dir.path(), "consumer");
}
