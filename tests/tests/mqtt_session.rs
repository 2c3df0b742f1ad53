//! `inputs.mqtt_consumer`'s session against a real mosquitto on loopback:
//! `qos = 2` subscribes at QoS 1 (the broker's own log shows the QoS it
//! sends at), a persistent session keeps every message across broker
//! restarts, a batch that was not delivered makes the consumer connect
//! again (for the broker to send it again) only with a persistent session,
//! and an acknowledgement of a message from a connection that is gone is
//! never written on the next one.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use graft_api::{Input, MetricSink, Received};
use graft_test_support::graft_agent::{Agent, internal_gather};
use graft_test_support::mosquitto::Mosquitto;

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool, agent: &Agent) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < limit,
            "timed out waiting for {what}; graft's log:\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The distinct `n` of the `seq` metrics in the agent's `out.lp`.
fn landed(agent: &Agent) -> BTreeSet<i64> {
    agent
        .points("out.lp")
        .iter()
        .filter(|p| p.name == "seq")
        .filter_map(|p| p.int("n"))
        .collect()
}

fn publish(broker: &Mosquitto, range: std::ops::Range<i64>) {
    let lines: String = range.map(|n| format!("seq n={n}i\n")).collect();
    broker.publish_lines("q2/seq", 2, &lines);
}

#[test]
fn qos_2_is_taken_as_1_and_a_persistent_session_survives_broker_restarts() {
    let mut broker = Mosquitto::start_with("log_type debug\n");
    let mut agent = Agent::start(&format!(
        r#"[agent]
  interval = "500ms"
  flush_interval = "100ms"
  omit_hostname = true
[[inputs.mqtt_consumer]]
  servers = ["{url}"]
  topics = ["q2/#"]
  qos = 2
  persistent_session = true
  client_id = "consumer-q2"
[[inputs.internal]]
[[outputs.file]]
  files = ["{{dir}}/out.lp"]
"#,
        url = broker.url()
    ));
    agent.wait_log("subscribed to MQTT topics", Duration::from_secs(30));
    assert!(
        agent.log().contains("qos = 2 is taken as 1"),
        "{}",
        agent.log()
    );
    let mut total = 0;
    for _ in 0..3 {
        publish(&broker, total..total + 20);
        total += 20;
        broker.restart();
    }
    publish(&broker, total..total + 20);
    total += 20;
    wait_for(
        "every message",
        Duration::from_secs(60),
        || landed(&agent).len() as i64 >= total,
        &agent,
    );
    assert_eq!(landed(&agent), (0..total).collect::<BTreeSet<_>>());
    let log = broker.log();
    let sends: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Sending PUBLISH to consumer-q2"))
        .collect();
    assert!(!sends.is_empty(), "{log}");
    assert!(
        sends
            .iter()
            .all(|l| l.contains("(d0, q1") || l.contains("(d1, q1")),
        "the broker sent at QoS 2: {sends:?}"
    );
    assert!(!agent.log().contains("unsolicited"), "{}", agent.log());
    let file = agent.path("out.lp");
    wait_for(
        "the consumer's counters",
        Duration::from_secs(10),
        || {
            internal_gather(&file, "mqtt_consumer")
                .is_some_and(|g| g.int("messages_acked") >= Some(total))
        },
        &agent,
    );
    assert!(agent.stop(Duration::from_secs(15)).success());
}

/// The consumer alone on `broker` (topics `u/#`, QoS 1, `extra` keys),
/// started on a sink whose batches the test receives.
async fn lone_consumer(
    broker: &Mosquitto,
    extra: &str,
) -> (
    Box<dyn Input>,
    MetricSink,
    tokio::sync::mpsc::Receiver<Received>,
) {
    let table: toml::Table = format!(
        "servers = [\"{}\"]\ntopics = [\"u/#\"]\nqos = 1\n{extra}",
        broker.url()
    )
    .parse()
    .unwrap();
    let mut input = graft_plugins::inputs::mqtt_consumer::build(table).unwrap();
    let (sink, rx) = MetricSink::channel(64, Arc::new(|| 0));
    input.start(sink.clone()).await.unwrap();
    (input, sink, rx)
}

