//! MQTT interop against a real mosquitto (Debian's `mosquitto` 2.0) on
//! loopback: a line published with `mosquitto_pub` is read by graft's
//! `inputs.mqtt_consumer` (topic tag, topic parsing), a malformed message
//! is counted and costs only itself; graft's `outputs.mqtt` messages read
//! back with `mosquitto_sub` are line protocol that parses to the metrics
//! sent, on the topics the template gives, and its JSON has Telegraf's
//! shape; both move on from a server that listens nowhere to the next;
//! both reach a TLS listener; config errors name the key.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use graft_test_support::graft;
use graft_test_support::graft_agent::{Agent, Point, internal_gather, points};
use graft_test_support::mosquitto::Mosquitto;
use graft_test_support::servers::{free_port, http, listening};

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

/// Publish `probe` messages until one lands in the agent's `out.lp`: the
/// consumer is then subscribed.
fn wait_subscribed(broker: &Mosquitto, agent: &Agent, topic: &str) {
    let start = Instant::now();
    let landed = || agent.points("out.lp").iter().any(|p| p.name == "probe");
    while !landed() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the consumer never subscribed; graft's log:\n{}",
            agent.log()
        );
        broker.publish(topic, 1, b"probe value=1i");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn lines_from_mosquitto_pub_are_read_and_a_malformed_message_costs_only_itself() {
    let broker = Mosquitto::start();
    // The first server listens nowhere: the consumer moves on to the next.
    let closed = free_port();
    let mut agent = Agent::start(&format!(
        r#"[agent]
  interval = "500ms"
  flush_interval = "100ms"
  omit_hostname = true
[[inputs.mqtt_consumer]]
  servers = ["tcp://127.0.0.1:{closed}", "{url}"]
  topics = ["sensors/#"]
  qos = 1
  persistent_session = true
  client_id = "interop-consumer"
  [[inputs.mqtt_consumer.topic_parsing]]
    topic = "sensors/+/+"
    tags = "_/site/_"
[[inputs.internal]]
[[outputs.file]]
  files = ["{{dir}}/out.lp"]
"#,
        url = broker.url()
    ));
    wait_subscribed(&broker, &agent, "sensors/probe/p");

    broker.publish(
        "sensors/paris/weather",
        1,
        b"weather,city=paris temp=21.5,ok=true,note=\"a b\" 1700000000000000000\n",
    );
    broker.publish("sensors/x/bad", 1, b"this is not line protocol at all");
    broker.publish(
        "sensors/oslo/weather",
        1,
        b"weather,city=oslo temp=-3i 1700000000000000001",
    );
    let weather = || -> Vec<Point> {
        agent
            .points("out.lp")
            .into_iter()
            .filter(|p| p.name == "weather")
            .collect()
    };
    wait_for(
        "both weather lines",
        Duration::from_secs(20),
        || weather().len() >= 2,
        &agent,
    );
    let internal = agent.path("out.lp");
    wait_for(
        "the malformed message to be counted",
        Duration::from_secs(10),
        || {
            internal_gather(&internal, "mqtt_consumer")
                .is_some_and(|p| p.int("messages_malformed") == Some(1))
        },
        &agent,
    );
    std::thread::sleep(Duration::from_millis(500));
    let w = weather();
    assert_eq!(w.len(), 2, "each line once: {w:?}");
    let paris = w.iter().find(|p| p.tags["city"] == "paris").expect("paris");
    assert_eq!(paris.tags["topic"], "sensors/paris/weather");
    assert_eq!(paris.tags["site"], "paris", "topic_parsing");
    assert_eq!(paris.fields["temp"], "21.5");
    assert_eq!(paris.fields["note"], "a b");
    assert_eq!(paris.time, 1_700_000_000_000_000_000);
    let oslo = w.iter().find(|p| p.tags["city"] == "oslo").expect("oslo");
    assert_eq!(oslo.fields["temp"], "-3");
    assert_eq!(oslo.tags["site"], "oslo");

    let g = internal_gather(&internal, "mqtt_consumer").expect("internal_gather");
    assert_eq!(g.int("messages_malformed"), Some(1), "{g:?}");
    assert!(g.int("parse_errors") >= Some(1), "{g:?}");
    let received = g.int("messages_received").unwrap();
    assert!(received >= 4, "{g:?}");
    assert_eq!(g.int("reconnects"), Some(0), "{g:?}");
    assert_eq!(g.int("messages_undelivered"), Some(0), "{g:?}");
    assert!(agent.log().contains("could not be read"), "{}", agent.log());
    assert!(agent.stop(Duration::from_secs(15)).success());
}

