//! The consumer's table: Telegraf's keys read, bad values refused naming
//! the key, and the topic tag and topic parsing applied to parsed metrics.

use super::*;
use crate::inputs::mqtt_consumer::topic::Rule;

fn config(text: &str) -> Result<Config> {
    crate::config::parse(toml::from_str(text).unwrap())
}

fn error(text: &str) -> String {
    match config(text) {
        Err(e) => format!("{e:#}"),
        Ok(c) => format!("{:#}", Consumer::validate(&c).unwrap_err()),
    }
}

#[test]
fn telegraf_options_are_read() {
    let c = config(
        r#"servers = ["tcp://127.0.0.1:1883"]
topics = ["telegraf/+/cpu", "sensors/#"]
topic_tag = ""
qos = 1
connection_timeout = "5s"
max_undelivered_messages = 50
persistent_session = true
client_id = "consumer-1"
username = "u"
password = "p"
keepalive = 30
ping_timeout = "10s"
client_trace = false
data_format = "json"
max_message_size = "64KiB"
[[topic_parsing]]
  topic = "sensors/+/+"
  measurement = "_/name/_"
  tags = "_/_/room"
  [topic_parsing.types]
    room = "int"
"#,
    )
    .unwrap();
    Consumer::validate(&c).unwrap();
    let o = &c.own.own;
    assert_eq!(o.max_undelivered_messages, 50);
    assert_eq!(o.max_message_size, 64 * 1024);
    assert_eq!(o.topic_parsing.len(), 1);
    let c = config("topics = [\"a\"]").unwrap();
    assert_eq!(c.own.own.topic_tag, "topic", "Telegraf's default");
    assert_eq!(c.own.own.max_undelivered_messages, 1000);
    assert_eq!(c.own.own.qos, 0);
}

#[test]
fn errors_name_the_key() {
    for (text, key) in [
        ("", "topics"),
        ("topics = [\"a/#/b\"]", "topics"),
        ("topics = [\"a\"]\nqos = 3", "qos"),
        (
            "topics = [\"a\"]\npersistent_session = true",
            "persistent_session",
        ),
        (
            "topics = [\"a\"]\nconnection_timeout = \"10ms\"",
            "connection_timeout",
        ),
        (
            "topics = [\"a\"]\nmax_undelivered_messages = 0",
            "max_undelivered_messages",
        ),
        (
            "topics = [\"a\"]\nmax_undelivered_messages = 1000001",
            "max_undelivered_messages",
        ),
        (
            "topics = [\"a\"]\nmax_undelivered_messages = 9223372036854775807",
            "max_undelivered_messages",
        ),
        ("topics = [\"a\"]\nservers = [\"ws://h:1\"]", "servers"),
        ("topics = [\"a\"]\nkeepalive = -5", "keepalive"),
        ("topics = [\"a\"]\nmax_topic_size = 0", "max_topic_size"),
        ("topics = [\"a\"]\ndata_format = \"xml\"", "data_format"),
        ("topics = [\"a\"]\ntopic = \"a\"", "topic"),
        ("topics = [\"a\"]\ntls_key = \"/k.pem\"", "tls_cert"),
        (
            "topics = [\"a\"]\n[[topic_parsing]]\ntopic = \"a/+\"\nmeasurement = \"x/y/z\"",
            "topic_parsing.measurement",
        ),
        (
            "topics = [\"a\"]\n[[topic_parsing]]\ntopic = \"a/+\"\nbogus = 1",
            "bogus",
        ),
    ] {
        let e = error(text);
        assert!(e.contains(key), "{text}: {e}");
    }
}

