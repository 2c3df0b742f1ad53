//! `inputs.mqtt_consumer`'s session against a real mosquitto on loopback:
//! `qos = 2` subscribes at QoS 1 (the broker's own log shows the QoS it
//! sends at), and a persistent session keeps every message across broker
//! restarts.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

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
