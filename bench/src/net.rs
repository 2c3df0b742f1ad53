//! The harness's side of the wire, on loopback: a sink that counts the
//! carbon lines a relay delivers, and a minimal HTTP/1.1 client for scraping
//! node-exporter and writing line protocol to graft.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// A carbon line as a number that does not depend on how a relay spells
/// the value (`5.0` or `5`): path, value and timestamp hashed together.
pub fn point_hash(line: &str) -> Option<u64> {
    let mut w = line.split_ascii_whitespace();
    let (path, value, ts) = (w.next()?, w.next()?, w.next()?);
    let value: f64 = value.parse().ok()?;
    let ts: u64 = ts.parse().ok()?;
    // FNV-1a over the path, then the value's bits and the timestamp.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in path.as_bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    for x in [value.to_bits(), ts] {
        h = (h ^ x).wrapping_mul(0x0100_0000_01b3);
    }
    Some(h)
}

/// What a [`LineSink`] received since the last reset.
#[derive(Default)]
struct Received {
    /// Lines whose path starts with the prefix.
    lines: AtomicU64,
    /// Order-independent sum of their [`point_hash`].
    sum: Mutex<u64>,
    /// Other lines (a relay's own statistics, say).
    other: AtomicU64,
}

/// A carbon plaintext receiver on a free loopback port that counts the
/// lines under a path prefix and sums their hashes, so that a run can check
/// that every metric arrived, unchanged, in any order.
pub struct LineSink {
    pub port: u16,
    received: Arc<Received>,
}

impl LineSink {
    /// Listen for lines under `prefix`.
    pub fn start(prefix: &'static str) -> Result<Self> {
        Self::start_on(prefix, 0)
    }

    /// Listen on a chosen port (0: any free one), for example one that an
    /// output has been failing to reach.
    pub fn start_on(prefix: &'static str, port: u16) -> Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let port = listener.local_addr()?.port();
        let received = Arc::new(Received::default());
        let shared = received.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let r = shared.clone();
                std::thread::spawn(move || receive(conn, prefix, &r));
            }
        });
        Ok(Self { port, received })
    }

    /// (lines, hash sum) received so far.
    pub fn received(&self) -> (u64, u64) {
        let sum = *self.received.sum.lock().expect("sink lock");
        (self.received.lines.load(Ordering::Acquire), sum)
    }

    /// Lines outside the prefix received so far.
    pub fn other(&self) -> u64 {
        self.received.other.load(Ordering::Relaxed)
    }

    /// Start counting from zero.
    pub fn reset(&self) {
        let mut sum = self.received.sum.lock().expect("sink lock");
        *sum = 0;
        self.received.lines.store(0, Ordering::Release);
        self.received.other.store(0, Ordering::Relaxed);
    }
}

fn receive(conn: TcpStream, prefix: &str, r: &Received) {
    let mut reader = BufReader::with_capacity(1 << 20, conn);
    let mut line = String::new();
    // Counted in chunks so that the lock is not taken per line.
    let (mut n, mut sum) = (0u64, 0u64);
    loop {
        line.clear();
        let read = reader.read_line(&mut line);
        let done = !matches!(read, Ok(k) if k > 0);
        if !done {
            match point_hash(&line).filter(|_| line.starts_with(prefix)) {
                Some(h) => {
                    n += 1;
                    sum = sum.wrapping_add(h);
                }
                None => {
                    r.other.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if n > 0 && (done || n >= 4096 || reader.buffer().is_empty()) {
            let mut total = r.sum.lock().expect("sink lock");
            *total = total.wrapping_add(sum);
            r.lines.fetch_add(n, Ordering::Release);
            (n, sum) = (0, 0);
        }
        if done {
            return;
        }
    }
}

/// `GET path` on a loopback port; the body of a 200 answer.
pub fn http_get(port: u16, path: &str) -> Result<Vec<u8>> {
    let mut c = TcpStream::connect(("127.0.0.1", port))?;
    c.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    c.read_to_end(&mut answer)?;
    let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        bail!("GET {path}: no HTTP answer");
    };
    let head = String::from_utf8_lossy(&answer[..end]);
    if !head.starts_with("HTTP/1.1 200") {
        bail!("GET {path}: {}", head.lines().next().unwrap_or(""));
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Ok(dechunk(&answer[end + 4..]));
    }
    Ok(answer.split_off(end + 4))
}

/// A chunked body, reassembled.
fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&b[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 || b.len() < eol + 2 + size {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[(eol + 4 + size).min(b.len())..];
    }
    out
}

/// One kept-alive HTTP/1.1 connection that POSTs bodies and expects 2xx.
pub struct HttpPoster {
    port: u16,
    conn: Option<BufReader<TcpStream>>,
}

impl HttpPoster {
    pub fn new(port: u16) -> Self {
        Self { port, conn: None }
    }

    /// POST `body` to `path`; fails unless the answer is 2xx.
    pub fn post(&mut self, path: &str, body: &[u8]) -> Result<()> {
        let port = self.port;
        let conn = match &mut self.conn {
            Some(c) => c,
            None => {
                let c = TcpStream::connect(("127.0.0.1", port))?;
                c.set_read_timeout(Some(Duration::from_secs(60)))?;
                self.conn.insert(BufReader::new(c))
            }
        };
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let s = conn.get_mut();
        s.write_all(head.as_bytes())?;
        s.write_all(body)?;
        let (status, close) = read_answer(conn).with_context(|| format!("POST {path}"))?;
        if close {
            self.conn = None;
        }
        if !(200..300).contains(&status) {
            bail!("POST {path}: HTTP {status}");
        }
        Ok(())
    }
}

/// Read one answer; (status, whether the server closes the connection).
fn read_answer(conn: &mut BufReader<TcpStream>) -> Result<(u16, bool)> {
    let mut line = String::new();
    conn.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("not an HTTP answer: {line:?}"))?;
    let (mut length, mut close) = (0usize, false);
    loop {
        line.clear();
        if conn.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        } else if lower.starts_with("connection:") && lower.contains("close") {
            close = true;
        }
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body)?;
    Ok((status, close))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_hash_ignores_the_spelling_of_values() {
        assert_eq!(point_hash("a.b 5 17"), point_hash("a.b 5.0 17\n"));
        assert_ne!(point_hash("a.b 5 17"), point_hash("a.c 5 17"));
        assert_ne!(point_hash("a.b 5 17"), point_hash("a.b 5 18"));
        assert_eq!(point_hash("a.b five 17"), None);
    }

    #[test]
    fn sink_counts_lines_from_many_connections() {
        let sink = LineSink::start("x.").unwrap();
        let mut want = 0u64;
        for c in 0..3 {
            let mut conn = TcpStream::connect(("127.0.0.1", sink.port)).unwrap();
            for i in 0..1000 {
                let line = format!("x.{c}.{i} {i}.5 {}\n", 1000 + i);
                want = want.wrapping_add(point_hash(&line).unwrap());
                conn.write_all(line.as_bytes()).unwrap();
            }
            conn.write_all(b"carbon.relay.stat 1 1\n").unwrap();
        }
        let start = std::time::Instant::now();
        while sink.received().0 < 3000 && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(sink.received(), (3000, want));
        while sink.other() < 3 && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(sink.other(), 3);
        sink.reset();
        assert_eq!(sink.received(), (0, 0));
    }

    #[test]
    fn dechunk_joins_chunks() {
        assert_eq!(dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), b"abcde");
    }
}
