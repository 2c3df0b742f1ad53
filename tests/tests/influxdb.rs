//! InfluxDB end to end: `outputs.influxdb` against a real `influxd` (1.x,
//! Debian's `influxdb`) on loopback, read back with `/query`; the agent
//! riding out a restart of that server; `outputs.influxdb_v2` against
//! graft's own listener (413 splitting, Retry-After); and the listener's
//! answers to clients.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use graft_api::{Input, MetricSink};
use graft_core::{Batch, BatchBuilder, FieldRef, WriteError};
use graft_plugins::inputs::influxdb_listener::{self, Listener};
use graft_plugins::outputs::{influxdb, influxdb_v2};
use graft_test_support::servers::InfluxD;
use graft_test_support::{graft, servers, stop};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn table(s: &str) -> toml::Table {
    toml::from_str(s).expect("test config")
}

/// Metrics whose names, keys and values use every character line protocol
/// must escape or quote, and some that it need not.
fn awkward_batch() -> Batch {
    let t = 1_700_000_000_123_456_789;
    let mut b = BatchBuilder::new();
    b.metric("cpu load,\"q\"=x é", t)
        .tag("ta g,=k\"", "a b,c=d\"e\\f ü")
        .tag("host", "web 01")
        .field("va lue,=x\"", 1.5)
        .field("n", -42i64)
        .field("ok", true)
        .field("msg", FieldRef::Str("say \"hi\" \\ back, a=b c"))
        .field("温度", 21.25);
    b.metric("cpu load,\"q\"=x é", t + 1_000)
        .tag("ta g,=k\"", "a b,c=d\"e\\f ü")
        .tag("host", "web 01")
        .field("va lue,=x\"", -0.000123)
        .field("n", i64::MAX)
        .field("ok", false)
        .field("msg", FieldRef::Str("line one\nline two"))
        .field("温度", 1e-300);
    b.metric("plain", t)
        .tag("region", "東京")
        .field("value", 3.0)
        .field("big", 12345678901234567u64);
    b.finish()
}

/// A comparable form of one point: name, tags, time, fields as JSON.
type Point = (
    String,
    BTreeMap<String, String>,
    i64,
    BTreeMap<String, String>,
);

fn json_of(v: FieldRef<'_>) -> serde_json::Value {
    match v {
        FieldRef::Float(f) => serde_json::json!(f),
        FieldRef::Int(i) => serde_json::json!(i),
        FieldRef::Uint(u) => serde_json::json!(u.min(i64::MAX as u64)),
        FieldRef::Bool(b) => serde_json::json!(b),
        FieldRef::Str(s) => serde_json::json!(s),
    }
}

/// Numbers compare by value (InfluxDB prints 3.0 as 3).
fn norm(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Number(n) => format!("{:?}", n.as_f64().unwrap()),
        other => other.to_string(),
    }
}

fn expected_points(batch: &Batch) -> BTreeSet<Point> {
    batch
        .iter()
        .map(|m| {
            (
                m.name().to_owned(),
                m.tags()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
                m.timestamp(),
                m.fields()
                    .map(|(k, v)| (k.to_owned(), norm(&json_of(v))))
                    .collect(),
            )
        })
        .collect()
}

/// Every point of every measurement in `db`, through `/query`.
fn stored_points(influx: &InfluxD, db: &str) -> BTreeSet<Point> {
    let v = influx.query(db, "SELECT * FROM /.*/ GROUP BY *");
    let mut points = BTreeSet::new();
    for s in v["results"][0]["series"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let name = s["name"].as_str().unwrap().to_owned();
        let tags: BTreeMap<String, String> = s["tags"]
            .as_object()
            .map(|o| {
                o.iter()
                    .filter(|(_, v)| v.as_str().is_some_and(|v| !v.is_empty()))
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let columns: Vec<String> = s["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        for row in s["values"].as_array().unwrap() {
            let row = row.as_array().unwrap();
            let time = row[0].as_i64().unwrap();
            let fields = columns[1..]
                .iter()
                .zip(&row[1..])
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), norm(v)))
                .collect();
            points.insert((name.clone(), tags.clone(), time, fields));
        }
    }
    points
}

