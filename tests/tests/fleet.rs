//! The fleet test: a three-node `nats-server` JetStream cluster with a
//! stream of three replicas; two edge agents publish a known sequence
//! (100 000 metrics, numbered) through `outputs.nats`; two consumer agents
//! share one durable consumer and write to a real InfluxDB. In the middle
//! of the stream one consumer agent hangs (SIGSTOP: the messages the server
//! hands it stay unacknowledged), then it and one NATS node are
//! `kill -9`ed. At
//! the end InfluxDB holds every number exactly once as a point (it merges
//! identical points, so distinct numbers are counted), and the surviving
//! consumer's `inputs.internal` counts the messages delivered to it again.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use graft_test_support::durable::kill9;
use graft_test_support::nats::{
    NatsCluster, consumer_info, gather_fields, graft_log, post_lines, seq_lines, start_graft,
};
use graft_test_support::nats_agents::wait_listening;
use graft_test_support::servers::{InfluxD, free_port};
use graft_test_support::stop;

const TOTAL: u64 = 100_000;
const EDGES: u64 = 2;
/// Lines per POST to an edge.
const BODY: u64 = 1000;
/// Rounds of bodies (one per edge) posted before a consumer hangs and
/// then dies with a NATS node, of 50.
const HANG_AT: u64 = 20;
/// Rounds posted while that consumer hangs (messages go to its open pull
/// request and stay unacknowledged).
const HANG_FOR: u64 = 3;
const DB: &str = "fleet";

fn edge(listen: u16, servers: &str, i: u64) -> String {
    format!(
        r#"[agent]
  interval = "1s"
  round_interval = false
  flush_interval = "200ms"
  metric_batch_size = 1000
  metric_buffer_limit = 1000000
  omit_hostname = true
[[inputs.influxdb_listener]]
  service_address = "127.0.0.1:{listen}"
[[outputs.nats]]
  servers = [{servers}]
  name = "edge{i}"
  subject = "fleet.edge{i}"
  data_format = "graft"
  use_batch_format = true
  [outputs.nats.jetstream]
    name = "FLEET"
    subjects = ["fleet.>"]
    num_replicas = 3
    max_age = "1h"
"#
    )
}

fn consumer(servers: &str, influx: u16, internal: &Path) -> String {
    format!(
        r#"[agent]
  interval = "1s"
  round_interval = false
  flush_interval = "1s"
  metric_batch_size = 5000
  metric_buffer_limit = 1000000
  omit_hostname = true
[[inputs.nats_consumer]]
  servers = [{servers}]
  subjects = []
  jetstream_subjects = ["fleet.>"]
  jetstream_durable = "fleet-pool"
  jetstream_ack_wait = "3s"
  data_format = "graft"
  max_undelivered_messages = 20
[[inputs.internal]]
  interval = "200ms"
  collect_memstats = false
[[outputs.influxdb]]
  urls = ["http://127.0.0.1:{influx}"]
  database = "{DB}"
  namepass = ["seq"]
[[outputs.file]]
  files = ["{}"]
  namepass = ["internal_gather"]
"#,
        internal.display()
    )
}

/// Every `seq` InfluxDB holds, read in time ranges (time = number).
fn stored(influx: &InfluxD) -> BTreeSet<u64> {
    const PAGE: u64 = 50_000;
    let mut seqs = BTreeSet::new();
    for from in (0..TOTAL).step_by(PAGE as usize) {
        let v = influx.query(
            DB,
            &format!(
                "SELECT seq FROM seq WHERE time >= {from} AND time < {}",
                from + PAGE
            ),
        );
        for row in v["results"][0]["series"][0]["values"]
            .as_array()
            .into_iter()
            .flatten()
        {
            seqs.insert(row[1].as_u64().expect("an integer seq"));
        }
    }
    seqs
}

fn count(influx: &InfluxD) -> u64 {
    influx
        .try_query(DB, "SELECT count(seq) FROM seq")
        .ok()
        .and_then(|v| v["results"][0]["series"][0]["values"][0][1].as_u64())
        .unwrap_or(0)
}

/// The agents' logs and the end of the cluster's.
fn logs(dir: &Path, cluster: &NatsCluster) -> String {
    let mut s = String::new();
    for name in ["edge0", "edge1", "consumer0", "consumer1"] {
        s += &format!("--- {name} ---\n{}\n", graft_log(dir, name));
    }
    let nats = cluster.logs();
    s + &nats[nats.len().saturating_sub(4000)..]
}

