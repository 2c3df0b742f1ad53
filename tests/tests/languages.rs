//! Plugins in Rust, Python and JavaScript: the SDKs' own tests, the same
//! example processor in the three languages through the conformance kit
//! with the same cases and inside a real pipeline, and `graft plugin new`
//! projects of every kind and language built and tested as generated.
//!
//! Needs componentize-py (`pip install componentize-py==0.25.1`), node 20
//! and componentize-js (`npm install --prefix sdk/js`); the README's test
//! command installs them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use graft_test_support::{
    build_js_plugin, build_python_plugin, graft, js_node_modules, wasm, workspace_root,
};

fn out_dir() -> PathBuf {
    let dir = workspace_root().join("target/lang-plugins");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn python_rename() -> &'static Path {
    static WASM: OnceLock<PathBuf> = OnceLock::new();
    WASM.get_or_init(|| {
        let out = out_dir().join("rename_python.wasm");
        build_python_plugin(
            &workspace_root().join("examples/rename-processor-python"),
            "app",
            "processor-plugin",
            &workspace_root().join("sdk/python/graft_sdk/wit"),
            &out,
        );
        out
    })
}

fn js_rename() -> &'static Path {
    static WASM: OnceLock<PathBuf> = OnceLock::new();
    WASM.get_or_init(|| {
        let out = out_dir().join("rename_js.wasm");
        build_js_plugin(
            &workspace_root().join("examples/rename-processor-js/app.js"),
            "processor-plugin",
            &workspace_root().join("sdk/js/wit"),
            &out,
        );
        out
    })
}

fn show(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn python_sdk_unit_tests_pass() {
    let out = Command::new("python3")
        .args(["-m", "unittest", "discover", "-v", "tests"])
        .current_dir(workspace_root().join("sdk/python"))
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("OK"),
        "{}",
        show(&out)
    );
}

#[test]
fn js_sdk_unit_tests_pass() {
    let out = Command::new("node")
        .args([
            "--import",
            "./test/register.mjs",
            "--test",
            "test/sdk.test.js",
        ])
        .current_dir(workspace_root().join("sdk/js"))
        .output()
        .expect("node");
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("# fail 0") && !text.contains("# pass 0"),
        "{text}"
    );
}

/// `graft plugin test` as JSON; fails the test when the kit fails.
fn conformance(plugin: &Path, extra: &[&str]) -> serde_json::Value {
    let plugin = plugin.display().to_string();
    let mut args = vec![plugin.as_str()];
    args.extend_from_slice(extra);
    conformance_args(&args)
}

fn conformance_args(args: &[&str]) -> serde_json::Value {
    let out = graft()
        .args(["plugin", "test"])
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed the kit:\n{}",
        show(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no check {name:?} in {report}"))
}

#[test]
fn the_rename_example_passes_the_same_cases_in_rust_python_and_js() {
    let cases = workspace_root().join("examples/rename-processor/cases");
    let config = r#"{"from":"usage_user","to":"user","tags":{"region":"eu"}}"#;
    let mut costs = Vec::new();
    for (lang, plugin) in [
        ("rust", wasm("example-rename-processor")),
        ("python", python_rename().to_path_buf()),
        ("js", js_rename().to_path_buf()),
    ] {
        let mut args = vec![
            "--cases",
            cases.to_str().unwrap(),
            "--config-json",
            config,
            "--soak",
            "200",
        ];
        if lang == "js" {
            // componentize-js frees no memory while it runs.
            args.extend(["--recycle-memory", "16MiB"]);
        }
        let report = conformance(&plugin, &args);
        for case in ["renames-and-tags", "leaves-others-alone", "bad-config"] {
            assert_eq!(check(&report, case)["status"], "pass", "{lang}: {report}");
        }
        costs.push((lang, check(&report, "fuel per metric")["detail"].clone()));
    }
    for (lang, cost) in costs {
        println!("{lang}: {cost}");
    }
}

#[test]
fn the_three_rename_examples_run_in_one_real_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.lp");
    let mut config = String::new();
    for (lang, plugin) in [
        ("rust", wasm("example-rename-processor")),
        ("python", python_rename().to_path_buf()),
        ("js", js_rename().to_path_buf()),
    ] {
        config.push_str(&format!(
            r#"
[[inputs.mem]]
  name_override = "mem_{lang}"

[[processors.wasm]]
  path = {plugin:?}
  namepass = ["mem_{lang}"]
  [processors.wasm.config]
    from = "used_percent"
    to = "used_pct"
    tags = {{ lang = "{lang}" }}
  [processors.wasm.limits]
    recycle_memory = "16MiB"
"#,
            plugin = plugin.display().to_string()
        ));
    }
    config.push_str(&format!(
        "\n[[outputs.file]]\n  files = [{:?}]\n",
        out.display().to_string()
    ));
    let path = dir.path().join("graft.toml");
    std::fs::write(&path, config).unwrap();
    let run = graft()
        .args(["run", "--once", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", show(&run));
    let text = std::fs::read_to_string(&out).unwrap();
    for lang in ["rust", "python", "js"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("mem_{lang},")))
            .unwrap_or_else(|| panic!("no mem_{lang} metric in:\n{text}"));
        assert!(line.contains(&format!(",lang={lang}")), "{line}");
        assert!(
            line.contains(" used_pct=") || line.contains(",used_pct="),
            "{line}"
        );
        assert!(!line.contains("used_percent="), "{line}");
        assert!(line.contains("total="), "other fields stay: {line}");
    }
}

