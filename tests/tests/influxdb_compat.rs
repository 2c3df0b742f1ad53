//! Line protocol side by side with a real InfluxDB 1.x (`influxd`, Debian's
//! `influxdb`): each case is written to `influxd` directly and to graft's
//! `inputs.influxdb_listener`; what graft's listener read must be what
//! `influxd` stored, and, passed on by graft's `outputs.influxdb` to the
//! same server, must be stored the same again.

use std::collections::BTreeSet;
use std::sync::Arc;

use graft_api::{Input, MetricSink};
use graft_core::{Batch, FieldRef};
use graft_plugins::inputs::influxdb_listener::Listener;
use graft_plugins::outputs::influxdb;
use graft_test_support::influx_points::{Point, norm, stored_points};
use graft_test_support::servers::{InfluxD, http};

/// Lines InfluxDB 1.x accepts that graft once refused or read otherwise:
/// spaces, tabs and NULs between sections, control characters in names,
/// `\\` before a space or comma, floats such as `05` and `1.e5`, escapes
/// that 1.x reads its own way.
const CASES: &[&[u8]] = &[
    b"cpu    value=1.0 1257894000000000000",
    b"cpu value=05 1257894000000000001",
    b"cpu,t=a\\\\ b value=1 1257894000000000002",
    b"cpu,t=a\\\\,b value=1 1257894000000000003",
    b"c\x01p\x7fu,t\x02=v\x03\tx value=1 1257894000000000004",
    b"m\\=x\\\"y\\\\z v=1 1257894000000000005",
    b"m,t\\\"k=v\\\"a f\\\"k\\=\\,x=1 1257894000000000006",
    b"m,t==v v=1 1257894000000000007",
    b"m  \t  v=1  \t 1257894000000000008   ",
    b"\0\tm v=2 1257894000000000009",
    b"m v=1.e5,w=-.5,x=1E+2,y=.5e1,z=1e-400 1257894000000000010",
    b"m v=\"a\\\\b\\\"c\\nd\" 1257894000000000011",
    b"m v=\"a\"b 1257894000000000012",
    b"m v=t,w=True,x=FALSE,y=f,z=T 1257894000000000013",
    b"m,t=a\\\\b v=1 1257894000000000014",
    b"m s=\"two\nlines\",i=-3i 1257894000000000015",
    b"m v=1 -15",
    b"m\ta v=1,b\tc=2 1257894000000000016",
    b"m,t=\\ a,\\,k=\\=v v=1 1257894000000000017",
    b"\\ m v=1,v=2 1257894000000000018",
];

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn points(batch: &Batch) -> BTreeSet<Point> {
    let json = |v: FieldRef<'_>| match v {
        FieldRef::Float(f) => serde_json::json!(f),
        FieldRef::Int(i) => serde_json::json!(i),
        FieldRef::Uint(u) => serde_json::json!(u),
        FieldRef::Bool(b) => serde_json::json!(b),
        FieldRef::Str(s) => serde_json::json!(s),
    };
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
                    .map(|(k, v)| (k.to_owned(), norm(&json(v))))
                    .collect(),
            )
        })
        .collect()
}

fn create(influx: &InfluxD, db: &str) {
    let r = http()
        .post(format!("{}/query", influx.url()))
        .query(&[("q", format!("CREATE DATABASE \"{db}\""))])
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{r:?}");
}

#[test]
fn the_listener_reads_what_influxd_stores_and_passes_it_on_unchanged() {
    let influx = InfluxD::start();
    let rt = rt();
    let (mut listener, mut rx) = rt.block_on(async {
        let mut listener = Listener::new(
            graft_plugins::config::parse(
                toml::from_str("service_address = \"127.0.0.1:0\"").unwrap(),
            )
            .unwrap(),
            ":8186",
        )
        .unwrap();
        let (sink, rx) = MetricSink::channel(64, Arc::new(|| 0));
        listener.start(sink).await.unwrap();
        (listener, rx)
    });
    let graft_url = format!("http://{}/write", listener.local_addr().unwrap());
    let client = http();
    for (n, case) in CASES.iter().enumerate() {
        let shown = String::from_utf8_lossy(case);
        let (direct, relayed) = (format!("direct{n}"), format!("relayed{n}"));
        // A server just started may not know a new database at once.
        let mut status = 0;
        for _ in 0..50 {
            create(&influx, &direct);
            let r = client
                .post(format!("{}/write?db={direct}", influx.url()))
                .body(case.to_vec())
                .send()
                .unwrap();
            status = r.status().as_u16();
            if status != 404 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert_eq!(status, 204, "influxd refused {shown:?}");
        let r = client.post(&graft_url).body(case.to_vec()).send().unwrap();
        let status = r.status().as_u16();
        let text = r.text().unwrap();
        assert_eq!(status, 204, "graft refused {shown:?}: {text}");
        let batch = rx
            .try_recv()
            .expect("the listener passed the metrics on")
            .batch;
        let stored = stored_points(&influx, &direct);
        assert_eq!(points(&batch), stored, "read as influxd reads {shown:?}");

        let mut out = influxdb::build(
            toml::from_str(&format!(
                "urls = [\"{}\"]\ndatabase = \"{relayed}\"",
                influx.url()
            ))
            .unwrap(),
        )
        .unwrap();
        rt.block_on(async {
            out.connect().await.unwrap();
            out.write(&batch).await.expect("written on");
        });
        assert_eq!(
            stored_points(&influx, &relayed),
            stored,
            "passed on unchanged: {shown:?}"
        );
    }
    rt.block_on(listener.stop());
}
