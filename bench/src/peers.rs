//! Starting the programs under test, each with its own temporary directory
//! and free loopback ports: graft, and the peers from Debian's packages
//! (collectd, prometheus-node-exporter, carbon-c-relay, carbon's
//! carbon-relay). A missing program is an error that names its package.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The Debian packages of the peers, with the program each provides.
pub const PACKAGES: &[(&str, &str)] = &[
    ("collectd-core", "/usr/sbin/collectd"),
    (
        "prometheus-node-exporter",
        "/usr/bin/prometheus-node-exporter",
    ),
    ("carbon-c-relay", "/usr/bin/carbon-c-relay"),
    ("graphite-carbon", "/usr/bin/carbon-relay"),
    ("nats-server", "/usr/sbin/nats-server"),
];

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The program of `package`, or an error saying what to install.
pub fn program(package: &str) -> Result<PathBuf> {
    let (_, path) = PACKAGES
        .iter()
        .find(|(p, _)| *p == package)
        .with_context(|| format!("unknown package {package}"))?;
    let path = PathBuf::from(path);
    if !path.exists() {
        bail!(
            "{} is missing: install the Debian package `{package}` (bench/run does)",
            path.display()
        );
    }
    Ok(path)
}

/// The installed version of a Debian package.
pub fn deb_version(package: &str) -> Option<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", package])
        .output()
        .ok()?;
    let v = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !v.is_empty()).then_some(v)
}

/// A temporary directory named `graft-bench-*` (collectd's csv plugin
/// refuses paths with a component that starts with a dot, as
/// `tempfile::tempdir()`'s do).
pub fn tempdir() -> Result<tempfile::TempDir> {
    Ok(tempfile::Builder::new().prefix("graft-bench-").tempdir()?)
}

