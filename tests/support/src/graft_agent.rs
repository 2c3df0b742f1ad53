//! A `graft` agent run from a config text in a temporary directory of its
//! own, with its log kept; the metrics an `outputs.file` wrote there, read
//! back with graft's line protocol parser; and a plugin's latest
//! `internal_gather` sample.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use graft_core::lineparse::{Precision, parse_into};
use graft_core::{BatchBuilder, FieldRef};

/// One metric as read back: name, tags, fields (as text), time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Point {
    pub name: String,
    pub tags: BTreeMap<String, String>,
    pub fields: BTreeMap<String, String>,
    pub time: i64,
}

impl Point {
    /// A field as an integer (`12i`, `12u`, `12`, `12.0` read as 12).
    pub fn int(&self, key: &str) -> Option<i64> {
        self.fields.get(key).and_then(|v| {
            v.parse::<i64>()
                .ok()
                .or_else(|| v.parse::<f64>().ok().map(|f| f as i64))
        })
    }
}

/// Every metric of `text` (line protocol), in order; lines that do not
/// parse are left out.
pub fn points(text: &[u8]) -> Vec<Point> {
    let mut b = BatchBuilder::new();
    let _ = parse_into(
        &String::from_utf8_lossy(text),
        Precision::Nanoseconds,
        0,
        &mut b,
    );
    b.finish()
        .iter()
        .map(|m| Point {
            name: m.name().to_owned(),
            tags: m
                .tags()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            fields: m
                .fields()
                .map(|(k, v)| (k.to_owned(), text_of(v)))
                .collect(),
            time: m.timestamp(),
        })
        .collect()
}

/// A field value as text, without its type.
pub fn text_of(v: FieldRef<'_>) -> String {
    match v {
        FieldRef::Float(x) => x.to_string(),
        FieldRef::Int(x) => x.to_string(),
        FieldRef::Uint(x) => x.to_string(),
        FieldRef::Bool(x) => x.to_string(),
        FieldRef::Str(s) => s.to_owned(),
    }
}

/// A running agent.
pub struct Agent {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Agent {
    /// Write `config` (where `{dir}` stands for the agent's directory) and
    /// start `graft run` on it, logging at `info` (or `$GRAFT_TEST_LOG`).
    pub fn start(config: &str) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let config = config.replace("{dir}", &dir.path().display().to_string());
        let path = dir.path().join("graft.toml");
        std::fs::write(&path, config).expect("graft.toml");
        let child = crate::graft()
            .args(["run", "--config"])
            .arg(&path)
            .env(
                "GRAFT_LOG",
                std::env::var("GRAFT_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("graft.log")).expect("graft.log"))
            .spawn()
            .expect("starting graft");
        Self {
            dir,
            child: Some(child),
        }
    }

    /// The agent's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A file in the agent's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Everything the agent logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("graft.log")).unwrap_or_default()
    }

    /// Wait until the agent's log holds `needle`; panics with the log
    /// after `limit`.
    pub fn wait_log(&self, needle: &str, limit: Duration) {
        let start = std::time::Instant::now();
        while !self.log().contains(needle) {
            assert!(
                start.elapsed() < limit,
                "graft never logged {needle:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The metrics in the agent's file `name` so far.
    pub fn points(&self, name: &str) -> Vec<Point> {
        points(&std::fs::read(self.path(name)).unwrap_or_default())
    }

    /// CPU time (user and system) the agent has used so far, in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        let Some(pid) = self.child.as_ref().map(Child::id) else {
            return 0.0;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the command (which may hold spaces) in parentheses:
        // utime and stime are the 14th and 15th of the line.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<f64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0.0))
            .collect();
        let ticks = std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or(100.0);
        f.get(11)
            .zip(f.get(12))
            .map_or(0.0, |(u, s)| (u + s) / ticks)
    }

    /// Whether the agent is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// SIGTERM, and wait at most `limit` for the agent to exit.
    pub fn stop(&mut self, limit: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("the agent runs");
        crate::sigterm(&child);
        crate::wait_with_timeout(&mut child, limit)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The latest `internal_gather` sample of input `input` in the file
/// `file`, if any.
pub fn internal_gather(file: &Path, input: &str) -> Option<Point> {
    points(&std::fs::read(file).unwrap_or_default())
        .into_iter()
        .rfind(|p| {
            p.name == "internal_gather" && p.tags.get("input").map(String::as_str) == Some(input)
        })
}
