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
    type Take = fn(&mut PluginSection) -> Result<(), ConfigError>;
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

/// The typed error of `merge_text`, for its fields.
fn config_error(text: &str) -> ConfigError {
    let mut c = Config::default();
    let err = c.merge_text(text, "a.toml").unwrap_err();
    err.downcast::<ConfigError>().expect("a ConfigError")
}

/// The error `validate` finds in `text`, which reads without error.
fn validate_error(text: &str) -> ConfigError {
    let mut c = Config::default();
    c.merge_text(text, "a.toml").unwrap();
    c.validate().unwrap_err()
}

#[test]
fn errors_carry_file_section_and_key() {
    let e = config_error("[agent]\n  intervall = \"5s\"\n");
    assert_eq!(e.file.as_deref(), Some("a.toml"));
    assert_eq!(e.section.as_deref(), Some("[agent]"));
    assert_eq!(e.key.as_deref(), Some("intervall"));
    assert!(e.message.contains("unknown key"), "{e}");
    assert!(
        e.to_string()
            .starts_with("a.toml: [agent]: key `intervall`: unknown key"),
        "{e}"
    );

    let e = config_error("[agent]\n  flush_interval = \"0s\"\n");
    assert_eq!(e.key.as_deref(), Some("flush_interval"), "{e}");
    assert!(e.message.contains("greater than zero"), "{e}");

    let e = config_error("[global_tags]\n  dc = 1\n");
    assert_eq!(
        (e.section.as_deref(), e.key.as_deref()),
        (Some("[global_tags]"), Some("dc")),
        "{e}"
    );
}

#[test]
fn telegraf_agent_keys_without_effect_are_still_accepted() {
    let mut c = Config::default();
    c.merge_text(
        "[agent]\n  logfile = \"\"\n  snmp_translator = \"gosmi\"\n  buffer_strategy = \"memory\"\n",
        "a.toml",
    )
    .unwrap();
    assert_eq!(c.agent, AgentConfig::default());
    c.merge_text(
        "[agent]\n  statefile = \"/var/lib/graft/state\"\n",
        "b.toml",
    )
    .unwrap();
    assert_eq!(
        c.agent.statefile.as_deref(),
        Some(std::path::Path::new("/var/lib/graft/state"))
    );
}

#[test]
fn section_option_errors_name_file_section_and_key() {
    let mut c = Config::default();
    c.merge_text(
        "[[outputs.file]]\n[[outputs.file]]\n  metric_batch_size = 0\n",
        "o.toml",
    )
    .unwrap();
    let e = section::OutputOptions::take(&mut c.outputs[1].clone()).unwrap_err();
    // The builder names the section around it, as for every plugin error.
    assert_eq!(
        e.to_string(),
        "key `metric_batch_size`: expected a positive whole number, found 0"
    );
    assert_eq!(
        c.outputs[1].error(e).to_string(),
        "o.toml: outputs.file[1]: key `metric_batch_size`: expected a positive whole number, found 0"
    );
    assert_eq!(
        c.validate().unwrap_err().to_string(),
        "o.toml: outputs.file[1]: key `metric_batch_size`: expected a positive whole number, found 0"
    );
    let mut s = c.outputs[0].clone();
    s.table.insert("namepass".into(), "cpu".into());
    let e = s.output_options().unwrap_err();
    assert_eq!(e.key.as_deref(), Some("namepass"), "{e}");
    let mut s = c.outputs[0].clone();
    s.table
        .insert("tags".into(), toml::Value::Table(toml::Table::new()));
    // `tags` is not an output option: it stays for the plugin to refuse.
    s.output_options().unwrap();
    assert!(s.table.contains_key("tags"));
}

