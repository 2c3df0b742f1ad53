//! One process read from `/proc/<pid>`: the files Telegraf's procstat reads
//! through gopsutil (`stat`, `status`, `cmdline`, `io`, `fd`, `limits`,
//! `smaps_rollup`), with gopsutil's units and types.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result, bail};

/// Ticks per second of `/proc/<pid>/stat` times (USER_HZ).
const USER_HZ: u64 = 100;

/// A field value, owned (`procstat` builds its metric once all are read).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
}

/// `/proc/<pid>/stat`, the fields procstat uses (numbered as in proc(5)).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stat {
    /// (2) comm, without the parentheses.
    pub comm: String,
    /// (3) state letter.
    pub state: char,
    /// (4)
    pub ppid: i64,
    /// (10)..(13)
    pub minflt: u64,
    pub cminflt: u64,
    pub majflt: u64,
    pub cmajflt: u64,
    /// (14), (15) in ticks.
    pub utime: u64,
    pub stime: u64,
    /// (18) priority, (19) nice.
    pub priority: i64,
    pub nice: i64,
    /// (22) start time, ticks after boot.
    pub starttime: u64,
    /// (42) delayacct_blkio_ticks, 0 when absent.
    pub blkio: u64,
}

impl Stat {
    /// Parse a `stat` file; the comm may hold spaces and parentheses, so
    /// it runs to the last `)`.
    pub fn parse(text: &str) -> Result<Self> {
        let open = text.find('(').context("no ( in stat")?;
        let close = text.rfind(')').context("no ) in stat")?;
        if close < open {
            bail!("malformed stat");
        }
        // rest[0] is field (3).
        let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
        let f = |n: usize| -> Result<&str> {
            rest.get(n - 3)
                .copied()
                .with_context(|| format!("stat has no field {n}"))
        };
        let u = |n: usize| -> Result<u64> { Ok(f(n)?.parse()?) };
        let i = |n: usize| -> Result<i64> { Ok(f(n)?.parse()?) };
        Ok(Self {
            comm: text[open + 1..close].to_string(),
            state: f(3)?.chars().next().unwrap_or('?'),
            ppid: i(4)?,
            minflt: u(10)?,
            cminflt: u(11)?,
            majflt: u(12)?,
            cmajflt: u(13)?,
            utime: u(14)?,
            stime: u(15)?,
            priority: i(18)?,
            nice: i(19)?,
            starttime: u(22)?,
            blkio: f(42).ok().and_then(|v| v.parse().ok()).unwrap_or(0),
        })
    }

    /// User and system CPU seconds.
    pub fn cpu_seconds(&self) -> (f64, f64) {
        (
            self.utime as f64 / USER_HZ as f64,
            self.stime as f64 / USER_HZ as f64,
        )
    }

    /// Creation time in ms since the epoch, as gopsutil computes it.
    pub fn created_ms(&self, boot_time_s: u64) -> i64 {
        let ms = (self.starttime.saturating_mul(1000) / USER_HZ)
            .saturating_add(boot_time_s.saturating_mul(1000));
        i64::try_from(ms).unwrap_or(i64::MAX)
    }
}

/// gopsutil's name for a state letter (`status` field or tag).
pub fn status_name(letter: char) -> &'static str {
    match letter {
        'A' => "daemon",
        'D' | 'U' => "blocked",
        'E' => "detached",
        'I' => "idle",
        'L' => "lock",
        'O' => "orphan",
        'R' => "running",
        'S' => "sleep",
        'T' | 't' => "stop",
        'W' => "wait",
        'Y' => "system",
        'Z' => "zombie",
        _ => "",
    }
}

/// `/proc/<pid>/status` as `key -> value` (value trimmed).
pub struct Status(Vec<(String, String)>);

impl Status {
    pub fn parse(text: &str) -> Self {
        Self(
            text.lines()
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.to_string(), v.trim().to_string()))
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A `kB` line in bytes.
    pub fn bytes(&self, key: &str) -> Option<u64> {
        let v = self.get(key)?.trim_end_matches("kB").trim();
        v.parse::<u64>().ok()?.checked_mul(1024)
    }

    pub fn int(&self, key: &str) -> Option<i64> {
        self.get(key)?.parse().ok()
    }

    /// The `n`th uid of the `Uid` line (0 real, 1 effective).
    pub fn uid(&self, n: usize) -> Option<u32> {
        self.get("Uid")?.split_whitespace().nth(n)?.parse().ok()
    }
}

/// A process's `/proc` directory.
#[derive(Debug, Clone)]
pub struct ProcDir {
    pub pid: i32,
    pub dir: PathBuf,
}

impl ProcDir {
    pub fn new(proc: &Path, pid: i32) -> Self {
        Self {
            pid,
            dir: proc.join(pid.to_string()),
        }
    }

    pub fn read(&self, file: &str) -> std::io::Result<String> {
        std::fs::read_to_string(self.dir.join(file))
    }

    pub fn stat(&self) -> Result<Stat> {
        Stat::parse(&self.read("stat")?)
    }

    /// The arguments, NUL-separated in the file; empty ones are left out,
    /// as gopsutil's `Cmdline` does.
    pub fn cmdline_args(&self) -> Vec<String> {
        let Ok(raw) = std::fs::read(self.dir.join("cmdline")) else {
            return Vec::new();
        };
        raw.split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }

