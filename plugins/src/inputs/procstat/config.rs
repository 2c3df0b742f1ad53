//! `[[inputs.procstat]]` as read (Telegraf's keys), and what it resolves
//! to: one selector, the finder's flavour, the properties and tags asked for.

use anyhow::{Result, bail};
use regex::Regex;
use serde::Deserialize;

/// Processes read per gather unless `max_processes` says otherwise.
pub const DEFAULT_MAX_PROCESSES: usize = 10_000;

/// `[[inputs.procstat]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `pid_finder` (default `"pgrep"`): `"pgrep"` or `"native"`; both are
    /// done by graft itself, with pgrep's or Telegraf's native matching.
    #[serde(default)]
    pub pid_finder: String,
    /// `pid_file`: the process whose pid the file holds.
    #[serde(default)]
    pub pid_file: String,
    /// `exe`: a regex on the process name (`pgrep <exe>`), or on the
    /// executable's path with the native finder.
    #[serde(default)]
    pub exe: String,
    /// `pattern`: a regex on the whole command line (`pgrep -f`).
    #[serde(default)]
    pub pattern: String,
    /// `prefix` (default `""`): put before every field name, with a `_`.
    #[serde(default)]
    pub prefix: String,
    /// `process_name`: replaces the `process_name` tag.
    #[serde(default)]
    pub process_name: String,
    /// `user`: processes of this user (`pgrep -u`).
    #[serde(default)]
    pub user: String,
    /// `systemd_unit`: the unit's main process (`systemctl show`), or its
    /// whole cgroup with `include_systemd_children`.
    #[serde(default)]
    pub systemd_unit: String,
    /// `supervisor_units`: refused (graft does not ask supervisord).
    #[serde(default)]
    pub supervisor_units: Vec<String>,
    /// `include_systemd_children` (default false).
    #[serde(default)]
    pub include_systemd_children: bool,
    /// `cgroup`: a cgroup directory (relative to `/sys/fs/cgroup`), globs
    /// allowed; its `cgroup.procs`.
    #[serde(default)]
    pub cgroup: String,
    /// `win_service`: refused (Windows only).
    #[serde(default)]
    pub win_service: String,
    /// `mode` (default `"irix"`): `"solaris"` (any case) divides
    /// `cpu_usage` by the number of CPUs; anything else is irix.
    #[serde(default)]
    pub mode: String,
    /// `properties` (default `["cpu", "memory", "mmap"]`), and `"limits"`.
    #[serde(default = "default_properties")]
    pub properties: Vec<String>,
    /// `socket_protocols`: only with the `sockets` property, which graft
    /// refuses; ignored otherwise, as in Telegraf.
    #[serde(default)]
    pub socket_protocols: Vec<String>,
    /// `tag_with` (default `[]`): `cmdline`, `pid`, `ppid`, `status`,
    /// `user` become tags instead of fields.
    #[serde(default)]
    pub tag_with: Vec<String>,
    /// `[[inputs.procstat.filter]]`: refused (not supported yet).
    #[serde(default)]
    pub filter: Vec<toml::Table>,
    /// `max_processes` (default 10000): processes read per gather.
    #[serde(default = "default_max_processes")]
    pub max_processes: usize,
}

fn default_properties() -> Vec<String> {
    ["cpu", "memory", "mmap"].map(String::from).to_vec()
}

fn default_max_processes() -> usize {
    DEFAULT_MAX_PROCESSES
}

impl Default for Config {
    fn default() -> Self {
        toml::from_str("").expect("every key has a default")
    }
}

/// How the processes are chosen: the first selector set, in Telegraf's
/// order of precedence.
#[derive(Debug, Clone)]
pub enum Selector {
    SystemdUnit { unit: String, children: bool },
    Cgroup(String),
    PidFile(String),
    Exe(Regex, String),
    Pattern(Regex, String),
    User(String),
}

impl Selector {
    /// The tag of `procstat` and `procstat_lookup` that names it.
    pub fn tag(&self) -> (&'static str, &str) {
        match self {
            Selector::SystemdUnit { unit, .. } => ("systemd_unit", unit),
            Selector::Cgroup(c) => ("cgroup", c),
            Selector::PidFile(p) => ("pidfile", p),
            Selector::Exe(_, e) => ("exe", e),
            Selector::Pattern(_, p) => ("pattern", p),
            Selector::User(u) => ("user", u),
        }
    }
}

