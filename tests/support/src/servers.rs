//! Real servers for tests, started from the machine's Debian packages on
//! loopback with temporary directories and free ports: InfluxDB 1.x
//! (`influxd`). A missing package is a test failure that says what to
//! install, never a silent skip.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port on 127.0.0.1 that was free a moment ago, for TCP and UDP.
///
/// It is taken below the kernel's ephemeral range (32768 and up on
/// Debian), never from it: an ephemeral port handed out here could be
/// taken as the source port of any outgoing connection before the server
/// binds it, and the server would fail with "address already in use".
/// Each call in a process takes the next port of a sequence that starts at
/// a place drawn from the process id and the clock, so parallel tests and
/// parallel test binaries rarely meet; a port something holds is skipped.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    if NEXT.load(Ordering::Relaxed) == u32::MAX {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let seed = std::process::id().wrapping_mul(2_654_435_761) ^ nanos;
        let _ = NEXT.compare_exchange(u32::MAX, seed % SPAN, Ordering::Relaxed, Ordering::Relaxed);
    }
    for _ in 0..SPAN {
        let port = (LOW + NEXT.fetch_add(1, Ordering::Relaxed) % SPAN) as u16;
        let tcp = TcpListener::bind(("127.0.0.1", port)).is_ok();
        if tcp && std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a free port")
        .port()
}

