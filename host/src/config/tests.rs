use super::*;

#[test]
fn telegraf_shaped_config_is_read() {
    let mut c = Config::default();
    c.merge_text(
        r#"
[global_tags]
  dc = "tyo"
[agent]
  interval = "5s"
  flush_interval = "1s"
  metric_batch_size = 100
  metric_buffer_limit = 1000
  omit_hostname = true
  logfile = ""
[[inputs.mem]]
[[inputs.mem]]
  alias = "second"
[[outputs.file]]
  files = ["stdout"]
"#,
        "t.toml",
    )
    .unwrap();
    assert_eq!(c.agent.interval, std::time::Duration::from_secs(5));
    assert_eq!(c.agent.metric_batch_size, 100);
    assert!(c.agent.omit_hostname);
    assert_eq!(c.global_tags["dc"], "tyo");
    assert_eq!(c.inputs.len(), 2);
    assert_eq!(c.inputs[1].location(), "inputs.mem[1]");
    assert_eq!(c.outputs[0].context(), "t.toml: outputs.file[0]");
}

#[test]
fn unknown_agent_key_is_named() {
    let mut c = Config::default();
    let err = c
        .merge_text("[agent]\n  intervall = \"5s\"\n", "a.toml")
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("[agent]") && msg.contains("`intervall`"),
        "{msg}"
    );
}

#[test]
fn bad_duration_is_named() {
    let mut c = Config::default();
    let err = c
        .merge_text("[agent]\n  interval = \"5 parsecs\"\n", "a.toml")
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("`interval`") && msg.contains("parsecs"),
        "{msg}"
    );
}

#[test]
fn unknown_top_level_key_is_an_error() {
    let mut c = Config::default();
    assert!(c.merge_text("[inptus.mem]\n", "a.toml").is_err());
}

#[test]
fn buffer_smaller_than_batch_is_an_error() {
    let mut c = Config::default();
    let err = c
        .merge_text(
            "[agent]\nmetric_batch_size = 10\nmetric_buffer_limit = 5\n",
            "a.toml",
        )
        .unwrap_err();
    assert!(format!("{err:#}").contains("metric_buffer_limit"));
}

#[test]
fn common_options_are_taken_and_the_rest_left() {
    let mut c = Config::default();
    c.merge_text(
        "[[inputs.mem]]\n interval = \"1s\"\n name_prefix = \"p_\"\n collect_extended = true\n [inputs.mem.tags]\n  a = \"b\"\n",
        "a.toml",
    )
    .unwrap();
    let mut s = c.inputs.remove(0);
    let o = s.input_options().unwrap();
    assert_eq!(o.interval, Some(std::time::Duration::from_secs(1)));
    assert_eq!(o.modifiers.name_prefix.as_deref(), Some("p_"));
    assert_eq!(o.modifiers.tags["a"], "b");
    assert_eq!(s.table.keys().collect::<Vec<_>>(), ["collect_extended"]);
}

/// Every duration key of `[agent]` and of the options graft reads from
/// plugin sections, with values too large for a `Duration` or past a year.
#[test]
fn overflowing_durations_are_errors_naming_section_and_key() {
    let values = [
        "\"99999999999999999999999h\"",
        "1e300",
        "\"9999999999999h\"",
        "366d",
    ];
    let agent_keys = [
        "interval",
        "collection_jitter",
        "collection_offset",
        "flush_interval",
        "flush_jitter",
        "precision",
    ];
    for key in agent_keys {
        for value in values {
            let value = if value == "366d" { "\"366d\"" } else { value };
            let mut c = Config::default();
            let err = c
                .merge_text(&format!("[agent]\n  {key} = {value}\n"), "a.toml")
                .unwrap_err();
            let msg = format!("{err:#}");
            assert!(
                msg.contains("[agent]") && msg.contains(&format!("`{key}`")),
                "{key} = {value}: {msg}"
            );
        }
    }
    type Take = fn(&mut PluginSection) -> anyhow::Result<()>;
    let sections: [(&str, &str, Take); 7] = [
        ("inputs.mem", "interval", |s| s.input_options().map(drop)),
        ("inputs.mem", "precision", |s| s.input_options().map(drop)),
        ("inputs.mem", "collection_jitter", |s| {
            s.input_options().map(drop)
        }),
        ("inputs.mem", "collection_offset", |s| {
            s.input_options().map(drop)
        }),
        ("outputs.file", "flush_interval", |s| {
            s.output_options().map(drop)
        }),
        ("outputs.file", "flush_jitter", |s| {
            s.output_options().map(drop)
        }),
        ("aggregators.wasm", "period", |s| {
            s.aggregator_options().map(drop)
        }),
    ];
    for (section, key, take) in sections {
        for value in values {
            let value = if value == "366d" { "\"366d\"" } else { value };
            let mut c = Config::default();
            c.merge_text(&format!("[[{section}]]\n  {key} = {value}\n"), "a.toml")
                .unwrap();
            let mut s = c
                .inputs
                .into_iter()
                .chain(c.outputs)
                .chain(c.aggregators)
                .next()
                .unwrap();
            let err = take(&mut s).unwrap_err();
            let msg = format!("{err:#}");
            assert!(
                msg.contains(&format!("`{key}`")) && msg.contains("too long"),
                "{section} {key} = {value}: {msg}"
            );
        }
    }
}

#[test]
fn durations_up_to_a_year_are_accepted() {
    let mut c = Config::default();
    c.merge_text(
        "[agent]\n  interval = \"365d\"\n  flush_interval = 0.5\n",
        "a.toml",
    )
    .unwrap();
    assert_eq!(
        c.agent.interval,
        std::time::Duration::from_secs(365 * 86400)
    );
    assert_eq!(
        c.agent.flush_interval,
        std::time::Duration::from_millis(500)
    );
}

#[test]
fn absurd_counts_are_errors_naming_the_key() {
    for key in ["metric_batch_size", "metric_buffer_limit"] {
        let mut c = Config::default();
        let err = c
            .merge_text(
                &format!("[agent]\n  {key} = 9223372036854775807\n"),
                "a.toml",
            )
            .unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains(&format!("`{key}`")) && msg.contains("too large"),
            "{msg}"
        );
    }
}

#[test]
fn an_injected_value_stays_a_value() {
    let payload = "http://x\"]\n[[outputs.file]]\nfiles = [\"/tmp/pwned\"]\n#";
    let mut c = Config::default();
    let text = env::substitute_with(
        "[agent]\n  hostname = \"${GRAFT_TEST_INJECT}\"\n[[outputs.file]]\n  files = [\"$GRAFT_TEST_INJECT\"]\n",
        |name| (name == "GRAFT_TEST_INJECT").then(|| payload.to_owned()),
    )
    .unwrap();
    c.merge_text(&text, "a.toml").unwrap();
    assert_eq!(c.outputs.len(), 1);
    assert_eq!(c.agent.hostname.as_deref(), Some(payload));
    assert_eq!(c.outputs[0].table["files"][0].as_str(), Some(payload));
}