/// Every option of every kind, with a value other than its default, is
/// read; nothing else is taken.
#[test]
fn every_common_option_of_every_kind_is_read() {
    let common = "alias = \"a\"\n namepass = [\"c*\"]\n mine = 1\n";
    let mut c = Config::default();
    c.merge_text(
        &format!(
            "[[inputs.x]]\n {common} interval = \"2s\"\n precision = \"1ms\"\n collection_jitter = \"3s\"\n collection_offset = \"4s\"\n name_override = \"n\"\n name_prefix = \"p\"\n name_suffix = \"s\"\n tags = {{ t = \"v\" }}\n\
             [[processors.x]]\n {common} order = -2\n\
             [[aggregators.x]]\n {common} period = \"5s\"\n drop_original = true\n name_prefix = \"p\"\n\
             [[outputs.x]]\n {common} flush_interval = \"6s\"\n flush_jitter = \"7s\"\n metric_batch_size = 8\n metric_buffer_limit = 9\n"
        ),
        "a.toml",
    )
    .unwrap();
    let s = std::time::Duration::from_secs;
    let mine = |t: &toml::Table| assert_eq!(t.keys().collect::<Vec<_>>(), ["mine"]);

    let mut i = c.inputs[0].clone();
    let o = i.input_options().unwrap();
    mine(&i.table);
    assert_eq!(o.common.alias.as_deref(), Some("a"));
    assert!(o.common.filter.selects());
    assert_eq!(
        (o.interval, o.collection_jitter, o.collection_offset),
        (Some(s(2)), Some(s(3)), Some(s(4)))
    );
    assert_eq!(o.precision, Some(std::time::Duration::from_millis(1)));
    let m = &o.modifiers;
    assert_eq!(
        (m.name_override.as_deref(), m.name_prefix.as_deref()),
        (Some("n"), Some("p"))
    );
    assert_eq!(
        (m.name_suffix.as_deref(), m.tags["t"].as_str()),
        (Some("s"), "v")
    );

    let mut p = c.processors[0].clone();
    assert_eq!(p.processor_options().unwrap().order, -2);
    mine(&p.table);

    let mut a = c.aggregators[0].clone();
    let o = a.aggregator_options().unwrap();
    mine(&a.table);
    assert_eq!((o.period, o.drop_original), (s(5), true));
    assert_eq!(o.modifiers.name_prefix.as_deref(), Some("p"));

    let mut out = c.outputs[0].clone();
    let o = out.output_options().unwrap();
    mine(&out.table);
    assert_eq!((o.flush_interval, o.flush_jitter), (Some(s(6)), Some(s(7))));
    assert_eq!(
        (o.metric_batch_size, o.metric_buffer_limit),
        (Some(8), Some(9))
    );
}

#[test]
fn aggregator_period_defaults_to_thirty_seconds() {
    let mut c = Config::default();
    c.merge_text("[[aggregators.x]]\n", "a.toml").unwrap();
    let o = c.aggregators[0].aggregator_options().unwrap();
    assert_eq!(o.period, options::DEFAULT_PERIOD);
    assert!(!o.drop_original);
}

