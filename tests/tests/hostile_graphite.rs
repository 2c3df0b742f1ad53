//! Hostile peers against a real agent (`graft run`) with `inputs.carbon`
//! (plaintext TCP and pickle), `inputs.statsd` over TCP and a separate
//! `inputs.socket_listener`, all writing to `outputs.file`, on 127.0.0.1
//! only, beside an `inputs.influxdb_listener` that must keep serving while
//! carbon's idle connections fill the process-wide budget. While it is attacked, a steady writer on its own connection to
//! the socket_listener sends numbered metrics; every one must land
//! (distinct sequence numbers counted), resident memory must stay under
//! [`RSS_BOUND_KB`], each limit hit must show in the input's
//! `internal_gather` fields, and SIGTERM must still stop the agent.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use graft_test_support::hostile::{RssWatch, internal_gather, landed, set_own_nofile};
use graft_test_support::servers::{free_port, listening};
use graft_test_support::{graft, poll_until, sigterm, wait_with_timeout};

/// The most resident memory the agent may use under any attack here.
const RSS_BOUND_KB: u64 = 200 * 1024;

struct Agent {
    child: Child,
    dir: tempfile::TempDir,
    out: PathBuf,
    ports: Ports,
}

#[derive(Clone, Copy)]
struct Ports {
    carbon: u16,
    pickle: u16,
    statsd: u16,
    statsd_udp: u16,
    good: u16,
    influx: u16,
}

/// Start an agent; with `nofile`, under that open-file limit (soft and
/// hard) set by `prlimit`, and carbon with no maximum of its own.
fn start_agent(nofile: Option<u64>) -> Agent {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.lp");
    let ports = Ports {
        carbon: free_port(),
        pickle: free_port(),
        statsd: free_port(),
        statsd_udp: free_port(),
        good: free_port(),
        influx: free_port(),
    };
    let max_connections = if nofile.is_some() { 0 } else { 256 };
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
[[inputs.carbon]]
  alias = "carbon"
  service_address = ["tcp://127.0.0.1:{}"]
  pickle_address = "tcp://127.0.0.1:{}"
  max_connections = {max_connections}
[[inputs.statsd]]
  alias = "statsd"
  protocol = "tcp"
  service_address = "127.0.0.1:{}"
[[inputs.statsd]]
  alias = "statsd_udp"
  service_address = "127.0.0.1:{}"
[[inputs.socket_listener]]
  alias = "good"
  service_address = "tcp://127.0.0.1:{}"
  data_format = "graphite"
[[inputs.influxdb_listener]]
  alias = "influx"
  service_address = "127.0.0.1:{}"
[[inputs.internal]]
[[outputs.file]]
  files = ["{}"]
"#,
            ports.carbon,
            ports.pickle,
            ports.statsd,
            ports.statsd_udp,
            ports.good,
            ports.influx,
            out.display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("graft.log")).unwrap();
    let mut cmd = match nofile {
        Some(n) => {
            let mut c = std::process::Command::new("prlimit");
            c.arg(format!("--nofile={n}:{n}"))
                .arg("--")
                .arg(graft().get_program());
            c.envs(graft().get_envs().filter_map(|(k, v)| Some((k, v?))))
                .current_dir(graft_test_support::workspace_root());
            c
        }
        None => graft(),
    };
    let child = cmd
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    poll_until("the listeners", Duration::from_secs(60), || {
        [
            ports.carbon,
            ports.pickle,
            ports.statsd,
            ports.good,
            ports.influx,
        ]
        .iter()
        .all(|p| listening(*p))
    });
    Agent {
        child,
        dir,
        out,
        ports,
    }
}

impl Agent {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("graft.log")).unwrap_or_default()
    }

    /// Wait until `name` in the `internal_gather` of `alias` reaches
    /// `at_least`.
    fn wait_counter(&self, alias: &str, name: &str, at_least: i64) -> i64 {
        let mut seen = 0;
        poll_until(
            &format!("{alias}.{name} >= {at_least}"),
            Duration::from_secs(15),
            || {
                seen = internal_gather(&self.out, alias)
                    .get(name)
                    .copied()
                    .unwrap_or(0);
                seen >= at_least
            },
        );
        seen
    }

    /// Wait until every value of `want` landed as metric `name`.
    fn wait_landed(&self, name: &str, want: &BTreeSet<i64>) {
        poll_until(
            &format!("{} values of {name}", want.len()),
            Duration::from_secs(20),
            || landed(&self.out, name).is_superset(want),
        );
    }

    /// SIGTERM, and the agent must be gone within 15 s.
    fn stop(mut self) {
        sigterm(&self.child);
        let status = wait_with_timeout(&mut self.child, Duration::from_secs(15));
        assert!(status.success(), "{status}\n{}", self.log());
    }
}

/// Numbered `good.seq` lines on one connection to the socket_listener,
/// every 10 ms, until told to stop; returns the numbers sent.
struct GoodWriter {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<BTreeSet<i64>>,
}

