//! The StatsD input against Telegraf's field mapping, and over real
//! sockets.

use super::*;

fn statsd(extra: &str) -> Statsd {
    Statsd::new(crate::config::parse(toml::from_str(extra).unwrap()).unwrap()).unwrap()
}

fn feed(s: &Statsd, text: &str) -> u64 {
    s.ingest(text.as_bytes())
}

fn rows(b: &Batch) -> Vec<String> {
    let mut v: Vec<String> = b
        .iter()
        .map(|m| {
            let tags: Vec<String> = m.tags().map(|(k, v)| format!("{k}={v}")).collect();
            let mut fields: Vec<String> = m.fields().map(|(k, v)| format!("{k}={v:?}")).collect();
            fields.sort();
            format!("{} {} {}", m.name(), tags.join(","), fields.join(","))
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn telegraf_field_mapping() {
    let mut s = statsd("percentiles = [50, 90]");
    let bad = feed(
        &s,
        "users.current.den001:32|g\nusers.current.den001:+10|g\nusers.current.den001:-2|g\n\
         deploys.test:1|c\ndeploys.test:1|c|@0.1\nuniques:foo|s\nuniques:bar|s\nuniques:foo|s\n\
         load.time:320|ms\nload.time:100|ms\nload.time:200|ms|@0.5\nbad line\nx:1|q\ncpu,host=a:5|g\n",
    );
    assert_eq!(bad, 2);
    let b = s.gather().await.unwrap();
    assert_eq!(
        rows(&b),
        [
            "cpu host=a,metric_type=gauge value=Float(5.0)",
            "deploys_test metric_type=counter value=Int(11)",
            "load_time metric_type=timing 50_percentile=Float(200.0),90_percentile=Float(320.0),count=Int(4),lower=Float(100.0),mean=Float(205.0),median=Float(200.0),stddev=Float(77.94228634059948),sum=Float(820.0),upper=Float(320.0)",
            "uniques metric_type=set value=Int(2)",
            "users_current_den001 metric_type=gauge value=Float(40.0)",
        ]
    );
    // Counters and gauges are typed as Telegraf types them.
    let kinds: std::collections::BTreeMap<&str, MetricKind> =
        b.iter().map(|m| (m.name(), m.kind())).collect();
    assert_eq!(kinds["deploys_test"], MetricKind::Counter);
    assert_eq!(kinds["users_current_den001"], MetricKind::Gauge);
    assert_eq!(kinds["load_time"], MetricKind::Untyped);
    assert_eq!(kinds["uniques"], MetricKind::Untyped);
    // Deleted after the gather.
    assert!(s.gather().await.unwrap().is_empty());
}

#[tokio::test]
async fn datadog_tags_templates_and_kept_gauges() {
    let mut s = statsd(
        "datadog_extensions = true\ndelete_gauges = false\ntemplates = [\"measurement.field\"]",
    );
    assert_eq!(
        feed(
            &s,
            "cpu.idle:90|g|#host:a,env:prod\nreq.latency:5|ms|#host:a"
        ),
        0
    );
    let b = s.gather().await.unwrap();
    let r = rows(&b);
    assert_eq!(
        r[0],
        "cpu env=prod,host=a,metric_type=gauge idle=Float(90.0)"
    );
    assert!(
        r[1].starts_with("req host=a,metric_type=timing latency_100_percentile="),
        "{}",
        r[1]
    );
    assert!(r[1].contains("latency_count=Int(1)"), "{}", r[1]);
    let again = rows(&s.gather().await.unwrap());
    assert_eq!(
        again,
        ["cpu env=prod,host=a,metric_type=gauge idle=Float(90.0)"]
    );
}

/// Over real UDP and TCP sockets, with a bad line in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_and_tcp() {
    for protocol in ["udp", "tcp"] {
        let mut s = Statsd::new(
            crate::config::parse(
                toml::from_str(&format!(
                    "protocol = \"{protocol}\"\nservice_address = \"127.0.0.1:0\""
                ))
                .unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        let (sink, _rx) = MetricSink::channel(16, Arc::new(|| 0));
        s.start(sink.clone()).await.unwrap();
        let addr = s.local_addr().unwrap();
        let text = "hits:1|c\nhits:2|c\n???\nlatency:7|ms\n";
        if protocol == "udp" {
            let u = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            u.send_to(text.as_bytes(), addr).await.unwrap();
        } else {
            use tokio::io::AsyncWriteExt;
            let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
            c.write_all(text.as_bytes()).await.unwrap();
        }
        let start = Instant::now();
        let mut got = Vec::new();
        while got.len() < 2 && start.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let b = s.gather().await.unwrap();
            got.extend(b.iter().map(|m| format!("{m:?}")));
        }
        s.stop().await;
        got.sort();
        assert_eq!(got.len(), 2, "{protocol}: {got:?}");
        assert!(
            got[0].contains("\"hits\"") && got[0].contains("Int(3)"),
            "{protocol}: {got:?}"
        );
        assert!(
            got[1].contains("\"latency\"") && got[1].contains("(\"count\", Int(1))"),
            "{protocol}: {got:?}"
        );
        assert_eq!(sink.malformed_count(), 1, "{protocol}");
    }
}

/// A tiny sample rate does not make one line cost a billion steps, and
/// the count is what the rate says.
#[tokio::test]
async fn a_tiny_sample_rate_is_counted_not_looped() {
    let mut s = statsd("percentiles = [50]");
    assert_eq!(
        feed(
            &s,
            "t:5|ms|@0.000000000931322574615478515625\nc:1e308|c|@0.5\n"
        ),
        1
    );
    let rows = rows(&s.gather().await.unwrap());
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].contains("count=Int(1073741824)"), "{rows:?}");
}

/// Over TCP, an over-long line is dropped up to its newline and counted,
/// the lines around it are read, and nothing past the maximum is held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_lines_over_the_maximum_are_dropped() {
    use tokio::io::AsyncWriteExt;
    let mut s = statsd(
        "protocol = \"tcp\"\nservice_address = \"127.0.0.1:0\"\nmax_line_size = 100\n\
         delete_counters = false",
    );
    let (sink, _rx) = MetricSink::channel(16, Arc::new(|| 0));
    s.start(sink.clone()).await.unwrap();
    let mut c = tokio::net::TcpStream::connect(s.local_addr().unwrap())
        .await
        .unwrap();
    c.write_all(b"a:1|c\n").await.unwrap();
    // 1 MiB without a newline, in pieces, then the rest of a good stream.
    let junk = vec![b'x'; 64 << 10];
    for _ in 0..16 {
        c.write_all(&junk).await.unwrap();
    }
    c.write_all(b"\na:2|c\n").await.unwrap();
    drop(c);
    let start = Instant::now();
    let mut got = Vec::new();
    let want = ["a metric_type=counter value=Int(3)"];
    while got != want && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        got = rows(&s.gather().await.unwrap());
    }
    s.stop().await;
    assert_eq!(got, want);
    assert_eq!(sink.malformed_count(), 1);
}

#[test]
fn a_zero_line_size_is_an_error_naming_its_key() {
    let config = crate::config::parse(toml::from_str("max_line_size = 0").unwrap()).unwrap();
    let e = Statsd::new(config).err().expect("refused");
    assert!(format!("{e:#}").contains("max_line_size"), "{e:#}");
}
