//! Configuration a hostile user writes, through the real binary: an
//! environment value that tries to close its string and add a section, and
//! every duration and size key given a value that overflows. Each is a
//! value that lands literally or a clear error naming the file, section and
//! key — never a panic, never an extra plugin.

use std::path::Path;
use std::process::Output;

use graft_test_support::graft;

/// A value that, pasted into the text, would close a string and add an
/// output writing to `pwned`.
fn payload(pwned: &Path, quote: char) -> String {
    format!(
        "x{quote}]\n[[outputs.file]]\nfiles = [\"{}\"]\n#",
        pwned.display()
    )
}

fn show(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `graft config check` with `INJECTED` set to `value`.
fn check(config: &Path, value: &str) -> Output {
    graft()
        .args(["config", "check", "--config"])
        .arg(config)
        .env("INJECTED", value)
        .output()
        .unwrap()
}

#[test]
fn an_environment_value_cannot_add_a_section() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.lp");
    let pwned = dir.path().join("pwned.lp");
    // (where the reference is, whether the value can land literally there)
    let forms = [
        (
            "[[outputs.influxdb]]\n  urls = [\"${INJECTED}\"]",
            '"',
            true,
        ),
        ("[[outputs.influxdb]]\n  urls = [\"$INJECTED\"]", '"', true),
        (
            "[[outputs.influxdb]]\n  urls = ['${INJECTED}']",
            '\'',
            false,
        ),
        ("[agent]\n  hostname = \"${INJECTED}\"", '"', true),
        ("[agent]\n  hostname = \"$INJECTED\"", '"', true),
        ("[agent]\n  hostname = '${INJECTED}'", '\'', false),
        ("[agent]\n  hostname = '''$INJECTED'''", '\'', false),
        ("[agent]\n  hostname = ${INJECTED}", '"', false),
    ];
    for (i, (form, quote, literal)) in forms.into_iter().enumerate() {
        let config = dir.path().join(format!("graft{i}.toml"));
        std::fs::write(
            &config,
            format!(
                "{form}\n[[inputs.mem]]\n[[outputs.file]]\n  files = [\"{}\"]\n",
                out.display()
            ),
        )
        .unwrap();
        let value = payload(&pwned, quote);
        let got = check(&config, &value);
        let text = show(&got);
        assert!(!text.contains("panicked"), "{form}: {text}");
        assert!(
            !text.contains("2 outputs") && !text.contains("3 outputs"),
            "{form}: a section was added: {text}"
        );
        let stderr = String::from_utf8_lossy(&got.stderr);
        if literal && form.contains("hostname") {
            assert!(got.status.success(), "{form}: {text}");
        } else if literal {
            // The URL is a URL no more: refused, naming the key, as a value.
            assert!(
                got.status.success() || stderr.contains("urls"),
                "{form}: {text}"
            );
        } else {
            assert!(!got.status.success(), "{form}: {text}");
            assert!(
                stderr.contains(&config.display().to_string())
                    && stderr.contains("line 2")
                    && stderr.contains("`INJECTED`"),
                "{form}: the error names neither file, line nor variable: {text}"
            );
        }
    }

    // The hostname lands in the `host` tag, whole; the would-be output
    // never writes.
    let config = dir.path().join("run.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\n  hostname = \"${{INJECTED}}\"\n[[inputs.mem]]\n[[outputs.file]]\n  files = [\"{}\"]\n",
            out.display()
        ),
    )
    .unwrap();
    let run = graft()
        .args(["run", "--once", "--config"])
        .arg(&config)
        .env("INJECTED", payload(&pwned, '"'))
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", show(&run));
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(
        written.starts_with("mem,host=x\"]") && written.contains("outputs.file"),
        "{written}"
    );
    assert!(
        !pwned.exists(),
        "the injected output wrote {}",
        pwned.display()
    );
}

/// Every duration and size key, in its section.
const KEYS: &[(&str, &str)] = &[
    ("agent", "interval"),
    ("agent", "collection_jitter"),
    ("agent", "collection_offset"),
    ("agent", "flush_interval"),
    ("agent", "flush_jitter"),
    ("agent", "precision"),
    ("inputs.mem", "interval"),
    ("inputs.mem", "precision"),
    ("inputs.mem", "collection_jitter"),
    ("inputs.mem", "collection_offset"),
    ("outputs.file", "flush_interval"),
    ("outputs.file", "flush_jitter"),
    ("aggregators.wasm", "period"),
    ("processors.wasm.limits", "call_timeout"),
    ("inputs.carbon", "read_timeout"),
    ("inputs.socket_listener", "read_timeout"),
    ("inputs.socket_listener", "keep_alive_period"),
    ("inputs.statsd", "max_ttl"),
    ("inputs.statsd", "read_timeout"),
    ("inputs.statsd", "tcp_keep_alive_period"),
    ("inputs.influxdb_listener", "read_timeout"),
    ("inputs.influxdb_listener", "write_timeout"),
    ("inputs.postgresql", "max_lifetime"),
    ("outputs.influxdb", "timeout"),
    ("outputs.influxdb_v2", "timeout"),
    ("outputs.graphite", "timeout"),
];