impl GoodWriter {
    fn start(port: u16) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let mut sent = BTreeSet::new();
            let start = Instant::now();
            for n in 0..100_000 {
                if s.load(Ordering::Relaxed) || start.elapsed() > Duration::from_secs(150) {
                    break;
                }
                c.write_all(format!("good.seq {n}\n").as_bytes()).unwrap();
                sent.insert(n);
                std::thread::sleep(Duration::from_millis(10));
            }
            sent
        });
        Self { stop, thread }
    }

    fn finish(self) -> BTreeSet<i64> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// Whether a new connection to `port` is kept open (a refused one is
/// closed at once, so a read sees its end within 300 ms).
fn accepted(port: u16) -> bool {
    let Ok(s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 1];
    matches!(
        std::io::Read::read(&mut &s, &mut buf),
        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
    )
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

/// A good pickle frame carrying `pickled.seq = n`.
fn good_pickle(n: i64) -> Vec<u8> {
    let mut body = Vec::new();
    graft_plugins::graphite::pickle::encode(&[("pickled.seq", -1, n as f64)], &mut body);
    frame(&body)
}

/// The pickle attacks of issue 15: memo doubling (GET, GET, LIST, PUT
/// repeated), DUP doubling, 100 000-deep nesting, 2^60-byte strings.
fn pickle_attacks() -> Vec<(&'static str, Vec<u8>)> {
    let mut memo = vec![0x80, 2, b']', b'q', 0];
    for _ in 0..60 {
        memo.extend_from_slice(&[b'0', b'(', b'h', 0, b'h', 0, b'l', b'q', 0]);
    }
    memo.push(b'.');
    assert!(memo.len() < 600);
    let mut dup = vec![0x80, 2, b']'];
    for _ in 0..5_000 {
        dup.extend_from_slice(b"2a");
    }
    dup.push(b'.');
    let mut nested = vec![b'('; 100_000];
    nested.extend(std::iter::repeat_n(b'l', 100_000));
    nested.push(b'.');
    let mut huge = vec![0x80, 4, 0x8e];
    huge.extend_from_slice(&(1u64 << 60).to_le_bytes());
    huge.extend_from_slice(b"abc.");
    let mut huge_str = vec![0x80, 4, 0x8d];
    huge_str.extend_from_slice(&(1u64 << 60).to_le_bytes());
    huge_str.extend_from_slice(b"abc.");
    vec![
        ("memo doubling", frame(&memo)),
        ("dup doubling", frame(&dup)),
        ("100 000-deep nesting", frame(&nested)),
        ("2^60-byte bytes", frame(&huge)),
        ("2^60-byte string", frame(&huge_str)),
    ]
}

/// Stream `total` bytes with no newline to `port`, in 1 MiB writes, for
/// at most 60 s; returns how many were written.
fn flood_without_newline(port: u16, total: usize) -> usize {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let chunk = vec![b'7'; 1 << 20];
    let start = Instant::now();
    let mut sent = 0;
    while sent < total && start.elapsed() < Duration::from_secs(60) {
        match c.write_all(&chunk) {
            Ok(()) => sent += chunk.len(),
            Err(_) => break,
        }
    }
    sent
}

#[test]
fn carbon_statsd_and_socket_listener_survive_hostile_peers() {
    set_own_nofile(20_000);
    let agent = start_agent(None);
    let pid = agent.child.id();
    let rss = RssWatch::start(pid);
    let mut phases = Vec::new();
    let writer = GoodWriter::start(agent.ports.good);
    let p = agent.ports;

    // Pickle: every attack frame on one connection, each followed by a
    // good frame that must land — the connection survives them all.
    let mut c = TcpStream::connect(("127.0.0.1", p.pickle)).unwrap();
    let attacks = pickle_attacks();
    let mut pickled = BTreeSet::new();
    for (n, (what, attack)) in attacks.iter().enumerate() {
        c.write_all(attack)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        c.write_all(&good_pickle(n as i64)).unwrap();
        pickled.insert(n as i64);
    }
    agent.wait_landed("pickled.seq", &pickled);
    drop(c);
    agent.wait_counter("carbon", "pickle_decoded_size_limit_hits", 2);
    agent.wait_counter("carbon", "pickle_depth_limit_hits", 1);
    // The two 2^60 lengths and nothing else are plain bad frames.
    agent.wait_counter("carbon", "parse_errors", 5);
    phases.push(("pickle attacks", rss.take_peak_kb(pid)));

    // 200 MB without a newline to carbon and to statsd over TCP.
    for (port, alias, phase) in [
        (p.carbon, "carbon", "200 MB without a newline to carbon"),
        (p.statsd, "statsd", "200 MB without a newline to statsd"),
    ] {
        let sent = flood_without_newline(port, 200 << 20);
        assert_eq!(sent, 200 << 20, "{alias}: the flood was cut short");
        agent.wait_counter(alias, "line_size_limit_hits", 1);
        phases.push((phase, rss.take_peak_kb(pid)));
    }

    // 5 000 connections held on the carbon port, then released: the
    // listener keeps 256 and refuses (and counts) the rest.
    let mut idle = Vec::new();
    let start = Instant::now();
    let addr: SocketAddr = ([127, 0, 0, 1], p.carbon).into();
    while idle.len() < 5_000 && start.elapsed() < Duration::from_secs(40) {
        if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            idle.push(s);
        }
    }
    assert_eq!(idle.len(), 5_000, "connections opened in 40 s");
    let refused = agent.wait_counter("carbon", "connections_limit_hits", 5_000 - 256);
    assert!(refused <= 5_000 - 256 + 50, "{refused} refused");
    drop(idle);
    phases.push(("5 000 idle connections", rss.take_peak_kb(pid)));

    // Random bytes (invalid UTF-8, NULs) between good lines on the carbon
    // port once the idle connections are gone: every good line lands.
    let mut mixed = BTreeSet::new();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    poll_until("carbon accepting again", Duration::from_secs(10), || {
        accepted(p.carbon)
    });
    let mut c = TcpStream::connect(("127.0.0.1", p.carbon)).unwrap();
    let mut text = Vec::new();
    for n in 0..2_000i64 {
        let len = (next() % 200) as usize + 1;
        text.extend((0..len).map(|_| next() as u8));
        text.extend_from_slice(format!("\nmixed.seq {n}\n").as_bytes());
        mixed.insert(n);
    }
    c.write_all(&text).unwrap();
    drop(c);
    agent.wait_landed("mixed.seq", &mixed);
    phases.push(("random bytes among good lines", rss.take_peak_kb(pid)));

    // 100 000 garbage datagrams to statsd over UDP, then good ones until
    // one lands (UDP may drop some under load).
    let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let start = Instant::now();
    for _ in 0..100_000 {
        if start.elapsed() > Duration::from_secs(30) {
            break;
        }
        let len = (next() % 1400) as usize + 1;
        let junk: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let _ = u.send_to(&junk, ("127.0.0.1", p.statsd_udp));
    }
    agent.wait_counter("statsd_udp", "parse_errors", 1_000);
    phases.push(("100 000 garbage statsd datagrams", rss.take_peak_kb(pid)));
    poll_until("a good statsd datagram", Duration::from_secs(15), || {
        let _ = u.send_to(b"udp_good:1|c\n", ("127.0.0.1", p.statsd_udp));
        std::fs::read_to_string(&agent.out).is_ok_and(|t| t.contains("\nudp_good,"))
    });

    let sent = writer.finish();
    assert!(sent.len() > 100, "the good writer sent {}", sent.len());
    agent.wait_landed("good.seq", &sent);
    phases.push(("the rest", rss.take_peak_kb(pid)));
    drop(rss);
    for (phase, peak) in &phases {
        println!("peak resident memory during {phase}: {peak} KiB");
        assert!(
            *peak < RSS_BOUND_KB,
            "{phase}: peak resident memory {peak} KiB over {RSS_BOUND_KB} KiB"
        );
    }
    agent.stop();
}

