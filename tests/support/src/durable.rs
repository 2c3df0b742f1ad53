//! Helpers for the durable-buffer tests: killing an agent without warning,
//! reading an output's latest `internal_write` sample, listing the
//! segments of a disk buffer, and a Graphite plaintext sink that checks
//! that numbered metrics arrive complete, once and in order.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `kill -9` a child and reap it.
pub fn kill9(child: &mut Child) {
    let status = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -9 {}", child.id());
    let _ = child.wait();
}

/// A blocking HTTP client for posting to graft with a `timeout` of its
/// own (an acknowledged write may wait for the disk).
pub fn http_client(timeout: Duration) -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder()
        .timeout(timeout)
        .no_proxy()
        .build()
        .expect("HTTP client")
}

/// A memory figure of process `pid` from `/proc/PID/status` in KiB
/// (`"VmHWM"`: the peak resident memory, `"VmRSS"`: now), 0 once it is
/// gone.
pub fn status_kb(pid: u32, key: &str) -> u64 {
    let key = format!("{key}:");
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key.as_str()))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// One `internal_write` sample: its tags, its numeric fields and its
/// string fields (unquoted).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteSample {
    pub tags: BTreeMap<String, String>,
    pub fields: BTreeMap<String, f64>,
    pub strings: BTreeMap<String, String>,
}

impl WriteSample {
    /// A string field (`buffer_strategy`), if present.
    pub fn string(&self, key: &str) -> Option<&str> {
        self.strings.get(key).map(String::as_str)
    }

    /// A field as an integer; panics naming the field when it is missing.
    pub fn int(&self, key: &str) -> i64 {
        self.fields
            .get(key)
            .map(|v| *v as i64)
            .unwrap_or_else(|| panic!("internal_write has no field {key}: {self:?}"))
    }
}

/// Parse one line of line protocol written by `outputs.file` for a
/// measurement without escaped characters or spaces in string fields:
/// (name, sample).
fn parse_simple_line(line: &str) -> Option<(&str, WriteSample)> {
    let (head, rest) = line.split_once(' ')?;
    let fields = rest.split(' ').next()?;
    let mut parts = head.split(',');
    let name = parts.next()?;
    let mut sample = WriteSample::default();
    for kv in parts {
        let (k, v) = kv.split_once('=')?;
        sample.tags.insert(k.to_owned(), v.to_owned());
    }
    for kv in fields.split(',') {
        let (k, v) = kv.split_once('=')?;
        if let Some(text) = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            sample.strings.insert(k.to_owned(), text.to_owned());
        } else if let Ok(x) = v.trim_end_matches(['i', 'u']).parse::<f64>() {
            sample.fields.insert(k.to_owned(), x);
        }
    }
    Some((name, sample))
}

/// Every `internal_write` sample of the output named `output` (the
/// `output` tag) in an `outputs.file` written in line protocol, oldest
/// first.
pub fn internal_writes(out: &Path, output: &str) -> Vec<WriteSample> {
    internal_writes_tagged(out, "output", output)
}

/// The latest `internal_write` sample of the output aliased `alias`, if
/// any.
pub fn internal_write_aliased(out: &Path, alias: &str) -> Option<WriteSample> {
    internal_writes_tagged(out, "alias", alias).pop()
}

/// Every `internal_write` sample whose tag `key` is `value`, oldest first.
fn internal_writes_tagged(out: &Path, key: &str, value: &str) -> Vec<WriteSample> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .filter_map(parse_simple_line)
        .filter(|(name, s)| {
            *name == "internal_write" && s.tags.get(key).map(String::as_str) == Some(value)
        })
        .map(|(_, s)| s)
        .collect()
}

/// The latest `internal_write` sample of `output`, if any.
pub fn internal_write(out: &Path, output: &str) -> Option<WriteSample> {
    internal_writes(out, output).pop()
}

/// Every `*.seg` file under `dir` (any depth), sorted by path.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "seg") {
                found.push(p);
            }
        }
    }
    found.sort();
    found
}

/// The total size of the files under `dir` (any depth), in bytes.
pub fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => todo.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// What a [`SeqSink`] saw on one path: the values are sequence numbers
/// that should arrive as 0, 1, 2, ... each once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathSeq {
    /// The next number expected (numbers below it arrived in order).
    pub next: u64,
    /// Lines received on this path.
    pub lines: u64,
    /// Numbers that arrived again or after a later one.
    pub backwards: u64,
    /// Numbers skipped (a later one arrived first).
    pub skipped: u64,
}

#[derive(Default)]
struct SinkState {
    paths: BTreeMap<String, PathSeq>,
    /// Lines that were not `path integer timestamp`.
    malformed: u64,
    connections: u64,
}

/// A Graphite plaintext receiver on 127.0.0.1 whose metrics carry a
/// sequence number as their value (one sequence per path): it checks that
/// every number arrives, once, in order. A real carbon cannot say that
/// (it keeps one value per second and path), hence a sink of our own.
pub struct SeqSink {
    pub port: u16,
    state: Arc<Mutex<SinkState>>,
}

impl SeqSink {
    /// Listen on `port` (chosen earlier, for example with
    /// [`crate::servers::free_port`], while nothing listened there).
    pub fn start_on(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("binding the sink on 127.0.0.1:{port}: {e}"));
        let state = Arc::new(Mutex::new(SinkState::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let s = shared.clone();
                s.lock().expect("sink lock").connections += 1;
                std::thread::spawn(move || receive(conn, &s));
            }
        });
        Self { port, state }
    }

    /// Every path seen so far.
    pub fn paths(&self) -> BTreeMap<String, PathSeq> {
        self.state.lock().expect("sink lock").paths.clone()
    }

    /// Lines received so far, on every path.
    pub fn lines(&self) -> u64 {
        let s = self.state.lock().expect("sink lock");
        s.paths.values().map(|p| p.lines).sum()
    }

    /// Lines that were not `path integer timestamp`.
    pub fn malformed(&self) -> u64 {
        self.state.lock().expect("sink lock").malformed
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.state.lock().expect("sink lock").connections
    }
}