    /// `statm`'s total and resident sizes in bytes, as gopsutil's
    /// `MemoryInfo` reads them (zeros for a kernel thread).
    pub fn statm(&self, page_size: u64) -> Option<(u64, u64)> {
        let text = self.read("statm").ok()?;
        let mut pages = text.split_whitespace().map(|v| v.parse::<u64>().ok());
        let vms = pages.next()??.checked_mul(page_size)?;
        let rss = pages.next()??.checked_mul(page_size)?;
        Some((vms, rss))
    }

    /// The name gopsutil gives: `status`'s `Name`, or the base name of
    /// argv\[0\] when the name was cut at 15 bytes and argv\[0\] extends it.
    pub fn name(&self, status: &Status, args: &[String]) -> String {
        let name = status.get("Name").unwrap_or("").to_string();
        if name.len() >= 15
            && let Some(a0) = args.first()
        {
            let base = a0.rsplit('/').next().unwrap_or(a0);
            if base.starts_with(&name) {
                return base.to_string();
            }
        }
        name
    }

    /// Entries of `fd/`.
    pub fn num_fds(&self) -> Option<i64> {
        Some(std::fs::read_dir(self.dir.join("fd")).ok()?.count() as i64)
    }

    /// `io` as `key -> value`.
    pub fn io(&self) -> Option<Vec<(String, u64)>> {
        let text = self.read("io").ok()?;
        Some(
            text.lines()
                .filter_map(|l| l.split_once(':'))
                .filter_map(|(k, v)| Some((k.to_string(), v.trim().parse().ok()?)))
                .collect(),
        )
    }

    /// `smaps_rollup` (else `smaps`) summed, in kB as gopsutil reports
    /// them: Size, Pss, Shared_Clean, ... by name.
    pub fn smaps(&self) -> Option<Vec<(String, u64)>> {
        let text = self
            .read("smaps_rollup")
            .or_else(|_| self.read("smaps"))
            .ok()?;
        let mut sums: Vec<(String, u64)> = Vec::new();
        for line in text.lines() {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let Ok(v) = v.trim().trim_end_matches("kB").trim().parse::<u64>() else {
                continue;
            };
            match sums.iter_mut().find(|(n, _)| n == k) {
                Some((_, s)) => *s = s.saturating_add(v),
                None => sums.push((k.to_string(), v)),
            }
        }
        Some(sums)
    }

    /// `limits`: (name, soft, hard), "unlimited" as `u64::MAX`.
    pub fn limits(&self) -> Option<Vec<(String, u64, u64)>> {
        let text = self.read("limits").ok()?;
        let lim = |v: &str| -> Option<u64> {
            if v == "unlimited" {
                Some(u64::MAX)
            } else {
                v.parse().ok()
            }
        };
        let mut out = Vec::new();
        for line in text.lines().skip(1) {
            let words: Vec<&str> = line.split_whitespace().collect();
            // "Max open files  1024  4096  files": the unit is optional.
            let (soft, hard, name_end) = match words.len() {
                n if n >= 4 && lim(words[n - 1]).is_none() => (words[n - 3], words[n - 2], n - 3),
                n if n >= 3 => (words[n - 2], words[n - 1], n - 2),
                _ => continue,
            };
            if let (Some(s), Some(h)) = (lim(soft), lim(hard)) {
                out.push((words[..name_end].join(" "), s, h));
            }
        }
        Some(out)
    }
}

/// The user names of `/etc/passwd` by uid; a uid not there is its number,
/// as Telegraf reports it. Read again when the file's mtime changes.
#[derive(Debug, Default, Clone)]
pub struct Users {
    entries: Vec<(u32, String)>,
    /// The file and its mtime when read (none for parsed text).
    source: Option<(PathBuf, Option<SystemTime>)>,
}

impl Users {
    pub fn load() -> Self {
        Self::from_file(Path::new("/etc/passwd"))
    }

    pub fn from_file(path: &Path) -> Self {
        let mut users = Self {
            entries: Vec::new(),
            source: Some((path.to_path_buf(), None)),
        };
        users.reload();
        users
    }

    /// Read the file again if its mtime is not the one last read.
    pub fn refresh(&mut self) {
        let Some((path, mtime)) = &self.source else {
            return;
        };
        if modified(path) != *mtime {
            self.reload();
        }
    }

    fn reload(&mut self) {
        let Some((path, _)) = &self.source else {
            return;
        };
        let path = path.clone();
        let mtime = modified(&path);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        self.entries = Self::parse(&text).entries;
        self.source = Some((path, mtime));
    }

    pub fn parse(text: &str) -> Self {
        Self {
            entries: text
                .lines()
                .filter_map(|l| {
                    let mut p = l.split(':');
                    let name = p.next()?;
                    let uid = p.nth(1)?.parse().ok()?;
                    Some((uid, name.to_string()))
                })
                .collect(),
            source: None,
        }
    }

    pub fn name(&self, uid: u32) -> String {
        self.entries
            .iter()
            .find(|(u, _)| *u == uid)
            .map_or_else(|| uid.to_string(), |(_, n)| n.clone())
    }

    /// The uid of a name or a number.
    pub fn uid(&self, user: &str) -> Option<u32> {
        self.entries
            .iter()
            .find(|(_, n)| n == user)
            .map(|(u, _)| *u)
            .or_else(|| user.parse().ok())
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).ok()?.modified().ok()
}