/// Whether something listens on 127.0.0.1:`port`.
///
/// A connect to a port in the ephemeral range while nothing listens can
/// pick that same port as its source and connect to itself (TCP
/// simultaneous open). That is not a listener.
pub fn listening(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port))
        .is_ok_and(|c| c.local_addr().ok() != c.peer_addr().ok())
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
        let client = http();
        let ping = format!("{}/ping", self.url());
        let log = self.dir.path().join("influxd.log");
        wait_ready(
            &mut self.child,
            "influxd (/ping)",
            Duration::from_secs(30),
            || {
                client
                    .get(&ping)
                    .send()
                    .is_ok_and(|r| r.status().as_u16() == 204)
            },
            || std::fs::read_to_string(&log).unwrap_or_default(),
        );
    }

    /// Stop the server (SIGTERM, then wait); data stays for `resume`.
    pub fn stop(&mut self) {
        terminate(&mut self.child);
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

/// A carbon-cache (Debian's `graphite-carbon`) of its own: whisper files
/// in a temporary directory (1-second points kept for an hour), plaintext
/// and pickle receivers on free loopback ports.
pub struct CarbonCache {
    dir: tempfile::TempDir,
    pub line_port: u16,
    pub pickle_port: u16,
    child: Child,
}

impl CarbonCache {
    /// Start one and wait until both receivers accept connections.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let d = dir.path();
        for sub in ["conf", "storage/whisper", "storage/lists", "log"] {
            std::fs::create_dir_all(d.join(sub)).expect("carbon directories");
        }
        let (line_port, pickle_port, query_port) = (free_port(), free_port(), free_port());
        let p = d.display();
        std::fs::write(
            d.join("conf/carbon.conf"),
            format!(
                "[cache]\nSTORAGE_DIR = {p}/storage\nLOCAL_DATA_DIR = {p}/storage/whisper\n\
                 WHITELISTS_DIR = {p}/storage/lists\nCONF_DIR = {p}/conf\nLOG_DIR = {p}/log\n\
                 PID_DIR = {p}\nUSER =\nENABLE_LOGROTATION = False\nMAX_CACHE_SIZE = inf\n\
                 MAX_UPDATES_PER_SECOND = inf\nMAX_CREATES_PER_MINUTE = inf\n\
                 LINE_RECEIVER_INTERFACE = 127.0.0.1\nLINE_RECEIVER_PORT = {line_port}\n\
                 ENABLE_UDP_LISTENER = False\nPICKLE_RECEIVER_INTERFACE = 127.0.0.1\n\
                 PICKLE_RECEIVER_PORT = {pickle_port}\nCACHE_QUERY_INTERFACE = 127.0.0.1\n\
                 CACHE_QUERY_PORT = {query_port}\nLOG_LISTENER_CONNECTIONS = False\n\
                 ENABLE_TAGS = False\nCACHE_WRITE_STRATEGY = sorted\n"
            ),
        )
        .expect("carbon.conf");
        std::fs::write(
            d.join("conf/storage-schemas.conf"),
            "[default]\npattern = .*\nretentions = 1s:1h\n",
        )
        .expect("storage-schemas.conf");
        let log = std::fs::File::create(d.join("carbon.out")).expect("carbon.out");
        let child = Command::new(program("carbon-cache", "graphite-carbon"))
            .arg(format!("--config={}/conf/carbon.conf", p))
            .arg(format!("--logdir={}/log", p))
            .args(["--nodaemon", "start"])
            .current_dir(d)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("starting carbon-cache");
        let mut c = CarbonCache {
            dir,
            line_port,
            pickle_port,
            child,
        };
        let start = Instant::now();
        while [line_port, pickle_port].iter().any(|p| !listening(*p)) {
            if let Ok(Some(status)) = c.child.try_wait() {
                panic!("carbon-cache exited with {status}: {}", c.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "carbon-cache did not listen within 30 s: {}",
                c.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        c
    }

    /// What carbon-cache printed.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("carbon.out")).unwrap_or_default()
    }

    /// The whisper file of a dotted path.
    pub fn whisper_file(&self, path: &str) -> PathBuf {
        let mut p = self.dir.path().join("storage/whisper");
        for part in path.split('.') {
            p.push(part);
        }
        p.set_extension("wsp");
        p
    }

    /// Every non-empty point of `path` between `from` and `until` (unix
    /// seconds), read with `whisper-fetch`; waits up to 20 s for carbon to
    /// write them, until `expect` points are there.
    pub fn fetch(&self, path: &str, from: i64, until: i64, expect: usize) -> Vec<(i64, f64)> {
        let file = self.whisper_file(path);
        let start = Instant::now();
        loop {
            let points = if file.exists() {
                let out = Command::new(program("whisper-fetch", "python3-whisper"))
                    .arg(format!("--from={from}"))
                    .arg(format!("--until={until}"))
                    .arg("--json")
                    .arg(&file)
                    .output()
                    .expect("running whisper-fetch");
                let v: serde_json::Value =
                    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
                let (start, step) = (
                    v["start"].as_i64().unwrap_or(0),
                    v["step"].as_i64().unwrap_or(1),
                );
                v["values"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .enumerate()
                            .filter_map(|(i, x)| Some((start + i as i64 * step, x.as_f64()?)))
                            .collect()
                    })
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            if points.len() >= expect || start.elapsed() > Duration::from_secs(20) {
                return points;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for CarbonCache {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A PostgreSQL 15 (Debian's `postgresql`) of its own: `initdb` into a
/// temporary directory, run as the `postgres` user when we are root, trust
/// authentication on 127.0.0.1 and a free port.
pub struct Postgres {
    _dir: tempfile::TempDir,
    data: PathBuf,
    pub port: u16,
    running: bool,
}

fn pg_bin(name: &str) -> PathBuf {
    let p = Path::new("/usr/lib/postgresql/15/bin").join(name);
    assert!(
        p.exists(),
        "{} is missing: install the Debian package `postgresql` (15)",
        p.display()
    );
    p
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Run a PostgreSQL program, as `postgres` when we are root.
fn as_postgres(program: &Path, args: &[&str]) -> std::process::Output {
    let mut c = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    c.args(args).output().expect("running a PostgreSQL program")
}

impl Postgres {
    /// initdb and start; waits until it accepts connections.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("data directory");
        if is_root() {
            let ok = Command::new("chmod")
                .arg("755")
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success())
                && Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&data)
                    .status()
                    .is_ok_and(|s| s.success());
            assert!(ok, "handing the data directory to the postgres user failed");
        }
        let d = data.display().to_string();
        let out = as_postgres(
            &pg_bin("initdb"),
            &[
                "-D",
                &d,
                "--auth=trust",
                "--username=postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut pg = Postgres {
            _dir: dir,
            data,
            port: free_port(),
            running: false,
        };
        pg.resume();
        pg
    }

    /// Start (again) on the same data directory and port.
    pub fn resume(&mut self) {
        let d = self.data.display().to_string();
        let opts = format!(
            "-p {} -k {d} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off",
            self.port
        );
        let log = format!("{d}/server.log");
        let out = as_postgres(
            &pg_bin("pg_ctl"),
            &["-D", &d, "-l", &log, "-o", &opts, "-w", "start"],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        self.running = true;
    }

    /// Stop (fast shutdown); the data stays for `resume`.
    pub fn stop(&mut self) {
        if self.running {
            let d = self.data.display().to_string();
            let _ = as_postgres(&pg_bin("pg_ctl"), &["-D", &d, "-m", "fast", "-w", "stop"]);
            self.running = false;
        }
    }

    /// `host=127.0.0.1 port=... user=postgres dbname=<db>`.
    pub fn address(&self, db: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={db}",
            self.port
        )
    }

    /// Run SQL with psql (statements in one string, each committed unless
    /// the SQL says otherwise); panics on error.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(program("psql", "postgresql-client"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
            ])
            .args(["-v", "ON_ERROR_STOP=1", "-X", "-q", "-t", "-A", "-c", sql])
            .output()
            .expect("running psql");
        assert!(
            out.status.success(),
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Wait until `ready()` holds for the server `child` runs; panic with
/// `log()` if it exits first or `within` passes.
pub fn wait_ready(
    child: &mut Option<Child>,
    what: &str,
    within: Duration,
    mut ready: impl FnMut() -> bool,
    log: impl Fn() -> String,
) {
    let start = Instant::now();
    while !ready() {
        if let Some(status) = child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
            panic!("{what} exited with {status}: {}", log());
        }
        assert!(
            start.elapsed() < within,
            "{what} was not ready within {within:?}: {}",
            log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stop the server `child` runs, if any: SIGTERM (it saves what it
/// keeps), then SIGKILL after 20 s.
pub fn terminate(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
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
