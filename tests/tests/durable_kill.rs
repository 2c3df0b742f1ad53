//! The kill test of the durable buffer: numbered metrics stream at about
//! 50 000 a second into `inputs.influxdb_listener` (acknowledge =
//! "durable") while `outputs.influxdb` (disk buffer, default fsync) has no
//! server; the agent is `kill -9`ed at random moments and restarted on the
//! same configuration and directory; then a real `influxd` comes up and
//! every body the listener answered 204 must be in it.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use graft_test_support::durable::{http_client, internal_write, kill9};
use graft_test_support::servers::{InfluxD, free_port, listening};
use graft_test_support::{graft, stop};

const LINES_PER_BODY: u64 = 500;
/// 100 bodies of 500 lines a second: 50 000 metrics a second.
const BODY_EVERY: Duration = Duration::from_millis(10);
/// Requests in flight at once: an acknowledgement waits for the disk.
const SENDERS: usize = 32;
const KILLS: usize = 5;
const DB: &str = "durable";

/// A small xorshift generator: random kill delays, seeded from the clock
/// and printed so that a failing run can be told apart.
struct Rng(u64);

impl Rng {
    fn seeded() -> Self {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        Rng(t | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A delay between `lo` and `hi`.
    fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let span = (hi - lo).as_millis() as u64;
        lo + Duration::from_millis(self.next() % (span + 1))
    }
}

fn config(listen: u16, influx: u16, buffer_dir: &Path, internal: &Path) -> String {
    format!(
        r#"[agent]
  interval = "1s"
  round_interval = false
  flush_interval = "200ms"
  metric_batch_size = 5000
  metric_buffer_limit = 20000000
  omit_hostname = true
[[inputs.influxdb_listener]]
  service_address = "127.0.0.1:{listen}"
  acknowledge = "durable"
  max_concurrent_writes = {SENDERS}
[[inputs.internal]]
[[outputs.influxdb]]
  urls = ["http://127.0.0.1:{influx}"]
  database = "{DB}"
  timeout = "2s"
  namepass = ["durable"]
  buffer_strategy = "disk"
  buffer_directory = "{}"
[[outputs.file]]
  files = ["{}"]
  namepass = ["internal_write"]
"#,
        buffer_dir.display(),
        internal.display()
    )
}

/// What the senders did, by body number (body k holds the sequence
/// numbers k*500 .. k*500+499).
#[derive(Default)]
struct Ledger {
    attempted: Mutex<BTreeSet<u64>>,
    acked: Mutex<BTreeSet<u64>>,
    refused: AtomicU64,
    answered_other: AtomicU64,
}

fn body(k: u64, run: &str) -> String {
    let mut s = String::with_capacity(LINES_PER_BODY as usize * 40);
    for n in k * LINES_PER_BODY..(k + 1) * LINES_PER_BODY {
        s += &format!("durable,run={run} seq={n}i {n}\n");
    }
    s
}

/// Senders posting body after body on a fixed schedule (body k is due
/// at k × [`BODY_EVERY`]) until `stop`, each body once.
fn start_senders(
    port: u16,
    run: String,
    ledger: Arc<Ledger>,
    stop: Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<()>> {
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    (0..SENDERS)
        .map(|_| {
            let (next, ledger, stop, run) =
                (next.clone(), ledger.clone(), stop.clone(), run.clone());
            std::thread::spawn(move || {
                let client = http_client(Duration::from_secs(45));
                let url = format!("http://127.0.0.1:{port}/write?db={DB}");
                while !stop.load(Ordering::Relaxed) {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let due = start + BODY_EVERY * k as u32;
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let text = body(k, &run);
                    ledger.attempted.lock().unwrap().insert(k);
                    match client.post(&url).body(text).send() {
                        Ok(r) if r.status().as_u16() == 204 => {
                            ledger.acked.lock().unwrap().insert(k);
                        }
                        Ok(_) => {
                            ledger.answered_other.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {
                            ledger.refused.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect()
}

fn start_graft(config: &Path, log: &Path) -> Child {
    graft()
        .args(["run", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(File::create(log).unwrap())
        .spawn()
        .unwrap()
}

fn logs(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n--- restart ---\n")
}

fn count(influx: &InfluxD) -> u64 {
    influx
        .try_query(DB, "SELECT count(seq) FROM durable")
        .ok()
        .and_then(|v| v["results"][0]["series"][0]["values"][0][1].as_u64())
        .unwrap_or(0)
}

/// Every sequence number stored, read in time ranges (time = number).
fn stored(influx: &InfluxD, upto: u64) -> BTreeSet<u64> {
    const PAGE: u64 = 200_000;
    let mut seqs = BTreeSet::new();
    let mut from = 0;
    while from < upto {
        let v = influx.query(
            DB,
            &format!(
                "SELECT seq FROM durable WHERE time >= {from} AND time < {}",
                from + PAGE
            ),
        );
        for row in v["results"][0]["series"][0]["values"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let (t, s) = (row[0].as_u64().unwrap(), row[1].as_u64().unwrap());
            assert_eq!(t, s, "the point of seq {s} has its own number as time");
            seqs.insert(s);
        }
        from += PAGE;
    }
    seqs
}

#[test]
fn every_acknowledged_metric_survives_repeated_kill_9() {
    let began = Instant::now();
    let mut rng = Rng::seeded();
    println!("seed {}", rng.0);
    // influxd's port is reserved by starting it once; it stays down until
    // the end.
    let mut influx = InfluxD::start();
    influx.stop();
    let dir = tempfile::tempdir().unwrap();
    let buffer_dir = dir.path().join("buffers");
    let internal = dir.path().join("internal.out");
    let config_path = dir.path().join("graft.toml");
    let listen = free_port();
    std::fs::write(
        &config_path,
        config(listen, influx.port, &buffer_dir, &internal),
    )
    .unwrap();

    let ledger = Arc::new(Ledger::default());
    let halt = Arc::new(AtomicBool::new(false));
    let run = format!("r{}", std::process::id());
    let mut log_paths = Vec::new();
    let mut lives = Vec::new();
    let mut senders = None;
    let mut child = None;
    for life in 0..=KILLS {
        let log = dir.path().join(format!("graft-{life}.log"));
        let mut c = start_graft(&config_path, &log);
        log_paths.push(log);
        let up = Instant::now();
        while !listening(listen) {
            if let Ok(Some(status)) = c.try_wait() {
                panic!("graft exited with {status}:\n{}", logs(&log_paths));
            }
            assert!(
                up.elapsed() < Duration::from_secs(30),
                "graft did not listen within 30 s:\n{}",
                logs(&log_paths)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let started_in = up.elapsed();
        if senders.is_none() {
            senders = Some(start_senders(
                listen,
                run.clone(),
                ledger.clone(),
                halt.clone(),
            ));
        }
        let acked_before = ledger.acked.lock().unwrap().len();
        if life == KILLS {
            std::thread::sleep(Duration::from_secs(2));
            child = Some(c);
            lives.push(format!("life {life}: listening after {started_in:?}, kept"));
            break;
        }
        let delay = rng.between(Duration::from_millis(500), Duration::from_secs(3));
        std::thread::sleep(delay);
        kill9(&mut c);
        let sample = internal_write(&internal, "influxdb");
        lives.push(format!(
            "life {life}: listening after {started_in:?}, killed after {delay:?}; {} bodies acknowledged meanwhile; last internal_write {:?}",
            ledger.acked.lock().unwrap().len() - acked_before,
            sample.map(|s| s.fields)
        ));
    }
    halt.store(true, Ordering::Relaxed);
    for s in senders.take().unwrap() {
        s.join().unwrap();
    }
    let mut child = child.unwrap();
    let attempted = ledger.attempted.lock().unwrap().clone();
    let acked = ledger.acked.lock().unwrap().clone();
    let last_body = *attempted.last().unwrap();
    let fed = began.elapsed();

    influx.resume();
    // Wait until InfluxDB holds every acknowledged point and the count has
    // stopped growing.
    let drain = Instant::now();
    let (mut last, mut since) = (0, Instant::now());
    loop {
        let n = count(&influx);
        if n != last {
            (last, since) = (n, Instant::now());
        }
        let quiet = since.elapsed();
        if (n >= acked.len() as u64 * LINES_PER_BODY && quiet > Duration::from_secs(3))
            || quiet > Duration::from_secs(20)
        {
            break;
        }
        assert!(
            drain.elapsed() < Duration::from_secs(90),
            "InfluxDB still growing after 90 s: {n} points"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let drained_in = since.duration_since(drain);
    let (status, _) = stop(&mut child, Duration::from_secs(30));
    let got = stored(&influx, (last_body + 1) * LINES_PER_BODY);

    let seqs_of = |k: &u64| k * LINES_PER_BODY..(k + 1) * LINES_PER_BODY;
    let missing: Vec<u64> = acked
        .iter()
        .flat_map(seqs_of)
        .filter(|n| !got.contains(n))
        .collect();
    let never_sent: Vec<u64> = got
        .iter()
        .copied()
        .filter(|n| !attempted.contains(&(n / LINES_PER_BODY)))
        .collect();
    let unacked_stored = got
        .iter()
        .filter(|n| !acked.contains(&(*n / LINES_PER_BODY)))
        .count();
    let summary = format!(
        "{}\nbodies of {LINES_PER_BODY}: sent {} (refused or reset {}, answered other than 204 {}), acknowledged {} ({} metrics); \
         stored {} metrics, of them {unacked_stored} from bodies never acknowledged (at most the duplicates a client retry would add); \
         fed in {fed:?}, drained in {drained_in:?}, whole test {:?}",
        lives.join("\n"),
        attempted.len(),
        ledger.refused.load(Ordering::Relaxed),
        ledger.answered_other.load(Ordering::Relaxed),
        acked.len(),
        acked.len() as u64 * LINES_PER_BODY,
        got.len(),
        began.elapsed()
    );
    println!("{summary}");
    assert!(
        missing.is_empty(),
        "{} acknowledged metrics are not in InfluxDB (first {:?}):\n{summary}\n{}",
        missing.len(),
        &missing[..missing.len().min(20)],
        logs(&log_paths)
    );
    assert!(
        never_sent.is_empty(),
        "InfluxDB holds numbers never sent: {:?}",
        &never_sent[..never_sent.len().min(20)]
    );
    assert!(
        acked.len() * 5 >= attempted.len(),
        "the listener acknowledged too little to prove anything:\n{summary}\n{}",
        logs(&log_paths)
    );
    assert!(status.success(), "{status}:\n{}", logs(&log_paths));
    assert!(
        began.elapsed() < Duration::from_secs(180),
        "the test took {:?}",
        began.elapsed()
    );
}
