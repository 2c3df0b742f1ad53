//! A real `redis-server` (Debian's `redis-server`) of its own for tests: a
//! free loopback port, a temporary directory, no persistence (`--save ''`,
//! `--appendonly no`), an optional `requirepass`; and a tiny blocking RESP
//! client so tests run commands without `redis-cli`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::servers::{free_port, program, terminate, wait_ready};

/// A running `redis-server`, stopped when dropped.
pub struct RedisServer {
    dir: tempfile::TempDir,
    pub port: u16,
    password: Option<String>,
    child: Option<Child>,
}

/// A reply as a test reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<String>),
    Array(Vec<Value>),
}

impl RedisServer {
    /// Start one without a password.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// Start one, with `requirepass` when `password` is given, and wait
    /// until it answers `PING`.
    pub fn start_with(password: Option<&str>) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let port = free_port();
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            &dir.path().display().to_string(),
            "--logfile",
            &dir.path().join("redis.log").display().to_string(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        if let Some(p) = password {
            args.extend(["--requirepass".to_owned(), p.to_owned()]);
        }
        let child = Command::new(program("redis-server", "redis-server"))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting redis-server");
        let mut s = RedisServer {
            dir,
            port,
            password: password.map(str::to_owned),
            child: Some(child),
        };
        let log = s.dir.path().join("redis.log");
        let mut child = s.child.take();
        wait_ready(
            &mut child,
            "redis-server",
            Duration::from_secs(20),
            || {
                s.try_command(&["PING"])
                    .is_ok_and(|v| v == Value::Status("PONG".into()))
            },
            || std::fs::read_to_string(&log).unwrap_or_default(),
        );
        s.child = child;
        s
    }

    /// `tcp://127.0.0.1:<port>` (with `:password@` when it has one).
    pub fn url(&self) -> String {
        match &self.password {
            Some(p) => format!("tcp://:{p}@127.0.0.1:{}", self.port),
            None => format!("tcp://127.0.0.1:{}", self.port),
        }
    }

    /// Run one command on a new connection (authenticated when the server
    /// has a password); panics on an I/O error, returns error replies.
    pub fn command(&self, args: &[&str]) -> Value {
        self.try_command(args).expect("talking to redis-server")
    }

    /// `INFO <section>` as `name -> value` pairs.
    pub fn info(&self, section: &str) -> std::collections::BTreeMap<String, String> {
        let Value::Bulk(Some(text)) = self.command(&["INFO", section]) else {
            panic!("INFO gave no text");
        };
        text.lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
            .collect()
    }

    fn try_command(&self, args: &[&str]) -> std::io::Result<Value> {
        let stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut w = stream.try_clone()?;
        let mut r = BufReader::new(stream);
        if let Some(p) = &self.password {
            send(&mut w, &["AUTH", p])?;
            read(&mut r)?;
        }
        send(&mut w, args)?;
        read(&mut r)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// Send a command as an array of bulk strings.
pub fn send(w: &mut impl Write, args: &[&str]) -> std::io::Result<()> {
    let mut frame = format!("*{}\r\n", args.len());
    for a in args {
        frame.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    w.write_all(frame.as_bytes())
}

/// Read one reply.
pub fn read(r: &mut impl BufRead) -> std::io::Result<Value> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let line = line.trim_end_matches("\r\n");
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, line.to_owned());
    let (kind, rest) = line.split_at_checked(1).ok_or_else(bad)?;
    Ok(match kind {
        "+" => Value::Status(rest.to_owned()),
        "-" => Value::Error(rest.to_owned()),
        ":" => Value::Int(rest.parse().map_err(|_| bad())?),
        "$" => {
            let n: i64 = rest.parse().map_err(|_| bad())?;
            if n < 0 {
                Value::Bulk(None)
            } else {
                let mut buf = vec![0; n as usize + 2];
                r.read_exact(&mut buf)?;
                buf.truncate(n as usize);
                Value::Bulk(Some(String::from_utf8_lossy(&buf).into_owned()))
            }
        }
        "*" => {
            let n: i64 = rest.parse().map_err(|_| bad())?;
            let mut items = Vec::new();
            for _ in 0..n.max(0) {
                items.push(read(r)?);
            }
            Value::Array(items)
        }
        _ => return Err(bad()),
    })
}
