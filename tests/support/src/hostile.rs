//! Helpers for attacking a running agent from a test: its resident memory
//! watched while it is attacked, the test's own open-file limit raised, and
//! what landed in an `outputs.file` read back (distinct sequence numbers,
//! the latest `internal_gather` counters of an input).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Resident memory of process `pid` in KiB (`VmRSS`), 0 once it is gone.
pub fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Samples a process's resident memory every 20 ms and keeps the peak.
pub struct RssWatch {
    peak: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RssWatch {
    /// Start watching `pid`.
    pub fn start(pid: u32) -> Self {
        let peak = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let (p, d) = (peak.clone(), done.clone());
        let thread = std::thread::spawn(move || {
            while !d.load(Ordering::Relaxed) {
                p.fetch_max(rss_kb(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Self {
            peak,
            done,
            thread: Some(thread),
        }
    }

    /// The highest resident memory seen so far, in KiB.
    pub fn peak_kb(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    /// The peak since the last call (or the start), starting a new period
    /// at the current resident memory.
    pub fn take_peak_kb(&self, pid: u32) -> u64 {
        self.peak.swap(rss_kb(pid), Ordering::Relaxed)
    }
}

impl Drop for RssWatch {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Set this process's open-file limit (soft and hard) to `n` with
/// `prlimit`, so that it can hold thousands of sockets.
pub fn set_own_nofile(n: u64) {
    let status = Command::new("prlimit")
        .arg("--pid")
        .arg(std::process::id().to_string())
        .arg(format!("--nofile={n}:{n}"))
        .status()
        .expect("running prlimit (util-linux)");
    assert!(status.success(), "prlimit --nofile={n} failed");
}

/// The distinct values of the `value` field of metric `name` in an
/// `outputs.file` written in line protocol.
pub fn landed(out: &Path, name: &str) -> BTreeSet<i64> {
    let prefix = format!("{name} ");
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| {
            l.split([' ', ','])
                .find_map(|kv| kv.strip_prefix("value="))
                .and_then(|v| v.trim_end_matches('i').parse::<f64>().ok())
                .map(|v| v as i64)
        })
        .collect()
}

/// The latest `internal_gather` fields of the input aliased `alias`.
pub fn internal_gather(out: &Path, alias: &str) -> BTreeMap<String, i64> {
    let prefix = format!("internal_gather,alias={alias},");
    let text = std::fs::read_to_string(out).unwrap_or_default();
    let Some(line) = text.lines().rev().find(|l| l.starts_with(&prefix)) else {
        return BTreeMap::new();
    };
    line.split(' ')
        .nth(1)
        .unwrap_or("")
        .split(',')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.to_owned(), v.trim_end_matches('i').parse().ok()?))
        })
        .collect()
}
