//! `inputs.procstat`: resource usage of the processes one selector names
//! (`pid_file`, `exe`, `pattern`, `user`, `systemd_unit`, `cgroup`), as
//! Telegraf's `procstat` measurement with gopsutil's field names and types,
//! plus one `procstat_lookup` metric per gather (`pid_count`, `running`,
//! `result_code`; tag `result` = `success` or `lookup_error`).
//!
//! - A lookup that fails (a missing pid file, an unknown user, a cgroup
//!   that is not there, `systemctl` failing) gives `procstat_lookup` with
//!   `result=lookup_error` and is counted in `lookup_errors`, logged when
//!   it starts failing and when it recovers; the gather itself succeeds.
//! - A process that exits between the lookup and its reading costs only
//!   itself (not counted in `running`).
//! - At most `max_processes` processes are read per gather (a `pattern =
//!   "."` on a busy machine); the rest are counted in
//!   `processes_limit_hits` (logged once until it stops happening).
//! - `cpu_usage` (percent of one CPU since the last gather; divided by the
//!   number of CPUs with `mode = "solaris"`) appears from a process's
//!   second gather on, as in Telegraf.
//! - The lookup and the reading of `/proc` run on a blocking thread
//!   (`spawn_blocking`), and `systemctl show` is awaited with a 5 s
//!   timeout, so a gather never holds a runtime worker.
//! - Refused with an error naming the key: `[[inputs.procstat.filter]]`,
//!   `supervisor_units`, `win_service`, the `sockets` property.

mod config;
#[cfg(test)]
mod crafted_tests;
mod fields;
mod find;
#[cfg(test)]
mod kernel_tests;
mod proc;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use anyhow::Result;
use async_trait::async_trait;
use graft_api::counters::Counters;
use graft_api::{CallError, Input};
use graft_core::{Batch, BatchBuilder};

use super::{now_ns, proc_path, sys_path};
use crate::builtin::{self, Builtin};
pub use config::{Config, DEFAULT_MAX_PROCESSES, Selector, Settings};
use fields::{Host, Seen};
pub use find::Roots;
use proc::{ProcDir, Users};

/// The input's own counters (`docs/instrumentation.md`).
#[derive(Clone, Default)]
pub struct Stats {
    /// `processes_limit_hits`: processes found past `max_processes`.
    pub processes_limit_hits: Arc<AtomicU64>,
    /// `lookup_errors`: gathers whose lookup failed.
    pub lookup_errors: Arc<AtomicU64>,
}

/// The `procstat` input: what a gather awaits (`systemctl`) here, the rest
/// in a [`State`] a blocking thread reads `/proc` with.
pub struct Procstat {
    /// The unit whose `MainPID` is read before each gather, if any.
    main_pid_of: Option<String>,
    systemctl: PathBuf,
    stats: Stats,
    state: Arc<Mutex<State>>,
}

/// What persists from one gather to the next.
struct State {
    settings: Settings,
    roots: Roots,
    users: Users,
    /// Processes seen at the last gather, for `cpu_usage`.
    seen: HashMap<i32, Seen>,
    stats: Stats,
    failing: bool,
    over_limit: bool,
}

/// Build from the plugin's table.
pub fn build(table: toml::Table) -> Result<Box<dyn Input>> {
    builtin::build::<Procstat>(table)
}

impl Builtin for Procstat {
    const NAME: &'static str = "procstat";
    type Config = Config;
    type Plugin = dyn Input;

    fn validate(config: &Config) -> Result<()> {
        Settings::resolve(config).map(drop)
    }

    fn build(config: Config) -> Result<Box<dyn Input>> {
        Ok(Box::new(Procstat::new(&config)?))
    }
}

impl Procstat {
    /// Resolve the config; nothing is looked up until the first gather.
    pub fn new(config: &Config) -> Result<Self> {
        let roots = Roots {
            proc: proc_path(""),
            cgroup: sys_path("fs/cgroup"),
            systemctl: PathBuf::from("systemctl"),
        };
        Self::with_roots(config, roots)
    }

    /// Look in `roots` instead of `$HOST_PROC`, `$HOST_SYS/fs/cgroup` and
    /// the `systemctl` on the `PATH` (tests).
    pub fn with_roots(config: &Config, roots: Roots) -> Result<Self> {
        let settings = Settings::resolve(config)?;
        let main_pid_of = match &settings.selector {
            Selector::SystemdUnit {
                unit,
                children: false,
            } => Some(unit.clone()),
            _ => None,
        };
        let stats = Stats::default();
        Ok(Self {
            main_pid_of,
            systemctl: roots.systemctl.clone(),
            stats: stats.clone(),
            state: Arc::new(Mutex::new(State {
                settings,
                roots,
                users: Users::load(),
                seen: HashMap::new(),
                stats,
                failing: false,
                over_limit: false,
            })),
        })
    }

