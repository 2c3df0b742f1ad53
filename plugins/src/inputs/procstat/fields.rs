//! The `procstat` metric of one process: Telegraf's field names (with
//! `prefix`), gopsutil's types and units, and the tags `tag_with` asks for.

use std::time::Instant;

use graft_core::BatchBuilder;

use super::config::Settings;
use super::proc::{ProcDir, Status, Users, Value, status_name};

/// What every process's reading needs from the host, read once a gather.
#[derive(Debug, Clone, Copy, Default)]
pub struct Host {
    /// `MemTotal` in bytes (for `memory_usage`).
    pub mem_total: u64,
    /// `btime` of `/proc/stat`, seconds since the epoch.
    pub boot_time: u64,
    /// CPUs this process may run on, as Go's `runtime.NumCPU` (for
    /// `mode = "solaris"`).
    pub cpus: usize,
    /// Bytes per page (for `statm`).
    pub page_size: u64,
}

impl Host {
    pub fn read(proc: &std::path::Path) -> Self {
        let mem_total = std::fs::read_to_string(proc.join("meminfo"))
            .ok()
            .and_then(|t| Status::parse(&t).bytes("MemTotal"))
            .unwrap_or(0);
        let boot_time = std::fs::read_to_string(proc.join("stat"))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("btime "))
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0);
        let own = |file: &str| std::fs::read(format!("/proc/self/{file}")).ok();
        let cpus = own("status")
            .and_then(|t| cpus_allowed(&String::from_utf8_lossy(&t)))
            .unwrap_or(1);
        let page_size = own("auxv").and_then(|a| auxv_page_size(&a)).unwrap_or(4096);
        Self {
            mem_total,
            boot_time,
            cpus,
            page_size,
        }
    }
}

/// The CPUs of `Cpus_allowed_list` in a `status` file (the affinity mask
/// `sched_getaffinity` gives, which Go's `runtime.NumCPU` counts).
pub fn cpus_allowed(status: &str) -> Option<usize> {
    let list = Status::parse(status).get("Cpus_allowed_list")?.to_string();
    let mut n = 0usize;
    for range in list.split(',').filter(|r| !r.is_empty()) {
        let (lo, hi) = range.split_once('-').unwrap_or((range, range));
        let (lo, hi): (usize, usize) = (lo.trim().parse().ok()?, hi.trim().parse().ok()?);
        n = n.checked_add(hi.checked_sub(lo)?.checked_add(1)?)?;
    }
    (n > 0).then_some(n)
}

/// `AT_PAGESZ` of an `auxv` file (native-endian word pairs).
fn auxv_page_size(auxv: &[u8]) -> Option<u64> {
    const AT_PAGESZ: usize = 6;
    const WORD: usize = std::mem::size_of::<usize>();
    let word = |b: &[u8]| -> Option<usize> { Some(usize::from_ne_bytes(b.try_into().ok()?)) };
    let pair = auxv
        .chunks_exact(2 * WORD)
        .find(|pair| word(&pair[..WORD]) == Some(AT_PAGESZ))?;
    word(&pair[WORD..]).map(|v| v as u64)
}

/// A process as last seen: its start time (a pid reused by a new process
/// starts over) and its CPU seconds then.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    pub starttime: u64,
    pub cpu_seconds: f64,
    pub at: Instant,
}

/// One process's fields and tags, ready to emit.
pub struct Process {
    fields: Vec<(String, Value)>,
    tags: Vec<(&'static str, String)>,
    pub seen: Seen,
}

impl Process {
    /// Set a field, replacing one of the same name (Telegraf's map).
    fn set(&mut self, name: String, value: Value) {
        match self.fields.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => *v = value,
            None => self.fields.push((name, value)),
        }
    }

