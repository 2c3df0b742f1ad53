//! Hostile peers against a real agent (`graft run`) with
//! `inputs.influxdb_listener` and `inputs.influxdb_v2_listener` writing to
//! `outputs.file`, on 127.0.0.1 only. While it is attacked, a steady writer
//! on its own connection keeps sending numbered metrics; every one the
//! listener acknowledged must land (distinct sequence numbers counted),
//! resident memory must stay under [`RSS_BOUND_KB`], and each limit hit
//! must show in the listener's self-metrics read through `inputs.internal`.
//!
//! Measured peak VmRSS (debug build, 2 cores): about 12 MB idle and 33 MB
//! at most under any of these attacks; the bound checked is 200 MB.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use graft_test_support::hostile::{RssWatch, internal_gather, rss_kb};
use graft_test_support::probe::closed;
use graft_test_support::servers::{free_port, http, listening};
use graft_test_support::{graft, poll_until, sigterm, stop, wait_with_timeout};

/// The most resident memory the agent may use under any attack here.
const RSS_BOUND_KB: u64 = 200 * 1024;

struct Agent {
    child: Child,
    _dir: tempfile::TempDir,
    out: PathBuf,
    /// The agent's log (a file: a pipe nobody reads would block it).
    log: PathBuf,
    v1: String,
    v2: String,
}

fn start_agent(max_body_size: &str) -> Agent {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.lp");
    let (p1, p2) = (free_port(), free_port());
    let config = dir.path().join("graft.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[agent]
  interval = "300ms"
  flush_interval = "100ms"
  omit_hostname = true
  metric_buffer_limit = 1000000
[[inputs.influxdb_listener]]
  alias = "v1"
  service_address = "127.0.0.1:{p1}"
  read_timeout = "2s"
  max_body_size = "{max_body_size}"
[[inputs.influxdb_v2_listener]]
  alias = "v2"
  service_address = "127.0.0.1:{p2}"
  read_timeout = "2s"
  max_body_size = "{max_body_size}"
[[inputs.internal]]
  collect_memstats = false
[[outputs.file]]
  files = ["{}"]
"#,
            out.display()
        ),
    )
    .unwrap();
    let log = dir.path().join("graft.log");
    let child = graft()
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let (v1, v2) = (
        format!("http://127.0.0.1:{p1}"),
        format!("http://127.0.0.1:{p2}"),
    );
    poll_until("the listeners", Duration::from_secs(60), || {
        [p1, p2].iter().all(|p| listening(*p))
    });
    Agent {
        child,
        _dir: dir,
        out,
        log,
        v1,
        v2,
    }
}

/// The distinct `seq` values of `good,src=<src>` lines in the output.
fn landed(out: &Path, src: &str) -> BTreeSet<i64> {
    let prefix = format!("good,src={src} ");
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| {
            l.split([' ', ','])
                .find_map(|kv| kv.strip_prefix("seq="))
                .and_then(|v| v.trim_end_matches('i').parse().ok())
        })
        .collect()
}

fn wait_for_counter(out: &Path, alias: &str, name: &str, at_least: i64) {
    poll_until(
        &format!("{alias} {name} >= {at_least}"),
        Duration::from_secs(15),
        || internal_gather(out, alias).get(name).copied().unwrap_or(0) >= at_least,
    );
}

/// A reader of `total` bytes of gzip data: `members` copies of one gzip
/// member holding `member_size` zeros (several GB inflated, a few MB sent).
fn gzip_bomb(member_size: usize, members: usize) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..member_size / zeros.len() {
        gz.write_all(&zeros).unwrap();
    }
    let member = gz.finish().unwrap();
    member.repeat(members)
}

/// Endless good lines, `limit` bytes at most: a chunked body.
struct Lines {
    n: u64,
    sent: usize,
    limit: usize,
    pending: Vec<u8>,
}

impl Read for Lines {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.sent >= self.limit {
            return Ok(0);
        }
        while self.pending.len() < buf.len() {
            self.pending
                .extend_from_slice(format!("good,src=chunked seq={}i\n", self.n).as_bytes());
            self.n += 1;
        }
        let k = buf.len().min(self.limit - self.sent);
        buf[..k].copy_from_slice(&self.pending[..k]);
        self.pending.drain(..k);
        self.sent += k;
        Ok(k)
    }
}

