//! Tests of `inputs.procstat` against the real thing: Telegraf's schema,
//! `pgrep` itself, and a cgroup the test makes.

use std::path::Path;
use std::process::Command;

use graft_core::FieldRef;

use super::tests::{Children, config, gather, int, lookup, procs, roots};
use super::*;

/// Telegraf's procstat fields (README, types as gopsutil gives them: uint
/// where Go has uint64) with every property but sockets.
const SCHEMA: &[(&str, &str)] = &[
    ("pid", "int"),
    ("ppid", "int"),
    ("num_threads", "int"),
    ("voluntary_context_switches", "int"),
    ("involuntary_context_switches", "int"),
    ("created_at", "int"),
    ("minor_faults", "uint"),
    ("major_faults", "uint"),
    ("child_minor_faults", "uint"),
    ("child_major_faults", "uint"),
    ("read_count", "uint"),
    ("write_count", "uint"),
    ("read_bytes", "uint"),
    ("write_bytes", "uint"),
    ("disk_read_bytes", "uint"),
    ("disk_write_bytes", "uint"),
    ("cpu_time_user", "float"),
    ("cpu_time_system", "float"),
    ("cpu_time_iowait", "float"),
    ("cpu_usage", "float"),
    ("memory_usage", "float"),
    ("memory_size", "uint"),
    ("memory_pss", "uint"),
    ("memory_shared_clean", "uint"),
    ("memory_shared_dirty", "uint"),
    ("memory_private_clean", "uint"),
    ("memory_private_dirty", "uint"),
    ("memory_referenced", "uint"),
    ("memory_anonymous", "uint"),
    ("memory_swap", "uint"),
    // With `limits`, the used values replace these three (uint).
    ("memory_rss", "uint"),
    ("memory_vms", "uint"),
    ("num_fds", "uint"),
    ("cpu_time", "uint"),
    ("memory_data", "uint"),
    ("memory_stack", "uint"),
    ("memory_locked", "uint"),
    ("signals_pending", "uint"),
    ("nice_priority", "uint"),
    ("realtime_priority", "uint"),
    ("rlimit_cpu_time_soft", "uint"),
    ("rlimit_cpu_time_hard", "uint"),
    ("rlimit_memory_data_soft", "uint"),
    ("rlimit_memory_data_hard", "uint"),
    ("rlimit_memory_stack_soft", "uint"),
    ("rlimit_memory_stack_hard", "uint"),
    ("rlimit_memory_rss_soft", "uint"),
    ("rlimit_memory_rss_hard", "uint"),
    ("rlimit_num_fds_soft", "uint"),
    ("rlimit_num_fds_hard", "uint"),
    ("rlimit_memory_locked_soft", "uint"),
    ("rlimit_memory_locked_hard", "uint"),
    ("rlimit_memory_vms_soft", "uint"),
    ("rlimit_memory_vms_hard", "uint"),
    ("rlimit_file_locks_soft", "uint"),
    ("rlimit_file_locks_hard", "uint"),
    ("rlimit_signals_pending_soft", "uint"),
    ("rlimit_signals_pending_hard", "uint"),
    ("rlimit_nice_priority_soft", "uint"),
    ("rlimit_nice_priority_hard", "uint"),
    ("rlimit_realtime_priority_soft", "uint"),
    ("rlimit_realtime_priority_hard", "uint"),
    ("cmdline", "string"),
    ("status", "string"),
    ("user", "string"),
];

#[test]
fn schema_matches_telegrafs_names_and_types() {
    let kids = Children::spawn("schema", 1);
    let c = config(&format!(
        "pattern = \"^{}\"\nproperties = [\"cpu\", \"memory\", \"mmap\", \"limits\"]",
        kids.marker
    ));
    let mut p = Procstat::with_roots(&c, roots()).unwrap();
    p.sample(1);
    let b = p.sample(2);
    let m = procs(&b)[0];
    let got: Vec<(&str, &str)> = m.fields().map(|(k, v)| (k, v.type_name())).collect();
    for (name, ty) in SCHEMA {
        assert!(got.contains(&(*name, *ty)), "{name} {ty}: {got:?}");
    }
    assert_eq!(got.len(), SCHEMA.len(), "{got:?}");
    let mut tags: Vec<&str> = m.tags().map(|(k, _)| k).collect();
    tags.sort();
    assert_eq!(tags, ["pattern", "process_name"]);
    let l = lookup(&b);
    for f in ["pid_count", "running", "result_code"] {
        assert!(matches!(l.field(f), Some(FieldRef::Int(_))), "{f}");
    }
    let mut tags: Vec<&str> = l.tags().map(|(k, _)| k).collect();
    tags.sort();
    assert_eq!(tags, ["pattern", "pid_finder", "result"]);
}

#[test]
fn the_pgrep_finder_finds_what_pgrep_finds() {
    let kids = Children::spawn("pgrep", 4);
    let pattern = format!("^{} 3", kids.marker);
    let out = Command::new("pgrep")
        .args(["-f", &pattern])
        .output()
        .unwrap();
    let mut theirs: Vec<i64> = String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    theirs.sort_unstable();
    let (_, b) = gather(&config(&format!("pattern = {pattern:?}")));
    let mut ours: Vec<i64> = procs(&b).iter().map(|m| int(m, "pid")).collect();
    ours.sort_unstable();
    let mut kids_pids: Vec<i64> = kids.pids().into_iter().map(i64::from).collect();
    kids_pids.sort_unstable();
    assert_eq!(theirs, kids_pids);
    assert_eq!(ours, theirs);
}

/// A real cgroup (v1 `pids` or v2), when this machine lets root make one.
struct TestCgroup(std::path::PathBuf);

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn a_real_cgroup_lists_the_processes_moved_into_it() {
    let Some(base) = [
        "/sys/fs/cgroup/pids",
        "/sys/fs/cgroup/unified",
        "/sys/fs/cgroup",
    ]
    .into_iter()
    .map(Path::new)
    .find(|p| p.join("cgroup.procs").exists()) else {
        return; // no cgroup filesystem mounted
    };
    let name = format!("graft-test-{}", std::process::id());
    let group = TestCgroup(base.join(&name));
    if std::fs::create_dir(&group.0).is_err() {
        return; // no writable cgroup hierarchy here: nothing to compare against
    }
    let kids = Children::spawn("cgroup-real", 2);
    for pid in kids.pids() {
        std::fs::write(group.0.join("cgroup.procs"), pid.to_string()).unwrap();
    }
    let kernel: Vec<i64> = std::fs::read_to_string(group.0.join("cgroup.procs"))
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    let (_, b) = gather(&config(&format!(
        "cgroup = {:?}",
        format!("{}*", group.0.display())
    )));
    let ours: Vec<i64> = procs(&b).iter().map(|m| int(m, "pid")).collect();
    assert_eq!(ours, kernel);
    assert_eq!(ours.len(), 2);
    assert!(
        procs(&b)
            .iter()
            .all(|m| m.tag("cgroup_full") == group.0.to_str())
    );
    drop(kids);
    // The kernel empties the cgroup once the children are reaped.
    for _ in 0..100 {
        if std::fs::remove_dir(&group.0).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
