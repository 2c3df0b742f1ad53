//! OpenTelemetry end to end: the real OpenTelemetry Python SDK
//! (`opentelemetry-sdk`, `opentelemetry-exporter-otlp`) exports a counter,
//! an up-down counter, a gauge and a histogram with known values to graft's
//! `inputs.opentelemetry` over gRPC and over HTTP; graft writes them to a
//! real InfluxDB and they are read back with Telegraf's names. Then
//! `outputs.opentelemetry` is read back through a second agent's
//! `inputs.opentelemetry` and through a receiver built on the official
//! protobuf definitions (which refuses its first exports: they are
//! retried, not lost).

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use graft_test_support::graft_agent::{Agent, Point};
use graft_test_support::otlp::OtlpReceiver;
use graft_test_support::servers::{InfluxD, free_port, http, listening};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;

/// The SDK program: argv = protocol (`grpc`/`http`), endpoint. Known
/// values: orders 5+2 (shop=a), queue +10-3, temp 21.5 (room=k), latency
/// 1, 7, 30 (default buckets 0, 5, 10, 25, ...).
const SDK: &str = r#"
import sys
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
protocol, endpoint = sys.argv[1], sys.argv[2]
if protocol == "grpc":
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    exporter = OTLPMetricExporter(endpoint=endpoint, insecure=True, timeout=10)
else:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    exporter = OTLPMetricExporter(endpoint=endpoint, timeout=10)
reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3600000)
provider = MeterProvider(
    resource=Resource.create({"service.name": "e2e-" + protocol}), metric_readers=[reader]
)
meter = provider.get_meter("graft.e2e", "1.0")
orders = meter.create_counter("orders")
orders.add(5, {"shop": "a"})
orders.add(2, {"shop": "a"})
queue = meter.create_up_down_counter("queue")
queue.add(10)
queue.add(-3)
meter.create_gauge("temp").set(21.5, {"room": "k"})
latency = meter.create_histogram("latency")
for v in (1, 7, 30):
    latency.record(v)
ok = provider.force_flush(20000)
provider.shutdown()
sys.exit(0 if ok else 3)
"#;