/// Generate a project with `graft plugin new`, build it as its README
/// says, and run the kit on it with its own cases.
fn new_project(kind: &str, lang: &str) {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("my-{kind}");
    let project = dir.path().join(&name);
    let made = graft()
        .args([
            "plugin", "new", &name, "--kind", kind, "--lang", lang, "--dir",
        ])
        .arg(&project)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", show(&made));
    assert!(
        String::from_utf8_lossy(&made.stdout).contains("graft plugin test"),
        "{}",
        show(&made)
    );
    let wit = project.join("wit");
    let plugin = match lang {
        "rust" => {
            // Share one target directory between the generated projects so
            // the SDK and its dependencies compile once.
            let out = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
                .args(["build", "--quiet", "--release", "--target", "wasm32-wasip2"])
                .env(
                    "CARGO_TARGET_DIR",
                    workspace_root().join("target/new-plugins"),
                )
                .env_remove("RUSTFLAGS")
                .env_remove("CARGO_ENCODED_RUSTFLAGS")
                .current_dir(&project)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", show(&out));
            workspace_root().join(format!(
                "target/new-plugins/wasm32-wasip2/release/my_{kind}.wasm"
            ))
        }
        "python" => {
            // The project's own build script, as its README says.
            let out = Command::new("./build.sh")
                .current_dir(&project)
                .output()
                .expect("build.sh");
            assert!(out.status.success(), "{}", show(&out));
            project.join(format!("{name}.wasm"))
        }
        _ => {
            std::os::unix::fs::symlink(js_node_modules(), project.join("node_modules")).unwrap();
            let out = Command::new("npm")
                .args(["run", "build"])
                .current_dir(&project)
                .output()
                .expect("npm");
            assert!(out.status.success(), "{}", show(&out));
            project.join(format!("{name}.wasm"))
        }
    };
    assert!(plugin.exists(), "{} was not built", plugin.display());
    assert!(lang == "rust" || wit.join("graft.wit").exists());
    // The test command exactly as the generated README gives it.
    let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
    let command = readme
        .lines()
        .find(|l| l.starts_with("graft plugin test "))
        .unwrap_or_else(|| panic!("no test command in README:\n{readme}"));
    let args: Vec<&str> = command.split_whitespace().skip(3).collect();
    let documented = match lang {
        // Built into the shared target directory instead of the project's.
        "rust" => workspace_root()
            .join("target/new-plugins")
            .join(args[0].strip_prefix("target/").unwrap_or(args[0])),
        _ => project.join(args[0]),
    };
    assert_eq!(documented, plugin, "{command}");
    let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    args[0] = plugin.display().to_string();
    let cases_at = args.iter().position(|a| a == "--cases").unwrap() + 1;
    args[cases_at] = project.join(&args[cases_at]).display().to_string();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let report = conformance_args(&args);
    let golden: Vec<_> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["group"] == "golden")
        .collect();
    assert!(golden.len() >= 2, "{report}");
    assert!(golden.iter().all(|c| c["status"] == "pass"), "{report}");
}

#[test]
fn new_rust_input_builds_and_passes() {
    new_project("input", "rust");
}

#[test]
fn new_rust_processor_builds_and_passes() {
    new_project("processor", "rust");
}

#[test]
fn new_rust_aggregator_builds_and_passes() {
    new_project("aggregator", "rust");
}

#[test]
fn new_rust_output_builds_and_passes() {
    new_project("output", "rust");
}

#[test]
fn new_python_input_builds_and_passes() {
    new_project("input", "python");
}

#[test]
fn new_python_processor_builds_and_passes() {
    new_project("processor", "python");
}

#[test]
fn new_python_aggregator_builds_and_passes() {
    new_project("aggregator", "python");
}

#[test]
fn new_python_output_builds_and_passes() {
    new_project("output", "python");
}

#[test]
fn new_js_input_builds_and_passes() {
    new_project("input", "js");
}

#[test]
fn new_js_processor_builds_and_passes() {
    new_project("processor", "js");
}

#[test]
fn new_js_aggregator_builds_and_passes() {
    new_project("aggregator", "js");
}

#[test]
fn new_js_output_builds_and_passes() {
    new_project("output", "js");
}
