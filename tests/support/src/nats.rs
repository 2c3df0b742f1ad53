//! `nats-server` (Debian's `nats-server`, 2.9) for tests: one server with
//! JetStream, or a three-node JetStream cluster (routes, server names, a
//! cluster name), each on free loopback ports with its store in a
//! temporary directory. Readiness is the server's own `/healthz`, which
//! answers 200 only once JetStream is up (in a cluster: once a meta leader
//! is elected). A node can be `kill -9`ed and started again on the same
//! ports and store.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::servers::{free_port, http, program, wait_ready};

/// How long a server (or a cluster) may take to be ready.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// One `nats-server -js` of its own.
pub struct NatsServer {
    dir: PathBuf,
    /// The client port on 127.0.0.1.
    pub port: u16,
    /// The monitoring port (`/healthz`, `/jsz`, `/varz`) on 127.0.0.1.
    pub monitor_port: u16,
    /// Its `server_name`.
    pub name: String,
    child: Option<Child>,
    _temp: Option<tempfile::TempDir>,
}

impl NatsServer {
    /// A single server with JetStream, ready.
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// A single server with JetStream and `extra` added to its config
    /// (`tls { ... }`, `authorization { ... }`), ready.
    pub fn start_with(extra: &str) -> Self {
        let temp = tempfile::tempdir().expect("temporary directory");
        let mut s = Self::configure(temp.path().to_path_buf(), "single", None);
        if !extra.is_empty() {
            let file = temp.path().join("nats.conf");
            let mut config = std::fs::read_to_string(&file).expect("nats.conf");
            config += extra;
            std::fs::write(&file, config).expect("writing nats.conf");
        }
        s._temp = Some(temp);
        s.resume();
        s.wait_ready();
        s
    }

    /// Write the config of a server in `dir`; `cluster` is (cluster port,
    /// the other nodes' cluster ports). Nothing is started.
    fn configure(dir: PathBuf, name: &str, cluster: Option<(u16, &[u16])>) -> Self {
        let (port, monitor_port) = (free_port(), free_port());
        Self::write_config(&dir, name, port, monitor_port, cluster);
        NatsServer {
            dir,
            port,
            monitor_port,
            name: name.to_owned(),
            child: None,
            _temp: None,
        }
    }

    fn write_config(
        dir: &Path,
        name: &str,
        port: u16,
        monitor: u16,
        cluster: Option<(u16, &[u16])>,
    ) {
        let store = dir.join("jetstream");
        std::fs::create_dir_all(&store).expect("the JetStream store directory");
        let mut config = format!(
            "server_name: \"{name}\"\nlisten: \"127.0.0.1:{port}\"\nhttp: \"127.0.0.1:{monitor}\"\n\
             jetstream {{\n  store_dir: \"{}\"\n  max_memory_store: 268435456\n  max_file_store: 4294967296\n}}\n",
            store.display()
        );
        if let Some((cluster_port, others)) = cluster {
            let routes: Vec<String> = others
                .iter()
                .map(|p| format!("\"nats-route://127.0.0.1:{p}\""))
                .collect();
            config += &format!(
                "cluster {{\n  name: \"graft-test\"\n  listen: \"127.0.0.1:{cluster_port}\"\n  routes: [{}]\n}}\n",
                routes.join(", ")
            );
        }
        std::fs::write(dir.join("nats.conf"), config).expect("writing nats.conf");
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Start the server (again) on its ports and store; returns at once.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let child = Command::new(program("nats-server", "nats-server"))
            .arg("-c")
            .arg(self.dir.join("nats.conf"))
            .arg("-l")
            .arg(self.dir.join("nats.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting nats-server");
        self.child = Some(child);
    }

    /// Whether `/healthz` answers 200 (JetStream up, and in a cluster in
    /// contact with a meta leader).
    pub fn healthy(&self) -> bool {
        healthy(&format!("http://127.0.0.1:{}/healthz", self.monitor_port))
    }

    /// Wait until [`NatsServer::healthy`]; fail with the log after
    /// [`READY_WITHIN`] or when the server exits.
    pub fn wait_ready(&mut self) {
        let healthz = format!("http://127.0.0.1:{}/healthz", self.monitor_port);
        let log = self.dir.join("nats.log");
        wait_ready(
            &mut self.child,
            &format!("nats-server {} (/healthz)", self.name),
            READY_WITHIN,
            || healthy(&healthz),
            || std::fs::read_to_string(&log).unwrap_or_default(),
        );
    }

    /// `kill -9` the server; its store stays for [`NatsServer::resume`].
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            crate::durable::kill9(&mut child);
        }
    }

    /// Whether the server process runs.
    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The monitoring endpoint `path` (`jsz?consumers=true`) as JSON.
    pub fn monitor(&self, path: &str) -> serde_json::Value {
        let url = format!("http://127.0.0.1:{}/{path}", self.monitor_port);
        let text = http()
            .get(&url)
            .send()
            .and_then(|r| r.text())
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {url}: {e}: {text}"))
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("nats.log")).unwrap_or_default()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A JetStream cluster of three `nats-server`s routed to each other on
/// loopback, named `n1`, `n2`, `n3` in cluster `graft-test`.
pub struct NatsCluster {
    pub nodes: Vec<NatsServer>,
    _temp: tempfile::TempDir,
}

