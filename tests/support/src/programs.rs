//! Test support for the inputs that run programs or read files
//! (`inputs.exec`, `inputs.execd`, `inputs.tail`): their compliance cases,
//! the pid of a running agent, and what landed in an `outputs.file` read
//! back by sequence number.

use std::collections::BTreeMap;
use std::path::Path;

use crate::compliance::{Case, Kind};

/// `inputs.exec` in the compliance run: a bad line then a good one.
pub fn exec_case() -> Case {
    let mut case = Case::new(
        Kind::Input,
        "exec",
        "  commands = [[\"printf\", \"not line protocol\\ncompliance_exec value=1i\\n\"]]\n  data_format = \"influx\"\n",
    );
    case.counts = Some("parse_errors");
    case.works = vec!["metrics_gathered"];
    case.lands = Some("compliance_exec");
    case
}

/// `inputs.execd` in the compliance run: a bad line then a good one.
pub fn execd_case() -> Case {
    let mut case = Case::new(
        Kind::Input,
        "execd",
        "  command = [\"sh\", \"-c\", \"printf 'not line protocol\\ncompliance_execd value=1i\\n'; exec sleep 300\"]\n",
    );
    case.counts = Some("parse_errors");
    case.works = vec!["metrics_gathered"];
    case.lands = Some("compliance_execd");
    case
}

/// `inputs.tail` in the compliance run: a file (in a directory left for
/// the run) with a bad line then a good one, read from its beginning.
pub fn tail_case() -> Case {
    let dir = tempfile::tempdir().expect("temporary directory").keep();
    let file = dir.join("compliance.log");
    std::fs::write(&file, "not line protocol\ncompliance_tail value=1i\n").expect("tail file");
    let mut case = Case::new(
        Kind::Input,
        "tail",
        format!(
            "  files = [\"{}\"]\n  initial_read_offset = \"beginning\"\n",
            file.display()
        ),
    );
    case.counts = Some("parse_errors");
    case.works = vec!["metrics_gathered"];
    case.lands = Some("compliance_tail");
    case
}

/// The pid of the `graft` process whose command line names `config`.
pub fn pid_of(config: &Path) -> Option<u32> {
    let needle = config.as_os_str().as_encoded_bytes();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        cmdline
            .split(|&b| b == 0)
            .any(|arg| arg == needle)
            .then_some(pid)
    })
}

/// A `/proc/<pid>/status` value in KiB (`VmHWM`, `VmRSS`), 0 if absent.
pub fn status_kb(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// How many times each value of integer field `field` of measurement
/// `name` landed in the line-protocol file `path`.
pub fn seq_counts(path: &Path, name: &str, field: &str) -> BTreeMap<i64, u32> {
    let mut seen = BTreeMap::new();
    for p in crate::graft_agent::points(&std::fs::read(path).unwrap_or_default()) {
        if p.name == name
            && let Some(n) = p.int(field)
        {
            *seen.entry(n).or_default() += 1;
        }
    }
    seen
}

/// Poll `done` every 50 ms; panics naming `what` after `limit`.
pub fn wait_for(what: &str, limit: std::time::Duration, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Whether process `pid` is gone (or a zombie about to be reaped by
/// whoever its parent is now).
pub fn gone(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
        s.rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
    })
}

/// The children of process `pid` (from `/proc/*/stat`).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let child: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let ppid: u32 = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            (ppid == pid).then_some(child)
        })
        .collect()
}
