//! The Prometheus-shaped servers the tests talk to, from Debian's packages,
//! each on a free loopback port with a temporary directory: Prometheus
//! (`prometheus`, with the remote-write receiver on), node-exporter
//! (`prometheus-node-exporter`) and VictoriaMetrics (`victoria-metrics`);
//! and reading back what landed through their query API.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::servers::{free_port, http, listening, program, terminate, wait_ready};

/// One series of an instant query: its labels (with `__name__`), value and
/// timestamp in milliseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    pub timestamp_ms: i64,
}

impl Sample {
    /// The value of label `name`, if any.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }
}

/// A `scrape_configs` entry for a static target, as YAML lines.
pub fn scrape_job(job: &str, target: &str, interval: &str) -> String {
    format!(
        "  - job_name: {job}\n    scrape_interval: {interval}\n    scrape_timeout: {interval}\n    \
         static_configs:\n      - targets: ['{target}']\n"
    )
}

/// A Prometheus of its own: TSDB in a temporary directory, the remote-write
/// receiver on.
pub struct Prometheus {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

impl Prometheus {
    /// Start one scraping each `(job, target)` every `interval` (a
    /// Prometheus duration such as `"1s"`) and wait until it is ready.
    pub fn start(targets: &[(&str, &str)], interval: &str) -> Self {
        let jobs: String = targets
            .iter()
            .map(|(job, target)| scrape_job(job, target, interval))
            .collect();
        Self::start_with(&format!("scrape_configs:\n{jobs}"))
    }

