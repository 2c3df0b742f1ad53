//! The compliance checks every built-in plugin passes, run through the real
//! `graft` binary (after vector's `test_util/components.rs`): one agent holds
//! every built-in, each under the alias `compliance_<name>`, next to
//! `inputs.internal` and an `outputs.file`; the test feeds each listener bad
//! input then good input, and checks that every plugin emits its
//! self-metrics row, counts its errors, still takes good data after bad,
//! and that SIGTERM stops the agent within 15 s.
//!
//! The list of built-ins comes from the binary (what `graft config check`
//! names as the built-ins of each kind), so a new built-in without a
//! [`Case`] fails the run.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::servers::listening;
use crate::{graft, sigterm};

/// How long the agent may take to stop after SIGTERM.
pub const STOP_LIMIT: Duration = Duration::from_secs(15);

/// A plugin kind, as sections name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Input,
    Processor,
    Output,
}

impl Kind {
    /// `inputs`, `processors`, `outputs`.
    pub fn section(self) -> &'static str {
        match self {
            Kind::Input => "inputs",
            Kind::Processor => "processors",
            Kind::Output => "outputs",
        }
    }

    /// The self-metric row of a plugin of this kind.
    pub fn self_metric(self) -> &'static str {
        match self {
            Kind::Input => "internal_gather",
            Kind::Processor => "internal_process",
            Kind::Output => "internal_write",
        }
    }

    fn singular(self) -> &'static str {
        match self {
            Kind::Input => "input",
            Kind::Processor => "processor",
            Kind::Output => "output",
        }
    }
}

/// One built-in under test.
pub struct Case {
    pub kind: Kind,
    /// The section name (`carbon` in `[[inputs.carbon]]`).
    pub name: &'static str,
    /// The section's keys (and sub-tables after them); `{out}` is replaced
    /// by the path of the agent's output file.
    pub options: String,
    /// TCP ports the plugin listens on, waited for before feeding.
    pub listens: Vec<u16>,
    /// Sends bad input, then good input, once every listener is up.
    pub feed: Option<Box<dyn Fn()>>,
    /// A self-metric field that must be above zero at the end (the bad
    /// input or the unreachable peer counted).
    pub counts: Option<&'static str>,
    /// Self-metric fields that must be above zero besides (the plugin did
    /// its work: `metrics_gathered`, `metrics_written`, ...).
    pub works: Vec<&'static str>,
    /// A measurement that must land in the output file (the good input
    /// sent after the bad).
    pub lands: Option<&'static str>,
}

impl Case {
    /// A case with nothing to feed and nothing to count.
    pub fn new(kind: Kind, name: &'static str, options: impl Into<String>) -> Self {
        Self {
            kind,
            name,
            options: options.into(),
            listens: Vec::new(),
            feed: None,
            counts: None,
            works: Vec::new(),
            lands: None,
        }
    }

    /// The alias the case runs under.
    pub fn alias(&self) -> String {
        format!("compliance_{}", self.name)
    }
}

/// The built-ins of `kind` the `graft` binary knows, without `wasm`: the
/// names it lists when a config asks for one it does not know.
pub fn builtins(kind: Kind) -> BTreeSet<String> {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("unknown.toml");
    let mut text = String::from("[[inputs.mem]]\n[[outputs.file]]\n");
    writeln!(text, "[[{}.compliance_no_such_plugin]]", kind.section()).unwrap();
    std::fs::write(&config, text).unwrap();
    let out = graft()
        .args(["config", "check", "--config"])
        .arg(&config)
        .output()
        .expect("running graft config check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "an unknown plugin was accepted: {stderr}"
    );
    let marker = format!("built-in {}s are: ", kind.singular());
    let list = stderr
        .split_once(&marker)
        .unwrap_or_else(|| panic!("no list of built-ins after {marker:?} in: {stderr}"))
        .1;
    list.lines()
        .next()
        .unwrap_or("")
        .split(',')
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty() && n != "wasm")
        .collect()
}

/// One line of line protocol, read back.
#[derive(Debug, Clone)]
pub struct Metric {
    pub name: String,
    pub tags: BTreeMap<String, String>,
    /// Field values as written (`1i`, `2.5`, `"text"`).
    pub fields: BTreeMap<String, String>,
}