/// A running program; killed when dropped.
pub struct Running {
    pub name: String,
    pub child: Child,
    /// Its configuration, logs and data.
    pub dir: tempfile::TempDir,
    /// Programs that work with it as one (a message bus and its consumer
    /// behind an agent): their CPU counts as its own, and they must stay up.
    pub companions: Vec<Running>,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its process and its companions'.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids = vec![self.pid()];
        for c in &self.companions {
            pids.extend(c.pids());
        }
        pids
    }

    /// Fail if it or a companion has exited, with the tail of its log.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited ({status}): {}", self.name, self.log_tail());
        }
        self.companions
            .iter_mut()
            .try_for_each(Running::check_alive)
    }

    /// The last lines of what it printed.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("output.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// The last lines of what it and its companions printed.
    pub fn log_tails(&self) -> String {
        let mut s = format!("--- {}\n{}", self.name, self.log_tail());
        for c in &self.companions {
            s.push('\n');
            s.push_str(&c.log_tails());
        }
        s
    }

    /// Wait until `port` accepts connections.
    pub fn wait_listening(&mut self, port: u16) -> Result<()> {
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port))
            .map_or(true, |c| c.local_addr().ok() == c.peer_addr().ok())
        {
            self.check_alive()?;
            if start.elapsed() > Duration::from_secs(60) {
                bail!("{} did not listen on port {port} within 60 s", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `cmd` with stdout and stderr in `dir/output.log`.
fn spawn(name: &str, mut cmd: Command, dir: tempfile::TempDir) -> Result<Running> {
    let log = std::fs::File::create(dir.path().join("output.log"))?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    Ok(Running {
        name: name.to_owned(),
        child,
        dir,
        companions: Vec::new(),
    })
}

/// graft with `config` (`{dir}` in it is replaced by its directory). The
/// compiled-WASM cache lives in that directory too.
pub fn graft(name: &str, binary: &Path, config: &str) -> Result<Running> {
    let dir = tempdir()?;
    let config = config.replace("{dir}", &dir.path().display().to_string());
    let path = dir.path().join("graft.toml");
    std::fs::write(&path, config)?;
    let mut cmd = Command::new(binary);
    cmd.args(["run", "--config"])
        .arg(&path)
        .env("GRAFT_CACHE_DIR", dir.path().join("cache"))
        .env(
            "GRAFT_LOG",
            std::env::var("GRAFT_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .current_dir(dir.path());
    spawn(name, cmd, dir)
}

/// collectd with the cpu, memory, df, disk, load, processes and swap
/// plugins every `interval_s`, writing CSV files into its directory.
pub fn collectd(interval_s: u64) -> Result<Running> {
    let bin = program("collectd-core")?;
    let dir = tempdir()?;
    let d = dir.path().display();
    let config = format!(
        r#"Interval {interval_s}
BaseDir "{d}"
PIDFile "{d}/collectd.pid"
PluginDir "/usr/lib/collectd"
TypesDB "/usr/share/collectd/types.db"
FQDNLookup false
Hostname "bench"
LoadPlugin logfile
<Plugin logfile>
  LogLevel "warning"
  File "{d}/collectd.log"
</Plugin>
LoadPlugin cpu
LoadPlugin memory
LoadPlugin df
LoadPlugin disk
LoadPlugin load
LoadPlugin processes
LoadPlugin swap
LoadPlugin csv
<Plugin csv>
  DataDir "{d}/csv"
  StoreRates false
</Plugin>
"#
    );
    let path = dir.path().join("collectd.conf");
    std::fs::write(&path, config)?;
    let mut cmd = Command::new(bin);
    cmd.arg("-C").arg(&path).arg("-f");
    spawn("collectd", cmd, dir)
}

/// prometheus-node-exporter on a free loopback port, with `args`.
pub fn node_exporter(name: &str, args: &[&str]) -> Result<(Running, u16)> {
    let bin = program("prometheus-node-exporter")?;
    let port = free_port()?;
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(args);
    let mut r = spawn(name, cmd, tempdir()?)?;
    r.wait_listening(port)?;
    Ok((r, port))
}

/// carbon-c-relay forwarding everything to `sink_port`.
pub fn carbon_c_relay(sink_port: u16) -> Result<(Running, u16)> {
    let bin = program("carbon-c-relay")?;
    let dir = tempdir()?;
    let port = free_port()?;
    let config = dir.path().join("relay.conf");
    std::fs::write(
        &config,
        format!("cluster sink forward 127.0.0.1:{sink_port};\nmatch * send to sink stop;\n"),
    )?;
    let mut cmd = Command::new(bin);
    // -s: submission mode (no statistics of its own); -q: a queue large
    // enough that a burst is never dropped.
    cmd.arg("-f")
        .arg(&config)
        .args(["-p", &port.to_string(), "-s", "-q", "2000000"]);
    let mut r = spawn("carbon-c-relay", cmd, dir)?;
    r.wait_listening(port)?;
    Ok((r, port))
}

/// carbon's own `carbon-relay` (Python, Twisted), forwarding everything in
/// plaintext to `sink_port`. Its queue is larger than any burst sent: with
/// flow control alone, the lines of a chunk already read when the queue
/// fills are dropped.
pub fn carbon_relay(sink_port: u16) -> Result<(Running, u16)> {
    let bin = program("graphite-carbon")?;
    let dir = tempdir()?;
    let d = dir.path().display();
    let (port, pickle) = (free_port()?, free_port()?);
    for sub in ["conf", "log", "storage"] {
        std::fs::create_dir_all(dir.path().join(sub))?;
    }
    std::fs::write(
        dir.path().join("conf/carbon.conf"),
        format!(
            "[cache]\nSTORAGE_DIR = {d}/storage\nLOCAL_DATA_DIR = {d}/storage\n\
             CONF_DIR = {d}/conf\nLOG_DIR = {d}/log\nPID_DIR = {d}\nUSER =\n\
             ENABLE_LOGROTATION = False\n\
             [relay]\nLINE_RECEIVER_INTERFACE = 127.0.0.1\nLINE_RECEIVER_PORT = {port}\n\
             PICKLE_RECEIVER_INTERFACE = 127.0.0.1\nPICKLE_RECEIVER_PORT = {pickle}\n\
             ENABLE_UDP_LISTENER = False\nLOG_LISTENER_CONNECTIONS = False\n\
             RELAY_METHOD = rules\nDESTINATIONS = 127.0.0.1:{sink_port}\n\
             DESTINATION_PROTOCOL = line\nMAX_QUEUE_SIZE = 5000000\n\
             USE_FLOW_CONTROL = True\nCARBON_METRIC_INTERVAL = 0\n"
        ),
    )?;
    // Required even by a relay, which stores nothing.
    std::fs::write(
        dir.path().join("conf/storage-schemas.conf"),
        "[default]\npattern = .*\nretentions = 1m:1d\n",
    )?;
    std::fs::write(
        dir.path().join("conf/relay-rules.conf"),
        format!("[default]\ndefault = true\ndestinations = 127.0.0.1:{sink_port}\n"),
    )?;
    let mut cmd = Command::new(bin);
    // Its `#!/usr/bin/python3` is the Python that has carbon installed.
    cmd.arg(format!("--config={d}/conf/carbon.conf"))
        .arg(format!("--logdir={d}/log"))
        .args(["--nodaemon", "start"])
        .current_dir(dir.path());
    let mut r = spawn("carbon-relay", cmd, dir)?;
    r.wait_listening(port)?;
    Ok((r, port))
}

/// nats-server with JetStream on a free port, its store in its directory.
pub fn nats_server() -> Result<(Running, u16)> {
    let bin = program("nats-server")?;
    let dir = tempdir()?;
    let port = free_port()?;
    let mut cmd = Command::new(bin);
    cmd.args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(dir.path().join("jetstream"));
    let mut r = spawn("nats-server", cmd, dir)?;
    r.wait_listening(port)?;
    Ok((r, port))
}