/// `path value timestamp` with an integral value.
fn parse_seq_line(line: &str) -> Option<(&str, u64)> {
    let mut w = line.split_ascii_whitespace();
    let (path, value, _ts) = (w.next()?, w.next()?, w.next()?);
    let v: f64 = value.parse().ok()?;
    (v >= 0.0 && v.fract() == 0.0 && w.next().is_none()).then_some((path, v as u64))
}

fn receive(conn: TcpStream, state: &Mutex<SinkState>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(600)));
    let mut reader = BufReader::with_capacity(1 << 20, conn);
    let mut chunk: Vec<String> = Vec::with_capacity(4096);
    let mut line = String::new();
    loop {
        line.clear();
        let done = !matches!(reader.read_line(&mut line), Ok(n) if n > 0);
        if !done {
            chunk.push(std::mem::take(&mut line));
        }
        // Checked in chunks so that the lock is not taken per line.
        if done || chunk.len() >= 4096 || reader.buffer().is_empty() {
            let mut s = state.lock().expect("sink lock");
            for l in chunk.drain(..) {
                match parse_seq_line(&l) {
                    Some((path, v)) => {
                        if !s.paths.contains_key(path) {
                            s.paths.insert(path.to_owned(), PathSeq::default());
                        }
                        let p = s.paths.get_mut(path).expect("inserted");
                        p.lines += 1;
                        if v == p.next {
                            p.next += 1;
                        } else if v > p.next {
                            p.skipped += v - p.next;
                            p.next = v + 1;
                        } else {
                            p.backwards += 1;
                        }
                    }
                    None => s.malformed += 1,
                }
            }
        }
        if done {
            return;
        }
    }
}

/// `graft run --config CONFIG`, its log to `log`, once it listens on
/// `listen` (its log in the panic if it exits first).
pub fn start_logged(config: &Path, log: &Path, listen: u16) -> Child {
    let mut c = crate::graft()
        .args(["run", "--config"])
        .arg(config)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let up = std::time::Instant::now();
    while !crate::servers::listening(listen) {
        if let Ok(Some(status)) = c.try_wait() {
            panic!(
                "graft exited with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            up.elapsed() < Duration::from_secs(30),
            "graft did not listen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_the_latest_sample_of_one_output() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("internal.out");
        std::fs::write(
            &p,
            "internal_write,buffer_strategy=disk,output=influxdb buffer_size=5i,buffer_bytes=100i 1\n\
             internal_write,output=file buffer_size=0i 1\n\
             internal_gather,input=internal metrics_gathered=3i 1\n\
             internal_write,output=influxdb buffer_size=7i,buffer_corrupt_records=2i,buffer_strategy=\"disk\" 2\n",
        )
        .unwrap();
        let s = internal_write(&p, "influxdb").unwrap();
        assert_eq!(s.int("buffer_size"), 7);
        assert_eq!(s.int("buffer_corrupt_records"), 2);
        assert_eq!(s.string("buffer_strategy"), Some("disk"));
        assert_eq!(internal_writes(&p, "influxdb").len(), 2);
        let q = dir.path().join("aliased.out");
        std::fs::write(
            &q,
            "internal_write,alias=a,output=graphite buffer_size=1i 1\n\
             internal_write,alias=b,output=graphite buffer_size=2i 1\n\
             internal_write,alias=a,output=graphite buffer_size=3i 2\n",
        )
        .unwrap();
        assert_eq!(
            internal_write_aliased(&q, "a").unwrap().int("buffer_size"),
            3
        );
        assert_eq!(
            internal_write_aliased(&q, "b").unwrap().int("buffer_size"),
            2
        );
        assert_eq!(internal_write_aliased(&q, "c"), None);
        assert_eq!(internal_write(&p, "graphite"), None);
    }

    #[test]
    fn finds_segments_at_any_depth() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        for f in ["a/b/00000002.seg", "a/b/00000001.seg", "a/other", "x.seg"] {
            std::fs::write(dir.path().join(f), "12345").unwrap();
        }
        let segs = segments(dir.path());
        let names: Vec<_> = segs
            .iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["a/b/00000001.seg", "a/b/00000002.seg", "x.seg"]);
        assert_eq!(dir_bytes(dir.path()), 20);
    }

    #[test]
    fn sink_counts_order_gaps_and_repeats() {
        let port = crate::servers::free_port();
        let sink = SeqSink::start_on(port);
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.write_all(b"a.v 0 1\na.v 1 1\nb.v 0 1\na.v 3 1\na.v 1 1\nnot a line\nb.v 1.0 2\n")
            .unwrap();
        drop(c);
        crate::poll_until("the sink to read", Duration::from_secs(10), || {
            sink.lines() + sink.malformed() == 7
        });
        let paths = sink.paths();
        assert_eq!(
            paths["a.v"],
            PathSeq {
                next: 4,
                lines: 4,
                backwards: 1,
                skipped: 1
            }
        );
        assert_eq!(paths["b.v"].next, 2);
        assert_eq!(sink.malformed(), 1);
        assert_eq!(sink.connections(), 1);
    }
}