#[test]
fn a_fleet_loses_nothing_when_a_nats_node_and_a_consumer_die() {
    // Built first: the bound below is on the test, not on the build.
    graft_test_support::graft_bin();
    let began = Instant::now();
    let mut cluster = NatsCluster::start();
    let influx = InfluxD::start();
    let dir = tempfile::tempdir().unwrap();
    let servers = cluster
        .urls()
        .iter()
        .map(|u| format!("\"{u}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let internal: Vec<_> = (0..2)
        .map(|i| dir.path().join(format!("internal{i}")))
        .collect();
    let mut consumers: Vec<Option<Child>> = (0..2)
        .map(|i| {
            Some(start_graft(
                dir.path(),
                &format!("consumer{i}"),
                &consumer(&servers, influx.port, &internal[i]),
            ))
        })
        .collect();
    let listens: Vec<u16> = (0..EDGES).map(|_| free_port()).collect();
    let mut edges: Vec<Child> = (0..EDGES)
        .map(|i| {
            let name = format!("edge{i}");
            let mut c = start_graft(dir.path(), &name, &edge(listens[i as usize], &servers, i));
            wait_listening(&mut c, listens[i as usize], dir.path(), &name);
            c
        })
        .collect();
    // Edge i sends numbers i*50 000 .. (i+1)*50 000, one body of 1000 at a
    // time, the two edges in turn.
    let per_edge = TOTAL / EDGES;
    let bodies = per_edge / BODY;
    // Both consumers pull before the first number is sent.
    for (i, c) in consumers.iter_mut().enumerate() {
        let name = format!("consumer{i}");
        let start = Instant::now();
        while !graft_log(dir.path(), &name).contains("reading from JetStream") {
            if let Some(Ok(Some(status))) = c.as_mut().map(Child::try_wait) {
                panic!(
                    "{name} exited with {status}: {}",
                    graft_log(dir.path(), &name)
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{name} does not read from JetStream: {}",
                logs(dir.path(), &cluster)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let fed = Instant::now();
    let (mut victim, mut survivor) = (1, 0);
    for k in 0..bodies {
        if k == HANG_AT {
            // The consumer that reads (the server need not share a stream
            // evenly between pull requests) hangs: what the server hands
            // its open pull request from now on is never acknowledged.
            let received = |i: usize| {
                gather_fields(&internal[i], "nats_consumer")
                    .and_then(|f| f.get("messages_received").copied())
                    .unwrap_or(0.0)
            };
            victim = usize::from(received(1) > received(0));
            survivor = 1 - victim;
            let pid = consumers[victim]
                .as_ref()
                .expect("running")
                .id()
                .to_string();
            let status = std::process::Command::new("kill")
                .args(["-STOP", &pid])
                .status()
                .unwrap();
            assert!(status.success());
        }
        if k == HANG_AT + HANG_FOR {
            cluster.nodes[1].kill9();
            kill9(consumers[victim].as_mut().expect("running"));
            consumers[victim] = None;
            println!(
                "killed NATS node n2 and the hung consumer{victim} after {:?}, {} of {TOTAL} metrics posted, {} in InfluxDB",
                fed.elapsed(),
                k * BODY * EDGES,
                count(&influx)
            );
        }
        for e in 0..EDGES {
            let from = e * per_edge + k * BODY;
            post_lines(
                listens[e as usize],
                seq_lines("seq", &format!("edge{e}"), from..from + BODY),
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("{TOTAL} metrics posted in {:?}", fed.elapsed());
    // Wait until InfluxDB holds all of them (bounded; the count grows as
    // the surviving consumer drains the stream).
    let drain = Instant::now();
    while count(&influx) < TOTAL {
        assert!(
            drain.elapsed() < Duration::from_secs(60),
            "after 60 s InfluxDB holds {} of {TOTAL} numbers:\n{}",
            count(&influx),
            logs(dir.path(), &cluster)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    println!(
        "all {TOTAL} in InfluxDB {:?} after the last post; whole test so far {:?}",
        drain.elapsed(),
        began.elapsed()
    );
    let got = stored(&influx);
    assert_eq!(got.len() as u64, TOTAL, "distinct numbers stored");
    assert!(got.iter().copied().eq(0..TOTAL), "exactly the numbers sent");
    // The survivor took over what the dead consumer held: redeliveries.
    let start = Instant::now();
    while !gather_fields(&internal[survivor], "nats_consumer")
        .is_some_and(|f| f.get("messages_redelivered").is_some_and(|n| *n > 0.0))
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "consumer{survivor} counted no redelivery: {:?}; consumer{victim} before it died: {:?}; the durable consumer: {}\n{}",
            gather_fields(&internal[survivor], "nats_consumer"),
            gather_fields(&internal[victim], "nats_consumer"),
            consumer_info(&cluster.nodes[0], "FLEET", "fleet-pool").unwrap_or_default(),
            logs(dir.path(), &cluster)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let fields = gather_fields(&internal[survivor], "nats_consumer").unwrap();
    println!("consumer{survivor} (survivor) counters: {fields:?}");
    assert_eq!(fields.get("messages_malformed"), Some(&0.0), "{fields:?}");
    for e in &mut edges {
        let (status, log) = stop(e, Duration::from_secs(15));
        assert!(status.success(), "{log}");
    }
    if let Some(c) = consumers[survivor].as_mut() {
        stop(c, Duration::from_secs(15));
    }
    let took = began.elapsed();
    println!("fleet test took {took:?}");
    assert!(
        took < Duration::from_secs(150),
        "the fleet test took {took:?}"
    );
}