const SIZES: &[(&str, &str)] = &[
    ("agent", "metric_batch_size"),
    ("agent", "metric_buffer_limit"),
    ("outputs.file", "metric_batch_size"),
    ("outputs.file", "metric_buffer_limit"),
    ("processors.wasm.limits", "memory"),
    ("processors.wasm.limits", "max_return"),
    ("processors.wasm.limits", "recycle_memory"),
    ("inputs.carbon", "max_line_size"),
    ("inputs.carbon", "max_frame_size"),
    ("inputs.carbon", "max_pickle_decoded_size"),
    ("inputs.socket_listener", "max_line_size"),
    ("inputs.socket_listener", "read_buffer_size"),
    ("inputs.statsd", "max_line_size"),
    ("inputs.statsd", "udp_packet_size"),
    ("inputs.statsd", "read_buffer_size"),
    ("inputs.influxdb_listener", "max_body_size"),
    ("inputs.influxdb_listener", "max_line_size"),
];

/// A config with `key = value` in `section`, and what else it needs to be
/// valid otherwise.
fn config_with(section: &str, key: &str, value: &str) -> String {
    let mut text = String::new();
    let (table, nested) = match section.strip_suffix(".limits") {
        Some(t) => (t, Some("limits")),
        None => (section, None),
    };
    if table == "agent" {
        text.push_str(&format!("[agent]\n  {key} = {value}\n"));
    } else {
        text.push_str("[agent]\n  omit_hostname = true\n");
    }
    let needs_path = table.ends_with(".wasm");
    if table != "agent" {
        text.push_str(&format!("[[{table}]]\n"));
        if needs_path {
            text.push_str("  path = \"missing.wasm\"\n");
        }
        if table == "inputs.socket_listener" {
            text.push_str("  service_address = \"tcp://127.0.0.1:0\"\n");
        }
        match nested {
            Some(n) => text.push_str(&format!("  [{table}.{n}]\n    {key} = {value}\n")),
            None => text.push_str(&format!("  {key} = {value}\n")),
        }
    }
    if !table.starts_with("inputs.") {
        text.push_str("[[inputs.mem]]\n");
    }
    text
}

fn assert_named_error(out: &Output, file: &Path, section: &str, key: &str, what: &str) {
    let text = show(out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{what}: accepted: {text}");
    assert!(!text.contains("panicked"), "{what}: {text}");
    let table = section.trim_end_matches(".limits");
    let section_named = if table == "agent" {
        stderr.contains("[agent]")
    } else {
        stderr.contains(&format!("{table}[0]"))
    };
    assert!(
        stderr.contains(&file.display().to_string()) && section_named && stderr.contains(key),
        "{what}: the error does not name file, section and key: {text}"
    );
}

#[test]
fn every_overflowing_duration_and_size_is_a_named_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("graft.toml");
    let mut tried = 0;
    for (section, key) in KEYS {
        for value in [
            "\"99999999999999999999999h\"",
            "1e300",
            "1e30",
            "\"9999999999999h\"",
        ] {
            std::fs::write(&file, config_with(section, key, value)).unwrap();
            for command in [&["config", "check"][..], &["run", "--once"][..]] {
                let out = graft()
                    .args(command)
                    .arg("--config")
                    .arg(&file)
                    .output()
                    .unwrap();
                let what = format!("{command:?} {section} {key} = {value}");
                assert_named_error(&out, &file, section, key, &what);
                tried += 1;
            }
        }
    }
    for (section, key) in SIZES {
        let value = if section.contains("wasm") || section.starts_with("inputs.") {
            "\"99999999999GiB\""
        } else {
            "9223372036854775807"
        };
        std::fs::write(&file, config_with(section, key, value)).unwrap();
        let out = graft()
            .args(["config", "check", "--config"])
            .arg(&file)
            .output()
            .unwrap();
        assert_named_error(
            &out,
            &file,
            section,
            key,
            &format!("{section} {key} = {value}"),
        );
        tried += 1;
    }
    assert_eq!(tried, KEYS.len() * 8 + SIZES.len());
}
