//! Tests of `inputs.procstat` against children the test starts and their
//! `/proc` files read in the same test.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command};

use graft_core::{FieldRef, MetricRef};

use super::*;

/// Sleeping children whose argv\[0\] carries a marker unique to the test.
pub(super) struct Children {
    pub(super) marker: String,
    kids: Vec<Child>,
}

impl Children {
    pub(super) fn spawn(test: &str, n: usize) -> Self {
        let marker = format!("graft-procstat-{test}-{}", std::process::id());
        let kids = (0..n)
            .map(|_| {
                Command::new("sleep")
                    .arg0(&marker)
                    .arg("300")
                    .spawn()
                    .unwrap()
            })
            .collect();
        // Until exec has happened, /proc shows the test binary.
        let c = Self { marker, kids };
        for pid in c.pids() {
            while !std::fs::read(format!("/proc/{pid}/cmdline"))
                .unwrap()
                .starts_with(c.marker.as_bytes())
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        c
    }

    pub(super) fn pids(&self) -> Vec<i32> {
        self.kids.iter().map(|k| k.id() as i32).collect()
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for k in &mut self.kids {
            let _ = k.kill();
            let _ = k.wait();
        }
    }
}

pub(super) fn config(toml: &str) -> Config {
    toml::from_str(toml).unwrap()
}

pub(super) fn roots() -> Roots {
    Roots {
        proc: "/proc".into(),
        cgroup: "/sys/fs/cgroup".into(),
        systemctl: "systemctl".into(),
    }
}

pub(super) fn gather(c: &Config) -> (Procstat, Batch) {
    let mut p = Procstat::with_roots(c, roots()).unwrap();
    let b = p.sample(1);
    (p, b)
}

pub(super) fn procs(b: &Batch) -> Vec<MetricRef<'_>> {
    b.iter().filter(|m| m.name() == "procstat").collect()
}

pub(super) fn lookup(b: &Batch) -> MetricRef<'_> {
    let l: Vec<_> = b.iter().filter(|m| m.name() == "procstat_lookup").collect();
    assert_eq!(l.len(), 1);
    l[0]
}

pub(super) fn int(m: &MetricRef<'_>, f: &str) -> i64 {
    match m.field(f) {
        Some(FieldRef::Int(v)) => v,
        other => panic!("{f}: {other:?}"),
    }
}

pub(super) fn uint(m: &MetricRef<'_>, f: &str) -> u64 {
    match m.field(f) {
        Some(FieldRef::Uint(v)) => v,
        other => panic!("{f}: {other:?}"),
    }
}

