//! `inputs.mqtt_consumer`'s bounds against a real mosquitto: at most
//! `max_undelivered_messages` messages are read while the outputs deliver
//! nothing, none of them is acknowledged, and a new consumer on the same
//! persistent session gets every message; a message over `max_topic_size`
//! costs only itself, one over `max_message_size` only the connection; a
//! payload of exactly `max_message_size` (what a broker with that payload
//! limit admits) is read, and one a little larger costs only itself; a
//! persistent session's oversized message, sent again on every connection,
//! is logged once a minute, not once a connection.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use graft_test_support::graft_agent::{Agent, Point, internal_gather};
use graft_test_support::mosquitto::Mosquitto;
use graft_test_support::servers::free_port;

const SUBSCRIBED: &str = "subscribed to MQTT topics";

fn gather(agent: &Agent) -> Option<Point> {
    internal_gather(&agent.path("out.lp"), "mqtt_consumer")
}

fn wait_until(agent: &Agent, what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < limit,
            "timed out waiting for {what}:\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A consumer of `limits/#` on a persistent session `client_id` with the
/// limit keys `limits`, writing what it reads and its counters to
/// `out.lp`, once it has subscribed.
fn limited(broker: &Mosquitto, client_id: &str, limits: &str) -> Agent {
    let agent = Agent::start(&format!(
        r#"[agent]
  interval = "300ms"
  flush_interval = "100ms"
  omit_hostname = true
[[inputs.mqtt_consumer]]
  servers = ["{url}"]
  topics = ["limits/#"]
  qos = 1
  persistent_session = true
  client_id = "{client_id}"
{limits}
[[inputs.internal]]
[[outputs.file]]
  files = ["{{dir}}/out.lp"]
"#,
        url = broker.url()
    ));
    agent.wait_log(SUBSCRIBED, Duration::from_secs(30));
    agent
}

/// The `n` of every `lim` metric written so far.
fn landed(agent: &Agent) -> Vec<i64> {
    agent
        .points("out.lp")
        .iter()
        .filter(|p| p.name == "lim")
        .filter_map(|p| p.int("n"))
        .collect()
}

#[test]
fn the_in_flight_bound_holds_and_a_new_consumer_gets_every_message() {
    const MESSAGES: i64 = 200;
    let broker = Mosquitto::start();
    let closed = free_port();
    // The only output that takes `load` never answers: nothing is
    // delivered, so nothing may be acknowledged.
    let mut stuck = Agent::start(&format!(
        r#"[agent]
  interval = "300ms"
  flush_interval = "100ms"
  omit_hostname = true
[[inputs.mqtt_consumer]]
  servers = ["{url}"]
  topics = ["load/#"]
  qos = 1
  persistent_session = true
  client_id = "bounded"
  max_undelivered_messages = 10
[[inputs.internal]]
[[outputs.influxdb]]
  urls = ["http://127.0.0.1:{closed}"]
  timeout = "500ms"
  namepass = ["load"]
[[outputs.file]]
  files = ["{{dir}}/out.lp"]
  namepass = ["internal_gather"]
"#,
        url = broker.url()
    ));
    stuck.wait_log(SUBSCRIBED, Duration::from_secs(30));
    let lines: String = (0..MESSAGES)
        .map(|n| format!("load n={n}i {n}\n"))
        .collect();
    broker.publish_lines("load/x", 1, &lines);
    wait_until(
        &stuck,
        "the bound to be hit",
        Duration::from_secs(20),
        || gather(&stuck).is_some_and(|g| g.int("undelivered_messages_limit_hits") >= Some(1)),
    );
    // Time for more to be read, if the bound did not hold.
    std::thread::sleep(Duration::from_secs(2));
    let g = gather(&stuck).expect("internal_gather");
    let received = g.int("messages_received").unwrap();
    assert!(
        (10..=11).contains(&received),
        "10 held, at most one more waiting for a place: {g:?}"
    );
    assert_eq!(g.int("messages_acked"), Some(0), "{g:?}");
    assert_eq!(
        stuck
            .log()
            .matches("max_undelivered_messages reached")
            .count(),
        1,
        "logged once for the connection:\n{}",
        stuck.log()
    );
    let start = Instant::now();
    assert!(stuck.stop(Duration::from_secs(15)).success());
    assert!(start.elapsed() < Duration::from_secs(15));

    // The same session, now with an output that delivers: every message,
    // those read before unacknowledged included.
    let fine = Agent::start(&format!(
        r#"[agent]
  interval = "300ms"
  flush_interval = "100ms"
  omit_hostname = true
[[inputs.mqtt_consumer]]
  servers = ["{url}"]
  topics = ["load/#"]
  qos = 1
  persistent_session = true
  client_id = "bounded"
  max_undelivered_messages = 10
[[inputs.internal]]
[[outputs.file]]
  files = ["{{dir}}/out.lp"]
"#,
        url = broker.url()
    ));
    let distinct = || -> BTreeSet<i64> {
        fine.points("out.lp")
            .iter()
            .filter(|p| p.name == "load")
            .filter_map(|p| p.int("n"))
            .collect()
    };
    let start = Instant::now();
    while distinct().len() as i64 != MESSAGES {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{} of {MESSAGES} landed {:?}\ngraft:\n{}\nbroker:\n{}",
            distinct().len(),
            gather(&fine),
            fine.log(),
            broker.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(distinct(), (0..MESSAGES).collect::<BTreeSet<_>>());
    wait_until(
        &fine,
        "the acknowledgements",
        Duration::from_secs(10),
        || gather(&fine).is_some_and(|g| g.int("messages_acked") >= Some(MESSAGES)),
    );
    let g = gather(&fine).unwrap();
    assert!(
        g.int("messages_redelivered") >= Some(10),
        "those read by the first consumer come again: {g:?}"
    );
}

#[test]
fn a_long_topic_costs_its_message_and_a_large_message_its_connection() {
    let broker = Mosquitto::start();
    let agent = limited(
        &broker,
        "limited",
        "  max_topic_size = \"64B\"\n  max_message_size = \"1KiB\"",
    );
    let long_topic = format!("limits/{}", "t".repeat(100));
    broker.publish(&long_topic, 1, b"lim n=1i");
    // QoS 0, so that the broker does not send it again on the next
    // connection.
    let big = format!("lim n=2i,pad=\"{}\"", "x".repeat(4096));
    broker.publish("limits/big", 0, big.as_bytes());
    agent.wait_log("larger than max_message_size", Duration::from_secs(20));
    broker.publish("limits/ok", 1, b"lim n=3i");
    let landed = || landed(&agent);
    wait_until(
        &agent,
        "the message after the limits",
        Duration::from_secs(30),
        || landed().contains(&3),
    );
    wait_until(&agent, "the counters", Duration::from_secs(10), || {
        gather(&agent).is_some_and(|g| g.int("reconnects") >= Some(1))
    });
    assert_eq!(landed(), [3], "only the message within the limits");
    let g = gather(&agent).unwrap();
    assert_eq!(g.int("topic_size_limit_hits"), Some(1), "{g:?}");
    assert_eq!(g.int("message_size_limit_hits"), Some(1), "{g:?}");
    assert!(g.int("parse_errors") >= Some(2), "{g:?}");
    assert!(
        agent.log().contains("longer than max_topic_size"),
        "{}",
        agent.log()
    );
}

#[test]
fn a_payload_at_max_message_size_is_read_and_a_little_larger_one_skipped() {
    let broker = Mosquitto::start();
    let agent = limited(&broker, "at-limit", "  max_message_size = \"1KiB\"");
    let sized = |n: i64, bytes: usize| {
        let head = format!("lim n={n}i,pad=\"");
        let body = format!("{head}{}\"", "x".repeat(bytes - head.len() - 1));
        assert_eq!(body.len(), bytes);
        body
    };
    // A broker with `message_size_limit 1024` (the docs' advice) admits
    // this one: its packet (topic and packet id added) is larger.
    broker.publish("limits/edge", 1, sized(1, 1024).as_bytes());
    broker.publish("limits/over", 1, sized(2, 1100).as_bytes());
    broker.publish("limits/ok", 1, b"lim n=3i");
    let landed = || landed(&agent).into_iter().collect::<BTreeSet<i64>>();
    wait_until(
        &agent,
        "the messages within the limit",
        Duration::from_secs(30),
        || landed().contains(&1) && landed().contains(&3),
    );
    wait_until(&agent, "the counters", Duration::from_secs(10), || {
        gather(&agent).is_some_and(|g| {
            g.int("message_size_limit_hits") == Some(1) && g.int("messages_acked") == Some(3)
        })
    });
    assert_eq!(landed(), BTreeSet::from([1, 3]));
    let g = gather(&agent).unwrap();
    assert_eq!(
        g.int("reconnects"),
        Some(0),
        "no connection was lost: {g:?}"
    );
    assert!(
        agent.log().contains("it is skipped and acknowledged"),
        "{}",
        agent.log()
    );
}

#[test]
fn an_oversized_message_sent_again_on_every_connection_is_logged_once() {
    let broker = Mosquitto::start();
    let mut agent = limited(
        &broker,
        "oversized-loop",
        "  max_message_size = \"1KiB\"\n  max_topic_size = \"64B\"",
    );
    broker.publish("limits/big", 1, "x".repeat(4096).as_bytes());
    // Backoff 250 ms, 500 ms, 1 s: three lost connections within seconds.
    wait_until(
        &agent,
        "three lost connections",
        Duration::from_secs(30),
        || gather(&agent).is_some_and(|g| g.int("message_size_limit_hits") >= Some(3)),
    );
    let lines = agent
        .log()
        .lines()
        .filter(|l| l.contains("larger than max_message_size; the connection is dropped"))
        .count();
    assert_eq!(lines, 1, "{}", agent.log());
    assert!(agent.stop(Duration::from_secs(15)).success());
}