/// Lines posted to graft's listener, with values line protocol must
/// escape or quote.
const LINES: &str = "cpu,host=web\\ 01,cpu=cpu0 usage_idle=97.5,usage_user=1.25 1700000000000000000
cpu,host=web\\ 01,cpu=cpu1 usage_idle=88,usage_user=10.5 1700000000000000000
disk,host=db,path=/var\\,x free=123456789i,used_percent=42.5,ok=true 1700000000000000001
app,host=db msg=\"say \\\"hi\\\", a=b c\",count=7i 1700000000000000002
";

/// An agent taking lines on its InfluxDB listener and publishing them
/// with `outputs.mqtt`, configured by `outputs`.
fn publisher(outputs: &str) -> (Agent, u16) {
    let listen = free_port();
    let agent = Agent::start(&format!(
        r#"[agent]
  interval = "1s"
  flush_interval = "100ms"
  omit_hostname = true
[[inputs.influxdb_listener]]
  service_address = "127.0.0.1:{listen}"
{outputs}"#
    ));
    let start = Instant::now();
    while !listening(listen) {
        assert!(start.elapsed() < Duration::from_secs(30), "{}", agent.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    (agent, listen)
}

fn post(port: u16, body: &str) {
    let r = http()
        .post(format!("http://127.0.0.1:{port}/write?db=x"))
        .body(body.to_owned())
        .send()
        .expect("posting");
    assert_eq!(r.status().as_u16(), 204, "{:?}", r.text());
}

#[test]
fn mosquitto_sub_reads_line_protocol_and_telegraf_json_from_graft() {
    let broker = Mosquitto::start();
    let mut lines = broker.subscribe("graft/lp/#");
    let mut json = broker.subscribe("graft/json/#");
    let closed = free_port();
    let (mut agent, listen) = publisher(&format!(
        r#"[[outputs.mqtt]]
  servers = ["127.0.0.1:{closed}", "{url}"]
  topic = 'graft/lp/{{{{ .PluginName }}}}/{{{{ .Tag "host" }}}}'
  qos = 1
[[outputs.mqtt]]
  servers = ["{url}"]
  topic = "graft/json/{{{{ .PluginName }}}}"
  layout = "batch"
  qos = 2
  data_format = "json"
"#,
        url = broker.url()
    ));
    post(listen, LINES);

    // Line protocol: one message per metric, on its topic.
    let got = lines.wait(4, Duration::from_secs(20)).to_vec();
    assert_eq!(got.len(), 4, "{}", agent.log());
    let sent: BTreeSet<Point> = points(LINES.as_bytes()).into_iter().collect();
    let mut read = BTreeSet::new();
    for (topic, payload) in &got {
        let p = points(payload);
        assert_eq!(p.len(), 1, "one metric per message: {topic}");
        let p = p.into_iter().next().unwrap();
        assert_eq!(topic, &format!("graft/lp/{}/{}", p.name, p.tags["host"]));
        read.insert(p);
    }
    assert_eq!(
        read, sent,
        "what mosquitto_sub read parses to what was sent"
    );

    // JSON, layout batch: one message per topic, Telegraf's shape.
    let got = json.wait(3, Duration::from_secs(20)).to_vec();
    let topics: BTreeSet<&str> = got.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        topics,
        BTreeSet::from(["graft/json/app", "graft/json/cpu", "graft/json/disk"])
    );
    for (topic, payload) in &got {
        let v: serde_json::Value = serde_json::from_slice(payload).expect("JSON");
        let metrics = v["metrics"].as_array().expect("{\"metrics\": [...]}");
        for m in metrics {
            let keys: BTreeSet<&str> = m.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(
                keys,
                BTreeSet::from(["fields", "name", "tags", "timestamp"])
            );
            assert_eq!(
                topic,
                &format!("graft/json/{}", m["name"].as_str().unwrap())
            );
            assert_eq!(
                m["timestamp"], 1_700_000_000,
                "Telegraf's default unit: seconds"
            );
        }
        if topic.ends_with("/cpu") {
            assert_eq!(metrics.len(), 2, "both cpu metrics in one message");
            assert_eq!(metrics[0]["tags"]["host"], "web 01");
            assert_eq!(metrics[0]["fields"]["usage_idle"], 97.5);
        }
        if topic.ends_with("/disk") {
            assert_eq!(metrics[0]["fields"]["free"], 123_456_789);
            assert_eq!(metrics[0]["fields"]["ok"], true);
            assert_eq!(metrics[0]["tags"]["path"], "/var,x");
        }
    }
    assert!(agent.stop(Duration::from_secs(15)).success());
}

#[test]
fn graft_talks_to_a_tls_broker_with_the_tls_keys_and_qos_2() {
    let (broker, tls_port, ca) = Mosquitto::start_tls();
    let consumer = Agent::start(&format!(
        r#"[agent]
  interval = "500ms"
  flush_interval = "100ms"
  omit_hostname = true
[[inputs.mqtt_consumer]]
  servers = ["ssl://127.0.0.1:{tls_port}"]
  topics = ["secure/#"]
  qos = 2
  tls_ca = "{ca}"
[[inputs.internal]]
[[outputs.file]]
  files = ["{{dir}}/out.lp"]
"#,
        ca = ca.display()
    ));
    consumer.wait_log("subscribed to MQTT topics", Duration::from_secs(30));
    let (mut edge, listen) = publisher(&format!(
        r#"[[outputs.mqtt]]
  servers = ["mqtts://localhost:{tls_port}"]
  topic = "secure/{{{{ .PluginName }}}}"
  qos = 2
  tls_ca = "{ca}"
"#,
        ca = ca.display()
    ));
    post(listen, LINES);
    let sent: BTreeSet<Point> = points(LINES.as_bytes()).into_iter().collect();
    let received = || -> BTreeSet<Point> {
        consumer
            .points("out.lp")
            .into_iter()
            .filter(|p| !p.name.starts_with("internal"))
            .map(|mut p| {
                assert_eq!(p.tags.remove("topic"), Some(format!("secure/{}", p.name)));
                p
            })
            .collect()
    };
    wait_for(
        "the metrics over TLS",
        Duration::from_secs(20),
        || received().len() >= sent.len(),
        &consumer,
    );
    assert_eq!(received(), sent);
    let file = consumer.path("out.lp");
    wait_for(
        "the consumer's counters",
        Duration::from_secs(10),
        || {
            internal_gather(&file, "mqtt_consumer")
                .is_some_and(|g| g.int("messages_acked") == Some(4))
        },
        &consumer,
    );
    let g = internal_gather(&file, "mqtt_consumer").unwrap();
    assert_eq!(g.int("errors"), Some(0), "{g:?}");
    assert!(edge.stop(Duration::from_secs(15)).success());
    drop(broker);
}

#[test]
fn config_errors_name_file_section_and_key() {
    let dir = tempfile::tempdir().unwrap();
    for (table, key) in [
        ("[[outputs.mqtt]]\n  protocol = \"5\"\n", "protocol"),
        ("[[outputs.mqtt]]\n  layout = \"homie-v4\"\n", "layout"),
        ("[[outputs.mqtt]]\n  topic = \"a/+/b\"\n", "topic"),
        ("[[outputs.mqtt]]\n  qos = 7\n", "qos"),
        (
            "[[outputs.mqtt]]\n  servers = [\"ws://127.0.0.1:1\"]\n",
            "servers",
        ),
        (
            "[[inputs.mqtt_consumer]]\n  servers = [\"tcp://127.0.0.1:1\"]\n",
            "topics",
        ),
        (
            "[[inputs.mqtt_consumer]]\n  topics = [\"a\"]\n  persistent_session = true\n",
            "persistent_session",
        ),
        (
            "[[inputs.mqtt_consumer]]\n  topics = [\"a\"]\n  qos = 3\n",
            "qos",
        ),
        (
            "[[inputs.mqtt_consumer]]\n  topics = [\"a\"]\n  data_format = \"xml\"\n",
            "data_format",
        ),
        (
            "[[inputs.mqtt_consumer]]\n  topics = [\"a\"]\n  max_undelivered_messages = 0\n",
            "max_undelivered_messages",
        ),
        (
            "[[inputs.mqtt_consumer]]\n  topics = [\"a\"]\n  max_undelivered_messages = 4611686018427387904\n",
            "max_undelivered_messages",
        ),
    ] {
        let path = dir.path().join("graft.toml");
        std::fs::write(&path, format!("[[inputs.cpu]]\n[[outputs.file]]\n{table}")).unwrap();
        let out = graft()
            .args(["config", "check", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{table} was accepted");
        let section = if table.contains("outputs") {
            "outputs.mqtt"
        } else {
            "inputs.mqtt_consumer"
        };
        assert!(
            err.contains("graft.toml") && err.contains(section) && err.contains(key),
            "{table}: {err}"
        );
    }
}
