//! A real MariaDB (Debian's `mariadb-server`) for tests: one server per
//! test binary (shared through a `OnceLock`), installed with
//! `mariadb-install-db` into a temporary directory, `mariadbd` on a free
//! loopback port and a socket in that directory, run as root with
//! `--user=root`, with a `graft` user holding the grants Telegraf's README
//! asks for (and MariaDB's `SLAVE MONITOR`, which `SHOW SLAVE STATUS` needs
//! since 10.5). A watchdog stops the server when the test binary exits
//! (statics are never dropped). Binary logs, user statistics and the
//! performance schema are on, so every `gather_*` of `inputs.mysql` has data. Measured here: about 3 s from nothing to
//! ready (2.2 s install, 0.9 s start).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::servers::{free_port, program, wait_ready};

/// The `graft` user's password.
pub const PASSWORD: &str = "graft-pw";

/// The shared server.
pub struct MariaDb {
    dir: PathBuf,
    pub port: u16,
    /// Held only to keep the process handles; the watchdog stops the
    /// server after this process exits.
    _children: Mutex<[Child; 2]>,
}

impl MariaDb {
    /// The server of this test binary, started on first use.
    pub fn shared() -> &'static MariaDb {
        static SERVER: OnceLock<MariaDb> = OnceLock::new();
        SERVER.get_or_init(MariaDb::start)
    }

    fn start() -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("graft-mariadb-")
            .tempdir()
            .expect("temporary directory");
        // Kept until the watchdog removes it after the server stops.
        let dir = tmp.keep();
        let data = dir.join("data");
        let install = Command::new(program("mariadb-install-db", "mariadb-server"))
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args([
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .output()
            .expect("running mariadb-install-db");
        assert!(
            install.status.success(),
            "mariadb-install-db failed: {}{}",
            String::from_utf8_lossy(&install.stdout),
            String::from_utf8_lossy(&install.stderr)
        );
        let port = free_port();
        let mut child = Some(
            Command::new(program("mariadbd", "mariadb-server"))
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--socket={}", dir.join("sock").display()))
                .arg(format!("--pid-file={}", dir.join("pid").display()))
                .arg(format!("--log-error={}", dir.join("error.log").display()))
                .arg(format!("--port={port}"))
                .arg(format!("--log-bin={}", dir.join("binlog").display()))
                .args([
                    "--bind-address=127.0.0.1",
                    "--user=root",
                    "--server-id=1",
                    "--performance-schema=ON",
                    "--userstat=1",
                    "--innodb-buffer-pool-size=16M",
                    "--max-connections=300",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting mariadbd"),
        );
        let server = child.as_ref().map(Child::id).expect("spawned");
        // Stop the server (and remove its files) once this process is gone.
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "while kill -0 {me} 2>/dev/null; do sleep 0.5; done; kill -TERM {server}; \
                 i=0; while kill -0 {server} 2>/dev/null && [ $i -lt 40 ]; do sleep 0.5; i=$((i+1)); done; \
                 kill -KILL {server} 2>/dev/null; rm -rf '{dir}'",
                me = std::process::id(),
                dir = dir.display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the watchdog");
        let log = dir.join("error.log");
        let socket = dir.join("sock");
        wait_ready(
            &mut child,
            "mariadbd",
            Duration::from_secs(60),
            || client(&socket, "root", None, "SELECT 1").is_ok(),
            || std::fs::read_to_string(&log).unwrap_or_default(),
        );
        let s = MariaDb {
            dir,
            port,
            _children: Mutex::new([child.expect("running"), watchdog]),
        };
        s.root(&format!(
            "CREATE USER 'graft'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'; \
             CREATE USER 'graft'@'localhost' IDENTIFIED BY '{PASSWORD}'; \
             GRANT PROCESS, REPLICATION CLIENT, SLAVE MONITOR, SELECT ON *.* TO 'graft'@'127.0.0.1'; \
             GRANT PROCESS, REPLICATION CLIENT, SLAVE MONITOR, SELECT ON *.* TO 'graft'@'localhost'"
        ));
        s
    }

    /// The socket path.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("sock")
    }

    /// Telegraf's DSN for the `graft` user over TCP.
    pub fn dsn(&self) -> String {
        format!("graft:{PASSWORD}@tcp(127.0.0.1:{})/?tls=false", self.port)
    }

    /// Run SQL as root over the socket; panics with the error on failure.
    /// Returns the output rows, tab-separated, without headers.
    pub fn root(&self, sql: &str) -> String {
        client(&self.socket(), "root", None, sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// `SHOW GLOBAL STATUS` as name -> value.
    pub fn global_status(&self) -> std::collections::BTreeMap<String, String> {
        self.root("SHOW GLOBAL STATUS")
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }
}

/// The `mariadb` command-line client over `socket`.
fn client(socket: &Path, user: &str, password: Option<&str>, sql: &str) -> Result<String, String> {
    let mut c = Command::new(program("mariadb", "mariadb-client"));
    c.arg("--no-defaults")
        .arg(format!("--socket={}", socket.display()))
        .arg(format!("--user={user}"))
        .args(["--batch", "--skip-column-names", "-e", sql]);
    if let Some(p) = password {
        c.arg(format!("--password={p}"));
    }
    let out = c.output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