/// `SHOW FIELD KEYS`: measurement → field → type.
fn field_types(influx: &InfluxD, db: &str) -> BTreeMap<(String, String), String> {
    let v = influx.query(db, "SHOW FIELD KEYS");
    let mut types = BTreeMap::new();
    for s in v["results"][0]["series"].as_array().unwrap() {
        for row in s["values"].as_array().unwrap() {
            types.insert(
                (
                    s["name"].as_str().unwrap().to_owned(),
                    row[0].as_str().unwrap().to_owned(),
                ),
                row[1].as_str().unwrap().to_owned(),
            );
        }
    }
    types
}

#[test]
fn influxdb_output_writes_awkward_names_that_read_back_equal_from_a_real_influxd() {
    let influx = InfluxD::start();
    let batch = awkward_batch();
    for (db, encoding) in [("graft gzip", "gzip"), ("graft-plain", "identity")] {
        let mut out = influxdb::build(table(&format!(
            "urls = [\"{}\"]\ndatabase = \"{db}\"\ncontent_encoding = \"{encoding}\"",
            influx.url()
        )))
        .unwrap();
        rt().block_on(async {
            // connect creates the database (its name needs quoting).
            out.connect().await.unwrap();
            out.write(&batch).await.expect("written");
        });
        assert_eq!(stored_points(&influx, db), expected_points(&batch), "{db}");
        let types = field_types(&influx, db);
        let name = "cpu load,\"q\"=x é".to_owned();
        for (field, ty) in [
            ("va lue,=x\"", "float"),
            ("n", "integer"),
            ("ok", "boolean"),
            ("msg", "string"),
            ("温度", "float"),
        ] {
            assert_eq!(types[&(name.clone(), field.to_owned())], ty, "{field}");
        }
        assert_eq!(types[&("plain".to_owned(), "big".to_owned())], "integer");
    }
}

#[test]
fn influxdb_output_creates_missing_databases_and_routes_by_tag() {
    let influx = InfluxD::start();
    let mut out = influxdb::build(table(&format!(
        "urls = [\"http://127.0.0.1:{}\", \"{}\"]\ndatabase = \"fallback\"\ndatabase_tag = \"db\"\nexclude_database_tag = true",
        servers::free_port(),
        influx.url()
    )))
    .unwrap();
    let mut b = BatchBuilder::new();
    b.metric("m", 1_000).tag("db", "team_a").field("x", 1i64);
    b.metric("m", 2_000).tag("db", "team_b").field("x", 2i64);
    b.metric("m", 3_000).field("x", 3i64);
    let batch = b.finish();
    // One URL refuses connections: every write fails over to the other.
    rt().block_on(async {
        out.connect().await.unwrap();
        out.write(&batch).await.expect("written");
    });
    for (db, x) in [("team_a", 1), ("team_b", 2), ("fallback", 3)] {
        let v = influx.query(db, "SELECT * FROM m");
        let s = &v["results"][0]["series"][0];
        assert_eq!(
            s["columns"],
            serde_json::json!(["time", "x"]),
            "{db}: tag excluded"
        );
        assert_eq!(s["values"][0][1], serde_json::json!(x), "{db}");
    }
}

