//! Finding the pids a selector names, without running `pgrep`: the
//! `"pgrep"` finder matches as `pgrep` does (`exe` on the process name,
//! `pattern` on the command line or the name when there is none, `user`
//! on the effective uid), the `"native"` finder as Telegraf's native one
//! (`exe` on the executable's path, `pattern` on the command line, `user`
//! on the real uid's name). `pid_file`, `cgroup` and `systemd_unit` are
//! the same for both.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use globset::GlobBuilder;

use super::config::Selector;
use super::proc::{ProcDir, Status, Users};

/// Pids found under one set of tags (a cgroup glob finds several).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Group {
    pub pids: Vec<i32>,
    pub tags: Vec<(&'static str, String)>,
}

/// Where to look: `$HOST_PROC`, the cgroup root, `systemctl`.
#[derive(Debug, Clone)]
pub struct Roots {
    pub proc: PathBuf,
    pub cgroup: PathBuf,
    pub systemctl: PathBuf,
}

/// Directories a cgroup glob may expand to.
const MAX_CGROUP_MATCHES: usize = 10_000;
/// How long `systemctl show` may take.
const SYSTEMCTL_TIMEOUT: Duration = Duration::from_secs(5);

/// Every numeric entry of the proc root.
pub fn all_pids(proc: &Path) -> Result<Vec<i32>> {
    let mut pids: Vec<i32> = std::fs::read_dir(proc)
        .with_context(|| format!("listing {}", proc.display()))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

/// The groups of pids `selector` names; `main_pid` is the unit's `MainPID`
/// for a `systemd_unit` without `include_systemd_children` (read by
/// [`systemd_main_pid`] before, so that this runs without waiting on
/// `systemctl`).
pub fn find(
    selector: &Selector,
    finder: &str,
    roots: &Roots,
    users: &Users,
    main_pid: Option<i32>,
) -> Result<Vec<Group>> {
    let one = |pids: Vec<i32>| {
        let (k, v) = selector.tag();
        Ok(vec![Group {
            pids,
            tags: vec![(k, v.to_string())],
        }])
    };
    let native = finder == "native";
    match selector {
        Selector::SystemdUnit { unit, children } => {
            if *children {
                let legacy = roots.cgroup.join("systemd/system.slice").is_dir();
                let path = if legacy {
                    format!("systemd/system.slice/{unit}")
                } else {
                    format!("system.slice/{unit}")
                };
                return cgroup(&path, roots);
            }
            one(main_pid.into_iter().collect())
        }
        Selector::Cgroup(path) => cgroup(path, roots),
        Selector::PidFile(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("failed to read pidfile {path:?}"))?;
            let pid: i32 = text
                .trim()
                .parse()
                .with_context(|| format!("pidfile {path:?} does not hold a pid"))?;
            one(vec![pid])
        }
        Selector::Exe(re, _) => one(scan(&roots.proc, |p| {
            if native {
                let exe = std::fs::read_link(p.dir.join("exe")).ok()?;
                Some(re.is_match(&exe.to_string_lossy()))
            } else {
                Some(re.is_match(&p.stat().ok()?.comm))
            }
        })?),
        Selector::Pattern(re, _) => one(scan(&roots.proc, |p| {
            let cmdline = p.cmdline_args().join(" ");
            if native {
                return Some(re.is_match(&cmdline));
            }
            if cmdline.is_empty() {
                Some(re.is_match(&p.stat().ok()?.comm))
            } else {
                Some(re.is_match(&cmdline))
            }
        })?),
        Selector::User(user) => {
            if native {
                one(scan(&roots.proc, |p| {
                    let status = Status::parse(&p.read("status").ok()?);
                    Some(users.name(status.uid(0)?) == *user)
                })?)
            } else {
                let Some(uid) = users.uid(user) else {
                    bail!("invalid user name: {user}");
                };
                one(scan(&roots.proc, |p| {
                    Some(Status::parse(&p.read("status").ok()?).uid(1)? == uid)
                })?)
            }
        }
    }
}

/// The pids for which `matches` says yes (a process gone meanwhile says
/// nothing and is left out).
fn scan(proc: &Path, matches: impl Fn(&ProcDir) -> Option<bool>) -> Result<Vec<i32>> {
    Ok(all_pids(proc)?
        .into_iter()
        .filter(|pid| matches(&ProcDir::new(proc, *pid)) == Some(true))
        .collect())
}

/// `cgroup.procs` of every directory the (glob) path names; relative paths
/// are under the cgroup root. Tags: `cgroup` as configured, `cgroup_full`
/// the directory.
fn cgroup(path: &str, roots: &Roots) -> Result<Vec<Group>> {
    let full = if path.starts_with('/') {
        PathBuf::from(path)
    } else {
        roots.cgroup.join(path)
    };
    let mut groups = Vec::new();
    for dir in expand(&full)? {
        if !dir.is_dir() {
            bail!("not a directory {}", dir.display());
        }
        let procs = dir.join("cgroup.procs");
        let text = std::fs::read_to_string(&procs)
            .with_context(|| format!("reading {}", procs.display()))?;
        let pids = text
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                l.trim()
                    .parse()
                    .with_context(|| format!("invalid pid {l:?}"))
            })
            .collect::<Result<_>>()?;
        groups.push(Group {
            pids,
            tags: vec![
                ("cgroup", path.to_string()),
                ("cgroup_full", dir.to_string_lossy().into_owned()),
            ],
        });
    }
    Ok(groups)
}

/// The paths a glob names, component by component (`*` does not cross a
/// `/`); a path without glob characters is itself if it exists.
fn expand(pattern: &Path) -> Result<Vec<PathBuf>> {
    let mut found = vec![PathBuf::from("/")];
    for comp in pattern.components().skip(1) {
        let comp = comp.as_os_str().to_string_lossy();
        let mut next = Vec::new();
        if !comp.contains(['*', '?', '[', '{']) {
            next.extend(found.iter().map(|d| d.join(&*comp)).filter(|p| p.exists()));
        } else {
            let glob = GlobBuilder::new(&comp)
                .literal_separator(true)
                .build()
                .with_context(|| format!("glob {comp:?}"))?
                .compile_matcher();
            for dir in &found {
                let Ok(entries) = std::fs::read_dir(dir) else {
                    continue;
                };
                let mut matched: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok())
                    .filter(|e| glob.is_match(e.file_name()))
                    .map(|e| e.path())
                    .collect();
                matched.sort();
                next.extend(matched);
            }
        }
        next.truncate(MAX_CGROUP_MATCHES);
        found = next;
    }
    Ok(found)
}

/// The unit's `MainPID` from `systemctl show` (none when 0: not running),
/// waited for without blocking the runtime; a `systemctl` that does not
/// answer within 5 s is killed.
pub async fn systemd_main_pid(unit: &str, systemctl: &Path) -> Result<Option<i32>> {
    let child = tokio::process::Command::new(systemctl)
        .args(["show", "--property=MainPID", "--", unit])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("running {}", systemctl.display()))?;
    let out = tokio::time::timeout(SYSTEMCTL_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| {
            anyhow!("systemctl show {unit} did not answer within {SYSTEMCTL_TIMEOUT:?}")
        })??;
    let status = out.status;
    if !status.success() {
        bail!(
            "systemctl show {unit}: {status}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("MainPID=") {
            let pid: i32 = v
                .trim()
                .parse()
                .with_context(|| format!("invalid pid {v:?}"))?;
            return Ok((pid != 0).then_some(pid));
        }
    }
    Ok(None)
}