/// The config, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    pub selector: Selector,
    /// `"pgrep"` or `"native"`, as the `pid_finder` tag says.
    pub finder: &'static str,
    pub prefix: String,
    pub process_name: String,
    pub solaris: bool,
    pub cpu: bool,
    pub memory: bool,
    pub mmap: bool,
    pub limits: bool,
    pub tag_cmdline: bool,
    pub tag_pid: bool,
    pub tag_ppid: bool,
    pub tag_status: bool,
    pub tag_user: bool,
    pub max_processes: usize,
}

fn regex(key: &str, value: &str) -> Result<Regex> {
    Regex::new(value)
        .map_err(|e| anyhow::anyhow!("{key}: {value:?} is not a regular expression: {e}"))
}

impl Settings {
    /// Check the keys as Telegraf's `Init` does, and refuse what graft
    /// cannot do rather than ignore it.
    pub fn resolve(c: &Config) -> Result<Self> {
        if !c.filter.is_empty() {
            bail!(
                "filter: [[inputs.procstat.filter]] sections are not supported by graft yet; select with pid_file, exe, pattern, user, systemd_unit or cgroup"
            );
        }
        if !c.supervisor_units.is_empty() {
            bail!("supervisor_units: not supported by graft; select with pattern or pid_file");
        }
        if !c.win_service.is_empty() {
            bail!("win_service: Windows services exist only on Windows");
        }
        let mut s = Settings {
            selector: Selector::User(String::new()),
            finder: match c.pid_finder.as_str() {
                "" | "pgrep" => "pgrep",
                "native" => "native",
                other => bail!("pid_finder: unknown finder {other:?} (\"pgrep\" or \"native\")"),
            },
            prefix: c.prefix.clone(),
            process_name: c.process_name.clone(),
            solaris: c.mode.eq_ignore_ascii_case("solaris"),
            cpu: false,
            memory: false,
            mmap: false,
            limits: false,
            tag_cmdline: false,
            tag_pid: false,
            tag_ppid: false,
            tag_status: false,
            tag_user: false,
            max_processes: c.max_processes,
        };
        for (i, p) in c.properties.iter().enumerate() {
            match p.as_str() {
                "cpu" => s.cpu = true,
                "memory" => s.memory = true,
                "mmap" => s.mmap = true,
                "limits" => s.limits = true,
                "sockets" => bail!(
                    "properties[{i}]: \"sockets\" (the procstat_socket measurement) is not supported by graft"
                ),
                other => bail!("properties[{i}]: invalid property {other:?}"),
            }
        }
        if !(c.mode.is_empty() || s.solaris || c.mode.eq_ignore_ascii_case("irix")) {
            tracing::warn!(mode = %c.mode, "procstat mode is not \"irix\" or \"solaris\"; irix is used, as in Telegraf");
        }
        if !c.socket_protocols.is_empty() {
            tracing::warn!(
                "procstat socket_protocols has no effect without the sockets property; it is ignored, as in Telegraf"
            );
        }
        for (i, t) in c.tag_with.iter().enumerate() {
            match t.as_str() {
                "cmdline" => s.tag_cmdline = true,
                "pid" => s.tag_pid = true,
                "ppid" => s.tag_ppid = true,
                "status" => s.tag_status = true,
                "user" => s.tag_user = true,
                // Only meaningful for filters and supervisor units.
                "child_level" | "parent_pid" | "level" => {}
                "protocol" | "state" | "src" | "src_port" | "dest" | "dest_port" | "name" => bail!(
                    "tag_with[{i}]: socket tagging option {t:?} specified without sockets enabled"
                ),
                other => bail!("tag_with[{i}]: invalid 'tag_with' setting {other:?}"),
            }
        }
        if c.max_processes == 0 {
            bail!("max_processes: must be at least 1");
        }
        s.selector = if !c.systemd_unit.is_empty() {
            Selector::SystemdUnit {
                unit: c.systemd_unit.clone(),
                children: c.include_systemd_children,
            }
        } else if !c.cgroup.is_empty() {
            globset::Glob::new(&c.cgroup)
                .map_err(|e| anyhow::anyhow!("cgroup: {:?}: {e}", c.cgroup))?;
            Selector::Cgroup(c.cgroup.clone())
        } else if !c.pid_file.is_empty() {
            Selector::PidFile(c.pid_file.clone())
        } else if !c.exe.is_empty() {
            Selector::Exe(regex("exe", &c.exe)?, c.exe.clone())
        } else if !c.pattern.is_empty() {
            Selector::Pattern(regex("pattern", &c.pattern)?, c.pattern.clone())
        } else if !c.user.is_empty() {
            Selector::User(c.user.clone())
        } else {
            bail!(
                "no selector: set one of pid_file, exe, pattern, user, systemd_unit or cgroup (Telegraf: \"require filter option but none set\")"
            );
        };
        Ok(s)
    }
}
