//! What a process costs, read from `/proc`: CPU time per thread (from
//! `schedstat`, in nanoseconds, read often enough to catch threads that
//! exit) and resident memory (`status`, `smaps_rollup`).

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{Context, Result, bail};

/// CPU time of one process since [`CpuMeter::start`]. The figure is the sum
/// over its threads of the time each spent on a CPU (`schedstat`), which is
/// exact to the nanosecond; `/proc/<pid>/stat` (utime + stime, in clock
/// ticks, children included) is kept as a cross-check.
pub struct CpuMeter {
    pid: u32,
    /// Per thread: time on CPU when first seen in the window (0 for threads
    /// born in it) and the latest reading.
    threads: HashMap<u32, (u64, u64)>,
    /// Time of threads that vanished or whose id was reused.
    gone_ns: u64,
    ticks_at_start: u64,
    tick_hz: f64,
}

impl CpuMeter {
    /// Start counting now.
    pub fn start(pid: u32) -> Result<Self> {
        let mut threads = HashMap::new();
        for (tid, ns) in thread_times(pid)? {
            threads.insert(tid, (ns, ns));
        }
        Ok(Self {
            pid,
            threads,
            gone_ns: 0,
            ticks_at_start: stat_ticks(pid)?,
            tick_hz: tick_hz(),
        })
    }

    /// Read every thread again. Call at least once a second while threads
    /// may come and go, so that an exiting thread loses at most its last
    /// moments.
    pub fn sample(&mut self) {
        let Ok(now) = thread_times(self.pid) else {
            return;
        };
        for (tid, ns) in now {
            match self.threads.get_mut(&tid) {
                Some((first, latest)) if ns >= *latest => *latest = ns,
                Some((first, latest)) => {
                    // The id now belongs to a new thread.
                    self.gone_ns += *latest - *first;
                    (*first, *latest) = (0, ns);
                }
                None => {
                    self.threads.insert(tid, (0, ns));
                }
            }
        }
    }

    /// CPU seconds since the start, from `schedstat`.
    pub fn seconds(&mut self) -> f64 {
        self.sample();
        let ns: u64 = self.threads.values().map(|(f, l)| l - f).sum::<u64>() + self.gone_ns;
        ns as f64 / 1e9
    }

    /// CPU seconds since the start from `/proc/<pid>/stat` (clock ticks).
    pub fn tick_seconds(&self) -> f64 {
        let now = stat_ticks(self.pid).unwrap_or(self.ticks_at_start);
        now.saturating_sub(self.ticks_at_start) as f64 / self.tick_hz
    }
}

/// Time on CPU of every thread of `pid`, in nanoseconds.
fn thread_times(pid: u32) -> Result<Vec<(u32, u64)>> {
    let dir = format!("/proc/{pid}/task");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
        let entry = entry?;
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        // A thread may exit between the listing and the read.
        if let Ok(text) = std::fs::read_to_string(entry.path().join("schedstat"))
            && let Some(ns) = text.split_whitespace().next().and_then(|s| s.parse().ok())
        {
            out.push((tid, ns));
        }
    }
    Ok(out)
}

/// utime + stime + cutime + cstime of `pid`, in clock ticks.
pub fn stat_ticks(pid: u32) -> Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("process {pid} is gone"))?;
    parse_stat_ticks(&text)
}

fn parse_stat_ticks(text: &str) -> Result<u64> {
    // The name (field 2) may hold spaces and parentheses: count from the
    // last `)`. After it, field 3 is at index 0, so utime (14) is at 11.
    let Some(close) = text.rfind(')') else {
        bail!("unexpected /proc/<pid>/stat: {text}");
    };
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let mut sum = 0;
    for i in 11..15 {
        sum += fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .with_context(|| format!("unexpected /proc/<pid>/stat: {text}"))?;
    }
    Ok(sum)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
fn tick_hz() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The whole machine's CPU time so far, in clock ticks: (busy, all).
pub fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().next() else {
        return (0, 0);
    };
    // cpu  user nice system idle iowait irq softirq steal ...
    let n: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let all: u64 = n.iter().take(8).sum();
    let idle = n.get(3).copied().unwrap_or(0) + n.get(4).copied().unwrap_or(0);
    (all - idle, all)
}

/// The share of CPU time that was busy between two [`machine_ticks`].
pub fn busy_share(before: (u64, u64), after: (u64, u64)) -> f64 {
    (after.0.saturating_sub(before.0)) as f64 / (after.1.saturating_sub(before.1)).max(1) as f64
}

