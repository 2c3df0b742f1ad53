//! Mistakes in the options graft itself reads (`[agent]`, `[global_tags]`,
//! the options of every kind, the filter keys, a WASM section's own keys),
//! through the real binary: `graft config check` and `graft run --once`
//! each refuse the file with one error naming the file, the section and the
//! key — never a panic, never a run.

use std::process::Output;

use graft_test_support::graft;

fn show(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A mistake: the section it is in, its text, the section and key the error
/// must name, and a word of what it must say.
struct Mistake {
    section: &'static str,
    body: &'static str,
    names: &'static str,
    key: &'static str,
    says: &'static str,
}

const MISTAKES: &[Mistake] = &[
    Mistake {
        section: "[agent]",
        body: "intervall = \"5s\"",
        names: "[agent]",
        key: "`intervall`",
        says: "unknown key",
    },
    Mistake {
        section: "[agent]",
        body: "metric_batch_size = 0",
        names: "[agent]",
        key: "`metric_batch_size`",
        says: "positive",
    },
    Mistake {
        section: "[agent]",
        body: "round_interval = \"yes\"",
        names: "[agent]",
        key: "`round_interval`",
        says: "boolean",
    },
    Mistake {
        section: "[global_tags]",
        body: "rack = 12",
        names: "[global_tags]",
        key: "`rack`",
        says: "string",
    },
    Mistake {
        section: "[[inputs.mem]]",
        body: "interval = \"0s\"",
        names: "inputs.mem[0]",
        key: "`interval`",
        says: "greater than zero",
    },
    Mistake {
        section: "[[inputs.mem]]",
        body: "tags = { rack = 12 }",
        names: "inputs.mem[0]",
        key: "`tags.rack`",
        says: "string",
    },
    Mistake {
        section: "[[inputs.mem]]",
        body: "namepass = \"mem\"",
        names: "inputs.mem[0]",
        key: "`namepass`",
        says: "sequence",
    },
    Mistake {
        section: "[[inputs.mem]]",
        body: "fieldpass = [\"a\"]\n  fieldinclude = [\"b\"]",
        names: "inputs.mem[0]",
        key: "`fieldpass`",
        says: "old name",
    },
    Mistake {
        section: "[[inputs.mem]]",
        body: "[inputs.mem.tagdrop]\n    host = [\"[unclosed\"]",
        names: "inputs.mem[0]",
        key: "`tagdrop.host`",
        says: "unclosed",
    },
    Mistake {
        section: "[[outputs.file]]",
        body: "metric_buffer_limit = -5",
        names: "outputs.file[0]",
        key: "`metric_buffer_limit`",
        says: "positive",
    },
    Mistake {
        section: "[[outputs.file]]",
        body: "files = [\"stdout\"]\n  buffer_strategy = \"disk\"",
        names: "outputs.file[0]",
        key: "`buffer_strategy`",
        says: "buffer_directory",
    },
    Mistake {
        section: "[[outputs.file]]",
        body: "buffer_fsync = \"sometimes\"",
        names: "outputs.file[0]",
        key: "`buffer_fsync`",
        says: "sometimes",
    },
    Mistake {
        section: "[agent]",
        body: "buffer_strategy = \"tape\"",
        names: "[agent]",
        key: "`buffer_strategy`",
        says: "tape",
    },
    Mistake {
        section: "[[processors.wasm]]",
        body: "path = \"p.wasm\"\n  order = \"first\"",
        names: "processors.wasm[0]",
        key: "`order`",
        says: "i64",
    },
    Mistake {
        section: "[[processors.wasm]]",
        body: "path = \"p.wasm\"\n  to = \"x\"",
        names: "processors.wasm[0]",
        key: "`to`",
        says: "under `config`",
    },
    Mistake {
        section: "[[processors.wasm]]",
        body: "path = \"p.wasm\"\n  on_error = \"retry\"",
        names: "processors.wasm[0]",
        key: "`on_error`",
        says: "retry",
    },
    Mistake {
        section: "[[aggregators.wasm]]",
        body: "period = \"10s\"",
        names: "aggregators.wasm[0]",
        key: "`path`",
        says: "required",
    },
    Mistake {
        section: "[[outputs.wasm]]",
        body: "path = \"p.wasm\"\n  [outputs.wasm.limits]\n    memroy = \"1MiB\"",
        names: "outputs.wasm[0]",
        key: "`limits.memroy`",
        says: "unknown key",
    },
    Mistake {
        section: "[[outputs.wasm]]",
        body: "path = \"p.wasm\"\n  [outputs.wasm.permissions]\n    tcp = [\"127.0.0.1:x\"]",
        names: "outputs.wasm[0]",
        key: "`permissions.tcp",
        says: "127.0.0.1:x",
    },
];

#[test]
fn every_mistake_is_one_error_naming_file_section_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("graft.toml");
    let pwned = dir.path().join("written");
    for m in MISTAKES {
        let mut text = format!("{}\n  {}\n", m.section, m.body);
        if !m.section.starts_with("[agent]") {
            text.push_str("[agent]\n  omit_hostname = true\n");
        }
        // An output that would show the agent ran.
        text.push_str(&format!(
            "[[outputs.file]]\n  files = [\"{}\"]\n",
            pwned.display()
        ));
        if !m.section.starts_with("[[inputs.") {
            text.push_str("[[inputs.mem]]\n");
        }
        std::fs::write(&file, &text).unwrap();
        for command in [&["config", "check"][..], &["run", "--once"][..]] {
            let out = graft()
                .args(command)
                .arg("--config")
                .arg(&file)
                .output()
                .unwrap();
            let what = format!("{command:?} with\n{text}\n{}", show(&out));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "accepted: {what}");
            assert!(!stderr.contains("panicked"), "{what}");
            let line = stderr
                .lines()
                .find(|l| l.starts_with("error:"))
                .unwrap_or_else(|| panic!("no error line: {what}"));
            assert!(
                line.contains(&file.display().to_string())
                    && line.contains(m.names)
                    && line.contains(m.key)
                    && line.contains(m.says),
                "the error does not name file, {}, key {} and say {:?}: {what}",
                m.names,
                m.key,
                m.says
            );
            assert!(!pwned.exists(), "the agent ran: {what}");
        }
    }
}