fn status_line(pid: i32, key: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn pattern_finds_the_children_and_values_match_their_proc_files() {
    let kids = Children::spawn("pattern", 3);
    let c = config(&format!("pattern = \"^{}\"", kids.marker));
    let lines =
        |key: &str| -> Vec<String> { kids.pids().iter().map(|p| status_line(*p, key)).collect() };
    // A child just past exec may still be mapping its libraries: compare
    // memory with readings taken before and after the gather.
    let (rss_before, vms_before) = (lines("VmRSS"), lines("VmSize"));
    let (_, b) = gather(&c);
    let (rss_after, vms_after) = (lines("VmRSS"), lines("VmSize"));
    let l = lookup(&b);
    assert_eq!(l.tag("result"), Some("success"));
    assert_eq!(l.tag("pid_finder"), Some("pgrep"));
    assert_eq!(l.tag("pattern"), Some(format!("^{}", kids.marker).as_str()));
    assert_eq!(
        (
            int(&l, "pid_count"),
            int(&l, "running"),
            int(&l, "result_code")
        ),
        (3, 3, 0)
    );
    let ms = procs(&b);
    assert_eq!(ms.len(), 3);
    for (i, pid) in kids.pids().into_iter().enumerate() {
        let m = ms
            .iter()
            .find(|m| m.field("pid") == Some(FieldRef::Int(pid.into())))
            .unwrap();
        assert_eq!(m.tag("process_name"), Some("sleep"));
        assert_eq!(m.tag("pattern"), l.tag("pattern"));
        assert_eq!(int(m, "ppid"), i64::from(std::process::id()));
        assert_eq!(
            int(m, "num_threads").to_string(),
            status_line(pid, "Threads")
        );
        let kb = |s: &str| s.trim_end_matches(" kB").trim().parse::<u64>().unwrap() * 1024;
        if rss_before[i] == rss_after[i] {
            assert_eq!(uint(m, "memory_rss"), kb(&rss_before[i]));
        }
        let (lo, hi) = (kb(&vms_before[i]), kb(&vms_after[i]));
        let vms = uint(m, "memory_vms");
        assert!(lo.min(hi) <= vms && vms <= lo.max(hi), "{lo} {vms} {hi}");
        let stat =
            proc::Stat::parse(&std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap())
                .unwrap();
        let (u, s) = stat.cpu_seconds();
        assert_eq!(m.field("cpu_time_user"), Some(FieldRef::Float(u)));
        assert_eq!(m.field("cpu_time_system"), Some(FieldRef::Float(s)));
        // Just started, a child may still be running on its way to sleep.
        let state = proc::status_name(stat.state);
        assert!(
            [Some(FieldRef::Str(state)), Some(FieldRef::Str("running"))]
                .contains(&m.field("status")),
            "{:?} {state}",
            m.field("status")
        );
        assert_eq!(
            m.field("cmdline"),
            Some(FieldRef::Str(format!("{} 300", kids.marker).as_str()))
        );
        assert_eq!(
            int(m, "num_fds"),
            std::fs::read_dir(format!("/proc/{pid}/fd"))
                .unwrap()
                .count() as i64
        );
        let created = int(m, "created_at");
        let now = now_ns();
        assert!(
            created <= now && created > now - 60_000_000_000,
            "{created} {now}"
        );
        // The first gather has no cpu_usage, as in Telegraf.
        assert!(m.field("cpu_usage").is_none());
    }
}

#[test]
fn pid_file_exe_and_both_finders_select_the_same_processes() {
    let kids = Children::spawn("pidfile", 2);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.pid");
    std::fs::write(&file, format!("{}\n", kids.pids()[1])).unwrap();
    let (_, b) = gather(&config(&format!("pid_file = {:?}", file.to_str().unwrap())));
    let ms = procs(&b);
    assert_eq!(ms.len(), 1);
    assert_eq!(int(&ms[0], "pid"), i64::from(kids.pids()[1]));
    assert_eq!(ms[0].tag("pidfile"), file.to_str());

    // A copy of sleep under a unique name: `exe` matches the process name
    // (pgrep) or the executable's path (native).
    let exe = dir
        .path()
        .join(format!("gs{}", std::process::id() % 100_000));
    std::fs::copy("/bin/sleep", &exe).unwrap();
    // Another test's fork may briefly hold the copy open for writing.
    let mut own = loop {
        match Command::new(&exe).arg("300").spawn() {
            Err(e) if e.raw_os_error() == Some(libc_etxtbsy()) => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => break other.unwrap(),
        }
    };
    while std::fs::read_link(format!("/proc/{}/exe", own.id()))
        .ok()
        .as_deref()
        != Some(exe.as_path())
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let name = exe.file_name().unwrap().to_str().unwrap();
    for finder in ["pgrep", "native"] {
        let (_, b) = gather(&config(&format!(
            "exe = \"{name}$\"\npid_finder = \"{finder}\""
        )));
        let pids: Vec<i64> = procs(&b).iter().map(|m| int(m, "pid")).collect();
        assert_eq!(pids, [i64::from(own.id())], "{finder}");
        assert_eq!(lookup(&b).tag("exe"), Some(format!("{name}$").as_str()));
        assert_eq!(lookup(&b).tag("pid_finder"), Some(finder));
    }
    let _ = own.kill();
    let _ = own.wait();
}

#[test]
fn user_selects_the_users_processes_and_an_unknown_user_is_a_lookup_error() {
    let kids = Children::spawn("user", 2);
    let uid: u32 = status_line(kids.pids()[0], "Uid")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let user = proc::Users::load().name(uid);
    let (_, b) = gather(&config(&format!("user = {user:?}")));
    let pids: Vec<i64> = procs(&b).iter().map(|m| int(m, "pid")).collect();
    for pid in kids.pids() {
        assert!(pids.contains(&i64::from(pid)));
    }
    assert!(
        procs(&b)
            .iter()
            .all(|m| m.tag("user") == Some(user.as_str()))
    );
    assert!(int(&lookup(&b), "pid_count") >= 2);

    let (p, b) = gather(&config("user = \"no-such-user-graft\""));
    let l = lookup(&b);
    assert_eq!(l.tag("result"), Some("lookup_error"));
    assert_eq!(
        (
            int(&l, "pid_count"),
            int(&l, "running"),
            int(&l, "result_code")
        ),
        (0, 0, 1)
    );
    assert_eq!(p.stats().lookup_errors.load(Ordering::Relaxed), 1);
    assert!(procs(&b).is_empty());
}

#[test]
fn a_lookup_that_matches_nothing_and_a_dead_pid_cost_only_themselves() {
    let (_, b) = gather(&config("pattern = \"^graft-no-such-process-[0-9]{40}$\""));
    let l = lookup(&b);
    assert_eq!(l.tag("result"), Some("success"));
    assert_eq!((int(&l, "pid_count"), int(&l, "running")), (0, 0));

    let mut dead = Command::new("true").spawn().unwrap();
    let pid = dead.id();
    dead.wait().unwrap();
    let kids = Children::spawn("dead", 1);
    let dir = tempfile::tempdir().unwrap();
    // A cgroup whose procs list a process that exited and a live one.
    let cg = dir.path().join("grp");
    std::fs::create_dir(&cg).unwrap();
    std::fs::write(
        cg.join("cgroup.procs"),
        format!("{pid}\n{}\n", kids.pids()[0]),
    )
    .unwrap();
    let (_, b) = gather(&config(&format!("cgroup = {:?}", cg.to_str().unwrap())));
    let l = lookup(&b);
    assert_eq!((int(&l, "pid_count"), int(&l, "running")), (2, 1));
    assert_eq!(procs(&b).len(), 1);
    assert_eq!(int(&procs(&b)[0], "pid"), i64::from(kids.pids()[0]));

    let (p, b) = gather(&config("pid_file = \"/nonexistent/graft.pid\""));
    assert_eq!(lookup(&b).tag("result"), Some("lookup_error"));
    assert_eq!(p.stats().lookup_errors.load(Ordering::Relaxed), 1);
}

#[test]
fn cgroup_globs_and_systemd_units_read_cgroup_procs() {
    let kids = Children::spawn("cgroup", 3);
    let pids = kids.pids();
    let dir = tempfile::tempdir().unwrap();
    for (name, some) in [("a.service", &pids[..1]), ("b.service", &pids[1..])] {
        let d = dir.path().join("system.slice").join(name);
        std::fs::create_dir_all(&d).unwrap();
        let list: String = some.iter().map(|p| format!("{p}\n")).collect();
        std::fs::write(d.join("cgroup.procs"), list).unwrap();
    }
    let roots = Roots {
        cgroup: dir.path().to_path_buf(),
        ..roots()
    };
    let mut p = Procstat::with_roots(
        &config("cgroup = \"system.slice/*.service\""),
        roots.clone(),
    )
    .unwrap();
    let b = p.sample(1);
    assert_eq!(int(&lookup(&b), "pid_count"), 3);
    let ms = procs(&b);
    assert_eq!(ms.len(), 3);
    assert!(
        ms.iter()
            .all(|m| m.tag("cgroup") == Some("system.slice/*.service"))
    );
    let full_b = dir.path().join("system.slice/b.service");
    let in_b = ms
        .iter()
        .filter(|m| m.tag("cgroup_full") == full_b.to_str())
        .count();
    assert_eq!(in_b, 2);

    // include_systemd_children: the unit's cgroup under system.slice.
    let c = config("systemd_unit = \"b.service\"\ninclude_systemd_children = true");
    let b = Procstat::with_roots(&c, roots.clone()).unwrap().sample(1);
    assert_eq!(procs(&b).len(), 2);

    // Without children: the unit's MainPID, from `systemctl show`.
    let systemctl = dir.path().join("systemctl");
    std::fs::write(&systemctl, format!("#!/bin/sh\necho MainPID={}\n", pids[0])).unwrap();
    std::fs::set_permissions(
        &systemctl,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let roots = Roots { systemctl, ..roots };
    let b = Procstat::with_roots(&config("systemd_unit = \"a.service\""), roots)
        .unwrap()
        .sample(1);
    let ms = procs(&b);
    assert_eq!(ms.len(), 1);
    assert_eq!(ms[0].tag("systemd_unit"), Some("a.service"));
    assert_eq!(int(&ms[0], "pid"), i64::from(pids[0]));
}

#[tokio::test(flavor = "current_thread")]
async fn a_slow_systemctl_does_not_hold_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let systemctl = dir.path().join("systemctl");
    let me = std::process::id();
    std::fs::write(
        &systemctl,
        format!("#!/bin/sh\nsleep 1\necho MainPID={me}\n"),
    )
    .unwrap();
    std::fs::set_permissions(
        &systemctl,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let roots = Roots {
        systemctl,
        ..roots()
    };
    let mut p = Procstat::with_roots(&config("systemd_unit = \"slow.service\""), roots).unwrap();
    // A task on the same (single) thread ticks while the gather waits.
    let ticks = Arc::new(AtomicU64::new(0));
    let ticker = tokio::spawn({
        let ticks = Arc::clone(&ticks);
        async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                ticks.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let b = p.gather_at(1).await.unwrap();
    ticker.abort();
    assert!(ticks.load(Ordering::Relaxed) >= 50, "{ticks:?}");
    let ms = procs(&b);
    assert_eq!(ms.len(), 1);
    assert_eq!(int(&ms[0], "pid"), i64::from(me));
}

#[test]
fn max_processes_bounds_a_gather_and_is_counted() {
    let kids = Children::spawn("max", 5);
    let c = config(&format!(
        "pattern = \"^{}\"\nmax_processes = 2",
        kids.marker
    ));
    let (p, b) = gather(&c);
    assert_eq!(procs(&b).len(), 2);
    let l = lookup(&b);
    assert_eq!((int(&l, "pid_count"), int(&l, "running")), (5, 2));
    assert_eq!(p.stats().processes_limit_hits.load(Ordering::Relaxed), 3);
}

#[test]
fn cpu_usage_from_the_second_gather_of_a_busy_process() {
    let mut busy = Command::new("sh")
        .args(["-c", "while :; do :; done"])
        .spawn()
        .unwrap();
    let pid = busy.id();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("busy.pid");
    std::fs::write(&file, pid.to_string()).unwrap();
    let mut irix = Procstat::with_roots(
        &config(&format!("pid_file = {:?}", file.to_str().unwrap())),
        roots(),
    )
    .unwrap();
    assert!(procs(&irix.sample(1))[0].field("cpu_usage").is_none());
    std::thread::sleep(std::time::Duration::from_millis(300));
    let b = irix.sample(2);
    let Some(FieldRef::Float(u)) = procs(&b)[0].field("cpu_usage") else {
        panic!()
    };
    assert!(u > 0.0, "{u}");
    let _ = busy.kill();
    let _ = busy.wait();
}

#[test]
fn tag_with_prefix_and_limits_as_telegraf_names_them() {
    let kids = Children::spawn("tags", 1);
    let pid = kids.pids()[0];
    let c = config(&format!(
        "pattern = \"^{}\"\nprefix = \"p\"\ntag_with = [\"pid\", \"cmdline\", \"status\"]\nprocess_name = \"renamed\"\nproperties = [\"limits\"]",
        kids.marker
    ));
    let (_, b) = gather(&c);
    let m = procs(&b)[0];
    assert_eq!(m.tag("pid"), Some(pid.to_string().as_str()));
    assert!(["sleep", "running"].contains(&m.tag("status").unwrap()));
    assert_eq!(m.tag("process_name"), Some("renamed"));
    assert!(m.field("pid").is_none() && m.field("p_status").is_none());
    assert!(m.field("p_cpu_time_user").is_none(), "cpu not asked for");
    assert!(m.field("p_num_threads").is_some());
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let w: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(uint(&m, "p_rlimit_num_fds_soft").to_string(), w[3]);
    assert_eq!(uint(&m, "p_rlimit_num_fds_hard").to_string(), w[4]);
    assert_eq!(uint(&m, "p_rlimit_cpu_time_soft"), u64::MAX, "unlimited");
    assert!(
        matches!(m.field("p_num_fds"), Some(FieldRef::Uint(_))),
        "limits' used value"
    );
    assert!(m.field("p_rlimit_file_locks_soft").is_some() && m.field("p_file_locks").is_none());
}

#[test]
fn keys_graft_cannot_honour_are_refused_by_name() {
    for (toml, key) in [
        ("pattern = \"x\"\n[[filter]]\nname = \"a\"", "filter"),
        ("supervisor_units = [\"web\"]", "supervisor_units"),
        ("win_service = \"x\"", "win_service"),
        (
            "pattern = \"x\"\nproperties = [\"sockets\"]",
            "properties[0]",
        ),
        ("pattern = \"x\"\npid_finder = \"ps\"", "pid_finder"),
        ("pattern = \"x\"\ntag_with = [\"src\"]", "tag_with[0]"),
        ("pattern = \"(\"", "pattern"),
        ("prefix = \"x\"", "no selector"),
    ] {
        let err = Settings::resolve(&config(toml)).err().unwrap();
        assert!(err.to_string().contains(key), "{toml}: {err}");
    }
}

#[test]
fn mode_and_socket_protocols_are_accepted_as_telegraf_accepts_them() {
    for (toml, solaris) in [
        ("pattern = \"x\"\nmode = \"bsd\"", false),
        ("pattern = \"x\"\nmode = \"IRIX\"", false),
        ("pattern = \"x\"\nmode = \"Solaris\"", true),
        ("pattern = \"x\"\nsocket_protocols = [\"sctp\"]", false),
    ] {
        let s = Settings::resolve(&config(toml)).unwrap_or_else(|e| panic!("{toml}: {e}"));
        assert_eq!(s.solaris, solaris, "{toml}");
    }
}

/// ETXTBSY on Linux.
fn libc_etxtbsy() -> i32 {
    26
}

#[test]
fn cpu_usage_is_cpu_seconds_over_wall_seconds_and_solaris_divides_by_cpus() {
    let kids = Children::spawn("usage", 1);
    let dir = ProcDir::new(Path::new("/proc"), kids.pids()[0]);
    let stat = dir.stat().unwrap();
    let (u, s) = stat.cpu_seconds();
    let now = Instant::now();
    let last = fields::Seen {
        starttime: stat.starttime,
        cpu_seconds: u + s - 2.0,
        at: now - std::time::Duration::from_secs(4),
    };
    let host = Host {
        mem_total: 1 << 30,
        boot_time: 0,
        cpus: 4,
        page_size: 4096,
    };
    let usage = |mode: &str| {
        let c = config(&format!("pid_file = \"x\"\nmode = \"{mode}\""));
        let settings = Settings::resolve(&c).unwrap();
        let p = fields::read(&dir, &settings, &Users::default(), &host, Some(&last), now).unwrap();
        let mut b = BatchBuilder::new();
        p.emit(&mut b, 1, &settings, &[]);
        match b.finish().get(0).field("cpu_usage") {
            Some(FieldRef::Float(x)) => x,
            other => panic!("{other:?}"),
        }
    };
    // 2 s of CPU over 4 s; a tick (10 ms) the child may still use moves it
    // by 0.25.
    let (irix, solaris) = (usage("irix"), usage("solaris"));
    assert!((irix - 50.0).abs() < 0.6, "{irix}");
    assert!((solaris - 12.5).abs() < 0.2, "{solaris}");
    // A pid reused by another process starts over: no cpu_usage.
    let other = fields::Seen {
        starttime: stat.starttime + 1,
        ..last
    };
    let settings = Settings::resolve(&config("pid_file = \"x\"")).unwrap();
    let p = fields::read(&dir, &settings, &Users::default(), &host, Some(&other), now).unwrap();
    let mut b = BatchBuilder::new();
    p.emit(&mut b, 1, &settings, &[]);
    assert!(b.finish().get(0).field("cpu_usage").is_none());
}