#[test]
fn influxdb_output_rejects_what_influxdb_refuses_and_keeps_the_rest() {
    let influx = InfluxD::start();
    let mut out = influxdb::build(table(&format!(
        "urls = [\"{}\"]\ndatabase = \"conflicts\"",
        influx.url()
    )))
    .unwrap();
    let mut first = BatchBuilder::new();
    first.metric("m", 1_000).field("v", 1i64);
    let mut second = BatchBuilder::new();
    second.metric("m", 2_000).field("v", 2.5); // float into an integer field
    second.metric("m", 3_000).field("v", 3i64);
    second.metric("other", 3_000).field("w", 1i64);
    rt().block_on(async {
        out.connect().await.unwrap();
        out.write(&first.finish()).await.expect("first written");
        match out.write(&second.finish()).await {
            Err(graft_api::CallError::Returned(WriteError::Partial {
                accepted,
                rejected,
                message,
            })) => {
                assert_eq!(rejected.len(), 1, "{message}");
                assert_eq!(accepted.len(), 2, "{message}");
                assert!(message.contains("field type conflict"), "{message}");
            }
            other => panic!("expected a partial write, got {other:?}"),
        }
    });
    let v = influx.query("conflicts", "SELECT count(v) FROM m");
    assert_eq!(
        v["results"][0]["series"][0]["values"][0][1],
        serde_json::json!(2)
    );
}

/// The agent writes through `outputs.influxdb` while the server is stopped
/// and started again: everything that fit in the buffer arrives, in order,
/// once.
#[test]
fn agent_loses_nothing_while_influxd_restarts() {
    let mut influx = InfluxD::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("graft.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[agent]
  interval = "50ms"
  round_interval = false
  precision = "1ns"
  flush_interval = "200ms"
  metric_buffer_limit = 100000
  omit_hostname = true
[[inputs.wasm]]
  path = "${{GRAFT_WASM_DIR}}/example_sine_input.wasm"
  [inputs.wasm.config]
    name = "sine"
[[outputs.influxdb]]
  urls = ["{}"]
  database = "restart"
  timeout = "1s"
"#,
            influx.url()
        ),
    )
    .unwrap();
    let mut child = graft()
        .args(["run", "--config"])
        .arg(&config)
        .env("GRAFT_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let count = |influx: &InfluxD| {
        influx
            .try_query("restart", "SELECT count(\"count\") FROM sine")
            .map_or(0, |v| {
                v["results"][0]["series"][0]["values"][0][1]
                    .as_i64()
                    .unwrap_or(0)
            })
    };
    let start = Instant::now();
    while count(&influx) < 10 {
        assert!(start.elapsed() < Duration::from_secs(30), "nothing arrived");
        std::thread::sleep(Duration::from_millis(100));
    }
    let before_outage = count(&influx);
    influx.stop();
    std::thread::sleep(Duration::from_secs(3)); // ~60 metrics gathered meanwhile
    influx.resume();
    std::thread::sleep(Duration::from_millis(500));
    let (status, stderr) = stop(&mut child, Duration::from_secs(60));
    assert!(status.success(), "{status}: {stderr}");
    assert!(
        stderr.contains("outputs.influxdb"),
        "the outage was noticed and logged: {stderr}"
    );
    let v = influx.query("restart", "SELECT \"count\" FROM sine");
    let seqs: Vec<i64> = v["results"][0]["series"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[1].as_i64().unwrap())
        .collect();
    // Metrics gathered during the outage arrived (not a fixed total: a
    // loaded machine gathers fewer than 20/s).
    assert!(
        seqs.len() as i64 >= before_outage + 20,
        "only {} points, {before_outage} before the outage",
        seqs.len()
    );
    assert_eq!(
        seqs,
        (0..seqs.len() as i64).collect::<Vec<_>>(),
        "every gathered metric, once, in order"
    );
}

/// A listener started alone on a free port, with the sink's receiving end.
struct Running {
    listener: Listener,
    rx: tokio::sync::mpsc::Receiver<graft_api::Received>,
    url: String,
    sink: MetricSink,
}

async fn listener(config: &str, undelivered: Arc<AtomicU64>) -> Running {
    let mut listener = Listener::new(
        graft_plugins::config::parse(table(&format!(
            "service_address = \"127.0.0.1:0\"\n{config}"
        )))
        .unwrap(),
        ":8186",
    )
    .unwrap();
    let (sink, rx) =
        MetricSink::channel(1024, Arc::new(move || undelivered.load(Ordering::Relaxed)));
    listener.start(sink.clone()).await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    Running {
        listener,
        rx,
        url,
        sink,
    }
}