impl Metric {
    /// A numeric field as an integer (`1i`, `1u`, `1.0`).
    pub fn int(&self, key: &str) -> Option<i64> {
        let v = self.fields.get(key)?;
        let v = v.trim_end_matches(['i', 'u']);
        v.parse::<i64>()
            .ok()
            .or_else(|| v.parse::<f64>().ok().map(|f| f as i64))
    }
}

/// Split `s` at `sep` outside double quotes and not after a backslash.
fn split_unescaped(s: &str, sep: char, quotes: bool) -> Vec<String> {
    let mut parts = vec![String::new()];
    let (mut escaped, mut quoted) = (false, false);
    for c in s.chars() {
        let last = parts.last_mut().expect("never empty");
        if escaped {
            last.push(c);
            escaped = false;
        } else if c == '\\' {
            last.push(c);
            escaped = true;
        } else if quotes && c == '"' {
            last.push(c);
            quoted = !quoted;
        } else if c == sep && !quoted {
            parts.push(String::new());
        } else {
            last.push(c);
        }
    }
    parts
}

/// Parse one line of line protocol (enough for what graft writes).
pub fn parse_line(line: &str) -> Option<Metric> {
    let sections = split_unescaped(line, ' ', true);
    let (series, fields) = (sections.first()?, sections.get(1)?);
    let mut series = split_unescaped(series, ',', false).into_iter();
    let name = series.next()?;
    let pair = |kv: String| {
        let mut kv = split_unescaped(&kv, '=', true).into_iter();
        let k = kv.next()?;
        let rest: Vec<String> = kv.collect();
        (!rest.is_empty()).then(|| (k, rest.join("=")))
    };
    Some(Metric {
        name,
        tags: series.filter_map(pair).collect(),
        fields: split_unescaped(fields, ',', true)
            .into_iter()
            .filter_map(pair)
            .collect(),
    })
}

/// Every metric in a line-protocol file.
pub fn read_metrics(path: &Path) -> Vec<Metric> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(parse_line)
        .collect()
}

/// What a finished run saw.
pub struct Report {
    /// How long the agent took to exit after SIGTERM.
    pub stopped_in: Duration,
    /// Everything the agent logged.
    pub log: String,
    /// Every metric its output file held.
    pub metrics: Vec<Metric>,
}

/// The checks a case still fails, given what landed so far.
fn failures(cases: &[Case], metrics: &[Metric]) -> Vec<String> {
    let mut latest: BTreeMap<(&str, &str), &Metric> = BTreeMap::new();
    let mut names = BTreeSet::new();
    for m in metrics {
        names.insert(m.name.as_str());
        if let Some(alias) = m.tags.get("alias") {
            latest.insert((m.name.as_str(), alias.as_str()), m);
        }
    }
    let mut missing = Vec::new();
    for case in cases {
        let alias = case.alias();
        let what = format!("{}.{}", case.kind.section(), case.name);
        let Some(row) = latest.get(&(case.kind.self_metric(), alias.as_str())) else {
            missing.push(format!(
                "{what}: no {} row tagged alias={alias}",
                case.kind.self_metric()
            ));
            continue;
        };
        for field in case.counts.iter().chain(&case.works) {
            if row.int(field).unwrap_or(0) <= 0 {
                missing.push(format!(
                    "{what}: {}.{field} is {:?}, expected above 0",
                    case.kind.self_metric(),
                    row.fields.get(*field)
                ));
            }
        }
        if let Some(name) = case.lands
            && !names.contains(name)
        {
            missing.push(format!("{what}: nothing named {name:?} landed"));
        }
    }
    missing
}

/// The agent's config: every case under its alias.
fn config(cases: &[Case], out: &Path) -> String {
    let mut text = String::from(
        "[agent]\n  interval = \"500ms\"\n  flush_interval = \"250ms\"\n  omit_hostname = true\n",
    );
    let mut sorted: Vec<&Case> = cases.iter().collect();
    sorted.sort_by_key(|c| c.kind);
    for case in sorted {
        writeln!(
            text,
            "[[{}.{}]]\n  alias = \"{}\"\n{}",
            case.kind.section(),
            case.name,
            case.alias(),
            case.options.replace("{out}", &out.display().to_string())
        )
        .unwrap();
    }
    text
}

