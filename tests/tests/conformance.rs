//! `graft plugin test`, the conformance kit: a good plugin passes (with its
//! golden cases), and each kind of misbehaviour is caught by its own check.

use std::path::Path;
use std::process::Output;

use graft_test_support::{graft, wasm, workspace_root};

fn plugin_test(plugin: &Path, args: &[&str]) -> Output {
    graft()
        .args(["plugin", "test"])
        .arg(plugin)
        .args(["--format", "json", "--soak", "400"])
        .args(args)
        .output()
        .expect("running graft plugin test")
}

/// The report, and the status of every check by name.
fn checks(out: &Output) -> (serde_json::Value, Vec<(String, String, String)>) {
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not a JSON report ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let list = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_owned(),
                c["status"].as_str().unwrap_or_default().to_owned(),
                c["detail"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    (report, list)
}

fn status_of<'a>(checks: &'a [(String, String, String)], name: &str) -> (&'a str, &'a str) {
    checks
        .iter()
        .find(|(n, ..)| n.contains(name))
        .map(|(_, s, d)| (s.as_str(), d.as_str()))
        .unwrap_or_else(|| panic!("no check named {name:?} in {checks:?}"))
}

#[test]
fn a_good_plugin_passes_with_its_golden_cases() {
    let cases = workspace_root().join("examples/rename-processor/cases");
    let out = plugin_test(
        &wasm("example-rename-processor"),
        &[
            "--cases",
            cases.to_str().unwrap(),
            "--config-json",
            r#"{"from":"a","to":"b"}"#,
            "--fuel-per-metric",
            "100000",
            "--memory",
            "67108864",
        ],
    );
    let (report, checks) = checks(&out);
    assert!(
        out.status.success(),
        "{}",
        serde_json::to_string_pretty(&report).unwrap()
    );
    assert_eq!(report["kind"], "processor");
    assert_eq!(report["contract"], "0.1.0");
    for name in [
        "renames-and-tags",
        "leaves-others-alone",
        "bad-config",
        "init with malformed JSON",
        "large batch",
        "unicode",
        "fuel per metric",
        "soak",
    ] {
        assert_eq!(status_of(&checks, name).0, "pass", "{name}: {checks:?}");
    }
}

#[test]
fn junit_and_human_reports_are_written_too() {
    let plugin = wasm("test-passthrough");
    let out = graft()
        .args(["plugin", "test"])
        .arg(&plugin)
        .args(["--format", "junit", "--soak", "40"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let xml = String::from_utf8(out.stdout).unwrap();
    assert!(
        xml.starts_with("<?xml") && xml.contains("<testsuite") && xml.contains("failures=\"0\""),
        "{xml}"
    );
    let out = graft()
        .args(["plugin", "test"])
        .arg(&plugin)
        .args(["--soak", "40"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("processor plugin, contract graft:plugin@0.1.0"),
        "{text}"
    );
    assert!(text.contains("0 failed"), "{text}");
}

#[test]
fn a_trap_on_bad_config_is_caught() {
    let out = plugin_test(&wasm("test-misfit"), &[]);
    assert!(!out.status.success());
    let (_, checks) = checks(&out);
    let (status, detail) = status_of(&checks, "wrong shape");
    assert_eq!(status, "fail", "{detail}");
    assert!(
        detail.contains("faulted instead of returning an error"),
        "{detail}"
    );
}

#[test]
fn a_nondeterministic_plugin_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let case = dir.path().join("tags-a-metric");
    std::fs::create_dir(&case).unwrap();
    std::fs::write(case.join("config.toml"), "mode = \"nondeterministic\"\n").unwrap();
    std::fs::write(case.join("input.lp"), "m,t=v x=1i 1\n").unwrap();
    let out = plugin_test(
        &wasm("test-misfit"),
        &["--cases", dir.path().to_str().unwrap()],
    );
    assert!(!out.status.success());
    let (_, checks) = checks(&out);
    let (status, detail) = status_of(&checks, "tags-a-metric");
    assert_eq!(status, "fail", "{detail}");
    assert!(detail.contains("not deterministic"), "{detail}");
}

#[test]
fn memory_that_grows_without_bound_is_caught() {
    let out = plugin_test(
        &wasm("test-misfit"),
        &["--config-json", r#"{"mode":"leak"}"#],
    );
    assert!(!out.status.success());
    let (_, checks) = checks(&out);
    let (status, detail) = status_of(&checks, "soak");
    assert_eq!(status, "fail", "{detail}");
    assert!(detail.contains("grows without levelling off"), "{detail}");
}

#[test]
fn a_batch_that_breaks_the_contract_is_caught() {
    let out = plugin_test(
        &wasm("evil-processor"),
        &["--config-json", r#"{"action":"malformed_offsets"}"#],
    );
    assert!(!out.status.success());
    let (_, checks) = checks(&out);
    let (status, detail) = status_of(&checks, "large batch");
    assert_eq!(status, "fail", "{detail}");
    assert!(detail.contains("contract"), "{detail}");
}

#[test]
fn an_unsupported_contract_version_is_refused_clearly() {
    let out = plugin_test(&wasm("test-future"), &[]);
    assert!(!out.status.success());
    let (_, checks) = checks(&out);
    let (status, detail) = status_of(&checks, "component and contract");
    assert_eq!(status, "fail");
    assert!(
        detail.contains("graft:plugin@0.9.0") && detail.contains("accepts graft:plugin@0.1.0"),
        "{detail}"
    );
}