fn drain(rx: &mut tokio::sync::mpsc::Receiver<graft_api::Received>) -> (Batch, usize) {
    let mut all = Batch::new();
    let mut batches = 0;
    while let Ok(b) = rx.try_recv() {
        all.append(&b.batch);
        batches += 1;
    }
    (all, batches)
}

#[test]
fn influxdb_v2_output_round_trips_through_grafts_own_listener() {
    rt().block_on(async {
        let mut l = listener(
            "token = \"s3cret\"\nbucket_tag = \"bucket\"",
            Default::default(),
        )
        .await;
        let mut out = influxdb_v2::build(table(&format!(
            "urls = [\"{}\"]\ntoken = \"s3cret\"\norganization = \"org\"\nbucket = \"b1\"",
            l.url
        )))
        .unwrap();
        let batch = awkward_batch();
        out.write(&batch).await.expect("written");
        let (got, _) = drain(&mut l.rx);
        let mut want = batch.clone();
        want.set_tag("bucket", "b1");
        assert_eq!(expected_points(&got), expected_points(&want));

        // A wrong token is refused with 401, and the metrics are kept.
        let mut wrong = influxdb_v2::build(table(&format!(
            "urls = [\"{}\"]\ntoken = \"nope\"\nbucket = \"b1\"",
            l.url
        )))
        .unwrap();
        match wrong.write(&batch).await {
            Err(graft_api::CallError::Returned(WriteError::Retry(m))) => {
                assert!(m.contains("401"), "{m}");
            }
            other => panic!("expected retry, got {other:?}"),
        }
        l.listener.stop().await;
    });
}