    /// Start one whose configuration is the global section plus `rest`
    /// (YAML: `scrape_configs:`, `remote_write:` ...).
    pub fn start_with(rest: &str) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let port = free_port();
        let config = format!("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n{rest}");
        let path = dir.path().join("prometheus.yml");
        std::fs::write(&path, config).expect("prometheus.yml");
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = Command::new(program("prometheus", "prometheus"))
            .arg(format!("--config.file={}", path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-remote-write-receiver")
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting prometheus");
        let mut p = Self {
            dir,
            port,
            child: Some(child),
        };
        let url = format!("{}/-/ready", p.url());
        let client = http();
        wait_ready(
            &mut p.child,
            "prometheus",
            Duration::from_secs(30),
            || {
                listening(port)
                    && client
                        .get(&url)
                        .send()
                        .is_ok_and(|r| r.status().is_success())
            },
            || p_log(&p.dir),
        );
        p
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Where remote write goes.
    pub fn remote_write_url(&self) -> String {
        format!("{}/api/v1/write", self.url())
    }

    /// What Prometheus logged.
    pub fn log(&self) -> String {
        p_log(&self.dir)
    }

    /// The series an instant query returns now.
    pub fn query(&self, expr: &str) -> Vec<Sample> {
        query(&self.url(), expr, &self.log())
    }

    /// Query until some series are there; panic after `within`.
    pub fn wait_for(&self, expr: &str, within: Duration) -> Vec<Sample> {
        wait_for(|| self.query(expr), expr, within, || self.log())
    }

    /// A JSON API answer's `data` (`/api/v1/targets`, `/api/v1/metadata` ...).
    pub fn api(&self, path_and_query: &str) -> serde_json::Value {
        api(&self.url(), path_and_query)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

fn p_log(dir: &tempfile::TempDir) -> String {
    std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default()
}

/// A node-exporter of its own.
pub struct NodeExporter {
    pub port: u16,
    child: Option<Child>,
}

impl NodeExporter {
    /// Start one on a free loopback port and wait until it serves.
    pub fn start() -> Self {
        let port = free_port();
        let child = Command::new(program(
            "prometheus-node-exporter",
            "prometheus-node-exporter",
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting prometheus-node-exporter");
        let mut n = Self {
            port,
            child: Some(child),
        };
        wait_ready(
            &mut n.child,
            "prometheus-node-exporter",
            Duration::from_secs(20),
            || listening(port),
            String::new,
        );
        n
    }

    /// Its `/metrics` address.
    pub fn metrics_url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.port)
    }

    /// `127.0.0.1:port`, as a scrape target.
    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What it exposes now, in the text format.
    pub fn scrape(&self) -> String {
        http()
            .get(self.metrics_url())
            .send()
            .and_then(|r| r.text())
            .expect("scraping node-exporter")
    }
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// One series of an export: its labels, values and timestamps in ms.
pub type Exported = (BTreeMap<String, String>, Vec<f64>, Vec<i64>);

/// A single-node VictoriaMetrics of its own; queries see samples as soon as
/// they are stored (no latency offset).
pub struct VictoriaMetrics {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

impl VictoriaMetrics {
    /// Start one and wait until it is healthy.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("vm.log")).expect("log file");
        let child = Command::new(program("victoria-metrics", "victoria-metrics"))
            .arg(format!(
                "-storageDataPath={}",
                dir.path().join("data").display()
            ))
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg("-search.latencyOffset=0s")
            .arg("-search.disableCache")
            .arg("-retentionPeriod=1")
            .arg("-loggerLevel=WARN")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting victoria-metrics");
        let mut v = Self {
            dir,
            port,
            child: Some(child),
        };
        let url = format!("{}/health", v.url());
        let client = http();
        wait_ready(
            &mut v.child,
            "victoria-metrics",
            Duration::from_secs(30),
            || {
                listening(port)
                    && client
                        .get(&url)
                        .send()
                        .is_ok_and(|r| r.status().is_success())
            },
            || vm_log(&v.dir),
        );
        v
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Prometheus remote write.
    pub fn remote_write_url(&self) -> String {
        format!("{}/api/v1/write", self.url())
    }

    /// Line protocol, as InfluxDB's `/write`.
    pub fn influx_write_url(&self) -> String {
        format!("{}/write", self.url())
    }

    /// What it logged.
    pub fn log(&self) -> String {
        vm_log(&self.dir)
    }

    /// The series an instant query returns now.
    pub fn query(&self, expr: &str) -> Vec<Sample> {
        query(&self.url(), expr, &self.log())
    }

    /// Query until some series are there; panic after `within`.
    pub fn wait_for(&self, expr: &str, within: Duration) -> Vec<Sample> {
        wait_for(|| self.query(expr), expr, within, || self.log())
    }

    /// Every raw sample of the series `selector` matches, as
    /// (labels, values, timestamps in ms) per series, from `/api/v1/export`.
    pub fn export(&self, selector: &str) -> Vec<Exported> {
        let body = http()
            .get(format!("{}/api/v1/export", self.url()))
            .query(&[("match[]", selector)])
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.text())
            .unwrap_or_else(|e| panic!("export {selector}: {e}: {}", self.log()));
        body.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).expect("export line");
                let labels = string_map(&v["metric"]);
                let values = v["values"]
                    .as_array()
                    .expect("values")
                    .iter()
                    .map(|x| x.as_f64().expect("a number"))
                    .collect();
                let times = v["timestamps"]
                    .as_array()
                    .expect("timestamps")
                    .iter()
                    .map(|x| x.as_i64().expect("ms"))
                    .collect();
                (labels, values, times)
            })
            .collect()
    }
}

impl Drop for VictoriaMetrics {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

fn vm_log(dir: &tempfile::TempDir) -> String {
    std::fs::read_to_string(dir.path().join("vm.log")).unwrap_or_default()
}

fn api(base: &str, path_and_query: &str) -> serde_json::Value {
    let body = http()
        .get(format!("{base}{path_and_query}"))
        .send()
        .and_then(|r| r.text())
        .unwrap_or_else(|e| panic!("GET {path_and_query}: {e}"));
    let v: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path_and_query}: {e}: {body}"));
    assert_eq!(v["status"], "success", "GET {path_and_query}: {v}");
    v["data"].clone()
}

fn query(base: &str, expr: &str, log: &str) -> Vec<Sample> {
    let body = http()
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", expr)])
        .send()
        .and_then(|r| r.text())
        .unwrap_or_else(|e| panic!("query {expr}: {e}: {log}"));
    let v: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("query {expr}: {e}: {body}"));
    assert_eq!(v["status"], "success", "query {expr}: {v}");
    v["data"]["result"]
        .as_array()
        .expect("a vector result")
        .iter()
        .map(|s| {
            let pair = &s["value"];
            Sample {
                labels: string_map(&s["metric"]),
                value: pair[1]
                    .as_str()
                    .and_then(|x| x.parse().ok())
                    .expect("a sample value"),
                timestamp_ms: (pair[0].as_f64().expect("a timestamp") * 1000.0).round() as i64,
            }
        })
        .collect()
}

fn wait_for(
    mut query: impl FnMut() -> Vec<Sample>,
    expr: &str,
    within: Duration,
    log: impl Fn() -> String,
) -> Vec<Sample> {
    let start = Instant::now();
    loop {
        let found = query();
        if !found.is_empty() {
            return found;
        }
        assert!(
            start.elapsed() < within,
            "no series for `{expr}` within {within:?}: {}",
            log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn string_map(v: &serde_json::Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}
