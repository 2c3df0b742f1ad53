//! A real `nginx` (Debian's `nginx`) for tests: one process (`daemon off;
//! master_process off;`) run as root, listening on a free loopback port
//! and on a unix socket, with its config, pid file, logs, temp paths and
//! served files all in a temporary directory.
//!
//! Locations: `/nginx_status` (`stub_status`), `/static/` (files written
//! with [`Nginx::write_file`]), `/slow/` (the same files at 1 KiB/s),
//! `/status/<code>` (each of [`STATUSES`], with a short body), `/redirect` (302 to
//! `/static/hello.txt`), `/echo` (the request's method, `X-Graft` and
//! `Authorization` headers and content type back as text) and `/private/`
//! (basic authentication: `graft`/`secret`). Every response carries the
//! header `X-Graft-Server: nginx-test`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::servers::{free_port, http, program, terminate, wait_ready};

/// The codes `/status/<code>` answers with.
pub const STATUSES: &[u16] = &[200, 201, 404, 418, 500, 503];

/// The user and password `/private/` asks for.
pub const USER: (&str, &str) = ("graft", "secret");

/// A running nginx of its own.
pub struct Nginx {
    dir: tempfile::TempDir,
    /// The loopback port it listens on.
    pub port: u16,
    child: Option<Child>,
}

impl Nginx {
    /// Start one and wait until it answers `/nginx_status`.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let port = free_port();
        let d = dir.path();
        for sub in ["www/static", "www/private", "temp", "logs"] {
            std::fs::create_dir_all(d.join(sub)).expect("nginx directories");
        }
        std::fs::write(d.join("www/static/hello.txt"), "hello from nginx\n").expect("hello.txt");
        std::fs::write(d.join("www/private/data.txt"), "private data\n").expect("data.txt");
        std::fs::write(
            d.join("htpasswd"),
            format!("{}:{{PLAIN}}{}\n", USER.0, USER.1),
        )
        .expect("htpasswd");
        let p = d.display();
        let temp = |what: &str| format!("{what}_temp_path {p}/temp/{what};");
        let temps: Vec<String> = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
            .iter()
            .map(|w| temp(w))
            .collect();
        let config = format!(
            r#"daemon off;
master_process off;
user root;
pid {p}/nginx.pid;
error_log {p}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {p}/logs/access.log;
    {temps}
    default_type text/plain;
    server {{
        listen 127.0.0.1:{port};
        listen unix:{p}/nginx.sock;
        server_name localhost;
        add_header X-Graft-Server nginx-test always;
        location = /nginx_status {{ stub_status; }}
        location /static/ {{ root {p}/www; }}
        location /slow/ {{ alias {p}/www/static/; limit_rate 1k; limit_rate_after 0; }}
        location /private/ {{
            root {p}/www;
            auth_basic "graft";
            auth_basic_user_file {p}/htpasswd;
        }}
        {statuses}
        location = /redirect {{ return 302 /static/hello.txt; }}
        location = /echo {{
            return 200 "$request_method|$http_x_graft|$http_authorization|$content_type\n";
        }}
    }}
}}
"#,
            temps = temps.join("\n    "),
            statuses = STATUSES
                .iter()
                .map(|c| format!("location = /status/{c} {{ return {c} \"status {c}\\n\"; }}"))
                .collect::<Vec<_>>()
                .join("\n        ")
        );
        std::fs::write(d.join("nginx.conf"), config).expect("nginx.conf");
        let stderr = std::fs::File::create(d.join("logs/stderr.log")).expect("stderr.log");
        let child = Command::new(program("nginx", "nginx"))
            .arg("-p")
            .arg(d)
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .arg("-e")
            .arg(d.join("logs/error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("starting nginx");
        let mut n = Nginx {
            dir,
            port,
            child: Some(child),
        };
        let client = http();
        let status = n.url("/nginx_status");
        let log_dir = n.dir.path().join("logs");
        wait_ready(
            &mut n.child,
            "nginx (/nginx_status)",
            Duration::from_secs(20),
            || client.get(&status).send().is_ok_and(|r| r.status() == 200),
            || {
                ["stderr.log", "error.log"]
                    .iter()
                    .map(|f| std::fs::read_to_string(log_dir.join(f)).unwrap_or_default())
                    .collect()
            },
        );
        n
    }

    /// One nginx shared by every test of a test binary, started at first use.
    pub fn shared() -> &'static Nginx {
        static SHARED: OnceLock<Nginx> = OnceLock::new();
        SHARED.get_or_init(Nginx::start)
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The unix socket it also listens on.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("nginx.sock")
    }

    /// Write `body` as `/static/<name>` (and `/slow/<name>`); returns its URL.
    pub fn write_file(&self, name: &str, body: &[u8]) -> String {
        self.publish("static", name, body)
    }

    /// Write `body` as `/private/<name>` (behind [`USER`]); returns its URL.
    pub fn write_private(&self, name: &str, body: &[u8]) -> String {
        self.publish("private", name, body)
    }

    fn publish(&self, dir: &str, name: &str, body: &[u8]) -> String {
        assert!(!name.contains('/') && !name.starts_with('.'), "{name}");
        let path = self.dir.path().join("www").join(dir).join(name);
        let tmp = path.with_extension("partial");
        std::fs::write(&tmp, body).expect("writing a served file");
        std::fs::rename(&tmp, &path).expect("publishing a served file");
        self.url(&format!("/{dir}/{name}"))
    }

    /// The stub_status page as nginx answers it now.
    pub fn stub_status(&self) -> StubStatus {
        let text = http()
            .get(self.url("/nginx_status"))
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.text())
            .expect("fetching /nginx_status");
        StubStatus::parse(&text).unwrap_or_else(|| panic!("not a stub_status page: {text:?}"))
    }

    /// The directory holding its files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Its error log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("logs/error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// The numbers of a stub_status page, read by the test itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StubStatus {
    pub active: u64,
    pub accepts: u64,
    pub handled: u64,
    pub requests: u64,
    pub reading: u64,
    pub writing: u64,
    pub waiting: u64,
}

impl StubStatus {
    /// Read the page: every number in it, in order.
    pub fn parse(text: &str) -> Option<Self> {
        let n: Vec<u64> = text
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().ok())
            .collect::<Option<_>>()?;
        match n[..] {
            [
                active,
                accepts,
                handled,
                requests,
                reading,
                writing,
                waiting,
            ] => Some(Self {
                active,
                accepts,
                handled,
                requests,
                reading,
                writing,
                waiting,
            }),
            _ => None,
        }
    }
}