/// A small deterministic generator of random bytes.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Sends numbered metrics on its own connection until stopped; returns
/// the numbers the listener acknowledged with 204.
fn steady_writer(url: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<i64>> {
    std::thread::spawn(move || {
        let client = http();
        let mut acked = Vec::new();
        let mut seq = 0;
        while !stop.load(Ordering::Relaxed) {
            let r = client
                .post(format!("{url}/write"))
                .body(format!("good,src=steady seq={seq}i\n"))
                .timeout(Duration::from_secs(10))
                .send();
            if r.is_ok_and(|r| r.status().as_u16() == 204) {
                acked.push(seq);
            }
            seq += 1;
            std::thread::sleep(Duration::from_millis(20));
        }
        acked
    })
}

#[test]
#[expect(
    clippy::print_stderr,
    reason = "the measured peaks are what the test reports"
)]
fn the_listener_survives_hostile_peers_and_keeps_serving() {
    let mut agent = start_agent("4MiB");
    let pid = agent.child.id();
    let watch = RssWatch::start(pid);
    let done = Arc::new(AtomicBool::new(false));
    let steady = steady_writer(agent.v1.clone(), done.clone());
    let client = http();
    let out = agent.out.clone();
    let peaks = Mutex::new(Vec::new());
    let mark = |what: &str| {
        peaks
            .lock()
            .unwrap()
            .push((what.to_owned(), watch.take_peak_kb(pid)));
    };
    mark("idle");

    // 1. A gzip body inflating to 4 GiB (16 members of 256 MiB of zeros,
    // about 4 MB sent), on both write paths: 413, counted.
    let bomb = gzip_bomb(256 << 20, 16);
    assert!(bomb.len() < 4 << 20, "{} bytes", bomb.len());
    for (url, path) in [(&agent.v1, "/write"), (&agent.v2, "/api/v2/write?bucket=b")] {
        let r = client
            .post(format!("{url}{path}"))
            .header("Content-Encoding", "gzip")
            .body(bomb.clone())
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 413, "{path}");
    }
    wait_for_counter(&out, "v1", "body_size_limit_hits", 1);
    wait_for_counter(&out, "v2", "body_size_limit_hits", 1);
    mark("gzip bombs");

    // 2. A chunked body past max_body_size (64 MiB against 4 MiB): 413 or
    // the connection closed under the sender; counted; none of it taken.
    let body = reqwest::blocking::Body::new(Lines {
        n: 0,
        sent: 0,
        limit: 64 << 20,
        pending: Vec::new(),
    });
    let r = client.post(format!("{}/write", agent.v1)).body(body).send();
    if let Ok(r) = r {
        assert_eq!(r.status().as_u16(), 413);
    }
    wait_for_counter(&out, "v1", "body_size_limit_hits", 2);
    mark("chunked body");

    // 3. 200 connections dripping header bytes: a normal write still
    // succeeds meanwhile, and each of them is closed after read_timeout.
    let mut slow: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut s = TcpStream::connect(agent.v1.trim_start_matches("http://")).unwrap();
            s.write_all(b"POST /write HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Drip: ")
                .unwrap();
            s
        })
        .collect();
    let started = Instant::now();
    let mut normal_ok = false;
    while started.elapsed() < Duration::from_secs(3) {
        for s in &mut slow {
            let _ = s.write_all(b"a");
        }
        if !normal_ok {
            let r = client
                .post(format!("{}/write", agent.v1))
                .body("good,src=during seq=0i\n")
                .send()
                .unwrap();
            normal_ok = r.status().as_u16() == 204;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(normal_ok, "a normal write succeeded during the drip");
    for s in &mut slow {
        assert!(closed(s), "a slow-header connection is still open");
    }
    drop(slow);
    wait_for_counter(&out, "v1", "header_timeouts", 200);
    mark("200 slow-header connections");

    // 3b. 20 bodies of 3 MiB each, sent slowly at once: at most
    // max_concurrent_writes (8) are read, the rest get 503 at once and are
    // counted; once the slow ones time out, writes go through again.
    let body_head = format!(
        "POST /write HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n",
        3 << 20
    );
    let part = "good,src=slowbody seq=0i\n".repeat(1000);
    // The refused ones are closed under the sender: writes may fail.
    let bodies: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = TcpStream::connect(agent.v1.trim_start_matches("http://")).unwrap();
            let _ = s.write_all(body_head.as_bytes());
            s
        })
        .collect();
    for mut s in &bodies {
        let _ = s.write_all(part.as_bytes());
    }
    wait_for_counter(&out, "v1", "concurrent_writes_limit_hits", 12);
    poll_until(
        "a write after the slow bodies",
        Duration::from_secs(10),
        || {
            client
                .post(format!("{}/write", agent.v1))
                .body("good,src=during seq=1i\n")
                .send()
                .is_ok_and(|r| r.status().as_u16() == 204)
        },
    );
    drop(bodies);
    mark("20 slow 3 MiB bodies");

    // 4. Random bytes (invalid UTF-8, NULs, quotes, backslashes)
    // interleaved with 1000 good lines: every good line lands, each bad
    // one is counted.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut body = Vec::new();
    for seq in 0..1000 {
        body.extend_from_slice(format!("good,src=mixed seq={seq}i\n").as_bytes());
        body.push(0xff);
        for _ in 0..xorshift(&mut state) % 40 {
            let b = (xorshift(&mut state) % 256) as u8;
            body.push(if b == b'\n' { 0 } else { b });
        }
        body.push(b'\n');
    }
    let before = internal_gather(&out, "v1")
        .get("parse_errors")
        .copied()
        .unwrap_or(0);
    let r = client
        .post(format!("{}/write", agent.v1))
        .body(body)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let text = r.text().unwrap();
    assert!(
        text.contains("1000 of 2000 lines"),
        "{}",
        &text[..200.min(text.len())]
    );
    wait_for_counter(&out, "v1", "parse_errors", before + 1000);
    mark("random bytes");

    // 5. One line with 100 000 tags (1.4 MB): refused at once, counted,
    // the agent answers.
    let mut line = String::from("wide");
    for i in 0..100_000 {
        line.push_str(&format!(",k{i}=v"));
    }
    line.push_str(" v=1i\n");
    let asked = Instant::now();
    let r = client
        .post(format!("{}/api/v2/write?bucket=b", agent.v2))
        .body(line)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "{:?}",
        asked.elapsed()
    );
    let r = client.get(format!("{}/ping", agent.v2)).send().unwrap();
    assert_eq!(r.status().as_u16(), 204);
    wait_for_counter(&out, "v2", "tags_limit_hits", 1);
    mark("100 000 tags");

    // A body of two gzip members lands whole.
    let mut gz = Vec::new();
    for part in [0..50, 50..100] {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for seq in part {
            e.write_all(format!("good,src=gz seq={seq}i\n").as_bytes())
                .unwrap();
        }
        gz.extend(e.finish().unwrap());
    }
    let r = client
        .post(format!("{}/write", agent.v1))
        .header("Content-Encoding", "gzip")
        .body(gz)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);

    std::thread::sleep(Duration::from_millis(500));
    done.store(true, Ordering::Relaxed);
    let acked = steady.join().unwrap();
    mark("end");
    let exited = Instant::now();
    let (status, _) = stop(&mut agent.child, Duration::from_secs(15));
    let stderr = std::fs::read_to_string(&agent.log).unwrap_or_default();
    assert!(status.success(), "{status}: {stderr}");
    assert!(exited.elapsed() < Duration::from_secs(15));

    let peaks = peaks.into_inner().unwrap();
    eprintln!("peak VmRSS by attack (kB): {peaks:?}");
    for (what, kb) in &peaks {
        assert!(*kb < RSS_BOUND_KB, "{what}: {kb} kB resident");
    }
    assert!(
        acked.len() > 50,
        "only {} steady writes acknowledged",
        acked.len()
    );
    let steady_landed = landed(&out, "steady");
    let missing: Vec<_> = acked
        .iter()
        .filter(|s| !steady_landed.contains(s))
        .collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    assert_eq!(landed(&out, "mixed"), (0..1000).collect());
    assert_eq!(landed(&out, "gz"), (0..100).collect());
    assert!(
        landed(&out, "chunked").is_empty(),
        "nothing of a refused body"
    );
    assert!(stderr.contains("request headers not complete"), "{stderr}");
}

/// SIGTERM while the listener parses a large body (128 MiB, streamed):
/// the agent ends within the bound.
#[test]
fn sigterm_during_a_large_parse_ends_the_agent_in_time() {
    let mut agent = start_agent("256MiB");
    let url = format!("{}/write", agent.v1);
    let sender = std::thread::spawn(move || {
        let body = reqwest::blocking::Body::new(Lines {
            n: 0,
            sent: 0,
            limit: 128 << 20,
            pending: Vec::new(),
        });
        // The answer does not matter (taken, or 503 while stopping).
        let _ = http()
            .post(url)
            .body(body)
            .timeout(Duration::from_secs(60))
            .send();
    });
    // Give the body time to arrive and its parse to start.
    poll_until("the body to be read", Duration::from_secs(60), || {
        rss_kb(agent.child.id()) > 100 * 1024
    });
    let asked = Instant::now();
    sigterm(&agent.child);
    let status = wait_with_timeout(&mut agent.child, Duration::from_secs(15));
    assert!(status.success(), "{status}");
    assert!(
        asked.elapsed() < Duration::from_secs(15),
        "{:?}",
        asked.elapsed()
    );
    sender.join().unwrap();
}