#[test]
fn wasm_sections_are_read_into_settings() {
    let mut c = Config::default();
    c.merge_text(
        "[[processors.wasm]]\n  path = \"p/x.wasm\"\n  on_error = \"drop\"\n  order = 1\n  [processors.wasm.config]\n    k = [1, 2]\n  [processors.wasm.limits]\n    memory = \"1MiB\"\n    call_timeout = \"2s\"\n    fuel = 5\n    max_return = 1000\n    recycle_memory = \"3MiB\"\n",
        "/etc/graft/a.toml",
    )
    .unwrap();
    let mut s = c.processors[0].clone();
    s.processor_options().unwrap();
    let w = wasm::take(&mut s).unwrap();
    assert_eq!(w.path, std::path::Path::new("/etc/graft/p/x.wasm"));
    assert_eq!(w.config_json, r#"{"k":[1,2]}"#);
    assert_eq!(w.on_error, wasm::OnErrorSetting::Drop);
    assert_eq!(w.limits.memory_bytes, 1 << 20);
    assert_eq!(w.limits.call_timeout, std::time::Duration::from_secs(2));
    assert_eq!(w.limits.fuel, Some(5));
    assert_eq!(w.limits.max_return_bytes, 1000);
    assert_eq!(w.limits.recycle_memory, Some(3 << 20));
    assert!(s.table.is_empty());
}

#[test]
fn wasm_section_errors_name_file_section_and_key() {
    let cases = [
        (
            "  path = \"x.wasm\"\n  pth = 1\n",
            "pth",
            "go under `config`",
        ),
        (
            "  path = \"x.wasm\"\n  [outputs.wasm.limits]\n    memroy = 1\n",
            "limits.memroy",
            "unknown key",
        ),
        (
            "  path = \"x.wasm\"\n  [outputs.wasm.limits]\n    fuel = 0\n",
            "limits.fuel",
            "positive",
        ),
        (
            "  path = \"x.wasm\"\n  [outputs.wasm.limits]\n    call_timeout = \"0s\"\n",
            "limits.call_timeout",
            "greater than zero",
        ),
        (
            "  path = \"x.wasm\"\n  [outputs.wasm.permissions]\n    env = \"HOME\"\n",
            "permissions.env",
            "sequence",
        ),
        (
            "  path = \"x.wasm\"\n  on_error = \"drop\"\n",
            "on_error",
            "processors only",
        ),
        ("  config = {}\n", "path", "required"),
        ("  path = 7\n", "path", "string"),
    ];
    for (body, key, what) in cases {
        let e = validate_error(&format!("[[outputs.wasm]]\n  alias = \"w\"\n{body}"));
        assert_eq!(e.file.as_deref(), Some("a.toml"), "{body}: {e}");
        assert_eq!(e.section.as_deref(), Some("outputs.wasm[0]"), "{body}: {e}");
        assert_eq!(e.key.as_deref(), Some(key), "{body}: {e}");
        assert!(e.message.contains(what), "{body}: {e}");
    }
}

#[test]
fn validate_checks_what_graft_reads_without_building() {
    let mut c = Config::default();
    c.merge_text(
        "[[inputs.mem]]\n  interval = \"1s\"\n  whatever_the_plugin_reads = 1\n\
         [[processors.wasm]]\n  path = \"does/not/exist.wasm\"\n  on_error = \"drop\"\n\
         [[outputs.file]]\n  metric_batch_size = 10\n",
        "a.toml",
    )
    .unwrap();
    c.validate().unwrap();
    // Validating takes nothing out of the sections the build reads.
    assert!(c.processors[0].table.contains_key("path"));

    let e = validate_error(
        "[[inputs.mem]]\n[[inputs.mem]]\n  collection_jitter = \"1y\"\n[[outputs.file]]\n  flush_interval = 0\n",
    );
    assert_eq!(e.section.as_deref(), Some("inputs.mem[1]"), "{e}");
    assert_eq!(e.key.as_deref(), Some("collection_jitter"), "{e}");
    let mut c = Config::default();
    c.merge_text(
        "[[inputs.mem]]\n  collection_jitter = \"1y\"\n[[outputs.file]]\n  flush_interval = 0\n",
        "a.toml",
    )
    .unwrap();
    let keys: Vec<_> = c.problems().into_iter().map(|e| e.key.unwrap()).collect();
    assert_eq!(keys, ["collection_jitter", "flush_interval"]);
}

#[test]
fn the_built_in_configs_validate() {
    for (text, name) in [(sample::DEFAULT, "default"), (sample::SAMPLE, "sample")] {
        let mut c = Config::default();
        c.merge_text(text, name).unwrap();
        assert!(c.problems().is_empty(), "{name}: {:?}", c.problems());
    }
}

#[test]
fn two_outputs_may_not_share_a_disk_buffer() {
    let e = validate_error(
        "[agent]\n  buffer_strategy = \"disk\"\n  buffer_directory = \"/var/lib/graft\"\n\
         [[outputs.file]]\n  alias = \"a\"\n[[outputs.file]]\n  alias = \"b\"\n\
         [[outputs.file]]\n  alias = \"a\"\n",
    );
    assert_eq!(e.section.as_deref(), Some("outputs.file[2]"), "{e}");
    assert_eq!(e.key.as_deref(), Some("buffer_directory"), "{e}");
    assert!(e.message.contains("outputs.file[0]"), "{e}");
    // Memory outputs share nothing; aliases and places tell disk ones apart.
    let mut c = Config::default();
    c.merge_text(
        "[agent]\n  buffer_directory = \"/var/lib/graft\"\n\
         [[outputs.file]]\n[[outputs.file]]\n  buffer_strategy = \"disk\"\n\
         [[outputs.file]]\n  buffer_strategy = \"disk\"\n",
        "a.toml",
    )
    .unwrap();
    assert!(c.problems().is_empty(), "{:?}", c.problems());
}

#[test]
fn retired_agent_keys_warn_with_file_section_key_and_the_key_to_use() {
    let mut c = Config::default();
    c.merge_text(
        "[agent]\n  interval = \"5s\"\n  connection_jitter = \"1s\"\n  flush_buffer_when_full = true\n  utc = true\n",
        "old.conf",
    )
    .unwrap();
    assert_eq!(c.agent.interval, std::time::Duration::from_secs(5));
    let keys: Vec<_> = c
        .warnings
        .iter()
        .map(|w| w.key.as_deref().unwrap())
        .collect();
    assert_eq!(keys, ["connection_jitter", "flush_buffer_when_full", "utc"]);
    for w in &c.warnings {
        assert_eq!(w.file.as_deref(), Some("old.conf"), "{w}");
        assert_eq!(w.section.as_deref(), Some("[agent]"), "{w}");
    }
    let jitter = c.warnings[0].to_string();
    assert!(
        jitter.starts_with("old.conf: [agent]: key `connection_jitter`: ignored")
            && jitter.contains("did you mean `collection_jitter`?"),
        "{jitter}"
    );
    // A key graft knows but does not act on is a warning too.
    let mut c = Config::default();
    c.merge_text("[agent]\n  logfile = \"/tmp/x.log\"\n", "a.toml")
        .unwrap();
    assert_eq!(c.warnings.len(), 1);
    assert_eq!(c.warnings[0].key.as_deref(), Some("logfile"));
}

#[test]
fn a_typo_in_agent_stays_an_error_and_names_the_closest_key() {
    let e = config_error("[agent]\n  flush_intervall = \"5s\"\n");
    assert_eq!(e.key.as_deref(), Some("flush_intervall"));
    assert!(e.message.contains("did you mean `flush_interval`?"), "{e}");
}

#[test]
fn deprecated_plugin_keys_warn_and_ignored_ones_are_taken_out() {
    let mut c = Config::default();
    c.merge_text(
        "[[inputs.statsd]]\n  convert_names = true\n  parse_data_dog_tags = true\n\n[[outputs.influxdb]]\n  url = \"http://127.0.0.1:8086\"\n  precision = \"s\"\n",
        "t.conf",
    )
    .unwrap();
    let seen: Vec<_> = c
        .warnings
        .iter()
        .map(|w| {
            (
                w.section.as_deref().unwrap(),
                w.key.as_deref().unwrap(),
                w.file.as_deref().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("inputs.statsd[0]", "parse_data_dog_tags", "t.conf"),
            ("inputs.statsd[0]", "convert_names", "t.conf"),
            ("outputs.influxdb[0]", "url", "t.conf"),
            ("outputs.influxdb[0]", "precision", "t.conf"),
        ]
    );
    let convert = c.warnings[1].to_string();
    assert!(
        convert.starts_with("t.conf: inputs.statsd[0]: key `convert_names`: ignored")
            && convert.contains("use `metric_separator` instead"),
        "{convert}"
    );
    // Ignored keys are gone from the plugin's table; read ones stay.
    assert!(!c.inputs[0].table.contains_key("convert_names"));
    assert!(c.inputs[0].table.contains_key("parse_data_dog_tags"));
    assert!(!c.outputs[0].table.contains_key("precision"));
    assert!(c.outputs[0].table.contains_key("url"));
    c.validate().unwrap();
}