/// Run every case in one agent. Fails when a built-in of the binary has no
/// case (or a case names no built-in), when a check still fails after
/// `limit`, or when the agent does not stop within [`STOP_LIMIT`].
pub fn run(cases: Vec<Case>, limit: Duration) -> Report {
    for kind in [Kind::Input, Kind::Processor, Kind::Output] {
        let known = builtins(kind);
        let covered: BTreeSet<String> = cases
            .iter()
            .filter(|c| c.kind == kind)
            .map(|c| c.name.to_owned())
            .collect();
        assert_eq!(
            known,
            covered,
            "every built-in {} needs exactly one compliance case",
            kind.singular()
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.lp");
    let config_path = dir.path().join("graft.toml");
    std::fs::write(&config_path, config(&cases, &out)).unwrap();
    let log_path = dir.path().join("graft.log");
    let mut child = graft()
        .env("GRAFT_LOG", "info")
        .args(["run", "--config"])
        .arg(&config_path)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .expect("starting graft");
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let ports: Vec<u16> = cases.iter().flat_map(|c| c.listens.clone()).collect();
    if let Err(e) = wait(limit, || ports.iter().all(|p| listening(*p))) {
        let _ = child.kill();
        panic!("listeners not up {e}\n{}", log());
    }
    for feed in cases.iter().filter_map(|c| c.feed.as_ref()) {
        feed();
    }
    let mut left = Vec::new();
    if wait(limit, || {
        left = failures(&cases, &read_metrics(&out));
        left.is_empty()
    })
    .is_err()
    {
        let _ = child.kill();
        panic!(
            "compliance checks failing after {limit:?}:\n  {}\nlog:\n{}",
            left.join("\n  "),
            log()
        );
    }
    let stopped_in =
        stop_within(&mut child, STOP_LIMIT).unwrap_or_else(|e| panic!("{e}\n{}", log()));
    Report {
        stopped_in,
        log: log(),
        metrics: read_metrics(&out),
    }
}

/// Check `done` every 100 ms for at most `limit`.
fn wait(limit: Duration, mut done: impl FnMut() -> bool) -> Result<(), String> {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > limit {
            return Err(format!("after {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// SIGTERM `child` and wait for it; an error (after killing it) past
/// `limit` or on a failed exit.
fn stop_within(child: &mut Child, limit: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    sigterm(child);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let took = start.elapsed();
            return if status.success() {
                Ok(took)
            } else {
                Err(format!("the agent exited with {status} after SIGTERM"))
            };
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            return Err(format!(
                "the agent did not stop within {limit:?} of SIGTERM"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_escaped_tags_and_quoted_fields() {
        let m = parse_line(
            r#"system,alias=a\ b,path=/x\,y uptime_format="1 day,  3:05",n=2i,v=1.5 1700000000000000000"#,
        )
        .unwrap();
        assert_eq!(m.name, "system");
        assert_eq!(m.tags["alias"], r"a\ b");
        assert_eq!(m.tags["path"], r"/x\,y");
        assert_eq!(m.fields["uptime_format"], r#""1 day,  3:05""#);
        assert_eq!(m.int("n"), Some(2));
        assert_eq!(m.int("v"), Some(1));
        assert!(parse_line("just_a_name").is_none());
    }

    #[test]
    fn a_missing_row_and_a_zero_counter_are_failures() {
        let mut case = Case::new(Kind::Input, "statsd", "");
        case.counts = Some("parse_errors");
        let row = |errors: &str| {
            parse_line(&format!(
                "internal_gather,alias=compliance_statsd,input=statsd parse_errors={errors}i"
            ))
            .unwrap()
        };
        assert_eq!(failures(std::slice::from_ref(&case), &[]).len(), 1);
        assert_eq!(failures(std::slice::from_ref(&case), &[row("0")]).len(), 1);
        assert!(failures(std::slice::from_ref(&case), &[row("0"), row("2")]).is_empty());
        case.lands = Some("compliance_statsd");
        assert_eq!(failures(std::slice::from_ref(&case), &[row("2")]).len(), 1);
    }
}
