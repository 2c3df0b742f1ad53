//! Real servers for tests, started from the machine's Debian packages on
//! loopback with temporary directories and free ports: InfluxDB 1.x
//! (`influxd`). A missing package is a test failure that says what to
//! install, never a silent skip.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a free port")
        .port()
}

/// Find a server program or fail naming the Debian package.
pub fn program(name: &str, package: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is not installed: install the Debian package `{package}` (.ci/run does)");
}

/// A blocking HTTP client for talking to test servers.
pub fn http() -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .expect("HTTP client")
}

/// An `influxd` (1.x) of its own: data, meta and WAL in a temporary
/// directory, HTTP and RPC on free loopback ports.
pub struct InfluxD {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

impl InfluxD {
    /// Start a fresh server and wait until it answers `/ping`.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let port = free_port();
        let rpc = free_port();
        let d = dir.path().display();
        let config = format!(
            r#"reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{d}/meta"
[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
"#
        );
        std::fs::write(dir.path().join("influxdb.conf"), config).expect("writing influxdb.conf");
        let mut s = InfluxD {
            dir,
            port,
            child: None,
        };
        s.resume();
        s
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Start the server again on the same directories and port.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "influxd is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("influxd.log"))
            .expect("influxd.log");
        let child = Command::new(program("influxd", "influxdb"))
            .args(["run", "-config"])
            .arg(self.dir.path().join("influxdb.conf"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting influxd");
        self.child = Some(child);
        let start = Instant::now();
        let client = http();
        loop {
            if client
                .get(format!("{}/ping", self.url()))
                .send()
                .is_ok_and(|r| r.status().as_u16() == 204)
            {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("influxd exited with {status}: {}", self.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "influxd did not answer /ping within 30 s: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stop the server (SIGTERM, then wait); data stays for `resume`.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let start = Instant::now();
            while child.try_wait().ok().flatten().is_none() {
                if start.elapsed() > Duration::from_secs(20) {
                    let _ = child.kill();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.wait();
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("influxd.log")).unwrap_or_default()
    }

    /// Run an InfluxQL statement (`POST /query`, epoch in ns) and return the
    /// JSON answer; panics on an HTTP or query error.
    pub fn query(&self, db: &str, q: &str) -> serde_json::Value {
        self.try_query(db, q)
            .unwrap_or_else(|e| panic!("query {q:?}: {e}"))
    }

    /// Like [`InfluxD::query`], with the error as a value.
    pub fn try_query(&self, db: &str, q: &str) -> Result<serde_json::Value, String> {
        let r = http()
            .post(format!("{}/query", self.url()))
            .query(&[("db", db), ("q", q), ("epoch", "ns")])
            .send()
            .map_err(|e| e.to_string())?;
        let status = r.status();
        let text = r.text().map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{status}: {text}"));
        }
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        if let Some(e) = v["results"][0].get("error") {
            return Err(e.to_string());
        }
        Ok(v)
    }
}

impl Drop for InfluxD {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