/// The next batch's `seq` numbers and its acknowledgement (none within
/// 20 s: panics).
async fn next(rx: &mut tokio::sync::mpsc::Receiver<Received>) -> (Vec<i64>, graft_api::Ack) {
    let r = tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("a batch within 20 s")
        .expect("the consumer is running");
    let seq = r
        .batch
        .iter()
        .filter(|m| m.name() == "seq")
        .flat_map(|m| {
            m.fields()
                .filter_map(|(_, v)| v.as_f64())
                .collect::<Vec<_>>()
        })
        .map(|v| v as i64)
        .collect();
    (seq, r.ack.expect("QoS 1 batches carry an acknowledgement"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undelivered_batch_reconnects_only_with_a_persistent_session() {
    for persistent in [false, true] {
        let broker = Mosquitto::start();
        let extra = if persistent {
            "persistent_session = true\nclient_id = \"consumer-undelivered\"\n"
        } else {
            ""
        };
        let (mut input, sink, mut rx) = lone_consumer(&broker, extra).await;
        // Subscribed once a probe comes through.
        let start = Instant::now();
        loop {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "never subscribed"
            );
            broker.publish("u/probe", 1, b"probe v=1i");
            if let Ok(Some(r)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
                drop(r);
                break;
            }
        }
        while rx.try_recv().is_ok() {}
        broker.publish("u/seq", 1, b"seq n=1i");
        let (seq, ack) = next(&mut rx).await;
        assert_eq!(seq, [1]);
        ack.fail();
        drop(ack);
        let undelivered = sink.counter("messages_undelivered");
        let start = Instant::now();
        while undelivered.load(Ordering::Relaxed) == 0 {
            assert!(start.elapsed() < Duration::from_secs(10), "not counted");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for n in 2..=5 {
            broker.publish("u/seq", 1, format!("seq n={n}i").as_bytes());
        }
        let mut got = BTreeSet::new();
        let want: BTreeSet<i64> = if persistent { 1..=5 } else { 2..=5 }.collect();
        while !want.is_subset(&got) {
            let (seq, ack) = next(&mut rx).await;
            got.extend(seq);
            drop(ack);
        }
        let reconnects = sink.counter("reconnects").load(Ordering::Relaxed);
        if persistent {
            assert!(reconnects >= 1, "connected again for the broker to resend");
        } else {
            assert_eq!(
                reconnects, 0,
                "a clean session gains nothing from reconnecting"
            );
            assert!(
                !got.contains(&1),
                "a clean session's broker resends nothing"
            );
        }
        input.stop().await;
    }
}

/// The PUBACKs mosquitto's debug log shows from `client` since it last
/// started.
fn pubacks_since_start(broker: &Mosquitto, client: &str) -> usize {
    let log = broker.log();
    let since = log.rsplit("starting").next().unwrap_or("");
    since
        .lines()
        .filter(|l| l.contains(&format!("Received PUBACK from {client}")))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_from_a_connection_that_is_gone_is_not_written_on_the_next() {
    let mut broker = Mosquitto::start_with("log_type debug\n");
    let client = "consumer-stale-ack";
    let (mut input, _sink, mut rx) =
        lone_consumer(&broker, &format!("client_id = \"{client}\"\n")).await;
    let subscribed = async |rx: &mut tokio::sync::mpsc::Receiver<Received>, broker: &Mosquitto| {
        let start = Instant::now();
        loop {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "never subscribed"
            );
            // QoS 0: probes are never acknowledged.
            broker.publish("u/probe", 0, b"probe v=1i");
            if let Ok(Some(r)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
                drop(r);
                break;
            }
        }
        while rx.try_recv().is_ok() {}
    };
    subscribed(&mut rx, &broker).await;
    broker.publish("u/seq", 1, b"seq n=1i");
    let (seq, first) = next(&mut rx).await;
    assert_eq!(seq, [1]);
    // The connection goes while the message is on its way; it is
    // delivered (and its acknowledgement queued) before the next one.
    broker.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    broker.resume();
    subscribed(&mut rx, &broker).await;
    // The new clean session numbers its messages from 1 again.
    broker.publish("u/seq", 1, b"seq n=2i");
    let (seq, second) = next(&mut rx).await;
    assert_eq!(seq, [2]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        pubacks_since_start(&broker, client),
        0,
        "an acknowledgement from the old connection reached the new one:\n{}",
        broker.log()
    );
    drop(second);
    let start = Instant::now();
    while pubacks_since_start(&broker, client) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{}",
            broker.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pubacks_since_start(&broker, client), 1, "{}", broker.log());
    input.stop().await;
}