fn sequence_batch(n: usize) -> Batch {
    let mut b = BatchBuilder::new();
    for i in 0..n {
        b.metric("seq", 1_000 + i as i64)
            .tag("host", "a-rather-long-host-name.example.com")
            .field("i", i as i64)
            .field(
                "padding",
                FieldRef::Str("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
            );
    }
    b.finish()
}

fn seqs(b: &Batch) -> Vec<i64> {
    b.iter()
        .map(|m| match m.field("i") {
            Some(FieldRef::Int(i)) => i,
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn influxdb_v2_output_splits_on_413_until_every_part_fits() {
    rt().block_on(async {
        // ~110 bytes a line: 300 lines are ~33 KB, the limit takes ~36.
        let mut l = listener("max_body_size = \"4KiB\"", Default::default()).await;
        let mut out = influxdb_v2::build(table(&format!(
            "urls = [\"{}\"]\nbucket = \"b\"\ncontent_encoding = \"identity\"",
            l.url
        )))
        .unwrap();
        out.write(&sequence_batch(300))
            .await
            .expect("written in parts");
        let (got, parts) = drain(&mut l.rx);
        assert_eq!(seqs(&got), (0..300).collect::<Vec<_>>(), "all, in order");
        assert!(parts >= 8, "{parts} requests got through");

        // One metric larger than the limit can never be written: rejected,
        // the others still go.
        let mut b = BatchBuilder::new();
        b.metric("seq", 1).field("i", 0i64);
        b.metric("huge", 2)
            .field("s", FieldRef::Str(&"y".repeat(5000)));
        b.metric("seq", 3).field("i", 1i64);
        match out.write(&b.finish()).await {
            Err(graft_api::CallError::Returned(WriteError::Partial {
                accepted, rejected, ..
            })) => {
                assert_eq!(rejected, vec![1]);
                assert_eq!(accepted.len(), 2);
            }
            other => panic!("expected a partial write, got {other:?}"),
        }
        l.listener.stop().await;
    });
}

#[test]
fn influxdb_v2_output_honours_retry_after() {
    rt().block_on(async {
        let undelivered = Arc::new(AtomicU64::new(0));
        let mut l = listener("max_undelivered_metrics = 100", undelivered.clone()).await;
        let mut out =
            influxdb_v2::build(table(&format!("urls = [\"{}\"]\nbucket = \"b\"", l.url))).unwrap();
        let batch = sequence_batch(10);
        undelivered.store(500, Ordering::Relaxed); // graft's outputs are behind
        let err = out.write(&batch).await.unwrap_err();
        assert!(format!("{err}").contains("429"), "{err}");
        let asked = Instant::now();
        undelivered.store(0, Ordering::Relaxed);
        // Before Retry-After (1 s) has passed, the output does not even ask.
        let err = out.write(&batch).await.unwrap_err();
        assert!(format!("{err}").contains("throttled"), "{err}");
        assert_eq!(drain(&mut l.rx).1, 0);
        while asked.elapsed() < Duration::from_millis(1050) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        out.write(&batch).await.expect("written after Retry-After");
        assert_eq!(seqs(&drain(&mut l.rx).0), (0..10).collect::<Vec<_>>());
        l.listener.stop().await;
    });
}

#[test]
fn listener_keeps_good_lines_counts_bad_ones_and_answers_like_influxdb() {
    rt().block_on(async {
        let mut l = listener(
            "max_body_size = 2000\nbasic_username = \"u\"\nbasic_password = \"p\"\ndatabase_tag = \"db\"",
            Default::default(),
        )
        .await;
        let client = reqwest::Client::new();
        let post = |path: &str| client.post(format!("{}{path}", l.url)).basic_auth("u", Some("p"));

        // Some good, some bad lines: 400 naming the count; good ones kept.
        let body = "m,t=a v=1i 1\nthis is bad\nm,t=b v=2i 2\nm v=\"unclosed\nm,t=c v=3i 3\n";
        let r = post("/write?db=mydb&precision=s").body(body).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 400);
        let text = r.text().await.unwrap();
        assert!(text.contains("2 of 5 lines"), "{text}");
        assert!(text.contains("unable to parse 'this is bad'"), "{text}");
        let (got, _) = drain(&mut l.rx);
        let rows: Vec<_> = got
            .iter()
            .map(|m| (m.tag("t").unwrap().to_owned(), m.tag("db").unwrap().to_owned(), m.timestamp()))
            .collect();
        assert_eq!(
            rows,
            vec![
                ("a".into(), "mydb".into(), 1_000_000_000),
                ("b".into(), "mydb".into(), 2_000_000_000),
                ("c".into(), "mydb".into(), 3_000_000_000)
            ]
        );
        assert_eq!(l.sink.malformed_count(), 2);

        // gzip bodies, v2 path, ms precision.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"z x=1 1500\n").unwrap();
        let r = post("/api/v2/write?bucket=x&precision=ms")
            .header("Content-Encoding", "gzip")
            .body(gz.finish().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 204);
        assert_eq!(drain(&mut l.rx).0.get(0).timestamp(), 1_500_000_000);

        // Too large: 413, nothing taken. A gzip bomb counts decompressed.
        let r = post("/write").body("m v=1 1\n".repeat(300)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 413);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all("m v=1 1\n".repeat(10_000).as_bytes()).unwrap();
        let r = post("/write")
            .header("Content-Encoding", "gzip")
            .body(gz.finish().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 413);
        assert_eq!(drain(&mut l.rx).1, 0);

        // Wrong or missing credentials: 401. Bad precision: 400.
        let r = client.post(format!("{}/write", l.url)).body("m v=1").send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401);
        let r = client
            .post(format!("{}/write?u=u&p=p", l.url))
            .body("m v=1")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 204, "v1 query-string credentials");
        let r = post("/write?precision=fortnight").body("m v=1").send().await.unwrap();
        assert_eq!(r.status().as_u16(), 400);

        // Ping, health, and the CREATE DATABASE a chained agent sends.
        let r = client.get(format!("{}/ping", l.url)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 204);
        assert!(r.headers().contains_key("x-influxdb-version"));
        let r = client.get(format!("{}/health", l.url)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let r = post("/query?q=CREATE+DATABASE+x").send().await.unwrap();
        assert_eq!(r.text().await.unwrap(), r#"{"results":[]}"#);
        l.listener.stop().await;
    });
}

/// graft's v1 output counts exactly the lines graft's listener refused.
#[test]
fn influxdb_output_counts_the_lines_a_listener_could_not_parse() {
    rt().block_on(async {
        let mut l = listener("", Default::default()).await;
        let mut out = influxdb::build(table(&format!(
            "urls = [\"{}\"]\nskip_database_creation = true",
            l.url
        )))
        .unwrap();
        let mut b = BatchBuilder::new();
        b.metric("ok", 1).field("v", 1i64);
        // A trailing backslash in a tag value is trimmed by the serializer,
        // but a field key made of one backslash escapes the `=`: the line is
        // unreadable.
        b.metric("bad", 2).field("\\", 1i64);
        b.metric("ok", 3).field("v", 2i64);
        match out.write(&b.finish()).await {
            Err(graft_api::CallError::Returned(WriteError::Partial {
                accepted,
                rejected,
                message,
            })) => {
                assert_eq!(rejected, vec![1], "{message}");
                assert_eq!(accepted, vec![0, 2], "{message}");
            }
            other => panic!("expected a partial write, got {other:?}"),
        }
        assert_eq!(drain(&mut l.rx).0.len(), 2);
        let _ = influxdb_listener::build; // the registry's constructor
        l.listener.stop().await;
    });
}

/// One graft agent sends to another's listener with `outputs.influxdb`, as
/// a Telegraf agent would: every metric arrives once, in order, and the
/// receiving agent passes on what its listener accepted when it stops.
#[test]
fn an_agent_sends_to_another_agents_listener() {
    let dir = tempfile::tempdir().unwrap();
    let port = servers::free_port();
    let out = dir.path().join("received.lp");
    let receiver_config = dir.path().join("receiver.toml");
    std::fs::write(
        &receiver_config,
        format!(
            r#"
[agent]
  interval = "1h"
  flush_interval = "100ms"
  omit_hostname = true
[[inputs.influxdb_listener]]
  service_address = "127.0.0.1:{port}"
  database_tag = "db"
[[outputs.file]]
  files = ["{}"]
"#,
            out.display()
        ),
    )
    .unwrap();
    let sender_config = dir.path().join("sender.toml");
    std::fs::write(
        &sender_config,
        format!(
            r#"
[agent]
  interval = "50ms"
  round_interval = false
  precision = "1ns"
  flush_interval = "150ms"
  omit_hostname = true
[[inputs.wasm]]
  path = "${{GRAFT_WASM_DIR}}/example_sine_input.wasm"
  [inputs.wasm.config]
    name = "sine"
[[outputs.influxdb]]
  urls = ["http://127.0.0.1:{port}"]
  database = "relay"
"#
        ),
    )
    .unwrap();
    let spawn = |config: &std::path::Path| {
        graft()
            .args(["run", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut receiver = spawn(&receiver_config);
    let start = Instant::now();
    while !servers::listening(port) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "listener never came up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut sender = spawn(&sender_config);
    std::thread::sleep(Duration::from_millis(1500));
    for child in [&mut sender, &mut receiver] {
        let (status, stderr) = stop(child, Duration::from_secs(30));
        assert!(status.success(), "{status}: {stderr}");
    }
    let text = std::fs::read_to_string(&out).unwrap();
    let seqs: Vec<i64> = text
        .lines()
        .map(|l| {
            assert!(l.starts_with("sine,db=relay,"), "{l}");
            let count = l
                .split([' ', ','])
                .find_map(|kv| kv.strip_prefix("count="))
                .unwrap();
            count.trim_end_matches('i').parse().unwrap()
        })
        .collect();
    assert!(seqs.len() >= 10, "only {} metrics: {text}", seqs.len());
    assert_eq!(
        seqs,
        (0..seqs.len() as i64).collect::<Vec<_>>(),
        "all, once, in order"
    );
}
