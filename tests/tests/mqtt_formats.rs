//! Telegraf-style MQTT configs through a real mosquitto: an older Telegraf
//! output table (`topic_prefix`, `batch = true`, QoS 0) read by a consumer
//! at QoS 0 with Telegraf's default topic tag; and graft's own batch
//! format (`data_format = "graft"`) from agent to agent. Both carry the
//! same metrics as the lines posted.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use graft_test_support::graft_agent::{Agent, Point, points};
use graft_test_support::mosquitto::Mosquitto;
use graft_test_support::servers::{free_port, http, listening};

const LINES: &str = "cpu,cpu=cpu0 usage_idle=97.5,usage_user=1.25 1700000000000000000
cpu,cpu=cpu1 usage_idle=88,usage_user=10.5 1700000000000000000
mem used=123456789i,free_percent=42.5,ok=true 1700000000000000001
app msg=\"say \\\"hi\\\", a=b c\",count=7i 1700000000000000002
";

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

#[test]
fn an_older_telegraf_table_at_qos_0_and_graft_batches_carry_the_same_metrics() {
    let broker = Mosquitto::start();
    let consumer = Agent::start(&format!(
        r#"[agent]
  interval = "500ms"
  flush_interval = "100ms"
  omit_hostname = true
[[inputs.mqtt_consumer]]
  servers = ["{url}"]
  topics = ["telegraf/#"]
[[inputs.mqtt_consumer]]
  servers = ["{url}"]
  topics = ["bin/#"]
  qos = 1
  topic_tag = ""
  data_format = "graft"
[[outputs.file]]
  files = ["{{dir}}/out.lp"]
"#,
        url = broker.url()
    ));
    let start = Instant::now();
    while consumer.log().matches("subscribed to MQTT topics").count() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{}",
            consumer.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let listen = free_port();
    let edge = Agent::start(&format!(
        r#"[agent]
  interval = "1s"
  flush_interval = "100ms"
  omit_hostname = true
[[inputs.influxdb_listener]]
  service_address = "127.0.0.1:{listen}"
[[outputs.mqtt]]
  servers = ["{url}"]
  topic_prefix = "telegraf"
  qos = 0
  batch = true
  keep_alive = 30
  data_format = "influx"
[[outputs.mqtt]]
  servers = ["{url}"]
  topic = "bin/all"
  layout = "batch"
  qos = 1
  data_format = "graft"
"#,
        url = broker.url()
    ));
    let start = Instant::now();
    while !listening(listen) {
        assert!(start.elapsed() < Duration::from_secs(30), "{}", edge.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = http()
        .post(format!("http://127.0.0.1:{listen}/write?db=x"))
        .body(LINES)
        .send()
        .expect("posting");
    assert_eq!(r.status().as_u16(), 204);

    let sent: BTreeSet<Point> = points(LINES.as_bytes()).into_iter().collect();
    let host = hostname();
    let (by_line, by_batch) = loop {
        let got = consumer.points("out.lp");
        let (mut lines, mut batches) = (BTreeSet::new(), BTreeSet::new());
        for mut p in got {
            match p.tags.remove("topic") {
                Some(topic) => {
                    assert_eq!(topic, format!("telegraf/{host}/{}", p.name), "{p:?}");
                    lines.insert(p);
                }
                None => {
                    batches.insert(p);
                }
            }
        }
        if lines.len() >= sent.len() && batches.len() >= sent.len() {
            break (lines, batches);
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{} and {} of {} arrived\nedge:\n{}\nconsumer:\n{}",
            lines.len(),
            batches.len(),
            sent.len(),
            edge.log(),
            consumer.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(by_line, sent, "line protocol at QoS 0");
    assert_eq!(by_batch, sent, "graft's batch format");
}