impl NatsCluster {
    /// Start three nodes and wait until each is healthy (a JetStream meta
    /// leader is elected and every node knows it).
    pub fn start() -> Self {
        let temp = tempfile::tempdir().expect("temporary directory");
        let cluster_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut nodes: Vec<NatsServer> = (0..3)
            .map(|i| {
                let dir = temp.path().join(format!("n{}", i + 1));
                std::fs::create_dir_all(&dir).expect("node directory");
                let others: Vec<u16> = cluster_ports
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, p)| *p)
                    .collect();
                NatsServer::configure(
                    dir,
                    &format!("n{}", i + 1),
                    Some((cluster_ports[i], &others)),
                )
            })
            .collect();
        for n in &mut nodes {
            n.resume();
        }
        for n in &mut nodes {
            n.wait_ready();
        }
        NatsCluster { nodes, _temp: temp }
    }

    /// Every node's client URL, comma-separated lists being the caller's
    /// business.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(NatsServer::url).collect()
    }

    /// Every node's log, each under its name.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("--- {} ---\n{}", n.name, n.log()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Test certificates made with `openssl` in `dir`: a CA (`ca.pem`) and a
/// server certificate for 127.0.0.1 signed by it (`server.pem`,
/// `server.key`). Returns the three paths.
pub fn tls_files(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new(program("openssl", "openssl"))
            .args(args)
            .current_dir(dir)
            .output()
            .expect("running openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("san.ext");
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=graft test CA",
        ],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    ]
    .concat());
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// The durable consumer `durable` of `stream` as `/jsz` shows it
/// (`num_ack_pending`, `num_redelivered`, `num_pending`, `delivered`,
/// ...), if the server knows it.
pub fn consumer_info(
    server: &NatsServer,
    stream: &str,
    durable: &str,
) -> Option<serde_json::Value> {
    let jsz = server.monitor("jsz?accounts=true&streams=true&consumers=true");
    jsz["account_details"]
        .as_array()?
        .iter()
        .flat_map(|a| a["stream_detail"].as_array().into_iter().flatten())
        .filter(|s| s["name"] == stream)
        .flat_map(|s| s["consumer_detail"].as_array().into_iter().flatten())
        .find(|c| c["name"] == durable)
        .cloned()
}

/// The messages `stream` holds, as `/jsz` shows it on `server`.
pub fn stream_messages(server: &NatsServer, stream: &str) -> Option<u64> {
    let jsz = server.monitor("jsz?accounts=true&streams=true");
    jsz["account_details"]
        .as_array()?
        .iter()
        .flat_map(|a| a["stream_detail"].as_array().into_iter().flatten())
        .find(|s| s["name"] == stream)
        .and_then(|s| s["state"]["messages"].as_u64())
}

/// Lines `<measurement>,source=<source> seq=<n>i <n>` for every n of
/// `seqs`: the sequence number is also the timestamp, so InfluxDB keeps
/// one point per number.
pub fn seq_lines(measurement: &str, source: &str, seqs: std::ops::Range<u64>) -> String {
    let mut s = String::new();
    for n in seqs {
        s += &format!("{measurement},source={source} seq={n}i {n}\n");
    }
    s
}

/// POST line protocol to an `inputs.influxdb_listener` on 127.0.0.1;
/// panics unless it answers 204.
pub fn post_lines(port: u16, body: String) {
    let r = http()
        .post(format!("http://127.0.0.1:{port}/write"))
        .body(body)
        .send()
        .unwrap_or_else(|e| panic!("POST to graft on {port}: {e}"));
    assert_eq!(r.status().as_u16(), 204, "graft on {port} answered {r:?}");
}

