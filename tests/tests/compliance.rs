//! Every built-in plugin through one compliance helper
//! ([`graft_test_support::compliance`]), in one real agent: each emits its
//! self-metrics row under its alias; each listener counts bad input
//! (`parse_errors`) and still takes the good input sent after it on the
//! same connection or request; inputs and outputs whose peer is a closed
//! loopback port count `errors`; SIGTERM stops the agent within 15 s.
//! A built-in the binary lists without a case here fails the test.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use graft_test_support::compliance::{self, Case, Kind};
use graft_test_support::servers::{free_port, http};

/// Write `bytes` on one TCP connection to 127.0.0.1:`port`.
fn tcp_send(port: u16, bytes: &[u8]) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connecting to the listener");
    s.write_all(bytes).expect("sending");
}

/// POST `body` to `url`; the status is the listener's business (a body
/// with a bad line gets 400 while its good lines are taken).
fn post(url: &str, body: &'static str) {
    http()
        .post(url)
        .body(body)
        .send()
        .expect("posting to the listener");
}

/// A listener case: bad input then good input through `feed`, counted in
/// `parse_errors`, the good one landing as `lands`.
fn listener(
    name: &'static str,
    port: u16,
    options: String,
    lands: &'static str,
    feed: impl Fn() + 'static,
) -> Case {
    let mut case = Case::new(Kind::Input, name, options);
    case.listens = vec![port];
    case.feed = Some(Box::new(feed));
    case.counts = Some("parse_errors");
    case.works = vec!["metrics_gathered"];
    case.lands = Some(lands);
    case
}

/// An input that reads the machine: it gathers something, and its
/// measurement lands.
fn machine(name: &'static str, lands: &'static str) -> Case {
    let mut case = Case::new(Kind::Input, name, "");
    case.works = vec!["metrics_gathered"];
    case.lands = Some(lands);
    case
}

/// A plugin whose peer is a closed loopback port: `errors` counts.
fn unreachable(kind: Kind, name: &'static str, options: String) -> Case {
    let mut case = Case::new(kind, name, options);
    case.counts = Some("errors");
    case
}