#[test]
fn the_topic_tag_and_topic_parsing_apply_to_every_metric() {
    let mut b = graft_core::BatchBuilder::new();
    b.metric("m", 5)
        .tag("a", "1")
        .field("v", 1.0)
        .field("t", 2.0);
    b.metric("m", 6).field("v", 3.0);
    let metrics = b.finish();
    let rule = Rule::new(&TopicParsing {
        topic: "site/+/+".into(),
        measurement: "_/_/name".into(),
        tags: "_/room/_".into(),
        fields: "_/_/_".into(),
        ..Default::default()
    })
    .unwrap();
    let found = vec![rule.apply("site/r1/temp").unwrap().unwrap()];
    let mut out = graft_core::BatchBuilder::new();
    deliver_copy(&metrics, "site/r1/temp", Some("topic"), &found, &mut out);
    let out = out.finish();
    assert_eq!(out.len(), 2);
    let m = out.get(0);
    assert_eq!(m.name(), "temp");
    assert_eq!(m.tag("topic"), Some("site/r1/temp"));
    assert_eq!(m.tag("room"), Some("r1"));
    assert_eq!(m.tag("a"), Some("1"));
    assert_eq!(m.timestamp(), 5);
    assert_eq!(out.get(1).tag("room"), Some("r1"));
}

fn deliver_copy(
    metrics: &Batch,
    topic: &str,
    tag: Option<&str>,
    found: &[topic::Extracted<'_>],
    out: &mut graft_core::BatchBuilder,
) {
    deliver::copy_with_topic(metrics, topic, tag, found, out);
}

/// The delivery side alone: messages in (QoS 0, so nothing to
/// acknowledge), one batch out with the topic tag and what topic parsing
/// took, bad messages counted and skipped.
#[tokio::test]
async fn messages_waiting_together_go_out_as_one_batch_and_bad_ones_are_counted() {
    use std::sync::atomic::Ordering;

    use rumqttc::{Publish, QoS};
    use tokio::sync::{Semaphore, mpsc};

    let (sink, mut pipeline) = MetricSink::channel(4, Arc::new(|| 0));
    let counters = Arc::new(Counters::of(&sink));
    let rule = Rule::new(&TopicParsing {
        topic: "s/+/+".into(),
        tags: "_/site/_".into(),
        fields: "_/_/n".into(),
        types: [("n".to_owned(), "int".to_owned())].into(),
        ..Default::default()
    })
    .unwrap();
    let format: crate::format::ParserConfig = crate::config::parse(toml::Table::new()).unwrap();
    let (tx, rx) = mpsc::channel(8);
    let deliverer = deliver::Deliverer {
        rx,
        parser: format.build("mqtt_consumer").unwrap(),
        topic_tag: Some("topic".into()),
        rules: vec![rule],
        sink: sink.clone(),
        acks: mpsc::unbounded_channel().0,
        counters: counters.clone(),
        max_undelivered: 8,
        redeliver: None,
    };
    let permits = Arc::new(Semaphore::new(8));
    for (topic, body) in [
        ("s/a/1", "m v=1\nm v=2"),
        ("s/b/2", "not line protocol"),
        ("s/c/x", "m v=3"),
        ("other", "m v=4"),
    ] {
        tx.send(receive::Message {
            publish: Publish::new(topic, QoS::AtMostOnce, body),
            ack: None,
            permit: permits.clone().try_acquire_owned().unwrap(),
        })
        .await
        .unwrap();
    }
    drop(tx);
    deliverer.run().await;
    let got = pipeline.recv().await.expect("one batch");
    assert!(
        pipeline.try_recv().is_err(),
        "the messages waiting went together"
    );
    let graft_api::Received { batch, ack } = got;
    let rows: Vec<(Option<&str>, Option<&str>, String)> = batch
        .iter()
        .map(|m| {
            (
                m.tag("topic"),
                m.tag("site"),
                m.fields()
                    .map(|(k, v)| format!("{k}={}", v.as_f64().unwrap()))
                    .collect::<Vec<_>>()
                    .join(","),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (Some("s/a/1"), Some("a"), "v=1,n=1".to_owned()),
            (Some("s/a/1"), Some("a"), "v=2,n=1".to_owned()),
            (Some("other"), None, "v=4".to_owned()),
        ]
    );
    // The bad body, and the topic whose `n` is not an int.
    assert_eq!(counters.messages_malformed.load(Ordering::Relaxed), 2);
    assert_eq!(sink.malformed_count(), 2);
    assert_eq!(
        permits.available_permits(),
        6,
        "the two messages that gave metrics hold their places until delivered"
    );
    drop(ack.expect("sent with an acknowledgement"));
    for _ in 0..1000 {
        if permits.available_permits() == 8 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(
        permits.available_permits(),
        8,
        "delivered: every place is free"
    );
}