    /// The counters this input keeps.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// One gather at `ts`: `systemctl` awaited, `/proc` read on a blocking
    /// thread.
    pub async fn gather_at(&mut self, ts: i64) -> Result<Batch> {
        let main_pid = match &self.main_pid_of {
            Some(unit) => find::systemd_main_pid(unit, &self.systemctl).await,
            None => Ok(None),
        };
        let state = Arc::clone(&self.state);
        tokio::task::spawn_blocking(move || {
            let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
            state.sample(ts, main_pid)
        })
        .await
        .map_err(|e| anyhow::anyhow!("procstat gather failed: {e}"))
    }

    /// [`Self::gather_at`] on a runtime of its own (tests).
    #[cfg(test)]
    pub fn sample(&mut self, ts: i64) -> Batch {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(self.gather_at(ts))
            .unwrap()
    }
}

impl State {
    /// One gather at `ts`; `main_pid` is what `systemctl` said, if asked.
    fn sample(&mut self, ts: i64, main_pid: Result<Option<i32>>) -> Batch {
        self.users.refresh();
        let s = &self.settings;
        let mut b = BatchBuilder::new();
        let found = main_pid
            .and_then(|pid| find::find(&s.selector, s.finder, &self.roots, &self.users, pid));
        let groups = match found {
            Ok(groups) => {
                if self.failing {
                    tracing::info!("process lookup works again");
                }
                self.failing = false;
                groups
            }
            Err(e) => {
                self.stats.lookup_errors.fetch_add(1, Ordering::Relaxed);
                if !self.failing {
                    tracing::warn!(error = %format!("{e:#}"), "process lookup failed; procstat_lookup reports result=lookup_error until it works");
                }
                self.failing = true;
                b.metric("procstat_lookup", ts)
                    .tag("pid_finder", s.finder)
                    .tag("result", "lookup_error")
                    .field("pid_count", 0i64)
                    .field("running", 0i64)
                    .field("result_code", 1i64);
                return b.finish();
            }
        };
        let host = Host::read(&self.roots.proc);
        let now = Instant::now();
        let (mut count, mut read, mut over) = (0usize, 0usize, 0u64);
        let mut seen = HashMap::new();
        for g in &groups {
            count += g.pids.len();
            for &pid in &g.pids {
                if read == s.max_processes {
                    over += 1;
                    continue;
                }
                let dir = ProcDir::new(&self.roots.proc, pid);
                let last = self.seen.get(&pid);
                let Some(p) = fields::read(&dir, s, &self.users, &host, last, now) else {
                    continue; // gone since the lookup
                };
                read += 1;
                p.emit(&mut b, ts, s, &g.tags);
                seen.insert(pid, p.seen);
            }
        }
        self.seen = seen;
        let mut m = b.metric("procstat_lookup", ts);
        m.tag("pid_finder", s.finder).tag("result", "success");
        for g in &groups {
            for (k, v) in &g.tags {
                m.tag(k, v);
            }
        }
        m.field("pid_count", count as i64)
            .field("running", read as i64)
            .field("result_code", 0i64);
        drop(m);
        self.limit(over);
        b.finish()
    }

    fn limit(&mut self, over: u64) {
        self.stats
            .processes_limit_hits
            .fetch_add(over, Ordering::Relaxed);
        if over > 0 && !self.over_limit {
            tracing::warn!(
                limit = "max_processes",
                max = self.settings.max_processes,
                skipped = over,
                "more processes than max_processes: the rest are skipped (counted in processes_limit_hits)"
            );
        }
        self.over_limit = over > 0;
    }
}

#[async_trait]
impl Input for Procstat {
    fn attach_counters(&mut self, counters: Arc<Counters>) {
        self.stats = Stats {
            processes_limit_hits: counters.counter("processes_limit_hits"),
            lookup_errors: counters.counter("lookup_errors"),
        };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.stats = self.stats.clone();
    }

    async fn gather(&mut self) -> Result<Batch, CallError> {
        self.gather_at(now_ns()).await.map_err(super::failed)
    }
}