fn cases() -> Vec<Case> {
    let closed = free_port();
    let http_v2 = free_port();
    let (carbon, socket, statsd, influx, influx_v2) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let (otlp_grpc, otlp_http) = (free_port(), free_port());
    let mut rename = Case::new(
        Kind::Processor,
        "rename",
        "  [[processors.rename.replace]]\n    measurement = \"compliance_rename_from\"\n    dest = \"compliance_rename_to\"\n",
    );
    rename.works = vec!["metrics_processed"];
    rename.lands = Some("compliance_rename_to");
    let mut file = Case::new(Kind::Output, "file", "  files = [\"{out}\"]\n");
    file.works = vec!["metrics_written"];
    let mut prometheus_client = Case::new(
        Kind::Output,
        "prometheus_client",
        format!("  listen = \"127.0.0.1:{}\"\n", free_port()),
    );
    prometheus_client.works = vec!["metrics_written"];
    let mut internal = Case::new(Kind::Input, "internal", "");
    internal.works = vec!["metrics_gathered"];
    internal.lands = Some("internal_agent");
    vec![
        listener(
            "carbon",
            carbon,
            format!("  service_address = [\"tcp://127.0.0.1:{carbon}\"]\n"),
            "compliance_carbon",
            move || tcp_send(carbon, b"not-a-number here\ncompliance_carbon 1\n"),
        ),
        listener(
            "socket_listener",
            socket,
            format!(
                "  service_address = \"tcp://127.0.0.1:{socket}\"\n  data_format = \"influx\"\n"
            ),
            "compliance_socket_listener",
            move || {
                tcp_send(
                    socket,
                    b"not line protocol\ncompliance_socket_listener value=1i\ncompliance_rename_from value=1i\n",
                );
            },
        ),
        listener(
            "statsd",
            statsd,
            format!("  protocol = \"tcp\"\n  service_address = \"127.0.0.1:{statsd}\"\n"),
            "compliance_statsd",
            move || tcp_send(statsd, b"no colon here\ncompliance_statsd:1|c\n"),
        ),
        listener(
            "influxdb_listener",
            influx,
            format!("  service_address = \"127.0.0.1:{influx}\"\n"),
            "compliance_influxdb_listener",
            move || {
                post(
                    &format!("http://127.0.0.1:{influx}/write?db=compliance"),
                    "not line protocol\ncompliance_influxdb_listener value=1i\n",
                );
            },
        ),
        listener(
            "influxdb_v2_listener",
            influx_v2,
            format!("  service_address = \"127.0.0.1:{influx_v2}\"\n"),
            "compliance_influxdb_v2_listener",
            move || {
                post(
                    &format!("http://127.0.0.1:{influx_v2}/api/v2/write?org=o&bucket=compliance"),
                    "not line protocol\ncompliance_influxdb_v2_listener value=1i\n",
                );
            },
        ),
        listener(
            "http_listener_v2",
            http_v2,
            format!("  service_address = \"127.0.0.1:{http_v2}\"\n  data_format = \"influx\"\n"),
            "compliance_http_listener_v2",
            move || {
                // A body with a bad line is refused whole (Telegraf's
                // rule); the next one lands.
                let url = format!("http://127.0.0.1:{http_v2}/telegraf");
                post(
                    &url,
                    "not line protocol\ncompliance_http_listener_v2 value=0i\n",
                );
                post(&url, "compliance_http_listener_v2 value=1i\n");
            },
        ),
        listener(
            "opentelemetry",
            otlp_http,
            format!(
                "  service_address = \"127.0.0.1:{otlp_grpc}\"\n  http_service_address = \"127.0.0.1:{otlp_http}\"\n"
            ),
            "compliance_opentelemetry",
            move || {
                let url = format!("http://127.0.0.1:{otlp_http}/v1/metrics");
                let json = |body: &'static str| {
                    http()
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .expect("posting to the OTLP receiver");
                };
                json("not an OTLP request");
                json(
                    r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"compliance_opentelemetry","gauge":{"dataPoints":[{"timeUnixNano":"1700000000000000000","asDouble":1}]}}]}]}]}"#,
                );
            },
        ),
        unreachable(
            Kind::Input,
            "mqtt_consumer",
            format!(
                "  servers = [\"tcp://127.0.0.1:{closed}\"]\n  topics = [\"compliance/#\"]\n  connection_timeout = \"1s\"\n"
            ),
        ),
        unreachable(
            Kind::Input,
            "nats_consumer",
            format!("  servers = [\"nats://127.0.0.1:{closed}\"]\n"),
        ),
        {
            // A target that fails costs only its scrape: counted, not an error of the gather.
            let mut case = Case::new(
                Kind::Input,
                "prometheus",
                format!("  urls = [\"http://127.0.0.1:{closed}/metrics\"]\n  timeout = \"1s\"\n"),
            );
            case.counts = Some("scrape_errors");
            case
        },
        {
            // A URL that fails costs only its request: counted, not an error of the gather.
            let mut case = Case::new(
                Kind::Input,
                "nginx",
                format!(
                    "  urls = [\"http://127.0.0.1:{closed}/nginx_status\"]\n  timeout = \"1s\"\n"
                ),
            );
            case.counts = Some("request_errors");
            case
        },
        {
            // A server that fails costs only itself: its own counter counts.
            let mut case = Case::new(
                Kind::Input,
                "redis",
                format!("  servers = [\"tcp://127.0.0.1:{closed}\"]\n  timeout = \"1s\"\n"),
            );
            case.counts = Some("server_errors");
            case
        },
        {
            let mut case = Case::new(
                Kind::Input,
                "http",
                format!("  urls = [\"http://127.0.0.1:{closed}/metrics\"]\n  timeout = \"1s\"\n"),
            );
            case.counts = Some("request_errors");
            case
        },
        {
            let mut case = Case::new(
                Kind::Input,
                "http_response",
                format!("  urls = [\"http://127.0.0.1:{closed}/\"]\n  response_timeout = \"1s\"\n"),
            );
            case.counts = Some("request_errors");
            case
        },
        {
            let mut case = Case::new(
                Kind::Input,
                "mysql",
                format!("  servers = [\"graft:pw@tcp(127.0.0.1:{closed})/?timeout=1s\"]\n"),
            );
            case.counts = Some("server_errors");
            case
        },
        unreachable(
            Kind::Input,
            "postgresql",
            format!("  address = \"host=127.0.0.1 port={closed} user=graft sslmode=disable\"\n"),
        ),
        machine("cpu", "cpu"),
        machine("disk", "disk"),
        machine("diskio", "diskio"),
        machine("interrupts", "soft_interrupts"),
        machine("kernel", "kernel"),
        machine("linux_sysctl_fs", "linux_sysctl_fs"),
        machine("mem", "mem"),
        {
            let mut case = Case::new(Kind::Input, "net", "  interfaces = [\"lo\"]\n");
            case.works = vec!["metrics_gathered"];
            case.lands = Some("net");
            case
        },
        machine("netstat", "netstat"),
        machine("nstat", "nstat"),
        machine("processes", "processes"),
        {
            // A lookup that fails is counted; its procstat_lookup still lands.
            let mut case = Case::new(
                Kind::Input,
                "procstat",
                "  pid_file = \"/nonexistent/compliance.pid\"\n",
            );
            case.counts = Some("lookup_errors");
            case.works = vec!["metrics_gathered"];
            case.lands = Some("procstat_lookup");
            case
        },
        machine("swap", "swap"),
        machine("system", "system"),
        graft_test_support::programs::exec_case(),
        graft_test_support::programs::execd_case(),
        graft_test_support::programs::tail_case(),
        internal,
        rename,
        file,
        prometheus_client,
        unreachable(
            Kind::Output,
            "mqtt",
            format!("  servers = [\"tcp://127.0.0.1:{closed}\"]\n  timeout = \"1s\"\n"),
        ),
        unreachable(
            Kind::Output,
            "nats",
            format!("  servers = [\"nats://127.0.0.1:{closed}\"]\n  timeout = \"1s\"\n"),
        ),
        unreachable(
            Kind::Output,
            "opentelemetry",
            format!("  service_address = \"127.0.0.1:{closed}\"\n  timeout = \"1s\"\n"),
        ),
        unreachable(
            Kind::Output,
            "graphite",
            format!("  servers = [\"127.0.0.1:{closed}\"]\n  timeout = \"1s\"\n"),
        ),
        unreachable(
            Kind::Output,
            "influxdb",
            format!("  urls = [\"http://127.0.0.1:{closed}\"]\n  timeout = \"1s\"\n"),
        ),
        unreachable(
            Kind::Output,
            "http",
            format!("  url = \"http://127.0.0.1:{closed}/write\"\n  timeout = \"1s\"\n"),
        ),
        unreachable(
            Kind::Output,
            "influxdb_v2",
            format!(
                "  urls = [\"http://127.0.0.1:{closed}\"]\n  bucket = \"compliance\"\n  token = \"t\"\n  timeout = \"1s\"\n"
            ),
        ),
    ]
}

#[test]
fn every_builtin_emits_self_metrics_counts_errors_survives_bad_input_and_stops() {
    let report = compliance::run(cases(), Duration::from_secs(30));
    assert!(report.stopped_in <= compliance::STOP_LIMIT);
    // The bad lines cost only themselves: the good line after each landed
    // once, not more.
    for name in ["compliance_carbon", "compliance_socket_listener"] {
        let n = report.metrics.iter().filter(|m| m.name == name).count();
        assert_eq!(n, 1, "{name} landed {n} times\n{}", report.log);
    }
}
