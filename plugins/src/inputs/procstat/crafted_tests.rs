//! Tests of `inputs.procstat` against a crafted `/proc` (`Roots::proc`):
//! odd `comm`s, truncated and out-of-range values, kernel threads, and the
//! host files it reads once a gather.

use std::path::Path;

use graft_core::FieldRef;

use super::tests::{config, int, lookup, procs, roots, uint};
use super::*;

const PID: i32 = 4242;

/// A crafted proc root with one process, `PID`, and a pid file naming it.
struct Fake {
    dir: tempfile::TempDir,
}

impl Fake {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("stat"), "cpu 1 2 3\nbtime 1700000000\n").unwrap();
        std::fs::write(dir.path().join("meminfo"), "MemTotal: 1000 kB\n").unwrap();
        std::fs::write(dir.path().join("pid"), format!("{PID}\n")).unwrap();
        let f = Self { dir };
        std::fs::create_dir_all(f.pid_dir().join("fd")).unwrap();
        f.stat("(sleep)", "20 0", "0", "1")
            .write("status", &status("sleep", ""))
            .write("cmdline", "sleep\x00300\0")
            .write("statm", "100 25 10 1 0 30 0\n")
            .write("limits", LIMITS);
        f
    }

    fn pid_dir(&self) -> std::path::PathBuf {
        self.dir.path().join(PID.to_string())
    }

    fn write(&self, file: &str, text: &str) -> &Self {
        std::fs::write(self.pid_dir().join(file), text).unwrap();
        self
    }

    /// `stat` with this comm, priority and nice, start time.
    fn stat(&self, comm: &str, priority_nice: &str, starttime: &str, ppid: &str) -> &Self {
        let mut f = vec!["0"; 40];
        // Fields (3).. as indexes from 0: state, ppid, faults at 7..=10,
        // times at 11, 12, priority and nice at 15, 16, start at 19.
        f[0] = "S";
        f[1] = ppid;
        f[11] = "150";
        f[12] = "50";
        let (p, n) = priority_nice.split_once(' ').unwrap();
        f[15] = p;
        f[16] = n;
        f[19] = starttime;
        self.write("stat", &format!("{PID} {comm} {}\n", f.join(" ")))
    }

    fn gather(&self, toml: &str) -> Batch {
        let roots = Roots {
            proc: self.dir.path().to_path_buf(),
            ..roots()
        };
        let pid_file = self.dir.path().join("pid");
        let c = config(&format!(
            "pid_file = {:?}\n{toml}",
            pid_file.to_str().unwrap()
        ));
        Procstat::with_roots(&c, roots).unwrap().sample(1)
    }
}

fn status(name: &str, extra: &str) -> String {
    format!("Name:\t{name}\nState:\tS (sleeping)\nUid:\t0\t0\t0\t0\nThreads:\t1\n{extra}")
}

const LIMITS: &str = "Limit                     Soft Limit           Hard Limit           Units\n\
Max cpu time              unlimited            unlimited            seconds\n\
Max data size             unlimited            unlimited            bytes\n\
Max file locks            unlimited            unlimited\n\
Max open files            1024                 4096                 files\n\
Max pending signals       63000                63000                signals\n\
Max nice priority         0                    0\n\
Max realtime priority     0                    0\n";

const ALL: &str = "properties = [\"cpu\", \"memory\", \"mmap\", \"limits\"]";

#[test]
fn a_comm_with_parentheses_and_spaces_is_read_whole() {
    let f = Fake::new();
    f.stat("(a) b (c)", "20 0", "100", "7");
    let b = f.gather(ALL);
    let m = &procs(&b)[0];
    assert_eq!(int(m, "ppid"), 7);
    assert_eq!(m.field("status"), Some(FieldRef::Str("sleep")));
    // The pgrep finder matches `exe` on the comm.
    let roots = Roots {
        proc: f.dir.path().to_path_buf(),
        ..roots()
    };
    let c = config("exe = '^a\\) b \\(c$'");
    let b = Procstat::with_roots(&c, roots).unwrap().sample(1);
    assert_eq!(int(&lookup(&b), "pid_count"), 1);
}

#[test]
fn a_truncated_stat_costs_only_its_process() {
    let f = Fake::new();
    f.write("stat", &format!("{PID} (sleep) S 1 0 0"));
    let b = f.gather(ALL);
    assert!(procs(&b).is_empty());
    let l = lookup(&b);
    assert_eq!((int(&l, "pid_count"), int(&l, "running")), (1, 0));
}

