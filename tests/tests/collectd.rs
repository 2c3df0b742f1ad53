//! A real collectd (Debian `collectd-core`) sends through its `network`
//! plugin to graft's `inputs.socket_listener` with `data_format =
//! "collectd"`, at each security level; graft writes to `outputs.file`.
//! The values fed to collectd (`PUTVAL` with sequence numbers) are counted
//! in what landed: none lost on loopback, names, tags and types as
//! Telegraf's collectd parser gives them. A wrong password is dropped and
//! counted.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use graft_core::lineparse::{Precision, parse_into};
use graft_core::{BatchBuilder, FieldRef};
use graft_test_support::collectd::{Collectd, Security};
use graft_test_support::graft_agent::{Agent, internal_gather};
use graft_test_support::servers::free_port;

/// Values fed per test.
const N: u64 = 300;

fn wait_until(agent: &Agent, what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < limit,
            "{what} within {limit:?}; graft's log:\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// graft listening on `port` for collectd packets, with `extra` keys.
fn agent(port: u16, extra: &str) -> Agent {
    let agent = Agent::start(&format!(
        r#"[agent]
  interval = "1s"
  flush_interval = "200ms"
  omit_hostname = true
[[inputs.socket_listener]]
  service_address = "udp://127.0.0.1:{port}"
  data_format = "collectd"
  collectd_typesdb = ["/usr/share/collectd/types.db"]
{extra}
[[inputs.internal]]
[[outputs.file]]
  files = ["{{dir}}/out.lp"]
"#
    ));
    agent.wait_log("listening", Duration::from_secs(20));
    agent
}

fn auth_file(dir: &tempfile::TempDir) -> String {
    let path = dir.path().join("auth_file");
    std::fs::write(&path, "# graft's senders\ngraft: s3cret pass\nother: x\n").unwrap();
    path.display().to_string()
}

/// Feed `N` gauges (value = sequence number), a derive, a counter and a
/// two-value `if_octets` per round of 50, flushing after each round.
fn feed(collectd: &mut Collectd, base: u64) {
    for seq in 0..N {
        collectd.putval("seq/gauge-seq", base + seq, &seq.to_string());
        if seq % 50 == 49 {
            let t = base + seq;
            collectd.putval("seq/derive-d", t, &format!("-{seq}"));
            collectd.putval("seq/counter-c", t, &seq.to_string());
            collectd.putval("seq-eth0/if_octets", t, &format!("{seq}:{}", seq * 2));
            collectd.flush();
        }
    }
}

/// A metric as it landed: name, tags, its `value` field, time.
type Landed = (String, Vec<(String, String)>, f64, i64);

/// Every `seq_*` metric in the agent's output, its one field checked to
/// be a float named `value`.
fn metrics(agent: &Agent) -> Vec<Landed> {
    let text = std::fs::read_to_string(agent.path("out.lp")).unwrap_or_default();
    let mut b = BatchBuilder::new();
    let _ = parse_into(&text, Precision::Nanoseconds, 0, &mut b);
    b.finish()
        .iter()
        .filter(|m| m.name().starts_with("seq_"))
        .map(|m| {
            let tags = m
                .tags()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            let fields: Vec<_> = m.fields().collect();
            assert_eq!(fields.len(), 1, "{m:?}");
            let (key, value) = fields[0];
            assert_eq!(key, "value", "{m:?}");
            let FieldRef::Float(v) = value else {
                panic!("not a float field, as Telegraf writes every value: {m:?}");
            };
            (m.name().to_owned(), tags, v, m.timestamp())
        })
        .collect()
}

fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Send at `security` to graft at `graft_level`; every value arrives.
fn all_values_arrive(security: Security, graft_extra: &str) {
    let port = free_port();
    let agent = agent(port, graft_extra);
    let mut collectd = Collectd::start(port, &security);
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 100_000;
    feed(&mut collectd, base);
    let gauges = |m: &[Landed]| {
        m.iter()
            .filter(|(n, ..)| n == "seq_value")
            .filter(|(_, t, ..)| t.iter().any(|(k, v)| k == "type" && v == "gauge"))
            .map(|(.., v, _)| *v as u64)
            .collect::<BTreeSet<u64>>()
    };
    let last = N - 1;
    let t = ((base + last) * 1_000_000_000) as i64;
    // collectd's write threads may add a value to the network plugin's
    // buffer after a FLUSH: flush again until the last round is in.
    wait_until(&agent, "every value", Duration::from_secs(30), || {
        collectd.flush();
        let m = metrics(&agent);
        gauges(&m).len() as u64 == N && m.iter().filter(|(_, _, _, tm)| *tm == t).count() == 5
    });
    let m = metrics(&agent);
    assert_eq!(gauges(&m), (0..N).collect(), "sequence numbers lost");
    let gauge_tags = tags(&[
        ("host", "graft-test"),
        ("type", "gauge"),
        ("type_instance", "seq"),
    ]);
    for (name, t, v, time) in m.iter().filter(|(n, ..)| n == "seq_value") {
        if t.iter().any(|(_, v)| v == "gauge") {
            assert_eq!((name.as_str(), t), ("seq_value", &gauge_tags));
            assert_eq!(*time, ((base + *v as u64) * 1_000_000_000) as i64);
        }
    }
    let expect = [
        (
            "seq_value",
            tags(&[
                ("host", "graft-test"),
                ("type", "derive"),
                ("type_instance", "d"),
            ]),
            -(last as f64),
        ),
        (
            "seq_value",
            tags(&[
                ("host", "graft-test"),
                ("type", "counter"),
                ("type_instance", "c"),
            ]),
            last as f64,
        ),
        (
            "seq_rx",
            tags(&[
                ("host", "graft-test"),
                ("instance", "eth0"),
                ("type", "if_octets"),
            ]),
            last as f64,
        ),
        (
            "seq_tx",
            tags(&[
                ("host", "graft-test"),
                ("instance", "eth0"),
                ("type", "if_octets"),
            ]),
            (last * 2) as f64,
        ),
    ];
    for (name, tags, value) in expect {
        assert!(
            m.iter()
                .any(|(n, tg, v, tm)| n == name && *tg == tags && *v == value && *tm == t),
            "{name} {tags:?} = {value} at {t} not among {:?}",
            m.iter()
                .filter(|(n, ..)| n != "seq_value")
                .collect::<Vec<_>>()
        );
    }
    wait_until(&agent, "internal_gather", Duration::from_secs(20), || {
        internal_gather(&agent.path("out.lp"), "socket_listener").is_some()
    });
    let g = internal_gather(&agent.path("out.lp"), "socket_listener").expect("internal_gather");
    for counter in [
        "parse_errors",
        "collectd_signature_failures",
        "collectd_decrypt_failures",
        "collectd_insecure_packets",
    ] {
        assert_eq!(g.int(counter), Some(0), "{counter}: {g:?}");
    }
}

#[test]
fn unsigned_packets_arrive_at_level_none() {
    all_values_arrive(Security::None, "");
}

#[test]
fn signed_packets_arrive_at_level_sign() {
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "  collectd_security_level = \"sign\"\n  collectd_auth_file = {:?}",
        auth_file(&dir)
    );
    let security = Security::Sign {
        user: "graft".into(),
        password: "s3cret pass".into(),
    };
    all_values_arrive(security, &extra);
}

