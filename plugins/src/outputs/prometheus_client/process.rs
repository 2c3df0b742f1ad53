//! The `process` collector: graft's own process metrics, named as
//! Prometheus's Go client names them (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, ...), read from `/proc/self` at each
//! scrape. Served unless `collectors_exclude` holds `"process"`.

use graft_core::{Batch, BatchBuilder, MetricKind};

/// Ticks per second of `/proc/*/stat` (Linux's USER_HZ).
const USER_HZ: f64 = 100.0;

/// The process metrics now, as graft metrics of measurement `process`
/// (what metric version 2 names `process_<field>`); empty where `/proc`
/// cannot be read.
pub fn gather() -> Batch {
    let mut b = BatchBuilder::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    // `fields[0]` is field 3 of proc(5): state.
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    if let (Some(utime), Some(stime)) = (field(14), field(15)) {
        b.metric("process", now)
            .kind(MetricKind::Counter)
            .field("cpu_seconds_total", (utime + stime) / USER_HZ);
    }
    let mut m = b.metric("process", now);
    m.kind(MetricKind::Gauge);
    if let Some(vsize) = field(23) {
        m.field("virtual_memory_bytes", vsize);
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if let Some(kb) = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
    {
        m.field("resident_memory_bytes", kb * 1024.0);
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        m.field("open_fds", dir.count() as f64);
    }
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft = |name: &str| {
        limits.lines().find_map(|l| {
            let rest = l.strip_prefix(name)?.split_whitespace().next()?;
            Some(if rest == "unlimited" {
                u64::MAX as f64
            } else {
                rest.parse::<f64>().ok()?
            })
        })
    };
    if let Some(n) = soft("Max open files") {
        m.field("max_fds", n);
    }
    if let Some(n) = soft("Max address space") {
        m.field("virtual_memory_max_bytes", n);
    }
    let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<f64>().ok())
    });
    if let (Some(boot), Some(start)) = (boot, field(22)) {
        m.field("start_time_seconds", boot + start / USER_HZ);
    }
    drop(m);
    b.finish()
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_has_cpu_memory_and_files() {
        let batch = super::gather();
        let field = |k: &str| batch.iter().find_map(|m| m.field(k)?.as_f64());
        assert!(field("cpu_seconds_total").is_some_and(|v| v >= 0.0));
        assert!(field("resident_memory_bytes").is_some_and(|v| v > 1e5));
        assert!(field("open_fds").is_some_and(|v| v >= 3.0));
        assert!(field("max_fds").is_some_and(|v| v >= field("open_fds").unwrap()));
        let start = field("start_time_seconds").unwrap();
        assert!(start > 1e9, "{start}");
    }
}
