//! Pipeline scenarios as data: every folder under `tests/scenarios/` holds a
//! `graft.toml` and either `expected.out` (what `graft test` prints, with
//! each line's timestamp written as `<ts>`) or `expected.err` (lines that
//! must all appear in the error of a run that fails before starting).

use std::path::Path;

use graft_test_support::{graft, workspace_root};

fn normalize(stdout: &str) -> String {
    stdout
        .lines()
        .map(|l| match l.rsplit_once(' ') {
            Some((head, ts)) if ts.parse::<i64>().is_ok() => format!("{head} <ts>\n"),
            _ => format!("{l}\n"),
        })
        .collect()
}

fn run_scenario(dir: &Path) -> Result<(), String> {
    let out = graft()
        .args(["test", "--config"])
        .arg(dir.join("graft.toml"))
        .output()
        .map_err(|e| format!("running graft: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if let Ok(expected) = std::fs::read_to_string(dir.join("expected.out")) {
        if !out.status.success() {
            return Err(format!("graft failed: {stderr}"));
        }
        let got = normalize(&stdout);
        if got != expected {
            return Err(format!(
                "output differs\n--- expected\n{expected}--- got\n{got}--- stderr\n{stderr}"
            ));
        }
    } else {
        let expected = std::fs::read_to_string(dir.join("expected.err"))
            .map_err(|_| "neither expected.out nor expected.err".to_owned())?;
        if out.status.success() {
            return Err(format!(
                "expected a failure, got success with output:\n{stdout}"
            ));
        }
        for line in expected.lines().filter(|l| !l.is_empty()) {
            if !stderr.contains(line) {
                return Err(format!("error lacks {line:?}; it was:\n{stderr}"));
            }
        }
        if !stdout.is_empty() {
            return Err(format!("a failed start printed metrics:\n{stdout}"));
        }
    }
    Ok(())
}

#[test]
fn every_scenario_holds() {
    let root = workspace_root().join("tests/scenarios");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .expect("tests/scenarios")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.join("graft.toml").is_file())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 12,
        "scenarios missing from {}",
        root.display()
    );
    let failures: Vec<String> = dirs
        .iter()
        .filter_map(|d| {
            run_scenario(d)
                .err()
                .map(|e| format!("{}: {e}", d.file_name().unwrap().to_string_lossy()))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed:\n\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n\n")
    );
}