#[test]
fn encrypted_packets_arrive_at_level_encrypt() {
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "  collectd_security_level = \"encrypt\"\n  collectd_auth_file = {:?}",
        auth_file(&dir)
    );
    let security = Security::Encrypt {
        user: "graft".into(),
        password: "s3cret pass".into(),
    };
    all_values_arrive(security, &extra);
}

/// A wrong password (signed, then encrypted) and unsigned packets at level
/// `sign`: nothing lands, each refused packet counted under its name.
#[test]
fn wrong_password_and_unsigned_packets_are_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let agent = agent(
        port,
        &format!(
            "  collectd_security_level = \"sign\"\n  collectd_auth_file = {:?}",
            auth_file(&dir)
        ),
    );
    let senders = [
        (
            Security::Sign {
                user: "graft".into(),
                password: "guess".into(),
            },
            "collectd_signature_failures",
        ),
        (
            Security::Encrypt {
                user: "graft".into(),
                password: "guess".into(),
            },
            "collectd_decrypt_failures",
        ),
        (Security::None, "collectd_insecure_packets"),
    ];
    for (security, counter) in senders {
        let mut collectd = Collectd::start(port, &security);
        for seq in 0..3 {
            collectd.putval("seq/gauge-bad", 1_000_000 + seq, &seq.to_string());
        }
        wait_until(&agent, counter, Duration::from_secs(20), || {
            collectd.flush();
            internal_gather(&agent.path("out.lp"), "socket_listener")
                .and_then(|g| g.int(counter))
                .is_some_and(|n| n >= 1)
        });
    }
    assert!(metrics(&agent).is_empty(), "{:?}", metrics(&agent));
    let g = internal_gather(&agent.path("out.lp"), "socket_listener").expect("internal_gather");
    assert_eq!(g.int("parse_errors"), Some(0), "{g:?}");
}