/// Under an open-file limit of 256, idle connections on the carbon port
/// (which has no maximum of its own) stop at the process-wide budget, and
/// another listener keeps accepting and delivering.
#[test]
fn idle_connections_up_to_the_open_file_limit_starve_no_other_listener() {
    set_own_nofile(20_000);
    let agent = start_agent(Some(256));
    let p = agent.ports;
    let addr: SocketAddr = ([127, 0, 0, 1], p.carbon).into();
    let mut idle = Vec::new();
    let start = Instant::now();
    while idle.len() < 400 && start.elapsed() < Duration::from_secs(20) {
        if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            idle.push(s);
        }
    }
    let refused = agent.wait_counter("carbon", "process_connections_limit_hits", 1);
    // Meanwhile the other listeners accept new connections and deliver:
    // the socket_listener...
    assert!(accepted(p.good), "{}", agent.log());
    assert!(accepted(p.influx), "{}", agent.log());
    let mut sent = BTreeSet::new();
    let mut c = TcpStream::connect(("127.0.0.1", p.good)).unwrap();
    for n in 0..20 {
        c.write_all(format!("good.seq {n}\n").as_bytes()).unwrap();
        sent.insert(n);
    }
    drop(c);
    agent.wait_landed("good.seq", &sent);
    // ... and the InfluxDB listener, which draws on the same budget.
    let body: String = (0..20).map(|n| format!("influx_seq value={n}\n")).collect();
    let mut c = TcpStream::connect(("127.0.0.1", p.influx)).unwrap();
    write!(
        c,
        "POST /write HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut c, &mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 204"),
        "{answer}\n{}",
        agent.log()
    );
    let sent: BTreeSet<i64> = (0..20).collect();
    agent.wait_landed("influx_seq", &sent);
    drop(idle);
    assert!(refused >= 1, "{}", agent.log());
    // Once they are gone, carbon accepts again.
    poll_until("carbon accepting again", Duration::from_secs(10), || {
        accepted(p.carbon)
    });
    agent.stop();
}
