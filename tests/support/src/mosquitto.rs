//! A mosquitto broker (Debian's `mosquitto`) of its own for tests: a free
//! loopback port and a temporary directory with persistence on, so that a
//! broker stopped and started again on the same port keeps the sessions
//! and queued QoS 1 messages of persistent clients; and helpers around
//! `mosquitto_pub` and `mosquitto_sub` (Debian's `mosquitto-clients`).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::servers::{free_port, listening, program, terminate, wait_ready};

/// A running (or stopped) mosquitto.
pub struct Mosquitto {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
    /// The certificates of [`Mosquitto::start_tls`], the password file of
    /// [`Mosquitto::start_with_password`].
    certs: Option<tempfile::TempDir>,
}

impl Mosquitto {
    /// Start a fresh broker and wait until it listens. Besides
    /// persistence, it hands a client up to 1000 unacknowledged QoS 1/2
    /// messages at once (mosquitto's default is 20) and queues without
    /// limit for offline persistent sessions.
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// Like [`Mosquitto::start`], with `extra` lines of configuration.
    pub fn start_with(extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let port = free_port();
        let d = dir.path().display();
        // Run as root, mosquitto would switch to the `mosquitto` user, who
        // cannot write our directory: stay who we are.
        let user = Command::new("id")
            .arg("-un")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "root".into());
        let anonymous = if extra.contains("allow_anonymous") {
            ""
        } else {
            "allow_anonymous true\n"
        };
        let config = format!(
            "user {user}\nlistener {port} 127.0.0.1\npersistence true\n\
             persistence_location {d}/\nautosave_interval 1\nmax_inflight_messages 1000\n\
             max_queued_messages 0\nmax_queued_bytes 0\nlog_dest file {d}/mosquitto.log\n\
             log_type error\nlog_type warning\nlog_type notice\nlog_type information\n{anonymous}{extra}\n"
        );
        std::fs::write(dir.path().join("mosquitto.conf"), config).expect("mosquitto.conf");
        let mut m = Self {
            dir,
            port,
            child: None,
            certs: None,
        };
        m.resume();
        m
    }

    /// A broker that also listens with TLS: returns it, the TLS port and
    /// the CA (PEM) that signed its certificate (for `127.0.0.1` and
    /// `localhost`), all made with `openssl` in its directory.
    pub fn start_tls() -> (Self, u16, PathBuf) {
        let certs = tempfile::tempdir().expect("temporary directory");
        let d = certs.path().to_path_buf();
        make_certificates(&d);
        let port = free_port();
        let extra = format!(
            "listener {port} 127.0.0.1\ncafile {0}/ca.pem\ncertfile {0}/server.pem\nkeyfile {0}/server.key\n",
            d.display()
        );
        let mut broker = Self::start_with(&extra);
        broker.certs = Some(certs);
        (broker, port, d.join("ca.pem"))
    }

    /// A broker that admits only `user` with `password` (a
    /// `mosquitto_passwd` file in its directory).
    pub fn start_with_password(user: &str, password: &str) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let file = dir.path().join("passwd");
        let out = Command::new(program("mosquitto_passwd", "mosquitto"))
            .args(["-c", "-b"])
            .arg(&file)
            .args([user, password])
            .output()
            .expect("running mosquitto_passwd");
        assert!(
            out.status.success(),
            "mosquitto_passwd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut broker = Self::start_with(&format!(
            "allow_anonymous false\npassword_file {}\n",
            file.display()
        ));
        broker.certs = Some(dir);
        broker
    }

    /// `tcp://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    /// Start the broker again on the same port and directory.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "mosquitto is already running");
        let child = Command::new(program("mosquitto", "mosquitto"))
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting mosquitto");
        self.child = Some(child);
        let (port, log) = (self.port, self.dir.path().join("mosquitto.log"));
        wait_ready(
            &mut self.child,
            "mosquitto",
            Duration::from_secs(20),
            || listening(port),
            || std::fs::read_to_string(&log).unwrap_or_default(),
        );
    }

    /// Stop the broker (SIGTERM: it saves its sessions and messages).
    pub fn stop(&mut self) {
        terminate(&mut self.child);
    }

    /// Stop and start again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.resume();
    }

    /// The broker's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    /// The temporary directory of the broker.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Publish one message with `mosquitto_pub` (the payload on stdin);
    /// panics when it fails.
    pub fn publish(&self, topic: &str, qos: u8, payload: &[u8]) {
        let mut child = Command::new(program("mosquitto_pub", "mosquitto-clients"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-t", topic, "-q", &qos.to_string(), "-s"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running mosquitto_pub");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(payload)
            .expect("writing the payload");
        let out = child.wait_with_output().expect("mosquitto_pub");
        assert!(
            out.status.success(),
            "mosquitto_pub: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Publish each of `lines` as a message of its own, with one
    /// `mosquitto_pub -l`.
    pub fn publish_lines(&self, topic: &str, qos: u8, lines: &str) {
        let mut child = Command::new(program("mosquitto_pub", "mosquitto-clients"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-t", topic, "-q", &qos.to_string(), "-l"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running mosquitto_pub");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(lines.as_bytes())
            .expect("writing the lines");
        let out = child.wait_with_output().expect("mosquitto_pub");
        assert!(
            out.status.success(),
            "mosquitto_pub -l: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Freeze the broker (SIGSTOP): connections stay open, nothing is
    /// answered.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Let a frozen broker go on (SIGCONT).
    pub fn unpause(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, which: &str) {
        let child = self.child.as_ref().expect("mosquitto runs");
        let ok = Command::new("kill")
            .args([which, &child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {which} mosquitto");
    }

    /// A `mosquitto_sub` on `filter` (QoS 1), returned once the broker
    /// acknowledged the subscription.
    pub fn subscribe(&self, filter: &str) -> Subscriber {
        // stdbuf: mosquitto_sub buffers its stdout when it is a pipe.
        let mut child = Command::new("stdbuf")
            .arg("-oL")
            .arg(program("mosquitto_sub", "mosquitto-clients"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-t", filter, "-q", "1", "-d", "-F", "%t %x"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("running mosquitto_sub");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || read_lines(stdout, tx));
        let sub = Subscriber {
            child,
            lines: rx,
            messages: Vec::new(),
        };
        let start = Instant::now();
        loop {
            match sub.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(l) if l.contains("SUBACK") => return sub,
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => panic!("mosquitto_sub ended"),
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "mosquitto_sub did not subscribe within 10 s"
            );
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A CA, and a server certificate it signed for `127.0.0.1` and
/// `localhost`, in `dir`: `ca.pem`, `server.pem`, `server.key`.
fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
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
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    openssl(
        &[
            &[
                "req",
                "-x509",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=graft test CA",
            ][..],
            &ec,
            &["-keyout", "ca.key", "-out", "ca.pem"],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req", "-nodes", "-subj", "/CN=localhost"][..],
            &ec,
            &["-keyout", "server.key", "-out", "server.csr"],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("san.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .expect("san.cnf");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.cnf",
        "-out",
        "server.pem",
    ]);
}

fn read_lines(stdout: ChildStdout, tx: mpsc::Sender<String>) {
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { return };
        if tx.send(line).is_err() {
            return;
        }
    }
}

/// A running `mosquitto_sub` and the messages it printed.
pub struct Subscriber {
    child: Child,
    lines: mpsc::Receiver<String>,
    messages: Vec<(String, Vec<u8>)>,
}

impl Subscriber {
    /// Wait until at least `count` messages arrived, at most `limit`;
    /// returns every (topic, payload) received so far.
    pub fn wait(&mut self, count: usize, limit: Duration) -> &[(String, Vec<u8>)] {
        let start = Instant::now();
        while self.messages.len() < count {
            let Some(left) = limit.checked_sub(start.elapsed()) else {
                break;
            };
            match self
                .lines
                .recv_timeout(left.min(Duration::from_millis(200)))
            {
                Ok(l) => {
                    if let Some(m) = parse_message(&l) {
                        self.messages.push(m);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        &self.messages
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `-F "%t %x"` line: topic, space, the payload in hex. Debug lines
/// (`Client ... received PUBLISH`) are not messages.
fn parse_message(line: &str) -> Option<(String, Vec<u8>)> {
    if line.starts_with("Client ") || line.starts_with("Subscribed") {
        return None;
    }
    let (topic, hex) = line.rsplit_once(' ')?;
    if hex.len() % 2 != 0 {
        return None;
    }
    let payload = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .ok()?;
    Some((topic.to_owned(), payload))
}