/// Bytes a process caused to be written to storage so far, from
/// `/proc/<pid>/io`: (`write_bytes`, `cancelled_write_bytes`). Pages are
/// counted when dirtied; those of a file deleted before they reached the
/// disk are counted again as cancelled.
pub fn io_written(pid: u32) -> Result<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io"))
        .with_context(|| format!("reading /proc/{pid}/io"))?;
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("no {key} in /proc/{pid}/io"))
    };
    Ok((field("write_bytes:")?, field("cancelled_write_bytes:")?))
}

/// Resident memory of one process, in KiB.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Memory {
    /// `VmRSS`: every page mapped in, shared or not (what `ps` and `top`
    /// show).
    pub rss: u64,
    /// `RssAnon`: heap, stacks, dirtied copies: the process's own.
    pub anon: u64,
    /// `RssFile`: pages of the program and libraries mapped from files.
    pub file: u64,
    /// `Pss`: each page divided by the number of processes that map it.
    pub pss: u64,
    /// Threads.
    pub threads: u64,
}

impl Memory {
    /// Read it now.
    pub fn of(pid: u32) -> Result<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("process {pid} is gone"))?;
        let rollup =
            std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
        Ok(Self {
            rss: kib(&status, "VmRSS:"),
            anon: kib(&status, "RssAnon:"),
            file: kib(&status, "RssFile:") + kib(&status, "RssShmem:"),
            pss: kib(&rollup, "Pss:"),
            threads: kib(&status, "Threads:"),
        })
    }
}

/// The number after `key` on its line (`VmRSS:   1234 kB`), or 0.
fn kib(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Resident pages of `binary` mapped by `pid`, in KiB per ELF section
/// (largest first): where a program's file-backed memory goes.
pub fn resident_by_section(pid: u32, binary: &Path) -> Result<Vec<(String, u64)>> {
    let binary = binary.canonicalize()?;
    let sections = crate::elf::sections(&binary)?;
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))?;
    let mut regions = Vec::new();
    for line in maps.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.len() < 6 || Path::new(parts[5]) != binary {
            continue;
        }
        let (Some((a, b)), Ok(off)) = (parts[0].split_once('-'), u64::from_str_radix(parts[2], 16))
        else {
            continue;
        };
        regions.push((
            u64::from_str_radix(a, 16)?,
            u64::from_str_radix(b, 16)?,
            off,
        ));
    }
    let Some(base) = regions.iter().map(|(a, _, off)| a - off).min() else {
        bail!("{} is not mapped by process {pid}", binary.display());
    };
    let mut file = std::fs::File::open(format!("/proc/{pid}/pagemap"))?;
    let mut by_name: HashMap<String, u64> = HashMap::new();
    for (start, end, _) in regions {
        let pages = ((end - start) / 4096) as usize;
        let mut buf = vec![0u8; pages * 8];
        file.seek(SeekFrom::Start(start / 4096 * 8))?;
        file.read_exact(&mut buf)?;
        for (i, entry) in buf.chunks_exact(8).enumerate() {
            let v = u64::from_le_bytes(entry.try_into().expect("8 bytes"));
            if v >> 63 == 0 {
                continue;
            }
            let addr = start + i as u64 * 4096 - base;
            let name = sections
                .iter()
                .find(|s| s.addr < addr + 4096 && addr < s.addr + s.size)
                .map_or("(headers)", |s| s.name.as_str());
            *by_name.entry(name.to_owned()).or_default() += 4;
        }
    }
    let mut out: Vec<_> = by_name.into_iter().collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_ticks_count_from_the_last_parenthesis() {
        let line = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 2 1 20 0 4 0 5 6 7";
        assert_eq!(parse_stat_ticks(line).unwrap(), 7 + 3 + 2 + 1);
        assert!(parse_stat_ticks("42 (x) S 1").is_err());
    }

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        let m = Memory::of(pid).unwrap();
        assert!(m.rss > 0 && m.rss >= m.anon && m.threads >= 1);
        let mut cpu = CpuMeter::start(pid).unwrap();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        assert!(cpu.seconds() > 0.0);
    }

    #[test]
    fn reads_what_this_process_wrote() {
        use std::io::Write as _;
        let pid = std::process::id();
        let (before, _) = io_written(pid).unwrap();
        // Beside the sources, on a disk (a tmpfs /tmp counts nothing).
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let mut f = std::fs::File::create(dir.path().join("x")).unwrap();
        f.write_all(&vec![7u8; 1 << 20]).unwrap();
        f.sync_all().unwrap();
        let (after, _) = io_written(pid).unwrap();
        assert!(after - before >= 1 << 20, "{before} then {after}");
    }

    #[test]
    fn kib_reads_status_lines() {
        let s = "Name:\tx\nVmRSS:\t  1234 kB\nThreads:\t3\n";
        assert_eq!(kib(s, "VmRSS:"), 1234);
        assert_eq!(kib(s, "Threads:"), 3);
        assert_eq!(kib(s, "RssAnon:"), 0);
    }
}