#[test]
fn limits_without_a_unit_are_read() {
    let f = Fake::new();
    f.write("status", &status("sleep", "ShdPnd:\t0000000000000101\n"));
    let b = f.gather(ALL);
    let m = &procs(&b)[0];
    assert_eq!(uint(m, "rlimit_nice_priority_soft"), 0);
    assert_eq!(uint(m, "nice_priority"), 20);
    assert_eq!(uint(m, "realtime_priority"), 0);
    assert_eq!(uint(m, "signals_pending"), 0x101);
    assert_eq!(uint(m, "rlimit_file_locks_soft"), u64::MAX);
    assert_eq!(uint(m, "rlimit_file_locks_hard"), u64::MAX);
    assert_eq!(uint(m, "rlimit_num_fds_hard"), 4096);
}

#[test]
fn out_of_range_values_do_not_panic() {
    let f = Fake::new();
    let max = u64::MAX.to_string();
    let min = i64::MIN.to_string();
    f.stat("(sleep)", &format!("{min} {min}"), &max, "1");
    let huge = format!("VmData:\t{max} kB\nShdPnd:\t€€€€€€€€€€€\n");
    f.write("status", &status("sleep", &huge));
    f.write("statm", &format!("{max} {max} 0 0 0 0 0\n"));
    f.write(
        "smaps_rollup",
        &format!("Size: {max} kB\nSize: {max} kB\nPss: 4 kB\n"),
    );
    let b = f.gather(ALL);
    let m = &procs(&b)[0];
    assert_eq!(int(m, "created_at"), i64::MAX);
    assert_eq!(uint(m, "memory_size"), u64::MAX);
    assert_eq!(uint(m, "memory_pss"), 4);
    assert!(m.field("memory_rss").is_none());
    assert!(m.field("memory_data").is_none());
    assert!(m.field("signals_pending").is_none());
    assert_eq!(uint(m, "nice_priority"), i64::MAX as u64);
    assert_eq!(uint(m, "realtime_priority"), i64::MAX as u64);
}

#[test]
fn a_kernel_thread_has_zero_memory_from_statm() {
    let f = Fake::new();
    f.write("status", &status("kworker/0:1", ""))
        .write("cmdline", "")
        .write("statm", "0 0 0 0 0 0 0\n");
    let b = f.gather(ALL);
    let m = &procs(&b)[0];
    assert_eq!(uint(m, "memory_rss"), 0);
    assert_eq!(uint(m, "memory_vms"), 0);
    assert_eq!(m.field("memory_usage"), Some(FieldRef::Float(0.0)));
}

#[test]
fn memory_is_statm_pages_in_bytes() {
    let f = Fake::new();
    let b = f.gather(ALL);
    let m = &procs(&b)[0];
    let page = Host::read(Path::new("/proc")).page_size;
    assert!(page >= 4096 && page.is_power_of_two(), "{page}");
    assert_eq!(uint(m, "memory_vms"), 100 * page);
    assert_eq!(uint(m, "memory_rss"), 25 * page);
}

#[test]
fn empty_arguments_are_left_out_of_cmdline() {
    let f = Fake::new();
    f.write("cmdline", "sleep\0\x00300\0\0\0");
    let b = f.gather(ALL);
    assert_eq!(
        procs(&b)[0].field("cmdline"),
        Some(FieldRef::Str("sleep 300"))
    );
}

#[test]
fn cpus_are_counted_from_the_affinity_list() {
    let n = |list: &str| fields::cpus_allowed(&format!("Name:\tx\nCpus_allowed_list:\t{list}\n"));
    assert_eq!(n("0-3"), Some(4));
    assert_eq!(n("0,2,4-7"), Some(6));
    assert_eq!(n("5"), Some(1));
    assert_eq!(n("7-3"), None);
    // This process's own mask, as sched_getaffinity(2) gives it (nproc).
    let nproc = std::process::Command::new("nproc").output().unwrap();
    let nproc: usize = String::from_utf8_lossy(&nproc.stdout)
        .trim()
        .parse()
        .unwrap();
    assert_eq!(Host::read(Path::new("/proc")).cpus, nproc);
}

#[test]
fn users_are_read_again_when_etc_passwd_changes() {
    let dir = tempfile::tempdir().unwrap();
    let passwd = dir.path().join("passwd");
    std::fs::write(&passwd, "root:x:0:0::/root:/bin/sh\n").unwrap();
    let mut users = Users::from_file(&passwd);
    assert_eq!(users.name(1234), "1234");
    std::fs::write(
        &passwd,
        "root:x:0:0::/root:/bin/sh\nweb:x:1234:1234::/:/bin/false\n",
    )
    .unwrap();
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(10);
    std::fs::File::options()
        .write(true)
        .open(&passwd)
        .unwrap()
        .set_modified(later)
        .unwrap();
    users.refresh();
    assert_eq!(users.name(1234), "web");
    assert_eq!(users.uid("web"), Some(1234));
}
