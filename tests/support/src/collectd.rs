//! A real collectd (Debian `collectd-core`) in a temporary directory, fed
//! through its `unixsock` plugin (`PUTVAL`, then `FLUSH` of the `network`
//! plugin) and sending with its `network` plugin to a server on loopback,
//! at a chosen security level.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::servers::{program, terminate, wait_ready};

/// What the `network` plugin's `<Server>` block asks for.
#[derive(Debug, Clone)]
pub enum Security {
    None,
    Sign { user: String, password: String },
    Encrypt { user: String, password: String },
}

/// A running collectd.
pub struct Collectd {
    dir: tempfile::TempDir,
    child: Option<Child>,
    socket: BufReader<UnixStream>,
}

impl Collectd {
    /// Start collectd (host name `graft-test`, interval 1 s) sending to
    /// `127.0.0.1:port` with `security`.
    pub fn start(port: u16, security: &Security) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let d = dir.path().display().to_string();
        let server = match security {
            Security::None => String::new(),
            Security::Sign { user, password } => {
                format!("SecurityLevel Sign\nUsername {user:?}\nPassword {password:?}\n")
            }
            Security::Encrypt { user, password } => {
                format!("SecurityLevel Encrypt\nUsername {user:?}\nPassword {password:?}\n")
            }
        };
        let conf = format!(
            "Hostname \"graft-test\"\nFQDNLookup false\nBaseDir \"{d}\"\n\
             PIDFile \"{d}/collectd.pid\"\nPluginDir \"/usr/lib/collectd\"\n\
             TypesDB \"/usr/share/collectd/types.db\"\nInterval 1\n\
             LoadPlugin logfile\n<Plugin logfile>\n LogLevel info\n File \"{d}/collectd.log\"\n</Plugin>\n\
             LoadPlugin unixsock\n<Plugin unixsock>\n SocketFile \"{d}/sock\"\n SocketGroup \"root\"\n</Plugin>\n\
             LoadPlugin network\n<Plugin network>\n <Server \"127.0.0.1\" \"{port}\">\n{server} </Server>\n</Plugin>\n"
        );
        std::fs::write(dir.path().join("collectd.conf"), conf).expect("collectd.conf");
        let mut child = Some(
            Command::new(program("collectd", "collectd-core"))
                .arg("-f")
                .arg("-C")
                .arg(dir.path().join("collectd.conf"))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.path().join("stderr.log")).expect("log"))
                .spawn()
                .expect("starting collectd"),
        );
        let sock = dir.path().join("sock");
        let log_dir = dir.path().to_owned();
        wait_ready(
            &mut child,
            "collectd",
            Duration::from_secs(20),
            || UnixStream::connect(&sock).is_ok(),
            || read_logs(&log_dir),
        );
        let stream = UnixStream::connect(&sock).expect("collectd's unix socket");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        Self {
            dir,
            child,
            socket: BufReader::new(stream),
        }
    }

    /// Send one unixsock command; its answer line.
    pub fn command(&mut self, line: &str) -> String {
        let s = self.socket.get_mut();
        s.write_all(line.as_bytes()).expect("write to collectd");
        s.write_all(b"\n").expect("write to collectd");
        let mut answer = String::new();
        self.socket
            .read_line(&mut answer)
            .expect("collectd answers");
        answer
    }

    /// `PUTVAL "graft-test/<plugin>/<type>" interval=1 <time>:<values>`;
    /// panics unless collectd took it.
    pub fn putval(&mut self, identifier: &str, time: u64, values: &str) {
        let a = self.command(&format!(
            "PUTVAL \"graft-test/{identifier}\" interval=1 {time}:{values}"
        ));
        assert!(a.starts_with("0 "), "PUTVAL {identifier}: {a}");
    }

    /// Have the network plugin send what it holds now.
    pub fn flush(&mut self) {
        let a = self.command("FLUSH plugin=network");
        assert!(a.starts_with("0 "), "FLUSH: {a}");
    }

    /// collectd's log.
    pub fn log(&self) -> String {
        read_logs(self.dir.path())
    }

    /// The temporary directory.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}

fn read_logs(dir: &std::path::Path) -> String {
    ["collectd.log", "stderr.log"]
        .iter()
        .map(|f| std::fs::read_to_string(dir.join(f)).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

impl Drop for Collectd {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}
