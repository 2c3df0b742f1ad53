//! `username`/`password` against a mosquitto that admits one user: the
//! output and a consumer with the right password pass metrics through; a
//! consumer with a wrong one is refused, logs why, counts `errors` while
//! it cannot connect, and takes nothing.

use std::time::{Duration, Instant};

use graft_test_support::graft_agent::Agent;
use graft_test_support::mosquitto::Mosquitto;
use graft_test_support::servers::{free_port, http, listening};

#[test]
fn the_right_password_passes_and_a_wrong_one_is_refused_and_counted() {
    let broker = Mosquitto::start_with_password("graft", "s3cret");
    let listen = free_port();
    // The consumers rename what they read, so that the output (which
    // publishes only `sent`) does not publish it again.
    let agent = Agent::start(&format!(
        r#"[agent]
  interval = "300ms"
  flush_interval = "100ms"
  omit_hostname = true
[[inputs.influxdb_listener]]
  service_address = "127.0.0.1:{listen}"
[[inputs.mqtt_consumer]]
  alias = "right"
  servers = ["{url}"]
  topics = ["auth/#"]
  username = "graft"
  password = "s3cret"
  name_override = "got_right"
[[inputs.mqtt_consumer]]
  alias = "wrong"
  servers = ["{url}"]
  topics = ["auth/#"]
  username = "graft"
  password = "guess"
  name_override = "got_wrong"
[[inputs.internal]]
[[outputs.mqtt]]
  servers = ["{url}"]
  topic = "auth/{{{{ .PluginName }}}}"
  username = "graft"
  password = "s3cret"
  qos = 1
  namepass = ["sent"]
[[outputs.file]]
  files = ["{{dir}}/out.lp"]
  namedrop = ["sent"]
"#,
        url = broker.url()
    ));
    agent.wait_log("subscribed to MQTT topics", Duration::from_secs(30));
    let start = Instant::now();
    while !listening(listen) {
        assert!(start.elapsed() < Duration::from_secs(30), "{}", agent.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = http()
        .post(format!("http://127.0.0.1:{listen}/write?db=x"))
        .body("sent v=1i 1700000000000000000\n")
        .send()
        .expect("posting");
    assert_eq!(r.status().as_u16(), 204);

    let wrong_errors = || {
        agent
            .points("out.lp")
            .iter()
            .rfind(|p| {
                p.name == "internal_gather"
                    && p.tags.get("alias").map(String::as_str) == Some("wrong")
            })
            .and_then(|p| p.int("errors"))
            .unwrap_or(0)
    };
    let start = Instant::now();
    while !(agent.points("out.lp").iter().any(|p| p.name == "got_right") && wrong_errors() >= 1) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{}\n{}",
            agent.log(),
            broker.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let points = agent.points("out.lp");
    let got: Vec<_> = points
        .iter()
        .filter(|p| p.name.starts_with("got_"))
        .collect();
    assert_eq!(got.len(), 1, "only the consumer with the password: {got:?}");
    assert_eq!(got[0].int("v"), Some(1));
    assert_eq!(got[0].tags["topic"], "auth/sent");
    let log = agent.log();
    assert!(
        log.lines()
            .any(|l| l.contains("MQTT connection failed") && l.contains("refused")),
        "{log}"
    );
}
