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
