//! What `graft plugin test` found, and its three renderings: for a
//! terminal, JSON, and JUnit XML for CI systems.

use std::fmt::Write as _;
use std::time::Instant;

use serde::Serialize;

/// How a check ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Warn,
    Skip,
}

/// One check.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub group: &'static str,
    pub name: String,
    pub status: Status,
    pub detail: String,
    pub millis: f64,
}

/// Everything `graft plugin test` found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub plugin: String,
    pub kind: Option<String>,
    pub contract: Option<String>,
    pub checks: Vec<Check>,
}

impl Report {
    pub(super) fn add(
        &mut self,
        group: &'static str,
        name: impl Into<String>,
        started: Instant,
        r: Outcome,
    ) {
        let (status, detail) = r;
        self.checks.push(Check {
            group,
            name: name.into(),
            status,
            detail,
            millis: started.elapsed().as_secs_f64() * 1e3,
        });
    }

    /// Whether any check failed.
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.status == Status::Fail)
    }

    /// For a terminal.
    pub fn human(&self) -> String {
        let mut out = format!("{}\n", self.plugin);
        if let (Some(k), Some(v)) = (&self.kind, &self.contract) {
            let _ = writeln!(out, "  {k} plugin, contract graft:plugin@{v}");
        }
        for c in &self.checks {
            let mark = match c.status {
                Status::Pass => "ok  ",
                Status::Fail => "FAIL",
                Status::Warn => "warn",
                Status::Skip => "skip",
            };
            let _ = write!(out, "  {mark} {}: {}", c.group, c.name);
            if !c.detail.is_empty() {
                let _ = write!(out, " — {}", c.detail);
            }
            out.push('\n');
        }
        let failed = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .count();
        let _ = writeln!(out, "{} checks, {failed} failed", self.checks.len());
        out
    }

    /// For machines.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// For CI systems that read JUnit XML.
    pub fn junit(&self) -> String {
        let esc = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
        };
        let failures = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .count();
        let skipped = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Skip)
            .count();
        let mut out = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"graft plugin test: {}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\">\n",
            esc(&self.plugin),
            self.checks.len()
        );
        for c in &self.checks {
            let _ = write!(
                out,
                "  <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                c.group,
                esc(&c.name),
                c.millis / 1e3
            );
            match c.status {
                Status::Fail => {
                    let _ = writeln!(out, "><failure message=\"{}\"/></testcase>", esc(&c.detail));
                }
                Status::Skip => {
                    let _ = writeln!(out, "><skipped message=\"{}\"/></testcase>", esc(&c.detail));
                }
                _ => {
                    let _ = writeln!(
                        out,
                        "><system-out>{}</system-out></testcase>",
                        esc(&c.detail)
                    );
                }
            }
        }
        out.push_str("</testsuite>\n");
        out
    }
}

/// A check's status and what it saw.
pub(super) type Outcome = (Status, String);

pub(super) fn pass(detail: impl Into<String>) -> Outcome {
    (Status::Pass, detail.into())
}

pub(super) fn fail(detail: impl Into<String>) -> Outcome {
    (Status::Fail, detail.into())
}
