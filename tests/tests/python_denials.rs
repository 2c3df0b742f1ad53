//! A Python plugin that raises is an error, not a security event: CPython
//! looking up the plugin's own source (compiled into the component) is not
//! counted in `denied` nor logged as a denial, and the error carries a
//! traceback. A real attempt to read a host path still is a denial.
//!
//! Needs componentize-py (`pip install componentize-py==0.25.1`).

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use graft_test_support::{build_python_plugin, graft, poll_until, stop, workspace_root};

const APP: &str = r#"
import traceback

import graft_sdk as graft


class Boom:
    def __init__(self, config: graft.Config) -> None:
        self.read = config.boolean("read", default=False)

    def fail(self) -> None:
        raise ValueError("boom")

    def process(self, batch: graft.Batch) -> graft.Batch:
        if self.read:
            try:
                open("/etc/hostname").read()
            except OSError:
                pass
        try:
            self.fail()
        except ValueError:
            # What plugin authors do: CPython looks up the source lines.
            self.last = traceback.format_exc()
            raise
        return batch


Processor = graft.processor(Boom)
"#;

/// The fields of the last `internal_process` line for `alias`.
fn last_process_fields(text: &str, alias: &str) -> Option<BTreeMap<String, String>> {
    let tag = format!(",alias={alias},");
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with("internal_process") && l.contains(&tag))?;
    let fields = line.split(' ').nth(1)?;
    Some(
        fields
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_end_matches('i').to_owned()))
            .collect(),
    )
}

#[test]
fn a_raising_python_plugin_is_no_denial_but_a_real_read_is() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("app.py"), APP).unwrap();
    let plugin = dir.path().join("boom.wasm");
    build_python_plugin(
        &src,
        "app",
        "processor-plugin",
        &workspace_root().join("wit"),
        &plugin,
    );

    let out = dir.path().join("internal.lp");
    let config = dir.path().join("graft.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[agent]
  interval = "200ms"
  flush_interval = "200ms"
  omit_hostname = true
[[inputs.internal]]
  collect_memstats = false
[[processors.wasm]]
  alias = "raiser"
  path = "{plugin}"
[[processors.wasm]]
  alias = "reader"
  path = "{plugin}"
  [processors.wasm.config]
    read = true
[[outputs.file]]
  files = ["{out}"]
"#,
            plugin = plugin.display(),
            out = out.display()
        ),
    )
    .unwrap();
    let mut child = graft()
        .args(["run", "--config"])
        .arg(&config)
        .env("GRAFT_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let errors_at_least = |n: u64| {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        ["raiser", "reader"].iter().all(|a| {
            last_process_fields(&text, a)
                .and_then(|f| f.get("errors")?.parse::<u64>().ok())
                .is_some_and(|e| e >= n)
        })
    };
    poll_until(
        "five failed batches in each plugin",
        Duration::from_secs(60),
        || errors_at_least(5),
    );
    let (status, log) = stop(&mut child, Duration::from_secs(30));
    assert!(status.success(), "{log}");

    let text = std::fs::read_to_string(&out).unwrap();
    let raiser = last_process_fields(&text, "raiser").unwrap();
    let reader = last_process_fields(&text, "reader").unwrap();
    assert_eq!(raiser["denied"], "0", "{raiser:?}");
    let errors: u64 = reader["errors"].parse().unwrap();
    let denied: u64 = reader["denied"].parse().unwrap();
    // One real read per batch, and nothing more.
    assert!(denied >= 5 && denied <= errors + 1, "{reader:?}");

    assert!(!log.contains("tried to read /0/"), "{log}");
    assert!(!log.contains("tried to read /python/"), "{log}");
    assert!(log.contains("tried to read /etc/hostname"), "{log}");
    // The error says where, from the code objects: file, line, function.
    assert!(
        log.contains("ValueError: boom (traceback: app.py:")
            && log.contains(" in process > app.py:")
            && log.contains(" in fail)"),
        "{log}"
    );
}