/// Run the SDK program against `endpoint`; it must report the export done.
fn sdk_export(protocol: &str, endpoint: &str) {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("export.py");
    std::fs::write(&script, SDK).unwrap();
    let out = Command::new("python3")
        .arg(&script)
        .args([protocol, endpoint])
        .output()
        .expect("running python3");
    assert!(
        out.status.success(),
        "the SDK's {protocol} export failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn wait_listening(port: u16) {
    let start = Instant::now();
    while !listening(port) {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "port {port} never opened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

type Row = BTreeMap<String, serde_json::Value>;

/// The newest row of `measurement` in InfluxDB (column → value) that the
/// SDK program of `service` exported, once there is one. (The SDK exports
/// a cumulative point each time it flushes, so a service can have several
/// rows before another has any.)
fn row_from(influx: &InfluxD, measurement: &str, service: &str) -> Row {
    let start = Instant::now();
    loop {
        let v = influx
            .try_query("otel", &format!("SELECT * FROM \"{measurement}\""))
            .unwrap_or_default();
        let series = &v["results"][0]["series"][0];
        let mut rows: Vec<Row> = Vec::new();
        if let (Some(columns), Some(values)) =
            (series["columns"].as_array(), series["values"].as_array())
        {
            for row in values {
                let mut m = BTreeMap::new();
                for (c, v) in columns.iter().zip(row.as_array().unwrap()) {
                    if !v.is_null() {
                        m.insert(c.as_str().unwrap().to_owned(), v.clone());
                    }
                }
                rows.push(m);
            }
        }
        if let Some(row) = rows.iter().rev().find(|r| r["service.name"] == service) {
            return row.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{measurement}: no row from {service} in InfluxDB: {rows:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_python_sdk_exports_over_grpc_and_http_into_influxdb() {
    let influx = InfluxD::start();
    let (grpc, http_port) = (free_port(), free_port());
    let mut agent = Agent::start(&format!(
        r#"[agent]
  interval = "1s"
  flush_interval = "300ms"
[[inputs.opentelemetry]]
  service_address = "127.0.0.1:{grpc}"
  http_service_address = "127.0.0.1:{http_port}"
[[outputs.influxdb]]
  urls = ["{}"]
  database = "otel"
"#,
        influx.url()
    ));
    wait_listening(grpc);
    wait_listening(http_port);
    sdk_export("grpc", &format!("127.0.0.1:{grpc}"));
    sdk_export("http", &format!("http://127.0.0.1:{http_port}/v1/metrics"));

    for service in ["e2e-grpc", "e2e-http"] {
        let r = row_from(&influx, "orders", service);
        assert_eq!(r["counter"], 7, "{r:?}");
        assert_eq!(r["shop"], "a");
        assert_eq!(r["otel.library.name"], "graft.e2e");
        assert_eq!(r["otel.library.version"], "1.0");
        assert_eq!(r["telemetry.sdk.language"], "python");
        assert!(r["start_time_unix_nano"].as_i64().unwrap() > 0);
        assert!(r["start_time_unix_nano"].as_i64() <= r["time"].as_i64());

        assert_eq!(row_from(&influx, "queue", service)["gauge"], 7);
        let t = row_from(&influx, "temp", service);
        assert_eq!(
            (t["gauge"].as_f64(), &t["room"]),
            (Some(21.5), &serde_json::json!("k"))
        );

        let h = row_from(&influx, "latency", service);
        for (field, value) in [
            ("count", 3.0),
            ("sum", 38.0),
            ("min", 1.0),
            ("max", 30.0),
            ("0", 0.0),
            ("5", 1.0),
            ("10", 2.0),
            ("25", 2.0),
            ("50", 3.0),
            ("10000", 3.0),
            ("+Inf", 3.0),
        ] {
            assert_eq!(h[field].as_f64(), Some(value), "latency {field}: {h:?}");
        }
    }
    agent.stop(Duration::from_secs(15));
}

/// Lines whose values are known, timestamps included, for the untyped
/// side of the mapping.
const LINES: &str = "cpu,cpu=cpu0 usage_idle=97.5,usage_user=2i 1700000000000000000\n\
                     req,path=/a counter=7i 1700000000000000000\n\
                     lat count=3,sum=38,5=1,10=2,+Inf=3 1700000000000000000\n";

fn metric_names(
    requests: &[opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest],
) -> Vec<String> {
    let mut names: Vec<String> = requests
        .iter()
        .flat_map(|r| &r.resource_metrics)
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(|m| m.name.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn outputs_opentelemetry_reads_back_through_a_second_agent_and_an_official_receiver() {
    let official = OtlpReceiver::start();
    official.refuse_next(2);
    let (b_grpc, b_http) = (free_port(), free_port());
    let mut b = Agent::start(&format!(
        r#"[agent]
  interval = "1s"
  flush_interval = "300ms"
[[inputs.opentelemetry]]
  service_address = "127.0.0.1:{b_grpc}"
  http_service_address = "127.0.0.1:{b_http}"
[[outputs.file]]
  files = ["{{dir}}/out.lp"]
"#
    ));
    wait_listening(b_grpc);
    let (a_otlp, a_influx) = (free_port(), free_port());
    let mut a = Agent::start(&format!(
        r#"[agent]
  interval = "1s"
  flush_interval = "300ms"
[[inputs.opentelemetry]]
  service_address = "127.0.0.1:{a_otlp}"
[[inputs.influxdb_listener]]
  service_address = "127.0.0.1:{a_influx}"
[[outputs.opentelemetry]]
  service_address = "127.0.0.1:{b_grpc}"
  [outputs.opentelemetry.attributes]
    "service.namespace" = "via-grpc"
[[outputs.opentelemetry]]
  service_address = "http://127.0.0.1:{b_http}/v1/metrics"
  encoding_type = "json"
  [outputs.opentelemetry.attributes]
    "service.namespace" = "via-http"
[[outputs.opentelemetry]]
  service_address = "{}"
  timeout = "2s"
"#,
        official.address()
    ));
    wait_listening(a_otlp);
    wait_listening(a_influx);
    sdk_export("grpc", &format!("127.0.0.1:{a_otlp}"));
    let posted = http()
        .post(format!("http://127.0.0.1:{a_influx}/write?db=x"))
        .body(LINES)
        .send()
        .unwrap();
    assert_eq!(posted.status().as_u16(), 204);

    // (b) The official receiver: names, kinds, attributes, values, times.
    let expected = [
        "cpu_usage_idle",
        "cpu_usage_user",
        "lat",
        "latency",
        "orders",
        "queue",
        "req",
        "temp",
    ];
    let requests = official.wait_for(Duration::from_secs(25), |r| metric_names(r) == expected);
    assert!(
        official.refused() >= 1,
        "the refused exports were not retried"
    );
    let metrics: Vec<_> = requests
        .iter()
        .flat_map(|r| &r.resource_metrics)
        .flat_map(|rm| rm.scope_metrics.iter().map(move |s| (rm, s)))
        .flat_map(|(rm, s)| s.metrics.iter().map(move |m| (rm, s, m)))
        .collect();
    let find = |name: &str| metrics.iter().find(|(_, _, m)| m.name == name).unwrap();
    let (rm, scope, orders) = find("orders");
    let Some(Data::Sum(sum)) = &orders.data else {
        panic!("orders: {orders:?}")
    };
    assert!(sum.is_monotonic && sum.aggregation_temporality == 2);
    assert_eq!(sum.data_points[0].value, Some(Value::AsInt(7)));
    let attrs: Vec<_> = sum.data_points[0]
        .attributes
        .iter()
        .map(|a| a.key.as_str())
        .collect();
    // `host` is the agent's own tag (not a resource attribute by the
    // semantic conventions, which name it `host.name`).
    assert_eq!(attrs, ["host", "shop"]);
    let resource: Vec<_> = rm
        .resource
        .as_ref()
        .unwrap()
        .attributes
        .iter()
        .map(|a| a.key.as_str())
        .collect();
    assert!(
        resource.contains(&"service.name") && resource.contains(&"telemetry.sdk.language"),
        "{resource:?}"
    );
    assert_eq!(scope.scope.as_ref().unwrap().name, "graft.e2e");
    let orders_time = sum.data_points[0].time_unix_nano;
    assert!(sum.data_points[0].start_time_unix_nano > 0);
    let (_, _, queue) = find("queue");
    assert!(
        matches!(&queue.data, Some(Data::Gauge(g)) if g.data_points[0].value == Some(Value::AsInt(7)))
    );
    let (_, _, latency) = find("latency");
    let Some(Data::Histogram(h)) = &latency.data else {
        panic!("latency: {latency:?}")
    };
    let p = &h.data_points[0];
    assert_eq!(
        (p.count, p.sum, p.min, p.max),
        (3, Some(38.0), Some(1.0), Some(30.0))
    );
    assert_eq!(p.bucket_counts.iter().sum::<u64>(), 3);
    assert_eq!(&p.explicit_bounds[..3], [0.0, 5.0, 10.0]);
    assert_eq!(&p.bucket_counts[..4], [0, 1, 1, 0]);
    let (_, _, idle) = find("cpu_usage_idle");
    let Some(Data::Gauge(g)) = &idle.data else {
        panic!("{idle:?}")
    };
    assert_eq!(g.data_points[0].value, Some(Value::AsDouble(97.5)));
    assert_eq!(g.data_points[0].time_unix_nano, 1_700_000_000_000_000_000);
    let (_, _, req) = find("req");
    assert!(
        matches!(&req.data, Some(Data::Sum(s)) if s.data_points[0].value == Some(Value::AsInt(7)))
    );
    let (_, _, lat) = find("lat");
    let Some(Data::Histogram(h)) = &lat.data else {
        panic!("{lat:?}")
    };
    let p = &h.data_points[0];
    assert_eq!(
        (p.count, p.sum, &p.explicit_bounds[..], &p.bucket_counts[..]),
        (3, Some(38.0), &[5.0, 10.0][..], &[1, 1, 1][..])
    );

    // (a) The second agent, over gRPC and over HTTP (JSON).
    let start = Instant::now();
    let points = loop {
        let points: Vec<Point> = b.points("out.lp");
        let via = |ns: &str| {
            points
                .iter()
                .filter(|p| p.tags.get("service.namespace").map(String::as_str) == Some(ns))
                .count()
        };
        if via("via-grpc") >= 8 && via("via-http") >= 8 {
            break points;
        }
        assert!(
            start.elapsed() < Duration::from_secs(25),
            "the second agent got {points:#?}\n{}",
            b.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    for ns in ["via-grpc", "via-http"] {
        let of = |name: &str| {
            points
                .iter()
                .find(|p| {
                    p.name == name
                        && p.tags.get("service.namespace").map(String::as_str) == Some(ns)
                })
                .unwrap_or_else(|| panic!("{ns}: no {name} in {points:#?}"))
        };
        let o = of("orders");
        assert_eq!(
            (o.fields["counter"].as_str(), o.tags["shop"].as_str()),
            ("7", "a"),
            "{ns}"
        );
        assert_eq!(o.time as u64, orders_time, "{ns}");
        assert_eq!(of("queue").fields["gauge"], "7");
        assert_eq!(of("cpu_usage_idle").fields["gauge"], "97.5");
        assert_eq!(of("cpu_usage_idle").time, 1_700_000_000_000_000_000);
        let l = of("lat");
        for (k, v) in [
            ("count", "3"),
            ("sum", "38"),
            ("5", "1"),
            ("10", "2"),
            ("+Inf", "3"),
        ] {
            assert_eq!(l.fields[k], v, "{ns} lat {k}: {l:?}");
        }
        let h = of("latency");
        for (k, v) in [("count", "3"), ("5", "1"), ("10", "2"), ("+Inf", "3")] {
            assert_eq!(h.fields[k], v, "{ns} latency {k}: {h:?}");
        }
    }
    a.stop(Duration::from_secs(15));
    b.stop(Duration::from_secs(15));
}