    /// Add the `procstat` metric: the selector's tags, then this process's.
    pub fn emit(&self, b: &mut BatchBuilder, ts: i64, s: &Settings, group: &[(&str, String)]) {
        let mut m = b.metric("procstat", ts);
        for (k, v) in group {
            m.tag(k, v);
        }
        for (k, v) in &self.tags {
            m.tag(k, v);
        }
        if !s.process_name.is_empty() {
            m.tag("process_name", &s.process_name);
        }
        for (k, v) in &self.fields {
            match v {
                Value::Int(x) => m.field(k, *x),
                Value::Uint(x) => m.field(k, *x),
                Value::Float(x) => m.field(k, *x),
                Value::Str(x) => m.field(k, x.as_str()),
            };
        }
    }
}

/// gopsutil's names of `/proc/<pid>/limits` lines, as Telegraf maps them.
const LIMITS: [(&str, &str); 11] = [
    ("Max cpu time", "cpu_time"),
    ("Max data size", "memory_data"),
    ("Max stack size", "memory_stack"),
    ("Max resident set", "memory_rss"),
    ("Max open files", "num_fds"),
    ("Max locked memory", "memory_locked"),
    ("Max address space", "memory_vms"),
    ("Max file locks", "file_locks"),
    ("Max pending signals", "signals_pending"),
    ("Max nice priority", "nice_priority"),
    ("Max realtime priority", "realtime_priority"),
];

/// `smaps` keys and Telegraf's field names (values in kB, as gopsutil).
const SMAPS: [(&str, &str); 9] = [
    ("Size", "memory_size"),
    ("Pss", "memory_pss"),
    ("Shared_Clean", "memory_shared_clean"),
    ("Shared_Dirty", "memory_shared_dirty"),
    ("Private_Clean", "memory_private_clean"),
    ("Private_Dirty", "memory_private_dirty"),
    ("Referenced", "memory_referenced"),
    ("Anonymous", "memory_anonymous"),
    ("Swap", "memory_swap"),
];