/// The `seq` field of every `measurement` line of a line protocol file
/// written by `outputs.file`, with how often each number appeared.
pub fn seqs(path: &Path, measurement: &str) -> std::collections::BTreeMap<u64, u32> {
    let mut seen = std::collections::BTreeMap::new();
    let text = std::fs::read_to_string(path).unwrap_or_default();
    for line in text.lines() {
        let Some((head, rest)) = line.split_once(' ') else {
            continue;
        };
        if head.split(',').next() != Some(measurement) {
            continue;
        }
        let fields = rest.split(' ').next().unwrap_or("");
        if let Some(n) = fields
            .split(',')
            .find_map(|kv| kv.strip_prefix("seq="))
            .and_then(|v| v.trim_end_matches('i').parse::<u64>().ok())
        {
            *seen.entry(n).or_insert(0) += 1;
        }
    }
    seen
}

/// The numeric fields of the latest `internal_gather` metric of input
/// `input` in a line protocol file written by `outputs.file`.
pub fn gather_fields(path: &Path, input: &str) -> Option<std::collections::BTreeMap<String, f64>> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let tag = format!("input={input}");
    text.lines()
        .rfind(|l| {
            l.split(' ').next().is_some_and(|head| {
                head.starts_with("internal_gather,") && head.split(',').any(|t| t == tag)
            })
        })
        .map(|l| {
            let fields = l.split(' ').nth(1).unwrap_or("");
            fields
                .split(',')
                .filter_map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    let v = v.trim_end_matches(['i', 'u']).parse().ok()?;
                    Some((k.to_owned(), v))
                })
                .collect()
        })
}

/// `graft run` on `config` (written to `dir/<name>.toml`), its log in
/// `dir/<name>.log`; returns at once.
pub fn start_graft(dir: &Path, name: &str, config: &str) -> Child {
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, config).expect("writing the config");
    crate::graft()
        .args(["run", "--config"])
        .arg(&file)
        .env("GRAFT_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("{name}.log"))).expect("log file"))
        .spawn()
        .expect("starting graft")
}

/// What graft `name` started by [`start_graft`] in `dir` logged.
pub fn graft_log(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default()
}

/// Whether the monitoring endpoint `healthz` answers with success.
fn healthy(healthz: &str) -> bool {
    http()
        .get(healthz)
        .timeout(Duration::from_secs(2))
        .send()
        .is_ok_and(|r| r.status().is_success())
}

/// Holds the tests of one test binary to one at a time: each starts its own
/// servers and agents, several JetStream servers and graft agents at once
/// outrun a 2-core machine's timeouts, and a failed test must not poison
/// the others.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_numbers_and_gather_samples_from_line_protocol() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out");
        std::fs::write(
            &p,
            format!(
                "{}seq,source=b seq=1i 1\nother seq=9i 9\n\
                 internal_gather,input=nats_consumer messages_received=3i,parse_errors=1i 1\n\
                 internal_gather,input=nats_consumer messages_received=5i 2\n\
                 internal_gather,input=cpu metrics_gathered=2i 2\n",
                seq_lines("seq", "a", 0..3)
            ),
        )
        .unwrap();
        let s = seqs(&p, "seq");
        assert_eq!(s.into_iter().collect::<Vec<_>>(), [(0, 1), (1, 2), (2, 1)]);
        let g = gather_fields(&p, "nats_consumer").unwrap();
        assert_eq!(g["messages_received"], 5.0);
        assert!(gather_fields(&p, "mem").is_none());
    }

    #[test]
    fn a_single_server_runs_jetstream_and_comes_back_after_kill9() {
        let mut s = NatsServer::start();
        let jsz = s.monitor("jsz");
        assert!(jsz["config"]["store_dir"].is_string(), "{jsz}");
        s.kill9();
        assert!(!s.healthy());
        s.resume();
        s.wait_ready();
        assert!(crate::servers::listening(s.port));
    }

    #[test]
    fn a_cluster_elects_a_meta_leader_and_survives_a_node() {
        let mut c = NatsCluster::start();
        let leader = c.nodes[0].monitor("jsz")["meta_cluster"]["leader"].clone();
        assert!(leader.is_string(), "{leader}");
        assert_eq!(
            c.nodes[1].monitor("jsz")["meta_cluster"]["cluster_size"],
            serde_json::json!(3)
        );
        c.nodes[2].kill9();
        // The other two keep a quorum.
        crate::poll_until("a meta leader among two nodes", READY_WITHIN, || {
            c.nodes[0].healthy() && c.nodes[1].healthy()
        });
        c.nodes[2].resume();
        c.nodes[2].wait_ready();
    }
}
