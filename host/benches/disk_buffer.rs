//! What the disk buffer costs next to the memory buffer: a producer thread
//! adds 1000-metric batches while a consumer thread takes and commits
//! batches of 1000 (an output that keeps up: at most four batches wait), for the memory buffer and
//! for the disk buffer under each fsync policy; then the drain rate of a
//! backlog read back from the segment files. CPU is the whole process's
//! (user + system, from `/proc/self/stat`), so the writer thread counts.
//!
//! `cargo bench -p graft --bench disk_buffer` prints the table; under
//! `cargo test` it runs a small round of each and checks every metric came
//! through.

use std::sync::Arc;
use std::time::{Duration, Instant};

use graft::durable::{DEFAULT_SEGMENT_BYTES, DiskBuffer, DiskOptions, Fsync};
use graft::pipeline::buffer::memory::MemoryBuffer;
use graft_core::{Batch, BatchBuilder};

const BATCH: usize = 1000;

/// Seconds of CPU this process used so far (user + system).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("procfs");
    let after = &stat[stat.rfind(')').expect("a comm field") + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    // utime and stime are fields 14 and 15, i.e. 11 and 12 after the state.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

/// Batches shaped like Telegraf's cpu input: four tags, five float fields.
fn batches(count: usize) -> Vec<Arc<Batch>> {
    (0..count)
        .map(|b| {
            let mut out = BatchBuilder::new();
            for i in 0..BATCH {
                let seq = (b * BATCH + i) as i64;
                out.metric("cpu", seq)
                    .tag("host", "bench-host-01")
                    .tag("cpu", &format!("cpu{}", i % 8))
                    .tag("dc", "eu-west")
                    .tag("rack", "r12")
                    .field("usage_user", seq as f64 * 0.5)
                    .field("usage_system", 1.25)
                    .field("usage_idle", 97.5)
                    .field("usage_iowait", 0.25)
                    .field("seq", seq);
            }
            Arc::new(out.finish())
        })
        .collect()
}

/// The output keeps up: at most a few batches wait before the next add.
fn keep_up(waiting: impl Fn() -> usize) {
    while waiting() > 4 * BATCH {
        std::thread::sleep(Duration::from_micros(50));
    }
}

struct Run {
    metrics: u64,
    wall: Duration,
    cpu: f64,
}

impl Run {
    fn row(&self, name: &str, base_cpu: Option<f64>) {
        let per_million = self.cpu / self.metrics as f64 * 1e6;
        let ratio = base_cpu.map_or(String::new(), |b| format!("{:.2}x", per_million / b));
        println!(
            "{name:<26} {:>10.0} metrics/s {:>8.3} CPU-s per million {ratio:>6}",
            self.metrics as f64 / self.wall.as_secs_f64(),
            per_million,
        );
    }
}

fn run_memory(input: &[Arc<Batch>]) -> Run {
    let buf = Arc::new(MemoryBuffer::new(usize::MAX / 2, BATCH, Default::default()));
    let total = (input.len() * BATCH) as u64;
    let (cpu, start) = (cpu_seconds(), Instant::now());
    let consumer = {
        let buf = buf.clone();
        std::thread::spawn(move || {
            let mut seen = 0u64;
            while seen < total {
                match buf.take(BATCH) {
                    Some((b, acks)) => {
                        seen += b.len() as u64;
                        drop(acks);
                    }
                    None => std::thread::sleep(Duration::from_micros(100)),
                }
            }
        })
    };
    for b in input {
        keep_up(|| buf.len());
        buf.add(b.clone(), None);
    }
    consumer.join().unwrap();
    Run {
        metrics: total,
        wall: start.elapsed(),
        cpu: cpu_seconds() - cpu,
    }
}

fn options(dir: &std::path::Path, fsync: Fsync) -> DiskOptions {
    DiskOptions {
        dir: dir.to_owned(),
        limit_metrics: usize::MAX / 2,
        limit_bytes: u64::MAX,
        batch_size: BATCH,
        segment_bytes: DEFAULT_SEGMENT_BYTES,
        fsync,
    }
}

/// Take and commit until `total` metrics came through, checking order.
fn consume(buf: &DiskBuffer, total: u64) {
    let mut next = 0i64;
    while (next as u64) < total {
        match buf.take(BATCH) {
            Some((b, ticket)) => {
                for m in b.iter() {
                    assert_eq!(m.timestamp(), next, "in order, nothing lost");
                    next += 1;
                }
                buf.commit(ticket);
            }
            None => std::thread::sleep(Duration::from_micros(100)),
        }
    }
}

fn run_disk(input: &[Arc<Batch>], fsync: Fsync) -> (Run, u64) {
    let dir = tempfile::tempdir().unwrap();
    let (buf, _) = DiskBuffer::open(options(dir.path(), fsync), Default::default()).unwrap();
    let buf = Arc::new(buf);
    let total = (input.len() * BATCH) as u64;
    let (cpu, start) = (cpu_seconds(), Instant::now());
    let consumer = {
        let buf = buf.clone();
        std::thread::spawn(move || consume(&buf, total))
    };
    let mut peak_bytes = 0;
    for (i, b) in input.iter().enumerate() {
        keep_up(|| buf.len());
        buf.add(b.clone(), None);
        if i % 64 == 0 {
            peak_bytes = peak_bytes.max(buf.stats().bytes);
        }
    }
    consumer.join().unwrap();
    buf.close().unwrap();
    let run = Run {
        metrics: total,
        wall: start.elapsed(),
        cpu: cpu_seconds() - cpu,
    };
    (run, peak_bytes)
}

/// A backlog on disk, then read back and committed: metrics per second.
fn drain_rate(input: &[Arc<Batch>]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path(), Fsync::Interval(Duration::from_secs(1)));
    let (buf, _) = DiskBuffer::open(opts.clone(), Default::default()).unwrap();
    for b in input {
        buf.add(b.clone(), None);
    }
    buf.close().unwrap();
    drop(buf);
    let total = (input.len() * BATCH) as u64;
    let (cpu, start) = (cpu_seconds(), Instant::now());
    let (buf, recovery) = DiskBuffer::open(opts, Default::default()).unwrap();
    assert_eq!(recovery.metrics, total);
    consume(&buf, total);
    Run {
        metrics: total,
        wall: start.elapsed(),
        cpu: cpu_seconds() - cpu,
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let input = batches(if full { 2000 } else { 20 });
    // The codec's bytes, the frame header and the record header.
    let bytes = graft_core::batch::codec::encoded_len(&input[0]) + 8 + 12;
    println!(
        "{} metrics in batches of {BATCH}; {:.1} bytes written per metric (framing included)",
        input.len() * BATCH,
        bytes as f64 / BATCH as f64
    );
    let memory = run_memory(&input);
    let base = memory.cpu / memory.metrics as f64 * 1e6;
    memory.row("memory", None);
    for (name, fsync) in [
        (
            "disk, fsync 1 s (default)",
            Fsync::Interval(Duration::from_secs(1)),
        ),
        ("disk, fsync every batch", Fsync::Batch),
        ("disk, fsync never", Fsync::Never),
    ] {
        let (run, peak) = run_disk(&input, fsync);
        run.row(name, Some(base));
        println!(
            "{:<26} {:.1} MiB on disk at most",
            "",
            peak as f64 / (1 << 20) as f64
        );
    }
    drain_rate(&input).row("backlog drain (replay)", Some(base));
}