/// Read one process; `None` when it is gone (or has no name, which
/// Telegraf takes for gone too).
pub fn read(
    dir: &ProcDir,
    s: &Settings,
    users: &Users,
    host: &Host,
    last: Option<&Seen>,
    now: Instant,
) -> Option<Process> {
    let stat = dir.stat().ok()?;
    let status = Status::parse(&dir.read("status").ok()?);
    let args = dir.cmdline_args();
    let name = dir.name(&status, &args);
    if name.is_empty() {
        return None;
    }
    let (user_s, sys_s) = stat.cpu_seconds();
    let mut p = Process {
        fields: Vec::with_capacity(48),
        tags: Vec::new(),
        seen: Seen {
            starttime: stat.starttime,
            cpu_seconds: user_s + sys_s,
            at: now,
        },
    };
    let prefix = if s.prefix.is_empty() {
        String::new()
    } else {
        format!("{}_", s.prefix)
    };
    let pre = |f: &str| format!("{prefix}{f}");
    if let Some(n) = status.int("Threads") {
        p.set(pre("num_threads"), Value::Int(n));
    }
    let fds = dir.num_fds();
    if let Some(n) = fds {
        p.set(pre("num_fds"), Value::Int(n));
    }
    if let (Some(v), Some(i)) = (
        status.int("voluntary_ctxt_switches"),
        status.int("nonvoluntary_ctxt_switches"),
    ) {
        p.set(pre("voluntary_context_switches"), Value::Int(v));
        p.set(pre("involuntary_context_switches"), Value::Int(i));
    }
    p.set(pre("minor_faults"), Value::Uint(stat.minflt));
    p.set(pre("major_faults"), Value::Uint(stat.majflt));
    p.set(pre("child_minor_faults"), Value::Uint(stat.cminflt));
    p.set(pre("child_major_faults"), Value::Uint(stat.cmajflt));
    if let Some(io) = dir.io() {
        let get = |k: &str| io.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
        for (key, field) in [
            ("syscr", "read_count"),
            ("syscw", "write_count"),
            ("rchar", "read_bytes"),
            ("wchar", "write_bytes"),
            ("read_bytes", "disk_read_bytes"),
            ("write_bytes", "disk_write_bytes"),
        ] {
            if let Some(v) = get(key) {
                p.set(pre(field), Value::Uint(v));
            }
        }
    }
    p.set(
        pre("created_at"),
        Value::Int(stat.created_ms(host.boot_time).saturating_mul(1_000_000)),
    );
    if s.cpu {
        p.set(pre("cpu_time_user"), Value::Float(user_s));
        p.set(pre("cpu_time_system"), Value::Float(sys_s));
        p.set(
            pre("cpu_time_iowait"),
            Value::Float(stat.blkio as f64 / 100.0),
        );
        if let Some(last) = last.filter(|l| l.starttime == stat.starttime) {
            let wall = now.duration_since(last.at).as_secs_f64();
            let used = p.seen.cpu_seconds - last.cpu_seconds;
            let mut usage = if wall > 0.0 && used > 0.0 {
                used / wall * 100.0
            } else {
                0.0
            };
            if s.solaris {
                usage /= host.cpus as f64;
            }
            p.set(pre("cpu_usage"), Value::Float(usage));
        }
    }
    let statm = dir.statm(host.page_size);
    let (vms, rss) = (statm.map(|m| m.0), statm.map(|m| m.1));
    if s.memory
        && let (Some(rss), Some(vms)) = (rss, vms)
    {
        p.set(pre("memory_rss"), Value::Uint(rss));
        p.set(pre("memory_vms"), Value::Uint(vms));
        if host.mem_total > 0 {
            let pct = 100.0 * rss as f32 / host.mem_total as f32;
            p.set(pre("memory_usage"), Value::Float(f64::from(pct)));
        }
    }
    if s.mmap
        && let Some(smaps) = dir.smaps()
    {
        for (key, field) in SMAPS {
            let v = smaps.iter().find(|(n, _)| n == key).map_or(0, |(_, v)| *v);
            p.set(pre(field), Value::Uint(v));
        }
    }
    if s.limits
        && let Some(limits) = dir.limits()
    {
        for (line, name) in LIMITS {
            let Some((_, soft, hard)) = limits.iter().find(|(n, ..)| n == line) else {
                continue;
            };
            p.set(pre(&format!("rlimit_{name}_soft")), Value::Uint(*soft));
            p.set(pre(&format!("rlimit_{name}_hard")), Value::Uint(*hard));
            let used = match name {
                "cpu_time" => Some((user_s + sys_s) as u64),
                "memory_data" => status.bytes("VmData"),
                "memory_stack" => status.bytes("VmStk"),
                "memory_rss" => rss,
                "num_fds" => fds.map(|n| n as u64),
                "memory_locked" => status.bytes("VmLck"),
                "memory_vms" => vms,
                "signals_pending" => status
                    .get("ShdPnd")
                    .and_then(|v| v.get(v.len().saturating_sub(16)..))
                    .and_then(|v| u64::from_str_radix(v, 16).ok()),
                // getpriority(2)'s raw value, as gopsutil reads it.
                "nice_priority" => Some(20i64.saturating_sub(stat.nice) as u64),
                "realtime_priority" => Some(if stat.priority < 0 {
                    (-1i64).saturating_sub(stat.priority) as u64
                } else {
                    0
                }),
                _ => None,
            };
            if let Some(used) = used {
                p.set(pre(name), Value::Uint(used));
            }
        }
    }
    let cmdline = args.join(" ");
    if s.tag_cmdline {
        p.tags.push(("cmdline", cmdline));
    } else {
        p.set(pre("cmdline"), Value::Str(cmdline));
    }
    if s.tag_pid {
        p.tags.push(("pid", dir.pid.to_string()));
    } else {
        p.set("pid".into(), Value::Int(i64::from(dir.pid)));
    }
    if s.tag_ppid {
        p.tags.push(("ppid", stat.ppid.to_string()));
    } else {
        p.set(pre("ppid"), Value::Int(stat.ppid));
    }
    let state = status_name(stat.state);
    if s.tag_status {
        p.tags.push(("status", state.to_string()));
    } else {
        p.set(pre("status"), Value::Str(state.to_string()));
    }
    if let Some(uid) = status.uid(0) {
        let user = users.name(uid);
        if s.tag_user {
            p.tags.push(("user", user));
        } else {
            p.set(pre("user"), Value::Str(user));
        }
    }
    p.tags.push(("process_name", name));
    Some(p)
}
